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
	// CheckTimeout bounds the DNS part of one check, however long DNS takes. A
	// check that runs out of it is a result all the same: the records it could
	// not read are saved as DNS_TIMEOUT, a temporary failure. 30s when zero.
	CheckTimeout time.Duration
	// SaveTimeout bounds the store work of one check: reading the domain before
	// DNS, and saving the result (reading it again if it changed meanwhile). It
	// is a deadline of its own, so a check that used all of CheckTimeout can
	// still save. 10s when zero.
	SaveTimeout time.Duration
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
	// joins counts the calls that found a check of their domain running and
	// waited for it, which tests wait on to know the calls overlapped.
	joins int

	// owner names this verifier in the database's check leases, which keep
	// replicas from checking one domain at once.
	owner string
	// leased holds, by domain id, when LeaseChecks took the lease of a check
	// the scheduler claimed and has not started yet, and the domain as it read
	// it then.
	leased map[string]leased
}

// leased is a lease LeaseChecks took.
type leased struct {
	at time.Time
	// read is the domain as LeaseChecks read it once the lease was taken, or
	// nil: the check asks DNS for it, and saves over its version, instead of
	// reading it again.
	read *domain.Domain
}

type run struct {
	done     chan struct{}
	explicit bool           // asked for by Verify, not the scheduler
	d        *domain.Domain // the new state, set before done closes
	err      error
}

// Observer is told of every finished check, for metrics.
type Observer interface {
	CheckDone(outcome string, took time.Duration)
}

// DefaultCheckTimeout bounds one check of one domain, however slow DNS is,
// when Config.CheckTimeout is zero; domaind check uses it too.
const DefaultCheckTimeout = 30 * time.Second

