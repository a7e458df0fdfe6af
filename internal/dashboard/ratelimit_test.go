package dashboard_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/domaind/domaind/internal/apptest"
	"github.com/domaind/domaind/internal/dashboard"
	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/domains"
	"github.com/domaind/domaind/internal/store"
)

// apiGet sends GET path to the API served beside the dashboard with key.
func (e *env) apiGet(path, key string) response {
	e.t.Helper()
	req, err := http.NewRequest("GET", e.url+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, b := apptest.Do(e.t, http.DefaultClient, req)
	return response{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

func (e *env) domainCount(projectID int64) int {
	e.t.Helper()
	_, total, err := e.store.Domains(context.Background(), projectID, store.Page{Limit: 10})
	if err != nil {
		e.t.Fatal(err)
	}
	return total
}

// TestKeyBudgetSharedWithAPI checks that a key has one budget whether it is
// spent through the API or the dashboard, and that another key has its own.
func TestKeyBudgetSharedWithAPI(t *testing.T) {
	e := newEnv(t, envOptions{rateLimit: "5/m"}) // a request every 12s
	d := e.addDomain(e.projectID, "example.com")
	c := e.client()
	c.signIn(e.key) // signing in proves the key but spends none of its budget
	csrf := c.csrf()
	fetch := map[string]string{dashboard.CSRFHeader: csrf, "X-Requested-With": "fetch"}

	// The API spends the rest of the budget the dashboard started on.
	for i := range 4 {
		if r := e.apiGet("/v1/domains", e.key); r.status != http.StatusOK {
			t.Fatalf("API request %d: %d %s", i, r.status, r.body)
		}
	}
	if r := e.apiGet("/v1/domains", e.key); r.status != http.StatusTooManyRequests {
		t.Fatalf("API after 5 requests on both front ends: %d, want 429", r.status)
	}

	// Now the dashboard refuses the key too: the add form, Verify now and a page.
	r := c.post("/domains", url.Values{"domain": {"new.example.com"}, "csrf": {csrf}}, nil)
	if r.status != http.StatusTooManyRequests || !strings.Contains(r.body, "shared with the API") || r.header.Get("Retry-After") != "12" {
		t.Errorf("add form: status %d, Retry-After %q: %s", r.status, r.header.Get("Retry-After"), r.body)
	}
	if r.header.Get("X-RateLimit-Limit") != "" {
		t.Error("the dashboard sent X-RateLimit headers")
	}
	if n := e.domainCount(e.projectID); n != 1 {
		t.Errorf("a refused add stored a domain: %d domains", n)
	}
	r = c.post("/domains/"+d.ID+"/verify", nil, fetch)
	var a struct{ Message, HTML string }
	if err := json.Unmarshal([]byte(r.body), &a); err != nil {
		t.Fatalf("Verify now answer is not JSON: %v: %s", err, r.body)
	}
	if r.status != http.StatusTooManyRequests || !strings.Contains(a.Message, "Try again in 12 seconds") {
		t.Errorf("Verify now: status %d, %+v", r.status, a)
	}
	if got, _ := e.store.Domain(context.Background(), e.projectID, d.ID); got.Records[0].Status != domain.CheckUnchecked {
		t.Error("a refused Verify now ran a check")
	}
	if r := c.get("/"); r.status != http.StatusTooManyRequests || !strings.Contains(r.body, "Too many requests") {
		t.Errorf("domains page: status %d", r.status)
	}

	// Another key, of this project or another, has a budget of its own on
	// both front ends.
	other, _ := e.newKey("acme")
	if r := e.apiGet("/v1/domains", other); r.status != http.StatusOK {
		t.Errorf("another key on the API: %d", r.status)
	}
	oc := e.client()
	oc.signIn(other)
	if r := oc.get("/"); r.status != http.StatusOK {
		t.Errorf("another key on the dashboard: %d", r.status)
	}

	// The other way round: once the budget is back, the dashboard spends it
	// all and the API refuses.
	e.clock.Advance(time.Minute)
	for i := range 5 {
		if r := c.get("/domains/" + d.ID); r.status != http.StatusOK {
			t.Fatalf("dashboard request %d: %d", i, r.status)
		}
	}
	r = e.apiGet("/v1/domains", e.key)
	if r.status != http.StatusTooManyRequests || !strings.Contains(r.body, "RATE_LIMIT_EXCEEDED") ||
		r.header.Get("X-RateLimit-Remaining") != "0" || r.header.Get("Retry-After") != "12" {
		t.Errorf("API after the dashboard spent the budget: %d %v %s", r.status, r.header, r.body)
	}
	if r := e.apiGet("/v1/domains", other); r.status != http.StatusOK {
		t.Errorf("the other key was limited by this one's use: %d", r.status)
	}
}

// TestSignInFloodLimitedPerAddress checks that sign-in attempts and guessed
// session cookies spend their address's allowance, and that another address is
// not affected.
func TestSignInFloodLimitedPerAddress(t *testing.T) {
	e := newEnv(t, envOptions{addrLimit: "3/m"}) // a request every 20s
	flood := e.clientFrom(net.ParseIP("127.0.0.9"))
	for i := range 3 {
		if r := flood.post("/signin", url.Values{"key": {"AS_" + strings.Repeat("x", 43)}}, nil); r.status != http.StatusUnauthorized {
			t.Fatalf("bad sign-in %d: %d", i, r.status)
		}
	}
	r := flood.post("/signin", url.Values{"key": {"AS_" + strings.Repeat("y", 43)}}, nil)
	if r.status != http.StatusTooManyRequests || !strings.Contains(r.body, "Too many failed sign-ins") ||
		!strings.Contains(r.body, "Try again in 20 seconds") || r.header.Get("Retry-After") != "20" {
		t.Fatalf("4th sign-in: status %d, Retry-After %q: %s", r.status, r.header.Get("Retry-After"), r.body)
	}
	// Even the right key is refused from the flooding address until it has a
	// token again: a spent address is refused before anything is looked up.
	if r := flood.post("/signin", url.Values{"key": {e.key}}, nil); r.status != http.StatusTooManyRequests {
		t.Errorf("good key from the flooding address: %d, want 429", r.status)
	}

	// A customer at another address signs in and works as usual.
	customer := e.clientFrom(net.ParseIP("127.0.0.10"))
	customer.signIn(e.key)
	if r := customer.get("/"); r.status != http.StatusOK {
		t.Errorf("customer at another address: %d", r.status)
	}
	// Their requests with a live session spend nothing of their address's.
	for range 5 {
		customer.get("/")
	}
	if r := customer.post("/signin", url.Values{"key": {e.key}}, nil); r.status != http.StatusSeeOther {
		t.Errorf("customer signing in again: %d", r.status)
	}

	// Guessed session cookies spend the allowance too, and a spent address is
	// refused before its cookie is looked up.
	guesser := e.clientFrom(net.ParseIP("127.0.0.11"))
	u, _ := url.Parse(e.url)
	guess := func() response {
		var b [32]byte
		rand.Read(b[:])
		guesser.http.Jar.SetCookies(u, []*http.Cookie{{Name: "domaind_session", Value: base64.RawURLEncoding.EncodeToString(b[:])}})
		return guesser.get("/")
	}
	for i := range 3 {
		if r := guess(); r.status != http.StatusSeeOther {
			t.Fatalf("guess %d: %d", i, r.status)
		}
	}
	if r := guess(); r.status != http.StatusTooManyRequests {
		t.Errorf("4th guessed cookie: %d, want 429", r.status)
	}

	// One token's time later the flooding address may try once more; the
	// right key then spends nothing, so the pages after it are served.
	e.clock.Advance(20 * time.Second)
	flood.signIn(e.key)
	if r := flood.get("/"); r.status != http.StatusOK {
		t.Errorf("signed in after the wait: %d", r.status)
	}
	if r := flood.post("/signin", url.Values{"key": {"AS_" + strings.Repeat("z", 43)}}, nil); r.status != http.StatusUnauthorized {
		t.Errorf("bad sign-in with the token back: %d", r.status)
	}
	if r := flood.post("/signin", url.Values{"key": {"AS_" + strings.Repeat("z", 43)}}, nil); r.status != http.StatusTooManyRequests {
		t.Errorf("bad sign-in after it: %d, want 429", r.status)
	}
}

// TestAddWhileKeygenBusy checks the dashboard's answer to an add that found
// every key-generation slot taken: the form again, saying so, with 429 and
// Retry-After, and nothing stored.
func TestAddWhileKeygenBusy(t *testing.T) {
	gate := domains.NewKeyGate(1, time.Millisecond)
	e := newEnv(t, envOptions{keygen: gate})
	c := e.signedIn()
	release, err := gate.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	r := c.post("/domains", url.Values{"domain": {"example.com"}, "csrf": {c.csrf()}}, nil)
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" || !strings.Contains(r.body, "busy generating keys") {
		t.Errorf("add while busy: status %d, Retry-After %q", r.status, r.header.Get("Retry-After"))
	}
	if !strings.Contains(r.body, `value="example.com"`) {
		t.Error("the form lost what the customer typed")
	}
	if n := e.domainCount(e.projectID); n != 0 {
		t.Errorf("%d domains stored", n)
	}
	release()
	if r := c.post("/domains", url.Values{"domain": {"example.com"}, "csrf": {c.csrf()}}, nil); r.status != http.StatusSeeOther {
		t.Errorf("add once the slot is free: %d", r.status)
	}
}
