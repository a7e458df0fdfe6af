package api_test

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/domaind/domaind/internal/apptest"
)

// errorOf asserts the contract's error envelope and returns its error object.
func errorOf(t *testing.T, r response, status int, code string) map[string]any {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	m := r.json(t)
	if m["success"] != false {
		t.Fatalf("success = %v, want false: %s", m["success"], r.body)
	}
	e, ok := m["error"].(map[string]any)
	if !ok {
		t.Fatalf("no error object: %s", r.body)
	}
	if e["code"] != code || e["status"] != float64(status) {
		t.Fatalf("code %v status %v, want %s %d: %s", e["code"], e["status"], code, status, r.body)
	}
	if msg, _ := e["message"].(string); msg == "" {
		t.Fatalf("empty message: %s", r.body)
	}
	if !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		t.Errorf("Content-Type = %q", r.header.Get("Content-Type"))
	}
	return e
}

// detailFields returns the fields named in a validation error's details.
func detailFields(t *testing.T, e map[string]any) []string {
	t.Helper()
	ds, ok := e["details"].([]any)
	if !ok || len(ds) == 0 {
		t.Fatalf("validation error without details: %v", e)
	}
	var fields []string
	for _, d := range ds {
		dm := d.(map[string]any)
		if msg, _ := dm["message"].(string); msg == "" {
			t.Errorf("detail without message: %v", dm)
		}
		fields = append(fields, dm["field"].(string))
	}
	return fields
}

func TestAddDomainRejectsBadInput(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, tc := range []struct {
		name, body, field, inMessage string
	}{
		{"empty", `{"domain":""}`, "domain", ""},
		{"blank", `{"domain":"   "}`, "domain", ""},
		{"missing", `{}`, "domain", "required"},
		{"null", `{"domain":null}`, "domain", "required"},
		{"too long", `{"domain":"` + strings.Repeat("a.", 127) + `com"}`, "domain", "253"},
		{"scheme", `{"domain":"https://example.com"}`, "domain", ""},
		{"path", `{"domain":"example.com/mail"}`, "domain", ""},
		{"port", `{"domain":"example.com:25"}`, "domain", ""},
		{"trailing slash", `{"domain":"example.com/"}`, "domain", ""},
		{"ipv4", `{"domain":"192.0.2.1"}`, "domain", ""},
		{"ipv6", `{"domain":"[2001:db8::1]"}`, "domain", ""},
		{"single label", `{"domain":"localhost"}`, "domain", ""},
		{"empty label", `{"domain":"a..example.com"}`, "domain", ""},
		{"leading hyphen", `{"domain":"-a.example.com"}`, "domain", ""},
		{"underscore", `{"domain":"my_site.example.com"}`, "domain", ""},
		{"label over 63", `{"domain":"` + strings.Repeat("a", 64) + `.com"}`, "domain", ""},
		{"email address", `{"domain":"user@example.com"}`, "domain", ""},
		{"public suffix", `{"domain":"com"}`, "domain", ""},
		{"public suffix two labels", `{"domain":"co.uk"}`, "domain", ""},
		{"wrong type", `{"domain":42}`, "domain", "string"},
		{"unknown region", `{"domain":"example.com","regionKey":"mars-1"}`, "regionKey", "us-east-1"},
		{"region wrong type", `{"domain":"example.com","regionKey":7}`, "regionKey", ""},
		{"unknown field", `{"domain":"example.com","region":"us-east-1"}`, "region", ""},
		{"malformed JSON", `{"domain":`, "body", "JSON"},
		{"not an object", `["example.com"]`, "body", ""},
		{"trailing garbage", `{"domain":"example.com"} {}`, "body", ""},
		{"empty body", ``, "body", ""},
		{"duplicate field", `{"domain":"a.example.com","domain":"b.example.com"}`, "domain", "more than once"},
		{"duplicate field in another case", `{"domain":"a.example.com","DOMAIN":"b.example.com"}`, "DOMAIN", "more than once"},
		{"duplicate field folded", `{"domain":"a.example.com","regionKey":"us-east-1","regionKey":"us-east-2"}`, "regionKey", "more than once"},
		{"duplicate after nesting", `{"domain":"a.example.com","x":{"domain":1},"domain":"b.example.com"}`, "domain", "more than once"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("POST", "/v1/domains", tc.body, e.key)
			errObj := errorOf(t, r, http.StatusBadRequest, "VALIDATION_FAILED")
			if fields := detailFields(t, errObj); !slices.Contains(fields, tc.field) {
				t.Errorf("details name %v, want %q", fields, tc.field)
			}
			if msg := errObj["message"].(string); tc.inMessage != "" && !strings.Contains(msg, tc.inMessage) {
				t.Errorf("message %q does not mention %q", msg, tc.inMessage)
			}
		})
	}
	// Nothing half-written: no domain was stored by any of the bad requests.
	r := e.do("GET", "/v1/domains", "", e.key)
	if !strings.Contains(string(r.body), `"domains":[]`) {
		t.Fatalf("bad input left domains behind: %s", r.body)
	}
}

