package api_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/miekg/dns"
)

type v2Receive struct {
	CanSend    bool `json:"canSend"`
	CanReceive bool `json:"canReceive"`
	Records    []struct {
		Type       string `json:"type"`
		IsRequired bool   `json:"isRequired"`
		IsVerified bool   `json:"isVerified"`
		Status     string `json:"status"`
		Problems   []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"problems"`
	} `json:"records"`
}

// checkReceive runs GET /api/v2/domains/{id}?check=true and returns the view.
func (e *env) checkReceive(id string) v2Receive {
	e.t.Helper()
	return getData[v2Receive](e, "/api/v2/domains/"+id+"?check=true")
}

func (v v2Receive) inbound(t *testing.T) (status string, codes []string, required bool) {
	t.Helper()
	for _, r := range v.Records {
		if r.Type == "inbound_mx" {
			for _, p := range r.Problems {
				codes = append(codes, p.Code)
			}
			return r.Status, codes, r.IsRequired
		}
	}
	t.Fatalf("no inbound_mx record in %+v", v.Records)
	return "", nil, false
}

// The harness has no verify minimum interval, so the checks below may follow each
// other at once.

// TestInbound walks receiving from refused to verified, through the problems a
// customer meets, and back off.
func TestInbound(t *testing.T) {
	e := newEnv(t, envOptions{})
	d := e.addDomain("example.com")

	// Before verification, enabling is refused and changes nothing.
	r := e.do("POST", "/v1/domains/"+d.ID+"/inbound/enable", "", e.key)
	if errObj := errorOf(t, r, http.StatusBadRequest, "VALIDATION_FAILED"); !slices.Contains(detailFields(t, errObj), "verificationStatus") {
		t.Errorf("refusal does not name verificationStatus: %v", errObj)
	}
	if g := e.get(d.ID); g.InboundEnabledAt != nil || g.DNSRecords.InboundMX != nil {
		t.Fatalf("a refused enable left inbound state: %+v", g)
	}

	e.publish(d.DNSRecords.Ownership)
	e.publish(d.DNSRecords.DKIM)
	e.verify(d.ID)

	r = e.do("POST", "/v1/domains/"+d.ID+"/inbound/enable", "", e.key)
	if r.status != http.StatusOK {
		t.Fatalf("enable: %d %s", r.status, r.body)
	}
	var enabled struct {
		Success bool       `json:"success"`
		Data    domainJSON `json:"data"`
	}
	decodeStrict(t, r.body, &enabled)
	mx := enabled.Data.DNSRecords.InboundMX
	if mx == nil || mx.Name != "example.com" || mx.Type != "MX" || mx.Value != "inbound-smtp.us-east-1.amazonaws.com" || mx.Priority == nil || *mx.Priority != 10 {
		t.Fatalf("inbound MX record %+v", mx)
	}
	if enabled.Data.InboundEnabledAt == nil || enabled.Data.InboundDomainVerifiedAt != nil {
		t.Fatalf("after enable: enabledAt %v verifiedAt %v", enabled.Data.InboundEnabledAt, enabled.Data.InboundDomainVerifiedAt)
	}
	// Enabling twice changes nothing.
	if again := e.do("POST", "/v1/domains/"+d.ID+"/inbound/enable", "", e.key); again.status != http.StatusOK {
		t.Fatalf("second enable: %d", again.status)
	}

	// Not verified until the MX is published.
	v := e.checkReceive(d.ID)
	if st, codes, req := v.inbound(t); st != "missing" || !slices.Contains(codes, "NOT_FOUND") || !req {
		t.Fatalf("unpublished inbound MX: %s %v required=%v", st, codes, req)
	}
	if !v.CanSend || v.CanReceive {
		t.Errorf("canSend %v canReceive %v, want true false", v.CanSend, v.CanReceive)
	}

	// A null MX says the domain takes no mail.
	e.zone.MustAdd("example.com. 300 IN MX 0 .")
	if st, codes, _ := e.checkReceive(d.ID).inbound(t); st != "mismatch" || !slices.Contains(codes, "NULL_MX") {
		t.Fatalf("null MX: %s %v", st, codes)
	}
	e.zone.Remove("example.com.", dns.TypeMX)

	// The platform's MX beside another host: mail would be split.
	e.zone.MustAdd("example.com. 300 IN MX 10 inbound-smtp.us-east-1.amazonaws.com.\nexample.com. 300 IN MX 20 mx.other.example.")
	if st, codes, _ := e.checkReceive(d.ID).inbound(t); st != "mismatch" || !slices.Contains(codes, "COMPETING_MX") {
		t.Fatalf("competing MX: %s %v", st, codes)
	}

	// Alone: verified, and the v1 timestamp appears.
	e.zone.Remove("example.com.", dns.TypeMX)
	e.zone.MustAdd("example.com. 300 IN MX 10 inbound-smtp.us-east-1.amazonaws.com.")
	if v := e.checkReceive(d.ID); !v.CanReceive {
		st, codes, _ := v.inbound(t)
		t.Fatalf("published inbound MX: canReceive false, %s %v", st, codes)
	}
	if g := e.get(d.ID); g.InboundDomainVerifiedAt == nil {
		t.Fatalf("inboundDomainVerifiedAt not set: %+v", g)
	}

	// Disable: record and timestamps gone.
	r = e.do("POST", "/v1/domains/"+d.ID+"/inbound/disable", "", e.key)
	var disabled struct {
		Success bool       `json:"success"`
		Data    domainJSON `json:"data"`
	}
	decodeStrict(t, r.body, &disabled)
	if r.status != http.StatusOK || disabled.Data.DNSRecords.InboundMX != nil || disabled.Data.InboundEnabledAt != nil || disabled.Data.InboundDomainVerifiedAt != nil {
		t.Fatalf("disable: %d %+v", r.status, disabled.Data)
	}
	if raw := e.do("GET", "/v1/domains/"+d.ID, "", e.key).json(t)["data"].(map[string]any); raw["inboundEnabledAt"] != nil ||
		raw["dnsRecords"].(map[string]any)["inboundMx"] != nil {
		t.Fatalf("after disable, GET shows %v", raw)
	}

	// Cross-project and malformed ids.
	other := e.newKey("globex")
	errorOf(t, e.do("POST", "/v1/domains/"+d.ID+"/inbound/enable", "", other), http.StatusNotFound, "DOMAIN_NOT_FOUND")
	errorOf(t, e.do("POST", "/v1/domains/nope/inbound/disable", "", e.key), http.StatusBadRequest, "VALIDATION_FAILED")
}

// TestInboundSurvivesRestart enables receiving, restarts on the same database and
// finds the flags and the record as they were.
func TestInboundSurvivesRestart(t *testing.T) {
	e := newEnv(t, envOptions{})
	d := e.addDomain("example.com")
	e.publish(d.DNSRecords.Ownership)
	e.publish(d.DNSRecords.DKIM)
	e.zone.MustAdd("example.com. 300 IN MX 10 inbound-smtp.us-east-1.amazonaws.com.")
	e.verify(d.ID)
	if r := e.do("POST", "/v1/domains/"+d.ID+"/inbound/enable", "", e.key); r.status != http.StatusOK {
		t.Fatalf("enable: %d", r.status)
	}
	before := e.verify(d.ID).Data.Domain
	if before.InboundDomainVerifiedAt == nil {
		t.Fatalf("inbound not verified before the restart: %+v", before)
	}
	e.close()
	e2 := newEnv(t, envOptions{dbPath: e.dbPath, dnsServer: e.dns})
	e2.key = e.key
	after := e2.get(d.ID)
	if after.InboundEnabledAt == nil || *after.InboundEnabledAt != *before.InboundEnabledAt ||
		after.InboundDomainVerifiedAt == nil || *after.InboundDomainVerifiedAt != *before.InboundDomainVerifiedAt ||
		after.DNSRecords.InboundMX == nil {
		t.Fatalf("after restart %+v, before %+v", after, before)
	}
}
