// Package schedule runs the automatic re-checks. It decides when, never how: due
// times live in the database (see store.Store.ClaimChecks), a Worker claims the
// due domains in batches and hands each to the verifier, which checks it and sets
// its next due time. A worker that dies loses its claims when their lease runs
// out, and any worker, in this process or another, picks them up again.
//
// No project may hold more than its share of a worker's check slots, so a tenant
// whose domains' DNS servers answer slowly, or not at all, cannot delay the
// checks of the others: its domains wait for its own slots, and the rest stay
// free for everyone else.
package schedule

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/domaind/domaind/internal/store"
)

// Checker runs the automatic check of one domain; *verify.Verifier is the real one.
type Checker interface {
	CheckDue(ctx context.Context, projectID int64, id string) error
}

// Leaser is a Checker that takes the check leases of a claim's domains at once,
// before their checks start, so that each check need not take its own
// (*verify.Verifier is one). ReleaseLeases gives back those of checks that
// never started.
type Leaser interface {
	LeaseChecks(ctx context.Context, due []store.Due)
	ReleaseLeases(ctx context.Context, due []store.Due)
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
	// Concurrency bounds the checks running at once; DefaultConcurrency when
	// zero.
	Concurrency int
	// ProjectShare bounds the checks of one project running at once; when zero,
	// DefaultShare of Concurrency. It is capped at Concurrency.
	ProjectShare int
	// Lag, if set, is told after each look how overdue the oldest due check is.
	Lag func(time.Duration)
	// Started, if set, is told of each check as the worker starts it; for tests.
	Started func(store.Due)
}

// DefaultConcurrency is the bound on automatic checks at once that serve
// uses. A check mostly waits: for DNS (on the internet, tens to hundreds of
// milliseconds a query), and under load for the one SQLite writer. At 64, the
// bench's scale-out section, whose DNS answers from loopback at once, had a
// tenth of the CPU idle with every slot taken; 128 gave it 6-12% more checks a
// second on SQLite and about 10% on PostgreSQL. Against real name servers, a
// check takes ten times longer, and 64 slots would cap a replica at a few
// hundred checks a second.
const DefaultConcurrency = 128

// DefaultShare is the share of the check slots one project may hold when
// Worker.ProjectShare is zero, in percent.
const DefaultShare = 25

// Share returns how many of concurrency slots percent gives one project: at
// least one, at most all.
func Share(concurrency, percent int) int {
	return min(max(concurrency*percent/100, 1), max(concurrency, 1))
}