func TestAddDomainNormalizes(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, tc := range []struct{ in, want string }{
		{"  Example.COM ", "example.com"},
		{"bücher.example", "xn--bcher-kva.example"},
		{"mail.example.org.", "mail.example.org"},
	} {
		r := e.do("POST", "/v1/domains", `{"domain":"`+tc.in+`","regionKey":"eu-central-1"}`, e.key)
		if r.status != http.StatusCreated {
			t.Fatalf("add %q: %d %s", tc.in, r.status, r.body)
		}
		d := r.json(t)["data"].(map[string]any)
		if d["domainName"] != tc.want || d["regionKey"] != "eu-central-1" {
			t.Errorf("add %q: domainName %v region %v, want %s eu-central-1", tc.in, d["domainName"], d["regionKey"], tc.want)
		}
		mx := d["dnsRecords"].(map[string]any)["mailFrom"].([]any)[0].(map[string]any)
		if mx["value"] != "feedback-smtp.eu-central-1.amazonses.com" {
			t.Errorf("MAIL FROM MX for eu-central-1 = %v", mx["value"])
		}
	}
}

func TestBodyTooLarge(t *testing.T) {
	e := newEnv(t, envOptions{})
	body := `{"domain":"example.com","x":"` + strings.Repeat("a", 2<<20) + `"}`
	errorOf(t, e.do("POST", "/v1/domains", body, e.key), http.StatusRequestEntityTooLarge, "PAYLOAD_TOO_LARGE")
}

func TestDuplicateDomain(t *testing.T) {
	e := newEnv(t, envOptions{})
	first := e.addDomain("example.com")
	errorOf(t, e.do("POST", "/v1/domains", `{"domain":"EXAMPLE.com"}`, e.key), http.StatusConflict, "DOMAIN_ALREADY_EXISTS")
	// Another project may add the same name and gets its own token.
	other := e.newKey("globex")
	r := e.do("POST", "/v1/domains", `{"domain":"example.com"}`, other)
	if r.status != http.StatusCreated {
		t.Fatalf("other project add: %d %s", r.status, r.body)
	}
	tok := r.json(t)["data"].(map[string]any)["dnsRecords"].(map[string]any)["ownership"].(map[string]any)["value"]
	if tok == first.DNSRecords.Ownership.Value {
		t.Error("two projects got the same ownership token")
	}
}

func TestAuth(t *testing.T) {
	e := newEnv(t, envOptions{})
	d := e.addDomain("example.com")
	revoked := e.newKey("acme")
	if _, err := e.store.RevokeAPIKey(t.Context(), revoked[:20], time.Now()); err != nil {
		t.Fatal(err)
	}
	routes := []struct{ method, path string }{
		{"GET", "/v1/domains"},
		{"POST", "/v1/domains"},
		{"GET", "/v1/domains/" + d.ID},
		{"DELETE", "/v1/domains/" + d.ID},
		{"POST", "/v1/domains/" + d.ID + "/verify"},
	}
	for _, key := range []struct{ name, header string }{
		{"missing", ""},
		{"malformed", "AS_short"},
		{"unknown", "AS_" + strings.Repeat("x", 43)},
		{"revoked", revoked},
	} {
		for _, rt := range routes {
			t.Run(key.name+" "+rt.method+" "+rt.path, func(t *testing.T) {
				r := e.do(rt.method, rt.path, `{"domain":"new.example.com"}`, key.header)
				errorOf(t, r, http.StatusUnauthorized, "UNAUTHORIZED")
				if r.header.Get("X-RateLimit-Limit") != "" {
					t.Error("rate-limit headers on an unauthenticated response")
				}
			})
		}
	}
	// A non-Bearer scheme is refused too.
	req, _ := http.NewRequest("GET", e.url+"/v1/domains", nil)
	req.Header.Set("Authorization", "Basic "+e.key)
	resp, _ := apptest.Do(t, http.DefaultClient, req)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("Basic scheme: status %d", resp.StatusCode)
	}
	// Nothing was deleted by the refused requests.
	e.get(d.ID)
}

func TestCrossProjectIsNotFound(t *testing.T) {
	e := newEnv(t, envOptions{})
	d := e.addDomain("example.com")
	other := e.newKey("globex")
	for _, rt := range []struct{ method, path string }{
		{"GET", "/v1/domains/" + d.ID},
		{"POST", "/v1/domains/" + d.ID + "/verify"},
		{"DELETE", "/v1/domains/" + d.ID},
	} {
		errorOf(t, e.do(rt.method, rt.path, "", other), http.StatusNotFound, "DOMAIN_NOT_FOUND")
	}
	// The other project's list does not show it, and the owner still has it.
	if r := e.do("GET", "/v1/domains", "", other); strings.Contains(string(r.body), d.ID) {
		t.Fatalf("other project's list shows the domain: %s", r.body)
	}
	e.get(d.ID)
}

