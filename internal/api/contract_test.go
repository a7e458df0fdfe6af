package api_test

import (
	"encoding/json"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/domaind/domaind/internal/api"
)

var parseLimit = api.ParseLimit

var (
	millisUTC = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)
	hex24     = regexp.MustCompile(`^[0-9a-f]{24}$`)
)

// keysOf returns the sorted keys of a JSON object.
func keysOf(v any) []string {
	return slices.Sorted(maps.Keys(v.(map[string]any)))
}

func sorted(s ...string) []string { slices.Sort(s); return s }

// assertDomainShape checks a Domain object field by field against the contract, so
// that a drift from AutoSend's shapes fails here.
func assertDomainShape(t *testing.T, where string, d map[string]any, verified bool) {
	t.Helper()
	want := sorted("id", "domainName", "verificationStatus", "ownershipVerified", "dkimEnabled",
		"mailFromEnabled", "dmarcEnabled", "dnsRecords", "createdAt", "lastCheckedAt", "regionKey",
		"verificationInProgress", "inboundEnabledAt", "inboundDomainVerifiedAt")
	if verified {
		want = sorted(append(want, "verifiedAt")...)
	}
	if got := keysOf(d); !slices.Equal(got, want) {
		t.Fatalf("%s: Domain keys\n got %v\nwant %v", where, got, want)
	}
	if !hex24.MatchString(d["id"].(string)) {
		t.Errorf("%s: id %q is not 24 lowercase hex", where, d["id"])
	}
	for _, f := range []string{"createdAt", "lastCheckedAt", "verifiedAt"} {
		if s, ok := d[f].(string); ok && !millisUTC.MatchString(s) {
			t.Errorf("%s: %s %q is not RFC 3339 UTC with milliseconds", where, f, s)
		} else if !ok && (f != "verifiedAt") {
			t.Errorf("%s: %s is %T, want string", where, f, d[f])
		}
	}
	for _, f := range []string{"inboundEnabledAt", "inboundDomainVerifiedAt"} {
		if d[f] != nil {
			t.Errorf("%s: %s = %v, want null while inbound is off", where, f, d[f])
		}
	}
	for _, f := range []string{"ownershipVerified", "dkimEnabled", "mailFromEnabled", "dmarcEnabled", "verificationInProgress"} {
		if _, ok := d[f].(bool); !ok {
			t.Errorf("%s: %s is %T, want bool", where, f, d[f])
		}
	}
	if s := d["verificationStatus"]; s != "PENDING_CONFIGURATION" && s != "PENDING" && s != "VERIFIED" {
		t.Errorf("%s: verificationStatus %v outside the v1 enum", where, s)
	}
	recs := d["dnsRecords"].(map[string]any)
	if got := keysOf(recs); !slices.Equal(got, sorted("ownership", "dkim", "mailFrom", "dmarc")) {
		t.Errorf("%s: dnsRecords keys %v", where, got)
	}
	name := d["domainName"].(string)
	checkRecord := func(key string, r any, typ, recName string, priority bool) {
		rm := r.(map[string]any)
		want := sorted("name", "value", "type", "purpose")
		if priority {
			want = sorted(append(want, "priority")...)
		}
		if got := keysOf(rm); !slices.Equal(got, want) {
			t.Errorf("%s: %s keys %v, want %v", where, key, got, want)
		}
		if rm["type"] != typ || rm["name"] != recName {
			t.Errorf("%s: %s = %v %v, want %s %s", where, key, rm["type"], rm["name"], typ, recName)
		}
		if strings.HasSuffix(rm["name"].(string), ".") || strings.HasSuffix(rm["value"].(string), ".") {
			t.Errorf("%s: %s has a trailing dot: %v", where, key, rm)
		}
		if priority && rm["priority"] != float64(10) {
			t.Errorf("%s: %s priority %v, want 10", where, key, rm["priority"])
		}
	}
	checkRecord("ownership", recs["ownership"], "TXT", "_autosend-verify."+name, false)
	checkRecord("dkim", recs["dkim"], "TXT", "autosend._domainkey."+name, false)
	mf := recs["mailFrom"].([]any)
	if len(mf) != 2 {
		t.Fatalf("%s: mailFrom has %d records, want 2", where, len(mf))
	}
	checkRecord("mailFrom[0]", mf[0], "MX", "mail."+name, true)
	checkRecord("mailFrom[1]", mf[1], "TXT", "mail."+name, false)
	checkRecord("dmarc", recs["dmarc"], "TXT", "_dmarc."+name, false)
	own := recs["ownership"].(map[string]any)["value"].(string)
	if !regexp.MustCompile(`^autosend-verify-[0-9a-f]{32}$`).MatchString(own) {
		t.Errorf("%s: ownership value %q", where, own)
	}
	// RFC 6376 section 3.6.1: a key record needs p=; the bare key is not one.
	dk := recs["dkim"].(map[string]any)["value"].(string)
	if !regexp.MustCompile(`^v=DKIM1; k=rsa; p=MI[A-Za-z0-9+/]+=*$`).MatchString(dk) {
		t.Errorf("%s: DKIM value %q, want v=DKIM1; k=rsa; p=<base64 SubjectPublicKeyInfo>", where, dk)
	}
	if v := mf[1].(map[string]any)["value"]; v != "v=spf1 include:amazonses.com ~all" {
		t.Errorf("%s: SPF value %v", where, v)
	}
	if v := recs["dmarc"].(map[string]any)["value"]; v != "v=DMARC1; p=none;" {
		t.Errorf("%s: DMARC value %v", where, v)
	}
}

