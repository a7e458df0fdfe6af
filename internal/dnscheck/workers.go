package dnscheck

import (
	"sync"
	"time"
)

// workerIdle is how long a worker of a workers pool waits for another call
// before its goroutine ends.
const workerIdle = 10 * time.Second

// workers runs calls on goroutines it keeps for a while after each call. A
// check's lookups start a goroutine each; a fresh goroutine's small stack
// grows, by copying, on every lookup's way down into the DNS client, which
// cost about a twentieth of a background check's CPU. A kept goroutine has
// grown its stack already. There are never more goroutines than the most calls
// that ran at once within the last workerIdle, when idle ones end; without the
// pool, there were as many as calls running.
type workers struct {
	calls chan func() // unbuffered: a call is taken only by an idle worker
}

func newWorkers() *workers { return &workers{calls: make(chan func())} }

// Go runs f on an idle worker, or on a new one if none is idle.
func (w *workers) Go(f func()) {
	select {
	case w.calls <- f:
	default:
		go w.work(f)
	}
}

func (w *workers) work(f func()) {
	f()
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		select {
		case f := <-w.calls:
			f()
			idle.Reset(workerIdle)
		case <-idle.C:
			return
		}
	}
}

// each calls f(i) for every i below n at once, and returns when all calls
// have. The last call runs on the calling goroutine, which is waiting anyway.
func (w *workers) each(n int, f func(i int)) {
	if n <= 0 {
		return
	}
	var wg sync.WaitGroup
	wg.Add(n - 1)
	for i := range n - 1 {
		w.Go(func() {
			defer wg.Done()
			f(i)
		})
	}
	f(n - 1)
	wg.Wait()
}
