package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"sync"
	"time"
)

// newClient returns an HTTP client that keeps a connection open per concurrent
// client, so the benchmark measures requests rather than TCP handshakes (the
// default transport keeps only two idle connections per host).
func newClient(clients int) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			MaxIdleConns:        clients,
			MaxIdleConnsPerHost: clients,
			DisableCompression:  true,
		},
		Timeout: 2 * time.Minute,
	}
}

// request builds the next request of one client; seq counts that client's requests.
type request func(client, seq int) (*http.Request, error)

// loadResult is what a load run measured.
type loadResult struct {
	Requests int
	Errors   int
	FirstErr string
	Elapsed  time.Duration   // from the first request to the last answer
	Latency  []time.Duration // of every answered request, sorted
	CPUBusy  float64         // share of the machine's CPU time in use, or -1
	CPUSelf  float64         // share of it this process used
}

func (r loadResult) rps() float64 { return float64(r.Requests) / r.Elapsed.Seconds() }

// percentile returns the nearest-rank p-th percentile (0 < p <= 100) of the
// latencies.
func (r loadResult) percentile(p float64) time.Duration {
	if len(r.Latency) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(r.Latency)))) - 1
	return r.Latency[min(max(i, 0), len(r.Latency)-1)]
}

// load runs clients goroutines that each send requests one after another, until
// duration has passed (limit 0) or limit requests have been sent in all. A request
// whose status is not want counts as an error. Requests still running when time is
// up are waited for and counted: the elapsed time runs to the last answer.
func load(ctx context.Context, hc *http.Client, clients int, duration time.Duration, limit int, want int, next request) loadResult {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu    sync.Mutex
		res   loadResult
		lats  = make([][]time.Duration, clients)
		sent  int
		wg    sync.WaitGroup
		start = time.Now()
		cpu   = startCPU()
	)
	deadline := start.Add(duration)
	take := func() bool {
		mu.Lock()
		defer mu.Unlock()
		if limit > 0 {
			if sent >= limit {
				return false
			}
		} else if time.Now().After(deadline) {
			return false
		}
		sent++
		return true
	}
	fail := func(msg string) {
		mu.Lock()
		defer mu.Unlock()
		res.Errors++
		if res.FirstErr == "" {
			res.FirstErr = msg
		}
	}
	for c := range clients {
		wg.Go(func() {
			for seq := 0; ctx.Err() == nil && take(); seq++ {
				req, err := next(c, seq)
				if err != nil {
					fail(err.Error())
					continue
				}
				t0 := time.Now()
				resp, err := hc.Do(req.WithContext(ctx))
				if err != nil {
					fail(err.Error())
					continue
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				lats[c] = append(lats[c], time.Since(t0))
				if err != nil {
					fail(err.Error())
				} else if resp.StatusCode != want {
					fail(fmt.Sprintf("%s %s: status %d: %.200s", req.Method, req.URL.Path, resp.StatusCode, body))
				}
			}
		})
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	res.CPUBusy, res.CPUSelf = cpu.busyShare(), cpu.selfShare()
	for _, l := range lats {
		res.Latency = append(res.Latency, l...)
	}
	slices.Sort(res.Latency)
	res.Requests = len(res.Latency)
	return res
}