// New returns a Verifier. now is the clock; nil means time.Now.
func New(st store.Store, checker Checker, cfg Config, now func() time.Time, log *slog.Logger) *Verifier {
	if now == nil {
		now = time.Now
	}
	if cfg.CheckTimeout <= 0 {
		cfg.CheckTimeout = DefaultCheckTimeout
	}
	if cfg.SaveTimeout <= 0 {
		cfg.SaveTimeout = 10 * time.Second
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
		leased: make(map[string]leased),
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
// MinInterval ago. A call while another call's check of the domain runs joins
// that check. A call while the scheduler's check runs waits for it and, unless
// it verified the domain, checks again as asked (a new window of automatic
// checks for a domain given up on), whatever MinInterval says: the scheduler's
// check was not the customer's.
func (v *Verifier) Verify(ctx context.Context, projectID int64, id string) (Outcome, error) {
	d, err := v.store.Domain(ctx, projectID, id)
	if err != nil {
		return Outcome{}, err
	}
	budget := time.NewTimer(v.cfg.Budget)
	defer budget.Stop()
	var r *run
	for afterScheduled := false; r == nil; {
		v.mu.Lock()
		r = v.running[id]
		if r != nil {
			v.joins++
		}
		if r != nil && !r.explicit {
			v.mu.Unlock()
			select {
			case <-r.done:
			case <-budget.C:
				return Outcome{Domain: d, InProgress: true}, nil
			case <-ctx.Done():
				return Outcome{}, ctx.Err()
			}
			if r.err == nil && r.d.Status == domain.StatusVerified {
				return Outcome{Domain: r.d}, nil
			}
			r, afterScheduled = nil, true
			continue
		}
		if r == nil {
			if wait := v.cfg.MinInterval - v.now().Sub(d.LastCheckedAt); !afterScheduled && d.EverChecked() && wait > 0 {
				v.mu.Unlock()
				return Outcome{}, &TooSoonError{RetryAfter: wait}
			}
			// The domain as read above is what the check asks DNS for, unless
			// it waited for the scheduler's check, which may have changed it.
			read := d
			if afterScheduled {
				read = nil
			}
			r = v.start(projectID, id, true, read)
		}
		v.mu.Unlock()
	}
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
		r = v.start(projectID, id, false, v.leasedRead(projectID, id))
	} else {
		v.joins++
	}
	v.mu.Unlock()
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// start begins a check of the domain; v.mu must be held. read, if not nil, is
// the domain as the caller read it, which the check asks DNS for instead of
// reading it again.
func (v *Verifier) start(projectID int64, id string, explicit bool, read *domain.Domain) *run {
	r := &run{done: make(chan struct{}), explicit: explicit}
	v.running[id] = r
	v.wg.Add(1)
	go func() {
		defer v.wg.Done()
		r.d, r.err = v.check(projectID, id, explicit, read)
		v.mu.Lock()
		delete(v.running, id)
		// The check's save ended the lease, whichever check LeaseChecks took
		// it for: a check of the domain that starts later takes its own.
		delete(v.leased, id)
		v.mu.Unlock()
		close(r.done)
	}()
	return r
}

// LeaseChecks takes, in one write, the check leases of domains the scheduler
// claimed, before it starts their checks: each then starts without a write of
// its own (and without waiting for the database to take it). A domain whose
// lease another replica holds is left out, and its check waits for that one as
// ever; so is every domain if the write fails.
func (v *Verifier) LeaseChecks(ctx context.Context, due []store.Due) {
	if len(due) == 0 {
		return
	}
	ids := make([]string, len(due))
	for i, d := range due {
		ids[i] = d.ID
	}
	now := v.now()
	got, err := v.store.AcquireChecks(ctx, ids, v.owner, now, v.lease())
	if err != nil && ctx.Err() == nil {
		v.log.Error("taking check leases", "err", err)
	}
	v.mu.Lock()
	for id, l := range v.leased {
		// Whatever was never started nor released (a scheduler that stopped
		// without saying) is of no use once its lease is half gone.
		if now.Sub(l.at) > leaseMargin {
			delete(v.leased, id)
		}
	}
	for _, id := range got {
		// A check of the domain already running (an explicit verify) ends
		// the lease when it saves; the scheduled one must not count on it.
		if _, running := v.running[id]; !running {
			v.leased[id] = leased{at: now}
		}
	}
	v.mu.Unlock()
	v.readLeased(ctx, got, now)
}

// readLeased reads, in one go, the domains whose leases LeaseChecks just took,
// for their checks to start from: a point read of each as its check starts
// costs more. The checks save only over the version of each domain read here,
// so one changed since is read again and judged as it is then, as one changed
// while DNS is asked. If the read fails, each check reads its domain itself. A
// domain deleted after this read is still asked of DNS once by its check,
// whose save then finds it gone and saves nothing.
//
// The read is given only as long as its result may be used (while the lease
// taken at is fresh): a slower read would hold back the batch's checks for
// nothing.
func (v *Verifier) readLeased(ctx context.Context, ids []string, at time.Time) {
	left := leaseFresh - v.now().Sub(at)
	if len(ids) == 0 || left <= 0 {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, min(left, v.cfg.SaveTimeout))
	ds, err := v.store.DomainsByID(rctx, ids)
	slow := rctx.Err() != nil
	cancel()
	if err != nil {
		if ctx.Err() == nil && !slow {
			v.log.Error("reading leased domains", "err", err)
		}
		return
	}
	v.mu.Lock()
	for _, d := range ds {
		// Only a lease still waiting for its check: one whose check started
		// meanwhile, or ended, is gone from leased.
		if l, ok := v.leased[d.ID]; ok && l.read == nil {
			l.read = d
			v.leased[d.ID] = l
		}
	}
	v.mu.Unlock()
}

// leasedRead is the domain as LeaseChecks read it for a check starting now,
// or nil; v.mu must be held. It is only given while the lease is fresh (see
// takeLeased), and only for the project the check is for.
func (v *Verifier) leasedRead(projectID int64, id string) *domain.Domain {
	l, ok := v.leased[id]
	if !ok || l.read == nil || l.read.ProjectID != projectID || !v.fresh(l) {
		return nil
	}
	return l.read
}

// ReleaseLeases ends the leases LeaseChecks took for domains whose checks did
// not start (the scheduler stopped first), so that another replica need not
// wait for them to run out.
func (v *Verifier) ReleaseLeases(ctx context.Context, due []store.Due) {
	for _, d := range due {
		v.mu.Lock()
		_, ok := v.leased[d.ID]
		delete(v.leased, d.ID)
		v.mu.Unlock()
		if !ok {
			continue
		}
		if err := v.store.ReleaseCheck(ctx, d.ID, v.owner); err != nil {
			v.log.Error("releasing check lease", "id", d.ID, "err", err)
		}
	}
}

// lease is how long a check's lease holds: past every deadline of the check
// (the read before DNS, DNS and the grace given a slow checker, the save), so
// it cannot end while the check may still save, even when LeaseChecks took it
// up to leaseFresh before the check started.
func (v *Verifier) lease() time.Duration {
	return v.cfg.CheckTimeout + checkerGrace + 2*v.cfg.SaveTimeout + leaseMargin
}

// takeLeased reports whether LeaseChecks took the domain's lease recently
// enough that it outlasts a check starting now, and forgets it either way.
func (v *Verifier) takeLeased(id string) bool {
	v.mu.Lock()
	l, ok := v.leased[id]
	delete(v.leased, id)
	v.mu.Unlock()
	return ok && v.fresh(l)
}

// fresh reports whether a lease LeaseChecks took outlasts a check starting
// now: the lease covers every deadline of a check and leaseMargin more, of
// which leaseFresh may have passed before the check starts.
func (v *Verifier) fresh(l leased) bool { return v.now().Sub(l.at) <= leaseFresh }

// leaseFresh is how long after LeaseChecks took a lease a check may start on
// it (and on the domain read with it).
const leaseFresh = leaseMargin / 2

// checkerGrace is how long a check waits, after its DNS deadline, for a checker
// that does not return when its context ends. dnscheck returns at once; this only
// keeps a broken checker from holding a check slot, and the domain, for ever.
const checkerGrace = 2 * time.Second

// leaseMargin is added to a check's lease beyond its two deadlines, for the
// steps between them.
const leaseMargin = 5 * time.Second

// check runs one check: DNS first, then the domain is updated, rescheduled and
// saved with the events it caused, over the version of it the check read, so
// that a change made while DNS was being asked is not overwritten (see
// checkAndSave).
func (v *Verifier) check(projectID int64, id string, explicit bool, read *domain.Domain) (*domain.Domain, error) {
	// The lease outlasts both deadlines of the check, so it cannot end while the
	// check may still save.
	lease := v.lease()
	ok := v.takeLeased(id)
	if !ok {
		ctx, cancel := context.WithTimeout(v.ctx, v.cfg.SaveTimeout)
		var err error
		ok, err = v.store.AcquireCheck(ctx, id, v.owner, v.now(), lease)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("verify: lease %s: %w", id, err)
		}
	}
	if !ok {
		// Another replica is checking the domain: wait for its result, as a
		// second caller in this process joins the running check. Its lease
		// bounds the wait.
		ctx, cancel := context.WithTimeout(v.ctx, lease)
		defer cancel()
		return v.awaitOther(ctx, projectID, id)
	}
	// A saved check has released its lease with its save (FinishCheck); any
	// other end releases it here.
	var saved bool
	defer func() {
		if saved {
			return
		}
		// Released even while closing, so that another replica need not wait
		// for the lease to run out.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(v.ctx), v.cfg.SaveTimeout)
		defer cancel()
		if err := v.store.ReleaseCheck(ctx, id, v.owner); err != nil {
			v.log.Error("releasing check lease", "id", id, "err", err)
		}
	}()
	started := time.Now()
	d, timedOut, err := v.checkAndSave(projectID, id, explicit, read)
	saved = err == nil
	took := time.Since(started)
	outcome := "error"
	switch {
	case err != nil:
	case timedOut:
		outcome = "timeout"
	default:
		outcome = strings.ToLower(string(d.Status))
	}
	if v.Observer != nil {
		v.Observer.CheckDone(outcome, took)
	}
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) && v.ctx.Err() == nil {
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
			return nil, fmt.Errorf("verify: waiting for another replica's check of %s: %w", id, ctx.Err())
		case <-tick.C:
		}
	}
}

