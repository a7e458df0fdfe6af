package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/domaind/domaind/internal/dnstest"
	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/records"
)

var (
	v2DomainKeys = sorted("id", "domain", "region", "verificationStatus", "ownershipVerified", "dkimEnabled",
		"mailFromEnabled", "dmarcEnabled", "canSend", "verificationInProgress", "createdAt", "lastCheckedAt", "verifiedAt", "canReceive",
		"state", "verificationFailedAt", "failureReason", "nextCheckAt")
	v2RecordKeys = sorted("id", "domainId", "recordType", "type", "name", "value", "priority", "purpose",
		"isRequired", "isVerified", "lastChecked", "status", "found", "problems", "propagation", "createdAt", "updatedAt")
	// sentence is one plain sentence: a capital first, a full stop last, one line.
	sentence = regexp.MustCompile(`^[A-Z][^\n]*\.$`)
)

// v2Get GETs path with the env's key, wants 200 and returns the body as an object.
func (e *env) v2Get(path string) map[string]any {
	e.t.Helper()
	r := e.do("GET", path, "", e.key)
	if r.status != http.StatusOK {
		e.t.Fatalf("GET %s: status %d: %s", path, r.status, r.body)
	}
	return r.json(e.t)
}

// v2Records returns a domain's records from GET /api/v2/domains/{id}, by type.
func (e *env) v2Records(id, query string) (dom map[string]any, byType map[string]map[string]any) {
	e.t.Helper()
	dom = e.v2Get("/api/v2/domains/" + id + query)["data"].(map[string]any)
	byType = map[string]map[string]any{}
	for _, r := range dom["records"].([]any) {
		rm := r.(map[string]any)
		byType[rm["type"].(string)] = rm
	}
	return dom, byType
}

// assertV2Record checks one record's keys and the types and forms of its values.
func assertV2Record(t *testing.T, where, domainID string, r map[string]any) {
	t.Helper()
	if got := keysOf(r); !slices.Equal(got, v2RecordKeys) {
		t.Fatalf("%s: record keys\n got %v\nwant %v", where, got, v2RecordKeys)
	}
	typ := r["type"].(string)
	if r["id"] != domainID+"-"+typ || r["domainId"] != domainID {
		t.Errorf("%s: id %v domainId %v, want %s-%s and %s", where, r["id"], r["domainId"], domainID, typ, domainID)
	}
	switch r["recordType"] {
	case "MX":
		if r["priority"] != float64(10) {
			t.Errorf("%s: MX priority %v, want 10", where, r["priority"])
		}
	case "TXT", "CNAME":
		if r["priority"] != nil {
			t.Errorf("%s: %s priority %v, want null", where, r["recordType"], r["priority"])
		}
	default:
		t.Errorf("%s: recordType %v", where, r["recordType"])
	}
	for _, f := range []string{"found", "problems", "propagation"} {
		if _, ok := r[f].([]any); !ok {
			t.Errorf("%s: %s is %T (%v), want an array", where, f, r[f], r[f])
		}
	}
	for _, p := range r["problems"].([]any) {
		if got := keysOf(p); !slices.Equal(got, []string{"code", "message"}) {
			t.Errorf("%s: problem keys %v", where, got)
		}
	}
	for _, f := range []string{"createdAt", "updatedAt", "lastChecked"} {
		s, ok := r[f].(string)
		if f == "lastChecked" && r[f] == nil {
			continue
		}
		if !ok || !millisUTC.MatchString(s) {
			t.Errorf("%s: %s %v is not RFC 3339 UTC with milliseconds", where, f, r[f])
		}
	}
	if s := r["status"]; !slices.Contains([]any{"unchecked", "verified", "missing", "mismatch", "temporary_failure"}, s) {
		t.Errorf("%s: status %v outside the enum", where, s)
	}
	if (r["lastChecked"] == nil) != (r["status"] == "unchecked") {
		t.Errorf("%s: lastChecked %v with status %v", where, r["lastChecked"], r["status"])
	}
	for _, f := range []string{"isRequired", "isVerified"} {
		if _, ok := r[f].(bool); !ok {
			t.Errorf("%s: %s is %T, want bool", where, f, r[f])
		}
	}
}