// TestContractShapes decodes every success response into the contract's shapes.
func TestContractShapes(t *testing.T) {
	e := newEnv(t, envOptions{})

	r := e.do("POST", "/v1/domains", `{"domain":"example.com"}`, e.key)
	if r.status != http.StatusCreated {
		t.Fatalf("add: %d %s", r.status, r.body)
	}
	m := r.json(t)
	if got := keysOf(m); !slices.Equal(got, []string{"data", "success"}) || m["success"] != true {
		t.Fatalf("add envelope %v", got)
	}
	added := m["data"].(map[string]any)
	assertDomainShape(t, "add", added, false)
	if added["lastCheckedAt"] != added["createdAt"] {
		t.Errorf("lastCheckedAt %v should equal createdAt %v before the first check", added["lastCheckedAt"], added["createdAt"])
	}
	if added["regionKey"] != "us-east-1" || added["verificationStatus"] != "PENDING_CONFIGURATION" {
		t.Errorf("add: region %v status %v", added["regionKey"], added["verificationStatus"])
	}
	id := added["id"].(string)

	r = e.do("GET", "/v1/domains", "", e.key)
	m = r.json(t)
	if r.status != http.StatusOK || m["success"] != true || !slices.Equal(keysOf(m["data"]), []string{"domains"}) {
		t.Fatalf("list: %d %s", r.status, r.body)
	}
	list := m["data"].(map[string]any)["domains"].([]any)
	if len(list) != 1 {
		t.Fatalf("list has %d domains", len(list))
	}
	assertDomainShape(t, "list", list[0].(map[string]any), false)

	r = e.do("GET", "/v1/domains/"+id, "", e.key)
	got := r.json(t)["data"].(map[string]any)
	assertDomainShape(t, "get", got, false)
	// What add answered is what get answers.
	a, _ := json.Marshal(added)
	g, _ := json.Marshal(got)
	if string(a) != string(g) {
		t.Errorf("add and get disagree:\nadd %s\nget %s", a, g)
	}

	// Verify with nothing published: no verifiedAt yet.
	r = e.do("POST", "/v1/domains/"+id+"/verify", "", e.key)
	m = r.json(t)
	if r.status != http.StatusOK || m["message"] != "Domain verification status updated" || m["success"] != true {
		t.Fatalf("verify: %d %s", r.status, r.body)
	}
	data := m["data"].(map[string]any)
	if got := keysOf(data); !slices.Equal(got, sorted("domain", "verificationInProgress", "ownershipVerified",
		"verificationStatus", "dkimEnabled", "mailFromEnabled", "dmarcEnabled")) {
		t.Fatalf("verify data keys %v", got)
	}
	assertDomainShape(t, "verify", data["domain"].(map[string]any), false)

	// Publish and verify: verifiedAt appears.
	d := e.get(id)
	e.publish(d.DNSRecords.Ownership)
	e.publish(d.DNSRecords.DKIM)
	r = e.do("POST", "/v1/domains/"+id+"/verify", "", e.key)
	data = r.json(t)["data"].(map[string]any)
	assertDomainShape(t, "verify verified", data["domain"].(map[string]any), true)
	assertDomainShape(t, "get verified", e.do("GET", "/v1/domains/"+id, "", e.key).json(t)["data"].(map[string]any), true)

	r = e.do("DELETE", "/v1/domains/"+id, "", e.key)
	m = r.json(t)
	if r.status != http.StatusOK || !slices.Equal(keysOf(m), []string{"message", "success"}) ||
		m["message"] != "Domain deleted successfully" || m["success"] != true {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	errorOf(t, e.do("GET", "/v1/domains/"+id, "", e.key), http.StatusNotFound, "DOMAIN_NOT_FOUND")
	errorOf(t, e.do("DELETE", "/v1/domains/"+id, "", e.key), http.StatusNotFound, "DOMAIN_NOT_FOUND")
}

// TestListOrderAndLimit checks that v1 lists every domain oldest first, and honours limit.
func TestListOrderAndLimit(t *testing.T) {
	e := newEnv(t, envOptions{})
	var ids []string
	for _, n := range []string{"a.example.com", "b.example.com", "c.example.com"} {
		ids = append(ids, e.addDomain(n).ID)
	}
	listIDs := func(q string) []string {
		var env struct {
			Data struct {
				Domains []domainJSON `json:"domains"`
			} `json:"data"`
		}
		if err := json.Unmarshal(e.do("GET", "/v1/domains"+q, "", e.key).body, &env); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, d := range env.Data.Domains {
			out = append(out, d.ID)
		}
		return out
	}
	if got := listIDs(""); !slices.Equal(got, ids) {
		t.Errorf("list = %v, want %v (oldest first)", got, ids)
	}
	if got := listIDs("?limit=2"); !slices.Equal(got, ids[:2]) {
		t.Errorf("list?limit=2 = %v, want %v", got, ids[:2])
	}
	if got := listIDs("?limit=2&offset=2"); !slices.Equal(got, ids[2:]) {
		t.Errorf("list?limit=2&offset=2 = %v, want %v", got, ids[2:])
	}
}

func TestHealthz(t *testing.T) {
	e := newEnv(t, envOptions{})
	r := e.do("GET", "/healthz", "", "")
	if r.status != http.StatusOK || r.json(t)["status"] != "ok" {
		t.Fatalf("healthz: %d %s", r.status, r.body)
	}
}
