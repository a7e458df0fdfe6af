package apikey

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/domaind/domaind/internal/fault"
	"github.com/domaind/domaind/internal/store"
	"github.com/domaind/domaind/internal/store/sqlite"
	"github.com/domaind/domaind/internal/testenv"
)

// countingStore is a real store that counts the key lookups made of it, and
// can hold them until released.
type countingStore struct {
	store.Store
	lookups atomic.Int64
	// hold, when set, makes each lookup signal started and then wait for
	// release before it reads the store.
	hold             bool
	started, release chan struct{}
	// holdAfter is hold, but after the store has been read.
	holdAfter bool
}

func (c *countingStore) APIKeyByHash(ctx context.Context, hash [32]byte) (store.APIKey, error) {
	c.lookups.Add(1)
	if c.hold {
		c.started <- struct{}{}
		<-c.release
	}
	if c.holdAfter {
		k, err := c.Store.APIKeyByHash(ctx, hash)
		c.started <- struct{}{}
		<-c.release
		return k, err
	}
	return c.Store.APIKeyByHash(ctx, hash)
}

// newService returns a Service on a fresh SQLite store, counted, at the
// clock's time, and a valid key of it.
func newService(t *testing.T) (*Service, *countingStore, *testenv.Clock, string) {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "domaind.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cs := &countingStore{Store: st, started: make(chan struct{}), release: make(chan struct{})}
	clock := testenv.NewClock(time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC))
	s := &Service{Store: cs, Now: clock.Now}
	key, _, err := s.Create(t.Context(), "acme", clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	return s, cs, clock, key
}

func authenticated(t *testing.T, s *Service, key string) bool {
	t.Helper()
	_, err := s.Authenticate(t.Context(), key)
	if f := fault.As(err); f != nil && f.Code == fault.Unauthorized {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return true
}

// authenticateAsync authenticates key with s in a goroutine of its own, for a
// test that holds the lookup meanwhile, and returns where it tells whether the
// key was accepted.
func authenticateAsync(s *Service, key string) <-chan bool {
	done := make(chan bool, 1)
	go func() {
		_, err := s.Authenticate(context.Background(), key)
		done <- err == nil
	}()
	return done
}

// TestCacheSparesLookups: a valid key is looked up once per MaxStale however
// often it is used, and again once MaxStale has passed since its lookup began.
func TestCacheSparesLookups(t *testing.T) {
	s, cs, clock, key := newService(t)
	for range 100 {
		if !authenticated(t, s, key) {
			t.Fatal("a valid key was refused")
		}
	}
	if n := cs.lookups.Load(); n != 1 {
		t.Fatalf("100 uses within MaxStale made %d lookups, want 1", n)
	}
	clock.Advance(MaxStale - time.Millisecond)
	authenticated(t, s, key)
	if n := cs.lookups.Load(); n != 1 {
		t.Fatalf("a use %v after the lookup made %d lookups in all, want 1", MaxStale-time.Millisecond, n)
	}
	clock.Advance(time.Millisecond)
	authenticated(t, s, key)
	if n := cs.lookups.Load(); n != 2 {
		t.Fatalf("a use MaxStale after the lookup made %d lookups in all, want 2", n)
	}
	// A clock that goes back believes nothing it remembers.
	clock.Advance(-time.Hour)
	authenticated(t, s, key)
	if n := cs.lookups.Load(); n != 3 {
		t.Fatalf("a use after the clock went back made %d lookups in all, want 3", n)
	}
}

// TestRevokeAtOnce: the Service that revokes a key refuses it at once, cached
// or not, without its clock moving.
func TestRevokeAtOnce(t *testing.T) {
	s, _, clock, key := newService(t)
	if !authenticated(t, s, key) {
		t.Fatal("a valid key was refused")
	}
	if _, err := s.Revoke(t.Context(), Prefix(key), clock.Now()); err != nil {
		t.Fatal(err)
	}
	if authenticated(t, s, key) {
		t.Fatal("a revoked key was accepted by the Service that revoked it")
	}
}

// TestRevokeDuringLookup: a lookup that began before a revocation may answer
// its caller as the store did, but is not cached: the next use looks again
// and is refused.
func TestRevokeDuringLookup(t *testing.T) {
	s, cs, clock, key := newService(t)
	cs.hold = true
	done := authenticateAsync(s, key)
	<-cs.started
	cs.hold = false // lookups from here on are not held
	if _, err := s.Revoke(t.Context(), Prefix(key), clock.Now()); err != nil {
		t.Fatal(err)
	}
	close(cs.release)
	<-done
	if authenticated(t, s, key) {
		t.Fatal("a key revoked while its lookup ran was cached and accepted afterwards")
	}
}

// TestUnknownKeysNotCached: unknown keys are looked up on every try and
// cached never, so they cannot push a valid key out; the cache holds at most
// its size of valid keys.
func TestUnknownKeysNotCached(t *testing.T) {
	s, cs, _, key := newService(t)
	s.cache.max = 2
	authenticated(t, s, key)
	for i := range 50 {
		unknown, err := New()
		if err != nil {
			t.Fatal(err)
		}
		if authenticated(t, s, unknown) {
			t.Fatalf("unknown key %d was accepted", i)
		}
	}
	if n := cs.lookups.Load(); n != 51 {
		t.Errorf("1 valid and 50 unknown keys made %d lookups, want 51", n)
	}
	if n := s.cache.len(); n != 1 {
		t.Errorf("the cache holds %d keys, want the 1 valid one", n)
	}
	before := cs.lookups.Load()
	authenticated(t, s, key)
	if cs.lookups.Load() != before {
		t.Error("the valid key was pushed out of the cache by unknown ones")
	}
	for range 5 {
		k, _, err := s.Create(t.Context(), "acme", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		authenticated(t, s, k)
	}
	if n := s.cache.len(); n != 2 {
		t.Errorf("after 6 valid keys the cache holds %d, want its size, 2", n)
	}
}

// TestStaleLookupAsksAgain: a lookup that read the store and then stalled for
// MaxStale, meanwhile another replica revoked the key, is not believed: the
// key is refused, as MaxStale promises.
func TestStaleLookupAsksAgain(t *testing.T) {
	s, cs, clock, key := newService(t)
	cs.holdAfter = true
	done := authenticateAsync(s, key)
	<-cs.started // the lookup found the key valid
	cs.holdAfter = false
	// Another replica revokes it, through the store.
	if _, err := cs.Store.RevokeAPIKey(t.Context(), Prefix(key), clock.Now()); err != nil {
		t.Fatal(err)
	}
	clock.Advance(MaxStale)
	close(cs.release)
	if <-done {
		t.Fatal("a key revoked MaxStale after its lookup began was accepted on that lookup's word")
	}
}