// TestV2Shapes checks the exact keys of every v2 object, before and after a check.
func TestV2Shapes(t *testing.T) {
	e := newEnv(t, envOptions{})
	d := e.addDomain("example.com")

	list := e.v2Get("/api/v2/domains")
	if got := keysOf(list); !slices.Equal(got, []string{"data", "pagination"}) {
		t.Fatalf("list keys %v", got)
	}
	if got := keysOf(list["pagination"]); !slices.Equal(got, sorted("limit", "offset", "total", "hasMore")) {
		t.Fatalf("pagination keys %v", got)
	}
	item := list["data"].([]any)[0].(map[string]any)
	if got := keysOf(item); !slices.Equal(got, v2DomainKeys) {
		t.Fatalf("list item keys\n got %v\nwant %v", got, v2DomainKeys)
	}
	if item["id"] != d.ID || item["domain"] != "example.com" || item["region"] != "us-east-1" ||
		item["verificationStatus"] != "PENDING_CONFIGURATION" || item["canSend"] != false {
		t.Errorf("list item %v", item)
	}
	if item["createdAt"] != d.CreatedAt || item["lastCheckedAt"] != nil || item["verifiedAt"] != nil {
		t.Errorf("before any check: createdAt %v (want %s), lastCheckedAt %v and verifiedAt %v (want null)",
			item["createdAt"], d.CreatedAt, item["lastCheckedAt"], item["verifiedAt"])
	}

	one := e.v2Get("/api/v2/domains/" + d.ID)
	if got := keysOf(one); !slices.Equal(got, []string{"data"}) {
		t.Fatalf("get keys %v", got)
	}
	dom := one["data"].(map[string]any)
	if got, want := keysOf(dom), sorted(append(slices.Clone(v2DomainKeys), "records")...); !slices.Equal(got, want) {
		t.Fatalf("get keys\n got %v\nwant %v", got, want)
	}
	recs := dom["records"].([]any)
	var types []string
	for i, r := range recs {
		rm := r.(map[string]any)
		assertV2Record(t, fmt.Sprintf("record %d", i), d.ID, rm)
		types = append(types, rm["type"].(string))
		if rm["status"] != "unchecked" || rm["isVerified"] != false || len(rm["found"].([]any)) != 0 {
			t.Errorf("record %d before any check: %v", i, rm)
		}
	}
	if want := []string{"ownership", "dkim", "mail_from_mx", "mail_from_spf", "dmarc"}; !slices.Equal(types, want) {
		t.Errorf("record types %v, want %v", types, want)
	}
	// The v2 records say what v1's dnsRecords say.
	v1 := map[string]recordJSON{
		"ownership": d.DNSRecords.Ownership, "dkim": d.DNSRecords.DKIM, "mail_from_mx": d.DNSRecords.MailFrom[0],
		"mail_from_spf": d.DNSRecords.MailFrom[1], "dmarc": d.DNSRecords.DMARC,
	}
	for _, r := range recs {
		rm := r.(map[string]any)
		want := v1[rm["type"].(string)]
		if rm["name"] != want.Name || rm["value"] != want.Value || rm["recordType"] != want.Type || rm["purpose"] != want.Purpose {
			t.Errorf("%v record disagrees with v1: %v vs %+v", rm["type"], rm, want)
		}
	}

	dr := e.v2Get("/api/v2/domains/" + d.ID + "/dns-records")
	if got := keysOf(dr); !slices.Equal(got, sorted("domainId", "domain", "records")) {
		t.Fatalf("dns-records keys %v", got)
	}
	if dr["domainId"] != d.ID || dr["domain"] != "example.com" {
		t.Errorf("dns-records head %v %v", dr["domainId"], dr["domain"])
	}
	a, _ := json.Marshal(dr["records"])
	b, _ := json.Marshal(recs)
	if string(a) != string(b) {
		t.Errorf("dns-records and the domain's records disagree:\n%s\n%s", a, b)
	}

	// Once checked and verified, the timestamps appear.
	e.publish(d.DNSRecords.Ownership)
	e.publish(d.DNSRecords.DKIM)
	dom, byType := e.v2Records(d.ID, "?check=true")
	for _, f := range []string{"lastCheckedAt", "verifiedAt", "createdAt"} {
		if s, _ := dom[f].(string); !millisUTC.MatchString(s) {
			t.Errorf("after a check: %s = %v, want a timestamp", f, dom[f])
		}
	}
	if dom["canSend"] != true || dom["verificationStatus"] != "VERIFIED" {
		t.Errorf("after a check: canSend %v status %v", dom["canSend"], dom["verificationStatus"])
	}
	for typ, r := range byType {
		assertV2Record(t, "checked "+typ, d.ID, r)
	}
}

