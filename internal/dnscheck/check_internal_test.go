package dnscheck

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestWorkersEach checks that each makes every call once and all of them at
// once (each call waits for all the others to start, which calls made one
// after another never would), twice over, the second time with the workers the
// first left, idle or not yet.
func TestWorkersEach(t *testing.T) {
	w := newWorkers()
	for round := range 2 {
		const n = 5
		var started sync.WaitGroup
		started.Add(n)
		all := make(chan struct{})
		go func() {
			started.Wait()
			close(all)
		}()
		var mu sync.Mutex
		calls := map[int]int{}
		w.each(n, func(i int) {
			mu.Lock()
			calls[i]++
			mu.Unlock()
			started.Done()
			select {
			case <-all:
			case <-time.After(10 * time.Second):
				t.Errorf("round %d: call %d: the other calls did not start with it", round, i)
			}
		})
		for i := range n {
			if calls[i] != 1 {
				t.Errorf("round %d: call %d made %d times, want once", round, i, calls[i])
			}
		}
	}
	w.each(0, func(int) { t.Error("a call for n = 0") })
}

// TestRateLimitIsNotLame checks that a query domaind's own rate limit holds
// back past its time fails as the server being busy, which does not mark the
// server lame, and not as the server timing out, which does.
func TestRateLimitIsNotLame(t *testing.T) {
	c, err := New(Config{Mode: ModeAuthoritative, ServerQPS: 0.5, Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	// The first query takes the one query the limit allows now (and fails:
	// nothing listens there); the next would wait two seconds.
	c.exchangeAuth(ctx, "127.0.0.1:1", "example.com.", dns.TypeTXT)
	_, err = c.exchangeAuth(ctx, "127.0.0.1:1", "example.com.", dns.TypeTXT)
	if !errors.Is(err, errBusy) || lameError(err) {
		t.Errorf("a query held back by the rate limit: %v (busy %t, lame %t), want busy and not lame", err, errors.Is(err, errBusy), lameError(err))
	}
}
