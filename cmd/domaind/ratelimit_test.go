package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestServeRefusesBadLimits(t *testing.T) {
	dir := t.TempDir()
	db := "sqlite:" + filepath.Join(dir, "d.db")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--anon-rate-limit", "lots"}, "anon-rate-limit"},
		{[]string{"--anon-rate-limit", "0/m"}, "anon-rate-limit"},
		{[]string{"--trusted-proxies", "10.0.0.0/8,proxy.example"}, "trusted-proxies"},
		{[]string{"--keygen-concurrency", "-1"}, "keygen-concurrency"},
	} {
		args := append([]string{"serve", "--db", db, "--dev", "--data-dir", dir, "--resolvers", "127.0.0.1:53"}, tc.args...)
		_, _, err := runCmd(t, args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want it to mention %q", tc.args, err, tc.want)
		}
	}
}

// TestServeSharesOneBudget runs the real serve command and checks its wiring:
// the API and the dashboard spend one budget per key, and one allowance per
// client address for requests without a valid key. The limits are per hour, so
// no token comes back while the test runs.
func TestServeSharesOneBudget(t *testing.T) {
	dir := t.TempDir()
	db := "sqlite:" + filepath.Join(dir, "d.db")
	addr := freeAddr(t)
	out, _, err := runCmd(t, "apikey", "create", "--project", "acme", "--db", db)
	if err != nil {
		t.Fatal(err)
	}
	key := strings.TrimSpace(out)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var logs bytes.Buffer
	go func() {
		done <- run(ctx, []string{"serve", "--listen", addr, "--db", db, "--dev", "--data-dir", dir,
			"--resolvers", "127.0.0.1:53", "--dns-mode", "recursive",
			"--rate-limit", "3/h", "--anon-rate-limit", "2/h"}, io.Discard, &logs)
	}()
	t.Cleanup(func() { cancel(); <-done })
	base := "http://" + addr
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not come up: %v\n%s", err, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}

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