// TestV2PropagationShape stores a check with per-server sightings and reads them
// back: zone and error appear only when set, values is [] rather than null.
func TestV2PropagationShape(t *testing.T) {
	e := newEnv(t, envOptions{})
	d := e.addDomain("example.com")
	ctx := context.Background()
	p, err := e.store.EnsureProject(ctx, "acme", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	stored, err := e.store.Domain(ctx, p.ID, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	stored.Apply([]domain.Observation{{
		Key: domain.KeyDMARC, Status: domain.CheckVerified, Found: []string{"v=DMARC1; p=none;"},
		Propagation: []domain.Sighting{
			{Server: "192.0.2.1:53", Role: domain.RoleAuthoritative, Zone: "example.com", Status: domain.CheckVerified, Values: []string{"v=DMARC1; p=none;"}},
			{Server: "127.0.0.1:53", Role: domain.RoleResolver, Status: domain.CheckTemporaryFailure, Error: "timeout"},
		},
	}}, time.Now(), domain.Rules{})
	if err := e.store.SaveCheck(ctx, stored, nil); err != nil {
		t.Fatal(err)
	}
	_, byType := e.v2Records(d.ID, "")
	prop := byType["dmarc"]["propagation"].([]any)
	if len(prop) != 2 {
		t.Fatalf("propagation %v, want two sightings", prop)
	}
	auth, res := prop[0].(map[string]any), prop[1].(map[string]any)
	if got := keysOf(auth); !slices.Equal(got, sorted("server", "role", "zone", "status", "values")) {
		t.Errorf("authoritative sighting keys %v", got)
	}
	if auth["role"] != "authoritative" || auth["zone"] != "example.com" || auth["server"] != "192.0.2.1:53" || auth["status"] != "verified" {
		t.Errorf("authoritative sighting %v", auth)
	}
	if got := keysOf(res); !slices.Equal(got, sorted("server", "role", "status", "values", "error")) {
		t.Errorf("resolver sighting keys %v", got)
	}
	if v, ok := res["values"].([]any); !ok || len(v) != 0 || res["error"] != "timeout" || res["status"] != "temporary_failure" {
		t.Errorf("resolver sighting %v", res)
	}
	if byType["ownership"]["propagation"] == nil || len(byType["ownership"]["propagation"].([]any)) != 0 {
		t.Errorf("unchecked record's propagation %v, want []", byType["ownership"]["propagation"])
	}
}

// TestV2Pagination pages through 25 domains.
func TestV2Pagination(t *testing.T) {
	e := newEnv(t, envOptions{})
	for i := range 25 {
		e.addDomain(fmt.Sprintf("d%02d.example.com", i))
	}
	type page struct {
		Data []struct {
			ID        string `json:"id"`
			CreatedAt string `json:"createdAt"`
		} `json:"data"`
		Pagination struct {
			Limit   int  `json:"limit"`
			Offset  int  `json:"offset"`
			Total   int  `json:"total"`
			HasMore bool `json:"hasMore"`
		} `json:"pagination"`
	}
	get := func(q string) page {
		t.Helper()
		r := e.do("GET", "/api/v2/domains"+q, "", e.key)
		if r.status != http.StatusOK {
			t.Fatalf("?%s: %d %s", q, r.status, r.body)
		}
		var p page
		if err := json.Unmarshal(r.body, &p); err != nil {
			t.Fatal(err)
		}
		if p.Data == nil {
			t.Fatalf("?%s: data is null, want an array: %s", q, r.body)
		}
		return p
	}
	all := get("?limit=100")
	if len(all.Data) != 25 {
		t.Fatalf("limit=100 lists %d domains, want 25", len(all.Data))
	}
	var ids []string
	for i, d := range all.Data {
		ids = append(ids, d.ID)
		if i > 0 && d.CreatedAt < all.Data[i-1].CreatedAt {
			t.Fatalf("not oldest first: %s after %s", d.CreatedAt, all.Data[i-1].CreatedAt)
		}
	}

	for _, tc := range []struct {
		q                     string
		limit, offset, lo, hi int
		hasMore               bool
	}{
		{"", 20, 0, 0, 20, true},
		{"?offset=20", 20, 20, 20, 25, false},
		{"?limit=5&offset=15", 5, 15, 15, 20, true},
		{"?limit=5&offset=20", 5, 20, 20, 25, false},
		{"?limit=1&offset=24", 1, 24, 24, 25, false},
		{"?limit=24", 24, 0, 0, 24, true},
		{"?limit=10&offset=25", 10, 25, 25, 25, false},
		{"?offset=1000", 20, 1000, 25, 25, false},
	} {
		p := get(tc.q)
		var got []string
		for _, d := range p.Data {
			got = append(got, d.ID)
		}
		pg := p.Pagination
		if !slices.Equal(got, ids[tc.lo:tc.hi]) || pg.Limit != tc.limit || pg.Offset != tc.offset || pg.Total != 25 || pg.HasMore != tc.hasMore {
			t.Errorf("?%s: %d ids (want ids[%d:%d]), pagination %+v, want limit %d offset %d total 25 hasMore %v",
				tc.q, len(got), tc.lo, tc.hi, pg, tc.limit, tc.offset, tc.hasMore)
		}
	}

	for _, q := range []string{"limit=0", "limit=101", "limit=abc", "limit=-1", "limit=", "limit=2.5", "offset=-1", "offset=x", "offset="} {
		errObj := errorOf(t, e.do("GET", "/api/v2/domains?"+q, "", e.key), http.StatusBadRequest, "VALIDATION_FAILED")
		want := strings.SplitN(q, "=", 2)[0]
		if f := detailFields(t, errObj); f[0] != want || !strings.Contains(errObj["message"].(string), want) {
			t.Errorf("?%s: field %v message %q, want them to name %s", q, f, errObj["message"], want)
		}
	}

	// Another project sees none of them.
	r := e.do("GET", "/api/v2/domains", "", e.newKey("globex"))
	if !strings.Contains(string(r.body), `"total":0`) || !strings.Contains(string(r.body), `"data":[]`) {
		t.Errorf("other project's list: %s", r.body)
	}
}

// TestV2AccessAndErrors checks auth, 404 for other projects' domains (which must not
// even be checked), bad ids, methods and bad check values.
func TestV2AccessAndErrors(t *testing.T) {
	e := newEnv(t, envOptions{})
	d := e.addDomain("example.com")
	other := e.newKey("globex")
	own := d.DNSRecords.Ownership.Name + "."
	for _, p := range []string{"/api/v2/domains/" + d.ID, "/api/v2/domains/" + d.ID + "?check=true", "/api/v2/domains/" + d.ID + "/dns-records"} {
		errorOf(t, e.do("GET", p, "", other), http.StatusNotFound, "DOMAIN_NOT_FOUND")
		errorOf(t, e.do("GET", p, "", ""), http.StatusUnauthorized, "UNAUTHORIZED")
	}
	if n := e.dns.Count(own, dns.TypeTXT, ""); n != 0 {
		t.Errorf("another project's check=true asked DNS %d times", n)
	}
	errorOf(t, e.do("GET", "/api/v2/domains", "", ""), http.StatusUnauthorized, "UNAUTHORIZED")

	unknown := strings.Repeat("ab", 12)
	for _, p := range []string{"/api/v2/domains/" + unknown, "/api/v2/domains/" + unknown + "?check=true", "/api/v2/domains/" + unknown + "/dns-records"} {
		errorOf(t, e.do("GET", p, "", e.key), http.StatusNotFound, "DOMAIN_NOT_FOUND")
	}
	for _, p := range []string{"/api/v2/domains/123", "/api/v2/domains/" + strings.Repeat("G", 24) + "/dns-records"} {
		errObj := errorOf(t, e.do("GET", p, "", e.key), http.StatusBadRequest, "VALIDATION_FAILED")
		if f := detailFields(t, errObj); f[0] != "domainId" {
			t.Errorf("%s: field %v", p, f)
		}
	}
	for _, p := range []string{"/api/v2/domains", "/api/v2/domains/" + d.ID, "/api/v2/domains/" + d.ID + "/dns-records"} {
		r := e.do("POST", p, "", e.key)
		errorOf(t, r, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED")
		if r.header.Get("Allow") != "GET" {
			t.Errorf("POST %s: Allow %q", p, r.header.Get("Allow"))
		}
	}
	for _, v := range []string{"yes", "", "2", "TRUE"} {
		errObj := errorOf(t, e.do("GET", "/api/v2/domains/"+d.ID+"?check="+v, "", e.key), http.StatusBadRequest, "VALIDATION_FAILED")
		if f := detailFields(t, errObj); f[0] != "check" {
			t.Errorf("check=%s: field %v", v, f)
		}
	}
	if n := e.dns.Count(own, dns.TypeTXT, ""); n != 0 {
		t.Errorf("refused requests asked DNS %d times", n)
	}
	// Rate-limit headers come with v2 answers as with v1.
	if r := e.do("GET", "/api/v2/domains", "", e.key); r.header.Get("X-RateLimit-Limit") == "" || r.header.Get("X-RateLimit-Remaining") == "" {
		t.Errorf("no X-RateLimit headers: %v", r.header)
	}
}

// TestV2Check checks that ?check=true checks DNS first, that a second one right
// after answers the stored state rather than 429, and that check=false does not check.
func TestV2Check(t *testing.T) {
	e := newEnv(t, envOptions{minInterval: time.Hour})
	d := e.addDomain("example.com")
	own := d.DNSRecords.Ownership.Name + "."
	e.publish(d.DNSRecords.Ownership)
	e.publish(d.DNSRecords.DKIM)

	for _, q := range []string{"", "?check=false", "?check=0"} {
		_, byType := e.v2Records(d.ID, q)
		if byType["ownership"]["status"] != "unchecked" || byType["ownership"]["lastChecked"] != nil {
			t.Fatalf("%q: ownership %v, want unchecked", q, byType["ownership"])
		}
	}
	if n := e.dns.Count(own, dns.TypeTXT, ""); n != 0 {
		t.Fatalf("GET without check=true asked DNS %d times", n)
	}

	dom, byType := e.v2Records(d.ID, "?check=true")
	o := byType["ownership"]
	if o["status"] != "verified" || o["isVerified"] != true {
		t.Fatalf("ownership after check=true: %v", o)
	}
	if s, _ := o["lastChecked"].(string); !millisUTC.MatchString(s) {
		t.Errorf("lastChecked %v after a check", o["lastChecked"])
	}
	if found := o["found"].([]any); !slices.Contains(found, any(d.DNSRecords.Ownership.Value)) {
		t.Errorf("found %v, want it to hold %q", found, d.DNSRecords.Ownership.Value)
	}
	if dom["verificationStatus"] != "VERIFIED" || dom["canSend"] != true || dom["ownershipVerified"] != true ||
		dom["dkimEnabled"] != true || dom["verificationInProgress"] != false {
		t.Errorf("domain after check=true: %v", dom)
	}
	if dm := byType["dmarc"]; dm["status"] != "missing" || dm["isVerified"] != false {
		t.Errorf("dmarc after check=true: %v", dm)
	}

	// Within the minimum interval, check=true answers the stored state, not 429.
	e.publish(d.DNSRecords.DMARC)
	asked := e.dns.Count(own, dns.TypeTXT, "")
	for _, q := range []string{"?check=true", "?check=1"} {
		r := e.do("GET", "/api/v2/domains/"+d.ID+q, "", e.key)
		if r.status != http.StatusOK {
			t.Fatalf("%s right after a check: status %d: %s", q, r.status, r.body)
		}
		again := r.json(t)["data"].(map[string]any)
		if again["lastCheckedAt"] != dom["lastCheckedAt"] || again["dmarcEnabled"] != false {
			t.Errorf("%s right after a check: lastCheckedAt %v (want %v), dmarcEnabled %v; want the stored state",
				q, again["lastCheckedAt"], dom["lastCheckedAt"], again["dmarcEnabled"])
		}
	}
	if n := e.dns.Count(own, dns.TypeTXT, ""); n != asked {
		t.Errorf("a check too soon asked DNS again (%d queries, was %d)", n, asked)
	}
}

// TestV2CheckBudget checks that a check outlasting the budget answers the stored
// state with verificationInProgress true, and then finishes.
func TestV2CheckBudget(t *testing.T) {
	e := newEnv(t, envOptions{budget: 100 * time.Millisecond, dnsTimeout: 300 * time.Millisecond})
	d := e.addDomain("example.com")
	e.publish(d.DNSRecords.Ownership)
	e.dns.SetFault(d.DNSRecords.DKIM.Name+".", dns.TypeTXT, dnstest.Drop)

	dom, byType := e.v2Records(d.ID, "?check=true")
	if dom["verificationInProgress"] != true || dom["lastCheckedAt"] != nil || byType["ownership"]["status"] != "unchecked" {
		t.Fatalf("check past its budget: inProgress %v lastCheckedAt %v ownership %v; want the stored state, in progress",
			dom["verificationInProgress"], dom["lastCheckedAt"], byType["ownership"]["status"])
	}
	waitFor(t, 10*time.Second, "the background check to finish", func() bool {
		dom, byType := e.v2Records(d.ID, "")
		return dom["verificationInProgress"] == false && byType["ownership"]["status"] == "verified"
	})
	_, byType = e.v2Records(d.ID, "")
	if dk := byType["dkim"]; dk["status"] != "temporary_failure" || dk["isVerified"] != false || len(dk["problems"].([]any)) == 0 {
		t.Errorf("dkim after a dropped query: %v", dk)
	}
}

// TestV2WrongValue checks the per-record diagnosis of a wrong and a missing record.
func TestV2WrongValue(t *testing.T) {
	e := newEnv(t, envOptions{})
	d := e.addDomain("example.com")
	e.zone.MustAdd(d.DNSRecords.Ownership.Name + `. 300 IN TXT "autosend-verify-0000"`)
	_, byType := e.v2Records(d.ID, "?check=true")

	o := byType["ownership"]
	if o["status"] != "mismatch" || o["isVerified"] != false {
		t.Fatalf("wrong ownership value: %v", o)
	}
	if found := o["found"].([]any); !slices.Equal(found, []any{"autosend-verify-0000"}) {
		t.Errorf("found %v, want the wrong value", found)
	}
	var wrong string
	for _, p := range o["problems"].([]any) {
		pm := p.(map[string]any)
		msg := pm["message"].(string)
		if !sentence.MatchString(msg) {
			t.Errorf("problem message %q is not one sentence", msg)
		}
		if pm["code"] == "WRONG_VALUE" {
			wrong = msg
		}
	}
	if wrong == "" || !strings.Contains(wrong, d.DNSRecords.Ownership.Name) {
		t.Errorf("problems %v: want WRONG_VALUE naming %s", o["problems"], d.DNSRecords.Ownership.Name)
	}

	dm := byType["dmarc"]
	probs := dm["problems"].([]any)
	if dm["status"] != "missing" || len(probs) == 0 || probs[0].(map[string]any)["code"] != "NOT_FOUND" || len(dm["found"].([]any)) != 0 {
		t.Errorf("missing dmarc: %v", dm)
	}
}

// TestV2IsRequired checks isRequired for every kind of record, the inbound MX
// and the records of a key rotation included: isRequired is
// domain.Need.MustPublish, as the zone export and the dashboard say it.
func TestV2IsRequired(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	p, err := e.store.EnsureProject(ctx, "acme", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// The inbound MX is added as inbound enable does; this test needs only the
	// stored domain, so it is written to the store directly.
	rc := records.DefaultConfig()
	rc.DKIMBits = 1024
	now := time.Now().UTC().Truncate(time.Millisecond)
	gen, err := rc.Generate("example.com", "us-east-1", now)
	if err != nil {
		t.Fatal(err)
	}
	id, err := domain.NewID(now)
	if err != nil {
		t.Fatal(err)
	}
	d := &domain.Domain{
		ID: id, ProjectID: p.ID, Name: "example.com", Region: "us-east-1", Status: domain.StatusPendingConfiguration,
		Records:   append(gen.Records, rc.InboundMX("example.com", "us-east-1", now)),
		CreatedAt: now, LastCheckedAt: now, InboundEnabledAt: now,
	}
	// No one domain has every record of rotation at once (dkim_next and
	// dkim_previous are txt mode's, dkim_2 cname mode's); the store keeps
	// them as given, which is all this test needs.
	dkim := d.Record(domain.KeyDKIM)
	for _, r := range []domain.Record{
		{Key: domain.KeyDKIMNext, Type: "TXT", Name: "autosend2._domainkey.example.com", Value: dkim.Value},
		{Key: domain.KeyDKIMPrevious, Type: "TXT", Name: "autosend3._domainkey.example.com", Value: dkim.Value},
		{Key: domain.KeyDKIM2, Type: "CNAME", Name: "autosend4._domainkey.example.com", Value: "autosend2.example.com.dkim.example"},
	} {
		r.Purpose, r.Status, r.CreatedAt, r.UpdatedAt = domain.PurposeOf(r.Key, r.Type, r.Value), domain.CheckUnchecked, now, now
		d.Records = append(d.Records, r)
	}
	if err := e.store.CreateDomain(ctx, d, []byte("sealed")); err != nil {
		t.Fatal(err)
	}

	want := map[string]bool{
		"ownership": true, "dkim": true, "mail_from_mx": false, "mail_from_spf": false, "dmarc": false, "inbound_mx": true,
		// The rotation waits for the next key's record, not for the previous one.
		"dkim_next": true, "dkim_2": true, "dkim_previous": false,
	}
	_, byType := e.v2Records(id, "")
	if len(byType) != len(want) {
		t.Fatalf("records %v, want %d", slices.Sorted(maps.Keys(byType)), len(want))
	}
	for typ, req := range want {
		r, ok := byType[typ]
		if !ok {
			t.Errorf("no %s record", typ)
			continue
		}
		assertV2Record(t, typ, id, r)
		if r["isRequired"] != req {
			t.Errorf("%s: isRequired %v, want %v", typ, r["isRequired"], req)
		}
	}
	if mx := byType["inbound_mx"]; mx["name"] != "example.com" || mx["value"] != "inbound-smtp.us-east-1.amazonaws.com" || mx["recordType"] != "MX" {
		t.Errorf("inbound_mx %v", mx)
	}
}

// TestV2Cursor walks the domain list with cursors while domains are added between
// pages: every domain that existed at the start is seen exactly once, in order.
func TestV2Cursor(t *testing.T) {
	e := newEnv(t, envOptions{})
	var want []string
	for i := range 7 {
		want = append(want, e.addDomain("c"+strconv.Itoa(i)+".example.com").ID)
	}
	var seen []string
	path := "/api/v2/domains?limit=3"
	for page := 0; ; page++ {
		if page > 10 {
			t.Fatal("cursor walk does not end")
		}
		r := e.do("GET", path, "", e.key)
		if r.status != http.StatusOK {
			t.Fatalf("page %d: %d %s", page, r.status, r.body)
		}
		var body struct {
			Data []struct {
				ID string `json:"id"`
			} `json:"data"`
			Pagination struct {
				HasMore    bool    `json:"hasMore"`
				NextCursor *string `json:"nextCursor"`
			} `json:"pagination"`
		}
		if err := json.Unmarshal(r.body, &body); err != nil {
			t.Fatal(err)
		}
		for _, d := range body.Data {
			seen = append(seen, d.ID)
		}
		// A domain added between pages lands after the ones already listed.
		e.addDomain("new" + strconv.Itoa(page) + ".example.com")
		if !body.Pagination.HasMore {
			if body.Pagination.NextCursor != nil {
				t.Error("nextCursor on the last page")
			}
			break
		}
		path = "/api/v2/domains?limit=3&cursor=" + *body.Pagination.NextCursor
	}
	if !slices.Equal(seen[:len(want)], want) {
		t.Fatalf("cursor walk saw %v first, want %v", seen[:len(want)], want)
	}
	if len(slices.Compact(slices.Sorted(slices.Values(seen)))) != len(seen) {
		t.Fatalf("a domain was listed twice: %v", seen)
	}
	for _, bad := range []string{"cursor=nope", "cursor=" + "MTIzOmFiYw", "cursor=MTIzOjAxMjM0NTY3ODlhYmNkZWYwMTIzNDU2Nw&offset=2"} {
		r := e.do("GET", "/api/v2/domains?"+bad, "", e.key)
		errorOf(t, r, http.StatusBadRequest, "VALIDATION_FAILED")
	}
}