func TestBadIDsAndRoutes(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, id := range []string{"123", strings.Repeat("A", 24), strings.Repeat("g", 24), strings.Repeat("a", 25), "..%2f.."} {
		for _, rt := range []struct{ method, suffix string }{{"GET", ""}, {"DELETE", ""}, {"POST", "/verify"}} {
			r := e.do(rt.method, "/v1/domains/"+id+rt.suffix, "", e.key)
			if r.status == http.StatusNotFound && r.json(t)["error"].(map[string]any)["code"] == "NOT_FOUND" {
				continue // a path the router does not match at all, such as one with an encoded slash
			}
			errObj := errorOf(t, r, http.StatusBadRequest, "VALIDATION_FAILED")
			if f := detailFields(t, errObj); f[0] != "domainId" {
				t.Errorf("%s %s: field %v", rt.method, id, f)
			}
		}
	}
	unknown := strings.Repeat("ab", 12)
	errorOf(t, e.do("GET", "/v1/domains/"+unknown, "", e.key), http.StatusNotFound, "DOMAIN_NOT_FOUND")
	errorOf(t, e.do("DELETE", "/v1/domains/"+unknown, "", e.key), http.StatusNotFound, "DOMAIN_NOT_FOUND")
	errorOf(t, e.do("GET", "/v2/nothing", "", e.key), http.StatusNotFound, "NOT_FOUND")

	r := e.do("PUT", "/v1/domains", `{}`, e.key)
	errorOf(t, r, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED")
	if allow := r.header.Get("Allow"); allow != "GET, POST" {
		t.Errorf("Allow = %q, want GET, POST", allow)
	}
	r = e.do("GET", "/v1/domains/"+unknown+"/verify", "", e.key)
	errorOf(t, r, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED")
	if allow := r.header.Get("Allow"); allow != "POST" {
		t.Errorf("Allow = %q, want POST", allow)
	}

	for _, q := range []string{"limit=0", "limit=abc", "limit=-1", "limit=100000", "offset=-3", "limit="} {
		errObj := errorOf(t, e.do("GET", "/v1/domains?"+q, "", e.key), http.StatusBadRequest, "VALIDATION_FAILED")
		want := strings.SplitN(q, "=", 2)[0]
		if f := detailFields(t, errObj); f[0] != want {
			t.Errorf("?%s: field %v, want %s", q, f, want)
		}
	}
}

func TestRateLimit(t *testing.T) {
	e := newEnv(t, envOptions{rateLimit: "3/h"})
	var last response
	for i := range 3 {
		last = e.do("GET", "/v1/domains", "", e.key)
		if last.status != http.StatusOK {
			t.Fatalf("request %d: %d %s", i, last.status, last.body)
		}
		if got := last.header.Get("X-RateLimit-Remaining"); got != strconv.Itoa(2-i) {
			t.Errorf("request %d: X-RateLimit-Remaining = %q, want %d", i, got, 2-i)
		}
	}
	if last.header.Get("X-RateLimit-Limit") != "3" {
		t.Errorf("X-RateLimit-Limit = %q", last.header.Get("X-RateLimit-Limit"))
	}
	reset, err := strconv.ParseInt(last.header.Get("X-RateLimit-Reset"), 10, 64)
	if now := time.Now().Unix(); err != nil || reset <= now || reset > now+3601 {
		t.Errorf("X-RateLimit-Reset = %q, want epoch seconds within the hour", last.header.Get("X-RateLimit-Reset"))
	}
	r := e.do("GET", "/v1/domains", "", e.key)
	errObj := errorOf(t, r, http.StatusTooManyRequests, "RATE_LIMIT_EXCEEDED")
	ra, ok := errObj["retryAfter"].(float64)
	if !ok || ra < 1000 || ra > 1200 { // one request per 20 minutes
		t.Errorf("retryAfter = %v, want about 1200", errObj["retryAfter"])
	}
	if r.header.Get("Retry-After") != strconv.Itoa(int(ra)) {
		t.Errorf("Retry-After header %q disagrees with retryAfter %v", r.header.Get("Retry-After"), ra)
	}
	if r.header.Get("X-RateLimit-Remaining") != "0" {
		t.Errorf("X-RateLimit-Remaining on 429 = %q", r.header.Get("X-RateLimit-Remaining"))
	}
	// Limits are per key: another key of the same project is unaffected.
	if r := e.do("GET", "/v1/domains", "", e.newKey("acme")); r.status != http.StatusOK {
		t.Errorf("second key limited too: %d", r.status)
	}
}

func TestParseLimit(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"120/m", true}, {"5/s", true}, {"1000/h", true},
		{"0/m", false}, {"-1/m", false}, {"120", false}, {"120/d", false}, {"x/m", false}, {"", false},
	} {
		if _, err := parseLimit(tc.in); (err == nil) != tc.ok {
			t.Errorf("ParseLimit(%q) error = %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}
