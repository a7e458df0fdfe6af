package rotation

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Worker runs due rotation steps from the database, on any number of
// replicas: a claim moves a rotation's StepAt a lease ahead, so a replica that
// dies mid-step loses the claim and another takes the step again, from the
// state recorded (every step is idempotent).
type Worker struct {
	Rotator *Rotator
	// Interval between looks for due steps; 5s when zero. Lease is how long a
	// claimed step is another worker's; 2m when zero. Batch is how many are
	// claimed at once, and run at once (8 when zero).
	Interval, Lease time.Duration
	Batch           int
	Log             *slog.Logger
	// Wake, when not nil, makes the worker look at once (rotate-now).
	Wake <-chan struct{}
	// initAfter is where the walk of InitRotations over every domain goes
	// on, and initDone is set once it has passed the last: domains added
	// since get their rows from Add, so the walk is made once per process.
	initAfter string
	initDone  bool
}

// initBatch is how many domains InitRotations looks at per look: a million
// domains from before rotations are walked in about 40 minutes of 5s looks.
const initBatch = 2000

// Run looks for due steps until ctx ends.
func (w *Worker) Run(ctx context.Context) {
	interval := orDefault(w.Interval, 5*time.Second)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		w.RunOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-w.Wake:
		}
	}
}

// RunOnce makes the rows of domains that have none (until none is left),
// claims the due steps and runs them, and returns how many it ran. Calls
// must not overlap.
func (w *Worker) RunOnce(ctx context.Context) int {
	r := w.Rotator
	now := r.now()
	if !w.initDone {
		_, last, err := r.Store.InitRotations(ctx, now, r.Config.RotateEvery, w.initAfter, initBatch)
		if err != nil && ctx.Err() == nil {
			w.log().Warn("dkim rotation: init", "err", err)
		}
		if err == nil {
			w.initAfter, w.initDone = last, last == ""
		}
	}
	batch := w.Batch
	if batch <= 0 {
		batch = 8
	}
	ids, err := r.Store.ClaimRotations(ctx, now, orDefault(w.Lease, 2*time.Minute), batch)
	if err != nil {
		if ctx.Err() == nil {
			w.log().Warn("dkim rotation: claim", "err", err)
		}
		return 0
	}
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Go(func() {
			if err := r.Step(ctx, id); err != nil && ctx.Err() == nil {
				w.log().Warn("dkim rotation: step", "domain_id", id, "err", err)
			}
		})
	}
	wg.Wait()
	return len(ids)
}

func (w *Worker) log() *slog.Logger {
	if w.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return w.Log
}
