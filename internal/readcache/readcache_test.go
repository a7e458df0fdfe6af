package readcache

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/domaind/domaind/internal/testenv"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// fill looks id up for project and, on a miss, puts value under the ticket
// the lookup gave; it returns what was served and whether it was a hit.
func fill(c *Cache[string], id string, project int64, value string) (string, bool) {
	v, t, ok := c.Get(id, project)
	if ok {
		return v, true
	}
	c.Put(t, id, project, value, len(value))
	return value, false
}

func TestHitsMissesAndInvalidation(t *testing.T) {
	clock := testenv.NewClock(t0)
	c := New[string](Config{MaxEntries: 100, MaxBytes: 1 << 20, Now: clock.Now})
	if _, hit := fill(c, "a", 1, "v1"); hit {
		t.Fatal("hit in an empty cache")
	}
	if v, hit := fill(c, "a", 1, "other"); !hit || v != "v1" {
		t.Fatalf("second lookup: %q hit %v, want v1 from the cache", v, hit)
	}
	// Another project never gets the entry; its lookup goes to the store,
	// which answers it (not found) itself.
	if _, _, ok := c.Get("a", 2); ok {
		t.Fatal("project 2 was served project 1's entry")
	}
	if v, hit := fill(c, "a", 1, "other"); !hit || v != "v1" {
		t.Fatalf("after another project's miss: %q hit %v, want v1", v, hit)
	}
	c.Invalidate("a")
	if v, hit := fill(c, "a", 1, "v2"); hit || v != "v2" {
		t.Fatalf("after Invalidate: %q hit %v, want a miss", v, hit)
	}
	c.InvalidateAll()
	if _, _, ok := c.Get("a", 1); ok {
		t.Fatal("hit after InvalidateAll")
	}
}

// TestLoadRacingAWrite: a load that began before a write's invalidation is not
// kept, since it may have read the row the write replaced.
func TestLoadRacingAWrite(t *testing.T) {
	c := New[string](Config{MaxEntries: 100, MaxBytes: 1 << 20, Now: testenv.NewClock(t0).Now})
	_, ticket, _ := c.Get("a", 1)
	c.Invalidate("a") // the write commits while the load reads
	c.Put(ticket, "a", 1, "old", 3)
	if v, _, ok := c.Get("a", 1); ok {
		t.Fatalf("a load that raced a write was kept: %q", v)
	}
}

// TestWithoutEpoch: with nothing to tell of other writers, an entry is
// believed for less than MaxStale after its load began, on the cache's clock.
func TestWithoutEpoch(t *testing.T) {
	clock := testenv.NewClock(t0)
	c := New[string](Config{MaxEntries: 100, MaxBytes: 1 << 20, MaxStale: time.Second, Now: clock.Now})
	fill(c, "a", 1, "v1")
	clock.Advance(time.Second - time.Nanosecond)
	if _, hit := fill(c, "a", 1, "v2"); !hit {
		t.Fatal("miss before MaxStale")
	}
	clock.Advance(time.Nanosecond)
	if v, hit := fill(c, "a", 1, "v2"); hit {
		t.Fatalf("hit %q at MaxStale", v)
	}
	// A clock that went back believes nothing.
	clock.Advance(-time.Minute)
	if _, hit := fill(c, "a", 1, "v3"); hit {
		t.Fatal("hit after the clock went back")
	}
}

// epochSource is an epoch the test moves, as another process's commits move
// SQLite's data_version.
type epochSource struct {
	v   atomic.Uint64
	err atomic.Bool
}

func (e *epochSource) get(context.Context) (uint64, error) {
	if e.err.Load() {
		return 0, errors.New("database gone")
	}
	return e.v.Load(), nil
}

// TestEpoch: with an epoch, an entry is believed as long as polls confirm the
// epoch it was loaded under, however old it is; a change drops it at once;
// when polls stop succeeding, entries fall back to MaxStale.
func TestEpoch(t *testing.T) {
	clock := testenv.NewClock(t0)
	var ep epochSource
	ep.v.Store(7)
	// PollEvery is long and a poll was just kicked, as far as the cache
	// knows: the test polls by hand, and no background poll runs.
	c := New[string](Config{MaxEntries: 100, MaxBytes: 1 << 20, MaxStale: time.Second, Epoch: ep.get, PollEvery: time.Hour, Now: clock.Now})
	c.lastKick.Store(clock.Now().UnixNano())
	ctx := t.Context()
	if err := c.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	fill(c, "a", 1, "v1")
	for range 5 {
		clock.Advance(900 * time.Millisecond)
		if err := c.Poll(ctx); err != nil {
			t.Fatal(err)
		}
		if _, hit := fill(c, "a", 1, "v2"); !hit {
			t.Fatalf("miss at %v although every poll confirmed the epoch", clock.Now().Sub(t0))
		}
	}
	ep.v.Store(8) // another process commits
	if _, hit := fill(c, "a", 1, "v2"); !hit {
		t.Fatal("miss before any poll could know of the commit")
	}
	if err := c.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if v, hit := fill(c, "a", 1, "v3"); hit {
		t.Fatalf("hit %q after the epoch moved", v)
	}
	// The store stops answering: the last poll ages, and entries live for
	// MaxStale after their load.
	ep.err.Store(true)
	if err := c.Poll(ctx); err == nil {
		t.Fatal("Poll hid the epoch's error")
	}
	clock.Advance(999 * time.Millisecond)
	if _, hit := fill(c, "a", 1, "v4"); !hit {
		t.Fatal("miss within MaxStale of the load")
	}
	clock.Advance(time.Millisecond)
	if _, hit := fill(c, "a", 1, "v4"); hit {
		t.Fatal("hit at MaxStale with no poll since")
	}
}

// TestBounds: the cache keeps no more entries or bytes than it may, and never
// an entry larger than a shard's share.
func TestBounds(t *testing.T) {
	c := New[string](Config{MaxEntries: 64, MaxBytes: 1 << 20, Now: testenv.NewClock(t0).Now})
	for i := range 10_000 {
		fill(c, strconv.Itoa(i), 1, "v")
	}
	if st := c.Stats(); st.Entries > 64 || st.Entries < 32 {
		t.Errorf("%d entries kept, want at most 64 (and most of them)", st.Entries)
	}
	const maxBytes = 64 << 10
	c = New[string](Config{MaxEntries: 1 << 20, MaxBytes: maxBytes, Now: testenv.NewClock(t0).Now})
	big := string(make([]byte, 1000))
	for i := range 10_000 {
		fill(c, strconv.Itoa(i), 1, big)
	}
	if st := c.Stats(); st.Bytes > maxBytes || st.Entries*1000 > maxBytes || st.Entries == 0 {
		t.Errorf("%d entries of %d bytes kept, want at most %d bytes", st.Entries, st.Bytes, maxBytes)
	}
	huge := string(make([]byte, maxBytes/shards+1))
	fill(c, "huge", 1, huge)
	if _, _, ok := c.Get("huge", 1); ok {
		t.Error("an entry larger than its shard's share was kept")
	}
	off := New[string](Config{Now: testenv.NewClock(t0).Now})
	fill(off, "a", 1, "v")
	if _, hit := fill(off, "a", 1, "v"); hit || off.Stats().Entries != 0 {
		t.Error("a cache of MaxEntries 0 kept an entry")
	}
}
