// Package verify runs one DNS check of one domain end to end: it asks dnscheck what
// DNS publishes, applies the domain rules and stores the new state. It guarantees
// one check per domain at a time; a caller that asks while a check runs joins it.
package verify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/domaind/domaind/internal/dnscheck"
	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/store"
)

// Checker looks records up in DNS; *dnscheck.Checker is the real one.
type Checker interface {
	Check(ctx context.Context, exps []dnscheck.Expectation) []domain.Observation
}

// Config tunes a Verifier.
type Config struct {
	// Budget is how long Verify waits for a check before it answers with the stored
	// state and lets the check finish in the background.
	Budget time.Duration
	// MinInterval is how soon after a finished check a new one may start.
	MinInterval time.Duration
	// CheckTimeout bounds one whole check, however long DNS takes.
	CheckTimeout time.Duration
	// Rules are the domain rules background checks apply. An explicit verify
	// reports what DNS says at once: it degrades after one definite failure.
	Rules domain.Rules
	// Recheck is the automatic re-check policy.
	Recheck domain.Recheck
}

// TooSoonError is returned by Verify when the domain was checked less than
// MinInterval ago.
type TooSoonError struct {
	RetryAfter time.Duration
}

func (e *TooSoonError) Error() string {
	return fmt.Sprintf("verify: checked moments ago; retry after %s", e.RetryAfter)
}

// Outcome is what Verify reports.
type Outcome struct {
	Domain *domain.Domain
	// InProgress is true when the budget ran out before the check finished; Domain
	// is then the state stored before the check.
	InProgress bool
}

// Verifier runs checks. It is safe for concurrent use.
type Verifier struct {
	store   store.Store
	checker Checker
	cfg     Config
	now     func() time.Time
	log     *slog.Logger

	// ctx is cancelled by Close; checks run under it, not under the request that
	// started them, so a client hanging up does not abandon a check.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// Observer, if set before the first check, is told of every check.
	Observer Observer

	mu      sync.Mutex
	running map[string]*run

	// owner names this verifier in the database's check leases, which keep
	// replicas from checking one domain at once.
	owner string
}

type run struct {
	done chan struct{}
	d    *domain.Domain // the new state, set before done closes
	err  error
}

// Observer is told of every finished check, for metrics.
type Observer interface {
	CheckDone(outcome string, took time.Duration)
}

