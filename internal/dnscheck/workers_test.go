package dnscheck

import (
	"sync"
	"testing"
	"time"
)

// TestWorkersEach checks that each makes every call once and all of them at
// once (each call waits for all the others to start, which calls made one
// after another never would), twice over, so the second round runs on the
// workers the first left idle.
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
