package api_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/domaind/domaind/internal/apikey"
	"github.com/domaind/domaind/internal/testenv"
)

// TestRevocationAcrossReplicas revokes a key on one replica while the other
// has it cached: the revoking replica refuses it at once, and the other for as
// long as it believes its cache (less than apikey.MaxStale on its clock), and
// from then on.
func TestRevocationAcrossReplicas(t *testing.T) {
	clock := testenv.NewClock(time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC))
	a, b := replicas(t, envOptions{now: clock.Now})
	get := func(e *env) int { return e.do("GET", "/v1/domains", "", a.key).status }
	for _, e := range []*env{a, b} {
		if got := get(e); got != http.StatusOK {
			t.Fatalf("before revoking: status %d, want 200", got)
		}
	}
	if _, err := b.app.Auth().Revoke(context.Background(), apikey.Prefix(a.key), clock.Now()); err != nil {
		t.Fatal(err)
	}
	if got := get(b); got != http.StatusUnauthorized {
		t.Errorf("the revoking replica, at once: status %d, want 401", got)
	}
	// The other replica looked the key up at the clock's time; it believes
	// that lookup until MaxStale has passed, which is what spares the database.
	clock.Advance(apikey.MaxStale - time.Millisecond)
	if got := get(a); got != http.StatusOK {
		t.Errorf("the other replica, %v after its lookup: status %d, want 200 from its cache", apikey.MaxStale-time.Millisecond, got)
	}
	clock.Advance(time.Millisecond)
	if got := get(a); got != http.StatusUnauthorized {
		t.Errorf("the other replica, %v after its lookup: status %d, want 401", apikey.MaxStale, got)
	}
	if got := get(b); got != http.StatusUnauthorized {
		t.Errorf("the revoking replica, later: status %d, want 401", got)
	}
}
