// Package schedule runs the automatic re-checks. It decides when, never how: due
// times live in the database (see store.Store.ClaimDue), a Worker claims the due
// domains in batches and hands each to the verifier, which checks it and sets its
// next due time. A worker that dies loses its claims when their lease runs out, and
// any worker, in this process or another, picks them up again.
package schedule

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/domaind/domaind/internal/store"
)

// Checker runs the automatic check of one domain; *verify.Verifier is the real one.
type Checker interface {
	CheckDue(ctx context.Context, projectID int64, id string) error
}

// Worker claims due checks and runs them.
type Worker struct {
	Store   store.Store
	Checker Checker
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	Log *slog.Logger
	// Interval is how long an idle worker waits before looking again; 1s when zero.
	Interval time.Duration
	// Lease is how long a claim holds; it must outlast a check. 2m when zero.
	Lease time.Duration
	// Concurrency bounds the checks running at once; 64 when zero.
	Concurrency int
	// Lag, if set, is told after each look how overdue the oldest due check is.
	Lag func(time.Duration)
}

// Run claims and runs due checks until ctx is done, then waits for the checks it
// started to end.
func (w *Worker) Run(ctx context.Context) error {
	now := w.Now
	if now == nil {
		now = time.Now
	}
	interval := cmp(w.Interval, time.Second)
	lease := cmp(w.Lease, 2*time.Minute)
	conc := w.Concurrency
	if conc <= 0 {
		conc = 64
	}
	log := w.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	slots := make(chan struct{}, conc)
	wake := make(chan struct{}, 1)
	var wg sync.WaitGroup
	defer wg.Wait()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case <-wake:
		}
		free := conc - len(slots)
		claimed := 0
		if free > 0 {
			due, err := w.Store.ClaimDue(ctx, now(), lease, free)
			if err != nil && !errors.Is(err, context.Canceled) {
				log.Error("claiming due checks", "err", err)
			}
			claimed = len(due)
			for _, d := range due {
				slots <- struct{}{}
				wg.Go(func() {
					defer func() {
						<-slots
						select {
						case wake <- struct{}{}:
						default:
						}
					}()
					if err := w.Checker.CheckDue(ctx, d.ProjectID, d.ID); err != nil &&
						!errors.Is(err, store.ErrNotFound) && ctx.Err() == nil {
						log.Error("automatic check", "id", d.ID, "err", err)
					}
				})
			}
		}
		if w.Lag != nil {
			if oldest, err := w.Store.OldestDue(ctx); err == nil {
				lag := time.Duration(0)
				if !oldest.IsZero() {
					lag = max(now().Sub(oldest), 0)
				}
				w.Lag(lag)
			}
		}
		// A full batch means more may be due: look again at once. Otherwise wait
		// for the interval or for a running check to free its slot.
		next := interval
		if free > 0 && claimed == free {
			next = 0
		}
		timer.Reset(next) // since Go 1.23 a Reset needs no draining
	}
}

func cmp(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