// ParseShare parses the --check-project-share flag: a count of checks such as
// 8, or a percentage of concurrency such as 25%.
func ParseShare(s string, concurrency int) (int, error) {
	s = strings.TrimSpace(s)
	if p, ok := strings.CutSuffix(s, "%"); ok {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 1 || n > 100 {
			return 0, fmt.Errorf("%q is not a percentage from 1%% to 100%%", s)
		}
		return Share(concurrency, n), nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%q is neither a count of at least 1 nor a percentage such as 25%%", s)
	}
	return min(n, max(concurrency, 1)), nil
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
		conc = DefaultConcurrency
	}
	share := Share(conc, DefaultShare)
	if w.ProjectShare > 0 {
		share = min(w.ProjectShare, conc)
	}
	log := w.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	// ahead is how many claimed checks may wait for a slot: claims are made in
	// batches of at least refill, and a slot that frees takes the next waiting
	// check at once, instead of waiting for a claim of its own, so the slots
	// stay busy while the database answers the next claim. As many as there
	// are slots: under load, the claim's round trip (the claim, the leases,
	// the read of the domains) outlasted half the slots' worth of checks, and a
	// quarter of the slots stood idle (the bench's scale-out section: 8% more
	// checks a second with as many ahead as slots than with half as many).
	ahead := max(conc, 1)
	refill := max(conc/4, 1)
	// perProject bounds a project's checks in flight and waiting. Claims take
	// no more of a project's domains than it may start: where projects share
	// the slots, its share, so that the backlog of a project whose checks hang
	// is not leased away to wait behind them; where one project may take every
	// slot, any waiting check starts at the next free slot, so it may have
	// checks waiting too.
	perProject := share
	if share >= conc {
		perProject = share + ahead
	}

	// held counts, by project, the checks in flight and those claimed and
	// waiting; the claim is told of them, so it never hands out a domain the
	// worker may not start. total counts those in flight.
	var (
		mu    sync.Mutex
		total int
		held  = map[int64]int{}
		ready []store.Due // claimed, waiting for a slot, oldest claim first
	)
	wake := make(chan struct{}, 1)
	var wg sync.WaitGroup
	defer wg.Wait()
	// start runs waiting checks while slots are free; mu must be held. Once
	// ctx is done it starts none: the waiting ones are left to Run's return.
	var start func()
	start = func() {
		for total < conc && len(ready) > 0 && ctx.Err() == nil {
			d := ready[0]
			ready = ready[1:]
			total++
			if w.Started != nil {
				w.Started(d)
			}
			wg.Go(func() {
				defer func() {
					mu.Lock()
					total--
					if held[d.ProjectID]--; held[d.ProjectID] <= 0 {
						delete(held, d.ProjectID)
					}
					start()
					low := len(ready) < refill
					mu.Unlock()
					if low {
						select {
						case wake <- struct{}{}:
						default:
						}
					}
				}()
				if err := w.Checker.CheckDue(ctx, d.ProjectID, d.ID); err != nil &&
					!errors.Is(err, store.ErrNotFound) && ctx.Err() == nil {
					log.Error("automatic check", "id", d.ID, "err", err)
				}
			})
		}
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			// Checks claimed but not started come due again when their lease
			// ends; there are at most ahead of them. Their check leases, if
			// taken, are given back now.
			if l, ok := w.Checker.(Leaser); ok {
				mu.Lock()
				left := slices.Clone(ready)
				ready = nil
				mu.Unlock()
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
				l.ReleaseLeases(rctx, left)
				cancel()
			}
			return nil
		case <-timer.C:
		case <-wake:
		}
		mu.Lock()
		free := conc + ahead - total - len(ready)
		// An idle worker claims whatever is due; a busy one waits until a
		// batch's worth of room has freed, so that claims stay few.
		claim := free > 0 && (free >= refill || total+len(ready) == 0)
		running := maps.Clone(held)
		mu.Unlock()
		claimed := 0
		if claim {
			due, err := w.Store.ClaimChecks(ctx, now(), lease, free, perProject, running)
			if err != nil && !errors.Is(err, context.Canceled) {
				log.Error("claiming due checks", "err", err)
			}
			claimed = len(due)
			mu.Lock()
			accepted := due[:0:0]
			for _, d := range due {
				if total+len(ready)+len(accepted) >= conc+ahead || held[d.ProjectID] >= perProject {
					// The store handed out more than asked, which it must not;
					// the claim comes due again when its lease ends.
					log.Error("claim exceeds the free check slots", "id", d.ID, "project", d.ProjectID)
					continue
				}
				held[d.ProjectID]++
				accepted = append(accepted, d)
			}
			mu.Unlock()
			// Only the checks this worker will run take their leases, so that
			// another replica's verify does not wait on a dropped claim.
			if l, ok := w.Checker.(Leaser); ok && len(accepted) > 0 {
				l.LeaseChecks(ctx, accepted)
			}
			mu.Lock()
			ready = append(ready, accepted...)
			start()
			mu.Unlock()
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
		// A full batch means more may be due: look again as soon as there is
		// room (a check that ends wakes the loop). Otherwise wait for the
		// interval or for a running check to free its slot. A batch cut short
		// by the projects' shares is not full: what is left of those projects
		// waits for their own slots to free.
		next := interval
		if claim && claimed == free {
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
