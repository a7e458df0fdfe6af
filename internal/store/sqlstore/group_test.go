package sqlstore

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/domaind/domaind/internal/store"
)

// txCounter is a DB whose write transactions only count: each write the
// group runs notes the number of the transaction it ran in.
type txCounter struct {
	mu sync.Mutex
	n  int // transactions begun
}

func (c *txCounter) Read() Querier { return nil }
func (c *txCounter) Snapshot(context.Context, func(Querier) error) error {
	return errors.New("no reads")
}
func (c *txCounter) Write(ctx context.Context, fn func(Querier) error) error { return c.Tx(ctx, fn) }
func (c *txCounter) Close() error                                            { return nil }

func (c *txCounter) Tx(_ context.Context, fn func(Querier) error) error {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
	return fn(nil)
}

// current is the number of the transaction running, from a write in it.
func (c *txCounter) current() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// waitTaken waits until the group has taken every write handed to it.
func waitTaken(t *testing.T, g *group) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); len(g.ops) > 0; {
		if time.Now().After(deadline) {
			t.Fatal("the group took no write for 10 s")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestGroupGathers: after a transaction of several writes, a deferrable write
// waits for others to share its transaction, up to maxGroup; a write that is
// not deferrable ends the wait, and so does closing the group; a lone write
// (after a transaction of one) does not wait. The window is a minute, so a
// write that waited for it would fail the test's deadlines.
func TestGroupGathers(t *testing.T) {
	db := &txCounter{}
	g := newGroup(db, 1, time.Minute)
	bg := store.Deferrable(context.Background())

	// writeHeld hands the group a write, as do does, and returns where its
	// outcome comes: the number of the transaction it ran in. The write is in
	// the group's queue when writeHeld returns. With a hold, the write, once
	// its transaction runs, closes started and waits for hold to close.
	writeHeld := func(ctx context.Context, started, hold chan struct{}) <-chan int {
		out := make(chan int, 1)
		tx := 0
		op := &groupOp{ctx: ctx, key: "k", err: make(chan error, 1), fn: func(context.Context, Querier) error {
			if hold != nil {
				close(started)
				<-hold
			}
			tx = db.current()
			return nil
		}}
		g.ops <- op
		go func() {
			if err := <-op.err; err != nil {
				t.Error(err)
			}
			out <- tx
		}()
		return out
	}
	write := func(ctx context.Context) <-chan int { return writeHeld(ctx, nil, nil) }
	outcome := func(c <-chan int) int {
		t.Helper()
		select {
		case tx := <-c:
			return tx
		case <-time.After(10 * time.Second):
			t.Fatal("a write got no outcome for 10 s")
			return 0
		}
	}

	// A lone deferrable write, after no transaction at all, and another after
	// it: neither waits.
	outcome(write(bg))
	outcome(write(bg))

	// busy makes the group's last transaction one of more than one write: two
	// writes that queue while a third holds the writer go together. (The
	// third's transaction runs before they come, and cannot end before hold
	// closes.)
	busy := func() {
		t.Helper()
		started, hold := make(chan struct{}), make(chan struct{})
		first := writeHeld(context.Background(), started, hold)
		select {
		case <-started:
		case <-time.After(10 * time.Second):
			t.Fatal("a write's transaction did not begin for 10 s")
		}
		a, b := write(bg), write(bg)
		close(hold)
		outcome(first)
		if ta, tb := outcome(a), outcome(b); ta != tb {
			t.Fatalf("two queued writes ran in transactions %d and %d, want one", ta, tb)
		}
	}
	busy()

	// Now a deferrable write waits for more, and goes with maxGroup-1 that
	// come after it.
	lead := write(bg)
	waitTaken(t, g)
	var rest []<-chan int
	for range maxGroup - 1 {
		rest = append(rest, write(bg))
	}
	tx := outcome(lead)
	for _, c := range rest {
		if got := outcome(c); got != tx {
			t.Fatalf("a write that came within the window ran in transaction %d, not the first's %d", got, tx)
		}
	}

	// A write that is not deferrable ends the wait of one that is.
	lead = write(bg)
	waitTaken(t, g)
	verify := write(context.Background())
	if a, b := outcome(lead), outcome(verify); a != b {
		t.Fatalf("a verify's write ran in transaction %d, not with the waiting %d", b, a)
	}

	// A write that is not deferrable does not wait, even after a transaction
	// of several.
	busy()
	outcome(write(context.Background()))

	// Closing the group ends a wait: the write commits and close returns.
	busy()
	lead = write(bg)
	waitTaken(t, g)
	closed := make(chan struct{})
	go func() { g.close(); close(closed) }()
	outcome(lead)
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("close waited out the window")
	}
}