// checkAndSave asks DNS and saves what it found, ending the check's lease with
// the save when it succeeds. timedOut reports that the DNS
// part ran out of time: the result is saved all the same, with the records it
// could not read as DNS_TIMEOUT, so the domain backs off and counts toward its
// give-up like after any other unsuccessful check, instead of being claimed again
// and again with nothing recorded.
//
// read, if not nil, is the domain as the caller read it moments ago, which saves
// reading it again before DNS. The result is applied to the domain as read
// before DNS and saved only over that version of it (store.FinishCheck): if the
// domain was written meanwhile, it is read again and the result applied to it
// as it is now, less what no longer matches it (stillExpected), so that a
// change made while DNS was asked is not overwritten.
func (v *Verifier) checkAndSave(projectID int64, id string, explicit bool, read *domain.Domain) (d *domain.Domain, timedOut bool, err error) {
	if read == nil {
		ctx, cancel := context.WithTimeout(v.ctx, v.cfg.SaveTimeout)
		read, err = v.store.Domain(ctx, projectID, id)
		cancel()
		if err != nil {
			return nil, false, err
		}
	}
	exps := dnscheck.ExpectationsOf(read)
	obs, timedOut := v.lookup(exps)
	if err := v.ctx.Err(); err != nil {
		// Closing cut the check short: that says nothing about the domain's DNS,
		// so nothing is saved; the claim's lease brings the domain back.
		return nil, false, fmt.Errorf("verify: %s: %w", id, err)
	}
	// The save gets a deadline of its own, apart from the DNS part's, which may
	// be spent. It is not cancelled by Close either: a save under way is short,
	// and Close waits for it.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(v.ctx), v.cfg.SaveTimeout)
	defer cancel()
	// The caller's read may be shared (Verify answers with it when its budget
	// runs out): the check changes a copy.
	d, kept := read.Clone(), obs
	for tries := 1; ; tries++ {
		err = v.save(ctx, d, explicit, timedOut, kept)
		if !errors.Is(err, store.ErrChanged) || tries == maxSaveTries {
			break
		}
		// Written since it was read: apply the result to the domain as it is.
		if d, err = v.store.Domain(ctx, projectID, id); err != nil {
			return nil, false, err
		}
		kept = stillExpected(obs, exps, dnscheck.ExpectationsOf(d))
	}
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, false, err
		}
		return nil, false, fmt.Errorf("verify: save %s: %w", id, err)
	}
	return d, timedOut, nil
}