// New returns a Verifier. now is the clock; nil means time.Now.
func New(st store.Store, checker Checker, cfg Config, now func() time.Time, log *slog.Logger) *Verifier {
	if now == nil {
		now = time.Now
	}
	if cfg.CheckTimeout <= 0 {
		cfg.CheckTimeout = 30 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	owner, err := store.NewID("v_")
	if err != nil {
		// crypto/rand does not fail on the systems Go supports.
		panic(err)
	}
	return &Verifier{
		store: st, checker: checker, cfg: cfg, now: now, log: log,
		ctx: ctx, cancel: cancel, running: make(map[string]*run), owner: owner,
	}
}

// Close cancels running checks and waits for them to end.
func (v *Verifier) Close() {
	v.cancel()
	v.wg.Wait()
}

// InProgress reports whether a check of the domain is running in this process.
func (v *Verifier) InProgress(id string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.running[id] != nil
}

// Checking reports whether a check of the domain is running on any replica: in
// this process, or under another's lease as of when d was read.
func (v *Verifier) Checking(d *domain.Domain) bool {
	return v.InProgress(d.ID) || d.CheckingUntil.After(v.now())
}

// Verify checks the project's domain now. It returns store.ErrNotFound for an
// unknown domain and a *TooSoonError when the last check finished less than
// MinInterval ago. A call while a check of the domain runs joins that check.
func (v *Verifier) Verify(ctx context.Context, projectID int64, id string) (Outcome, error) {
	d, err := v.store.Domain(ctx, projectID, id)
	if err != nil {
		return Outcome{}, err
	}
	v.mu.Lock()
	r := v.running[id]
	if r == nil {
		if wait := v.cfg.MinInterval - v.now().Sub(d.LastCheckedAt); checked(d) && wait > 0 {
			v.mu.Unlock()
			return Outcome{}, &TooSoonError{RetryAfter: wait}
		}
		r = v.start(projectID, id, true)
	}
	v.mu.Unlock()

	budget := time.NewTimer(v.cfg.Budget)
	defer budget.Stop()
	select {
	case <-r.done:
		if r.err != nil {
			return Outcome{}, r.err
		}
		return Outcome{Domain: r.d}, nil
	case <-budget.C:
		return Outcome{Domain: d, InProgress: true}, nil
	case <-ctx.Done():
		return Outcome{}, ctx.Err()
	}
}

// checked reports whether the domain has been checked at least once.
func checked(d *domain.Domain) bool {
	for _, r := range d.Records {
		if !r.CheckedAt.IsZero() {
			return true
		}
	}
	return false
}

// Recheck returns the automatic re-check policy.
func (v *Verifier) Recheck() domain.Recheck { return v.cfg.Recheck }

// StartWindow sets a new domain's schedule: its first automatic check follows the
// first step of the re-check policy.
func (v *Verifier) StartWindow(d *domain.Domain, now time.Time) {
	d.StartWindow(v.cfg.Recheck, now)
}

// CheckDue runs the automatic check of a domain the scheduler claimed, and waits
// for it. If a check of the domain is already running it waits for that one
// instead, which schedules the next check itself.
func (v *Verifier) CheckDue(ctx context.Context, projectID int64, id string) error {
	v.mu.Lock()
	r := v.running[id]
	if r == nil {
		r = v.start(projectID, id, false)
	}
	v.mu.Unlock()
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// start begins a check of the domain; v.mu must be held.
func (v *Verifier) start(projectID int64, id string, explicit bool) *run {
	r := &run{done: make(chan struct{})}
	v.running[id] = r
	v.wg.Add(1)
	go func() {
		defer v.wg.Done()
		r.d, r.err = v.check(projectID, id, explicit)
		v.mu.Lock()
		delete(v.running, id)
		v.mu.Unlock()
		close(r.done)
	}()
	return r
}

// check runs one check: DNS first, then the freshest stored state is updated,
// rescheduled and saved with the events it caused, so that a change made while
// DNS was being asked is not overwritten.
func (v *Verifier) check(projectID int64, id string, explicit bool) (*domain.Domain, error) {
	ctx, cancel := context.WithTimeout(v.ctx, v.cfg.CheckTimeout)
	defer cancel()
	// The lease outlasts the check's own timeout, so it cannot end while the
	// check may still save.
	ok, err := v.store.AcquireCheck(ctx, id, v.owner, v.now(), v.cfg.CheckTimeout+5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("verify: lease %s: %w", id, err)
	}
	if !ok {
		// Another replica is checking the domain: wait for its result, as a
		// second caller in this process joins the running check.
		return v.awaitOther(ctx, projectID, id)
	}
	defer func() {
		if err := v.store.ReleaseCheck(context.WithoutCancel(ctx), id, v.owner); err != nil {
			v.log.Error("releasing check lease", "id", id, "err", err)
		}
	}()
	started := time.Now()
	d, err := v.checkAndSave(ctx, projectID, id, explicit)
	took := time.Since(started)
	outcome := "error"
	if err == nil {
		outcome = strings.ToLower(string(d.Status))
	}
	if v.Observer != nil {
		v.Observer.CheckDone(outcome, took)
	}
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			v.log.Error("check failed", "id", id, "err", err)
		}
		return nil, err
	}
	return d, nil
}

// awaitOther polls the domain until another replica's check lease ends and
// returns the state that check saved.
func (v *Verifier) awaitOther(ctx context.Context, projectID int64, id string) (*domain.Domain, error) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		d, err := v.store.Domain(ctx, projectID, id)
		if err != nil {
			return nil, err
		}
		if !d.CheckingUntil.After(v.now()) {
			return d, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
	}
}

func (v *Verifier) checkAndSave(ctx context.Context, projectID int64, id string, explicit bool) (*domain.Domain, error) {
	d, err := v.store.Domain(ctx, projectID, id)
	if err != nil {
		return nil, err
	}
	obs := v.checker.Check(ctx, dnscheck.ExpectationsOf(d))
	// Re-read: the domain may have changed or gone while DNS was asked.
	d, err = v.store.Domain(ctx, projectID, id)
	if err != nil {
		return nil, err
	}
	now := v.now()
	rules := v.cfg.Rules
	if explicit {
		rules.DegradeAfter = 1
	}
	change := d.Apply(obs, now, rules)
	var gaveUp bool
	if explicit && d.Status != domain.StatusVerified {
		// The customer asked: a new window of automatic checks starts now.
		d.StartWindow(v.cfg.Recheck, now)
	} else {
		gaveUp = d.ScheduleNext(v.cfg.Recheck, change, now)
	}
	events, err := buildEvents(d, change, gaveUp, now)
	if err != nil {
		return nil, err
	}
	if err := v.store.SaveCheck(ctx, d, events); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		return nil, fmt.Errorf("verify: save %s: %w", id, err)
	}
	v.log.Info("domain checked", "domain", d.Name, "id", d.ID, "status", d.Status, "explicit", explicit,
		"changed", change.Changed(), "events", len(events), "next", d.NextCheckAt)
	return d, nil
}
