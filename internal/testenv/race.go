package testenv

import "sync"

// Race calls f(0) … f(n-1) each on a goroutine of its own, released together once all
// n are started, so that the calls meet as racing replicas or clients do rather than
// one after another; it returns when all have returned. f records its results by i.
func Race(n int, f func(i int)) {
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			f(i)
		})
	}
	close(start)
	wg.Wait()
}
