package store_test

import (
	"regexp"
	"testing"
	"time"

	"github.com/domaind/domaind/internal/store"
)

// TestNewTimeID checks that time ids look like every other id (prefix and 24
// lowercase hex), sort in the order of their times, whatever their random part,
// and differ at one same time.
func TestNewTimeID(t *testing.T) {
	shape := regexp.MustCompile(`^evt_[0-9a-f]{24}$`)
	start := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	seen := map[string]bool{}
	prev := ""
	for i := range 2000 {
		// Each time twice: the second id of a time may sort before or after
		// the first, but both after every id of an earlier time.
		at := start.Add(time.Duration(i/2) * time.Millisecond)
		id, err := store.NewTimeID("evt_", at)
		if err != nil {
			t.Fatal(err)
		}
		if !shape.MatchString(id) {
			t.Fatalf("NewTimeID = %q, want evt_ and 24 lowercase hex", id)
		}
		if seen[id] {
			t.Fatalf("NewTimeID gave %q twice", id)
		}
		seen[id] = true
		if i%2 == 0 && id <= prev {
			t.Fatalf("id %q of %v sorts before %q of an earlier time", id, at, prev)
		}
		if i%2 == 1 {
			prev = max(prev, id)
		} else {
			prev = id
		}
	}
	// A time before 1970 counts as 1970, not as a number that wraps round.
	if id, err := store.NewTimeID("msg_", time.Time{}); err != nil || len(id) != 28 || id[:16] != "msg_000000000000" {
		t.Fatalf("NewTimeID of the zero time = %q, %v; want msg_000000000000 and 12 random hex", id, err)
	}
}