// maxSaveTries bounds how often a check is applied again to a domain that
// keeps being written while the check saves (see checkAndSave): each try reads
// and writes the domain once.
const maxSaveTries = 3

// save applies what a check observed to d, reschedules it, and saves it with
// the events the check caused over the version d was read at.
func (v *Verifier) save(ctx context.Context, d *domain.Domain, explicit, timedOut bool, obs []domain.Observation) error {
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
		return err
	}
	if !explicit {
		// A scheduled check's save may wait to share a commit with others:
		// seldom does anyone wait on it (a customer's verify that joins the
		// check does, for at most the group's window more).
		ctx = store.Deferrable(ctx)
	}
	if err := v.store.FinishCheck(ctx, d, events, v.owner); err != nil {
		return err
	}
	v.log.Info("domain checked", "domain", d.Name, "id", d.ID, "status", d.Status, "explicit", explicit,
		"timedOut", timedOut, "changed", change.Changed(), "events", len(events), "next", d.NextCheckAt)
	return nil
}

// lookup asks the checker for the expectations within CheckTimeout. Every
// expectation gets an observation: one the checker has none for, because its
// time ran out first, is a DNS_TIMEOUT. What it did read in time is kept.
func (v *Verifier) lookup(exps []dnscheck.Expectation) ([]domain.Observation, bool) {
	ctx, cancel := context.WithTimeout(v.ctx, v.cfg.CheckTimeout)
	defer cancel()
	// Buffered, so that a checker that returns after lookup gave up on it does
	// not block for ever.
	done := make(chan []domain.Observation, 1)
	go func() { done <- v.checker.Check(ctx, exps) }()
	var obs []domain.Observation
	select {
	case obs = <-done:
	case <-ctx.Done():
		grace := time.NewTimer(checkerGrace)
		select {
		case obs = <-done:
		case <-grace.C:
		}
		grace.Stop()
	}
	timedOut := errors.Is(ctx.Err(), context.DeadlineExceeded)
	return complete(exps, obs, timedOut), timedOut
}

// complete returns obs with a DNS_TIMEOUT observation for each expectation that
// has none. When the check ran out of time, a temporary failure the checker gave
// no reason for is a timeout too.
func complete(exps []dnscheck.Expectation, obs []domain.Observation, timedOut bool) []domain.Observation {
	timeout := func(name string) domain.Problem {
		return domain.Problem{Code: dnscheck.CodeTimeout,
			Message: fmt.Sprintf("No DNS server answered for %s before the check ran out of time; domaind will check again.", name)}
	}
	out := make([]domain.Observation, 0, len(exps))
	seen := make(map[domain.RecordKey]bool, len(exps))
	for _, o := range obs {
		if seen[o.Key] {
			continue // a checker that answers twice for a record is not believed twice
		}
		seen[o.Key] = true
		if timedOut && o.Status == domain.CheckTemporaryFailure && len(o.Problems) == 0 {
			for _, e := range exps {
				if e.Key == o.Key {
					o.Problems = []domain.Problem{timeout(e.Name)}
				}
			}
		}
		out = append(out, o)
	}
	for _, e := range exps {
		if !seen[e.Key] {
			out = append(out, domain.Observation{Key: e.Key, Status: domain.CheckTemporaryFailure,
				Problems: []domain.Problem{timeout(e.Name)}})
		}
	}
	return out
}

// stillExpected keeps the observations of records that are still what the
// check looked for: a DKIM rotation may have moved another key's record under
// the same key while DNS was asked, and what was seen of the old one says
// nothing of it.
func stillExpected(obs []domain.Observation, asked, now []dnscheck.Expectation) []domain.Observation {
	current := make(map[domain.RecordKey]dnscheck.Expectation, len(now))
	for _, e := range now {
		current[e.Key] = e
	}
	same := make(map[domain.RecordKey]bool, len(asked))
	for _, e := range asked {
		c, ok := current[e.Key]
		same[e.Key] = ok && c == e
	}
	kept := obs[:0:0]
	for _, o := range obs {
		if same[o.Key] {
			kept = append(kept, o)
		}
	}
	return kept
}
