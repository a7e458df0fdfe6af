package api_test

import (
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/domaind/domaind/internal/domains"
	"github.com/domaind/domaind/internal/testenv"
)

// Two clients on loopback, told apart by their source address.
var (
	guesser = net.ParseIP("127.0.0.9")
	other   = net.ParseIP("127.0.0.10")
)

// TestBadKeysLimitedPerAddress checks that requests without a valid key spend
// their address's allowance, that a spent address is refused before its key is
// looked up, and that neither another address nor good keys are affected.
func TestBadKeysLimitedPerAddress(t *testing.T) {
	clock := testenv.NewClock(time.Now())
	e := newEnv(t, envOptions{addrLimit: "3/m", now: clock.Now})
	unknown := "AS_" + strings.Repeat("x", 43)

	// Good keys never spend an address's allowance.
	for range 5 {
		if r := e.doFrom(guesser, "GET", "/v1/domains", "", e.key); r.status != http.StatusOK {
			t.Fatalf("good key: %d %s", r.status, r.body)
		}
	}
	for _, key := range []string{unknown, "", "AS_short"} {
		errorOf(t, e.doFrom(guesser, "GET", "/v1/domains", "", key), http.StatusUnauthorized, "UNAUTHORIZED")
	}
	r := e.doFrom(guesser, "GET", "/v1/domains", "", unknown)
	errObj := errorOf(t, r, http.StatusTooManyRequests, "RATE_LIMIT_EXCEEDED")
	if ra, _ := errObj["retryAfter"].(float64); ra != 20 || r.header.Get("Retry-After") != "20" {
		t.Errorf("retryAfter %v, Retry-After %q; want 20 (a request every 20s)", errObj["retryAfter"], r.header.Get("Retry-After"))
	}
	if r.header.Get("X-RateLimit-Limit") != "" {
		t.Error("X-RateLimit headers on a refusal that belongs to no key")
	}
	// The spent address is refused before any key is looked up, even a good one.
	errorOf(t, e.doFrom(guesser, "POST", "/v1/domains", `{"domain":"example.com"}`, e.key), http.StatusTooManyRequests, "RATE_LIMIT_EXCEEDED")

	// Another address keeps its own allowance and its good key is served.
	r = e.doFrom(other, "GET", "/v1/domains", "", e.key)
	if r.status != http.StatusOK || r.header.Get("X-RateLimit-Limit") == "" {
		t.Fatalf("good key from another address: %d %v", r.status, r.header)
	}
	errorOf(t, e.doFrom(other, "GET", "/v1/domains", "", unknown), http.StatusUnauthorized, "UNAUTHORIZED")

	// A token comes back every 20 seconds.
	clock.Advance(20 * time.Second)
	errorOf(t, e.doFrom(guesser, "GET", "/v1/domains", "", unknown), http.StatusUnauthorized, "UNAUTHORIZED")
	errorOf(t, e.doFrom(guesser, "GET", "/v1/domains", "", unknown), http.StatusTooManyRequests, "RATE_LIMIT_EXCEEDED")
	clock.Advance(20 * time.Second)
	if r := e.doFrom(guesser, "GET", "/v1/domains", "", e.key); r.status != http.StatusOK {
		t.Errorf("good key once the address has a token again: %d %s", r.status, r.body)
	}
}

// TestKeyBudgetUsesInjectedClock checks the per-key limit against the API's
// clock: a spent key is served again one token's time later, not before.
func TestKeyBudgetUsesInjectedClock(t *testing.T) {
	clock := testenv.NewClock(time.Now())
	e := newEnv(t, envOptions{rateLimit: "2/m", now: clock.Now})
	for range 2 {
		if r := e.do("GET", "/v1/domains", "", e.key); r.status != http.StatusOK {
			t.Fatalf("%d %s", r.status, r.body)
		}
	}
	errorOf(t, e.do("GET", "/v1/domains", "", e.key), http.StatusTooManyRequests, "RATE_LIMIT_EXCEEDED")
	clock.Advance(29 * time.Second)
	errorOf(t, e.do("GET", "/v1/domains", "", e.key), http.StatusTooManyRequests, "RATE_LIMIT_EXCEEDED")
	clock.Advance(time.Second)
	if r := e.do("GET", "/v1/domains", "", e.key); r.status != http.StatusOK || r.header.Get("X-RateLimit-Remaining") != "0" {
		t.Errorf("after 30s: %d, remaining %q", r.status, r.header.Get("X-RateLimit-Remaining"))
	}
}

// TestAddWhileKeygenBusy checks that an add that finds every key-generation
// slot taken for the whole wait is answered 429 with Retry-After, stores
// nothing, and that the next add after the slot frees succeeds.
func TestAddWhileKeygenBusy(t *testing.T) {
	gate := domains.NewKeyGate(1, time.Millisecond)
	e := newEnv(t, envOptions{keygen: gate})
	release, err := gate.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	r := e.do("POST", "/v1/domains", `{"domain":"example.com"}`, e.key)
	errObj := errorOf(t, r, http.StatusTooManyRequests, "RATE_LIMIT_EXCEEDED")
	if ra, _ := errObj["retryAfter"].(float64); ra < 1 || r.header.Get("Retry-After") == "" {
		t.Errorf("retryAfter %v, Retry-After %q", errObj["retryAfter"], r.header.Get("Retry-After"))
	}
	if r := e.do("GET", "/v1/domains", "", e.key); strings.Contains(string(r.body), "example.com") {
		t.Fatalf("a refused add stored the domain: %s", r.body)
	}
	release()
	e.addDomain("example.com")
}
