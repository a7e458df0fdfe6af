package main

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestServeSharesOneBudget runs the real serve command and checks its wiring:
// the API and the dashboard spend one budget per key, and one allowance per
// client address for requests without a valid key. The limits are per hour, so
// no token comes back while the test runs.
func TestServeSharesOneBudget(t *testing.T) {
	srv := startServe(t, "--resolvers", "127.0.0.1:53", "--dns-mode", "recursive",
		"--rate-limit", "3/h", "--anon-rate-limit", "2/h")
	base, key := srv.base, srv.key

	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(method, path, bearer, cookie string, form url.Values) *http.Response {
		t.Helper()
		req, err := http.NewRequest(method, base+path, strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		if cookie != "" {
			req.Header.Set("Cookie", "domaind_session="+cookie)
		}
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Origin", base)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}

	// Sign in to the dashboard; that spends neither budget.
	resp := do("POST", "/signin", "", "", url.Values{"key": {key}})
	var session string
	for _, c := range resp.Cookies() {
		if c.Name == "domaind_session" {
			session = c.Value
		}
	}
	if resp.StatusCode != http.StatusSeeOther || session == "" {
		t.Fatalf("sign in: %d, no session cookie", resp.StatusCode)
	}
	// One request on the dashboard and two on the API spend the key's three.
	if r := do("GET", "/", "", session, nil); r.StatusCode != http.StatusOK {
		t.Fatalf("dashboard: %d", r.StatusCode)
	}
	for range 2 {
		if r := do("GET", "/v1/domains", key, "", nil); r.StatusCode != http.StatusOK {
			t.Fatalf("API: %d", r.StatusCode)
		}
	}
	if r := do("GET", "/v1/domains", key, "", nil); r.StatusCode != http.StatusTooManyRequests {
		t.Errorf("API with the key's budget spent: %d, want 429", r.StatusCode)
	}
	if r := do("GET", "/", "", session, nil); r.StatusCode != http.StatusTooManyRequests {
		t.Errorf("dashboard with the key's budget spent: %d, want 429", r.StatusCode)
	}

	// Two bad keys on the API spend this address's allowance, and the
	// dashboard's sign-in form then refuses the address too.
	for range 2 {
		if r := do("GET", "/v1/domains", "AS_"+strings.Repeat("x", 43), "", nil); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("bad key: %d", r.StatusCode)
		}
	}
	if r := do("GET", "/v1/domains", "AS_"+strings.Repeat("x", 43), "", nil); r.StatusCode != http.StatusTooManyRequests {
		t.Errorf("bad key with the address's allowance spent: %d, want 429", r.StatusCode)
	}
	if r := do("POST", "/signin", "", "", url.Values{"key": {"AS_" + strings.Repeat("y", 43)}}); r.StatusCode != http.StatusTooManyRequests {
		t.Errorf("sign-in with the address's allowance spent: %d, want 429", r.StatusCode)
	}
}
