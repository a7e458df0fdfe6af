package verify_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/domaind/domaind/internal/dnscheck"
	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/store"
	"github.com/domaind/domaind/internal/store/sqlite"
	"github.com/domaind/domaind/internal/testenv"
	"github.com/domaind/domaind/internal/verify"
)

// t0 is the test clock's start.
var t0 = time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)

// checker is a verify.Checker that answers with fn and counts its calls.
type checker struct {
	calls atomic.Int32
	fn    func(ctx context.Context, exps []dnscheck.Expectation) []domain.Observation
}

func (c *checker) Check(ctx context.Context, exps []dnscheck.Expectation) []domain.Observation {
	c.calls.Add(1)
	return c.fn(ctx, exps)
}

// waitCalled polls, for at most 10s, until the checker has been called: a check
// is running from then on. It fails the test with the message if not.
func (c *checker) waitCalled(t *testing.T, message string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); c.calls.Load() == 0; {
		if time.Now().After(deadline) {
			t.Fatal(message)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitJoins polls, for at most 10s, until n calls have found a check running
// and wait for it.
func waitJoins(t *testing.T, v *verify.Verifier, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); verify.Joins(v) < n; {
		if time.Now().After(deadline) {
			t.Fatalf("%d calls joined the running check, want %d", verify.Joins(v), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// blockUntilDone is a checker's answer when DNS never answers: nothing, once the
// check's time is up.
func blockUntilDone(ctx context.Context, _ []dnscheck.Expectation) []domain.Observation {
	<-ctx.Done()
	return nil
}

// answer returns a checker's answer of status for every record.
func answer(status domain.CheckStatus) func(context.Context, []dnscheck.Expectation) []domain.Observation {
	return func(_ context.Context, exps []dnscheck.Expectation) []domain.Observation {
		var obs []domain.Observation
		for _, e := range exps {
			o := domain.Observation{Key: e.Key, Status: status}
			if status == domain.CheckVerified {
				o.Found = []string{e.Value}
			}
			obs = append(obs, o)
		}
		return obs
	}
}

// heldChecker returns a checker that answers answer(status) once release is
// closed: a check that runs until the test lets it end.
func heldChecker(status domain.CheckStatus) (c *checker, release chan<- struct{}) {
	held := make(chan struct{})
	return &checker{fn: func(ctx context.Context, exps []dnscheck.Expectation) []domain.Observation {
		<-held
		return answer(status)(ctx, exps)
	}}, held
}

// verifyResult is what a Verify run in the background answered.
type verifyResult struct {
	out verify.Outcome
	err error
}

// verifyAsync runs v.Verify of the domain id of project in a goroutine of its
// own, for a test that holds the check meanwhile, and returns where its answer
// arrives.
func verifyAsync(t *testing.T, v *verify.Verifier, project int64, id string) <-chan verifyResult {
	got := make(chan verifyResult, 1)
	go func() {
		out, err := v.Verify(t.Context(), project, id)
		got <- verifyResult{out, err}
	}()
	return got
}

// checkDueAsync runs v.CheckDue of the domain id of project in a goroutine of
// its own and returns where its error arrives.
func checkDueAsync(t *testing.T, v *verify.Verifier, project int64, id string) <-chan error {
	done := make(chan error, 1)
	go func() { done <- v.CheckDue(t.Context(), project, id) }()
	return done
}

// observer collects the outcomes of finished checks.
type observer struct {
	done chan string
}

func (o *observer) CheckDone(outcome string, _ time.Duration) { o.done <- outcome }

func (o *observer) next(t *testing.T) string {
	t.Helper()
	return testenv.Receive(t, o.done, "a check finished")
}

// recheck is a compressed schedule: three steps and a give-up after an hour.
var recheck = domain.Recheck{
	Steps:         []time.Duration{time.Minute, 2 * time.Minute, 5 * time.Minute},
	GiveUpAfter:   time.Hour,
	ReverifyEvery: 24 * time.Hour,
}

type fixture struct {
	st    store.Store
	clock *testenv.Clock
	obs   *observer
	p     store.Project
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "domaind.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	p, err := st.EnsureProject(t.Context(), "acme", t0)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{st: st, clock: testenv.NewClock(t0), obs: &observer{done: make(chan string, 100)}, p: p}
}

// verifier returns a Verifier on the fixture's store and clock; checkTimeout
// bounds the DNS part of each check.
func (f *fixture) verifier(t *testing.T, c verify.Checker, budget, checkTimeout time.Duration) *verify.Verifier {
	t.Helper()
	v := verify.New(f.st, c, verify.Config{
		Budget: budget, CheckTimeout: checkTimeout, Rules: domain.Rules{DegradeAfter: 3}, Recheck: recheck,
	}, f.clock.Now, slog.New(slog.DiscardHandler))
	v.Observer = f.obs
	t.Cleanup(v.Close)
	return v
}

// countedVerifier returns a Verifier on the fixture's store, with a budget of a
// second, and the writeCounter through which it uses that store.
func (f *fixture) countedVerifier(t *testing.T, c verify.Checker) (*writeCounter, *verify.Verifier) {
	t.Helper()
	st := &writeCounter{Store: f.st}
	v := verify.New(st, c, verify.Config{Budget: time.Second, Recheck: recheck}, f.clock.Now, slog.New(slog.DiscardHandler))
	t.Cleanup(v.Close)
	return st, v
}

// addDomain stores a new domain of the fixture's project with its window started
// now, as an add does.
func (f *fixture) addDomain(t *testing.T, name string) *domain.Domain {
	t.Helper()
	return addDomain(t, f.st, f.p.ID, name, f.clock.Now())
}

func addDomain(t *testing.T, st store.Store, projectID int64, name string, now time.Time) *domain.Domain {
	t.Helper()
	id, err := domain.NewID(now)
	if err != nil {
		t.Fatal(err)
	}
	d := &domain.Domain{
		ID: id, ProjectID: projectID, Name: name, Region: "us-east-1",
		Status: domain.StatusPendingConfiguration, CreatedAt: now, LastCheckedAt: now,
	}
	for _, r := range []struct {
		key        domain.RecordKey
		name, typ  string
		value      string
		priorityMX uint16
	}{
		{domain.KeyOwnership, "_autosend-verify." + name, "TXT", "autosend-verify-0123456789abcdef0123456789abcdef", 0},
		{domain.KeyDKIM, "autosend._domainkey." + name, "TXT", "v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA", 0},
		{domain.KeyMailFromMX, "mail." + name, "MX", "feedback-smtp.us-east-1.amazonses.com", 10},
		{domain.KeyMailFromSPF, "mail." + name, "TXT", "v=spf1 include:amazonses.com ~all", 0},
		{domain.KeyDMARC, "_dmarc." + name, "TXT", "v=DMARC1; p=none;", 0},
	} {
		d.Records = append(d.Records, domain.Record{
			Key: r.key, Name: r.name, Type: r.typ, Value: r.value, Priority: r.priorityMX,
			Status: domain.CheckUnchecked, CreatedAt: now, UpdatedAt: now,
		})
	}
	d.StartWindow(recheck, now)
	if err := st.CreateDomain(t.Context(), d, []byte("sealed")); err != nil {
		t.Fatal(err)
	}
	return d
}

func (f *fixture) get(t *testing.T, id string) *domain.Domain {
	t.Helper()
	d, err := f.st.Domain(t.Context(), f.p.ID, id)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func (f *fixture) eventTypes(t *testing.T, id string) []domain.EventType {
	t.Helper()
	evs, _, err := f.st.Events(t.Context(), f.p.ID, id, store.Page{})
	if err != nil {
		t.Fatal(err)
	}
	var types []domain.EventType
	for _, e := range evs {
		types = append(types, e.Type)
	}
	return types
}

// TestTimeoutIsAResult runs an automatic check whose DNS never answers: it ends
// at its deadline, and what it could not read is saved as DNS_TIMEOUT, while
// what it did read before is kept; the domain backs off as after any other
// unsuccessful check.
func TestTimeoutIsAResult(t *testing.T) {
	f := newFixture(t)
	d := f.addDomain(t, "slow.example")
	// The ownership record is read at once; the rest never answers.
	c := &checker{fn: func(ctx context.Context, exps []dnscheck.Expectation) []domain.Observation {
		own := answer(domain.CheckVerified)(ctx, exps[:1])
		<-ctx.Done()
		return own
	}}
	v := f.verifier(t, c, time.Second, 20*time.Millisecond)
	f.clock.Set(d.NextCheckAt)
	if err := v.CheckDue(t.Context(), f.p.ID, d.ID); err != nil {
		t.Fatalf("CheckDue of a check that timed out: %v", err)
	}
	if out := f.obs.next(t); out != "timeout" {
		t.Errorf("outcome %q, want timeout", out)
	}
	got := f.get(t, d.ID)
	if !got.LastCheckedAt.Equal(d.NextCheckAt) {
		t.Errorf("LastCheckedAt = %v, want the check's time %v", got.LastCheckedAt, d.NextCheckAt)
	}
	if want := d.NextCheckAt.Add(recheck.Steps[1]); !got.NextCheckAt.Equal(want) || got.CheckAttempt != 1 {
		t.Errorf("next check %v (attempt %d), want the back-off's %v (attempt 1)", got.NextCheckAt, got.CheckAttempt, want)
	}
	if !got.OwnershipVerified || got.Status != domain.StatusPending {
		t.Errorf("what the check read in time was lost: ownership %v, status %s", got.OwnershipVerified, got.Status)
	}
	for _, r := range got.Records[1:] {
		if r.Status != domain.CheckTemporaryFailure || len(r.Problems) != 1 || r.Problems[0].Code != dnscheck.CodeTimeout {
			t.Errorf("%s: status %s, problems %+v; want a temporary failure with DNS_TIMEOUT", r.Key, r.Status, r.Problems)
		}
		if !r.CheckedAt.Equal(d.NextCheckAt) {
			t.Errorf("%s checked at %v, want %v", r.Key, r.CheckedAt, d.NextCheckAt)
		}
	}
}

// TestTimeoutsNeverFlipVerified times out every check of a verified domain: with
// a degrade threshold of one it stays verified, with no failures counted and no
// event.
func TestTimeoutsNeverFlipVerified(t *testing.T) {
	f := newFixture(t)
	d := f.addDomain(t, "verified.example")
	c := &checker{fn: answer(domain.CheckVerified)}
	v := f.verifier(t, c, time.Second, 20*time.Millisecond)
	f.clock.Set(d.NextCheckAt)
	if err := v.CheckDue(t.Context(), f.p.ID, d.ID); err != nil {
		t.Fatal(err)
	}
	f.obs.next(t)
	if got := f.get(t, d.ID); got.Status != domain.StatusVerified {
		t.Fatalf("status %s after a verified check", got.Status)
	}
	events := len(f.eventTypes(t, d.ID))
	c.fn = blockUntilDone
	for i := range 3 {
		f.clock.Set(f.get(t, d.ID).NextCheckAt)
		if err := v.CheckDue(t.Context(), f.p.ID, d.ID); err != nil {
			t.Fatalf("timed-out check %d: %v", i, err)
		}
		if out := f.obs.next(t); out != "timeout" {
			t.Errorf("outcome %q, want timeout", out)
		}
	}
	got := f.get(t, d.ID)
	if got.Status != domain.StatusVerified || !got.DKIMEnabled || !got.OwnershipVerified || got.State() != "verified" {
		t.Errorf("timeouts changed a verified domain: status %s, state %s", got.Status, got.State())
	}
	for _, r := range got.Records {
		if !r.Verified || r.Failures != 0 || r.Problems[0].Code != dnscheck.CodeTimeout {
			t.Errorf("%s: verified %v, failures %d, problems %+v", r.Key, r.Verified, r.Failures, r.Problems)
		}
	}
	if now := len(f.eventTypes(t, d.ID)); now != events {
		t.Errorf("timeouts raised %d events", now-events)
	}
}

// TestTimeoutsReachGiveUp times out every check of a new domain: each is saved
// and backs off, and the window closes with the domain failed, as it would with
// records that are missing.
func TestTimeoutsReachGiveUp(t *testing.T) {
	f := newFixture(t)
	d := f.addDomain(t, "silent.example")
	v := f.verifier(t, &checker{fn: blockUntilDone}, time.Second, 5*time.Millisecond)
	var waits []time.Duration
	for range 100 {
		cur := f.get(t, d.ID)
		if cur.NextCheckAt.IsZero() {
			break
		}
		f.clock.Set(cur.NextCheckAt)
		if err := v.CheckDue(t.Context(), f.p.ID, d.ID); err != nil {
			t.Fatal(err)
		}
		f.obs.next(t)
		if next := f.get(t, d.ID).NextCheckAt; !next.IsZero() {
			waits = append(waits, next.Sub(cur.NextCheckAt))
		}
	}
	got := f.get(t, d.ID)
	if got.State() != "failed" || got.FailedAt.IsZero() || !got.NextCheckAt.IsZero() {
		t.Fatalf("after timing out for the whole window: state %s, failed at %v, next %v", got.State(), got.FailedAt, got.NextCheckAt)
	}
	// Waits of 2m, then 5m repeating, from t0+1m until an hour has passed.
	want := []time.Duration{2 * time.Minute}
	for sum := 3 * time.Minute; sum < time.Hour; sum += 5 * time.Minute {
		want = append(want, 5*time.Minute)
	}
	if !slices.Equal(waits, want) {
		t.Errorf("waits between timed-out checks %v, want %v", waits, want)
	}
	if types := f.eventTypes(t, d.ID); !slices.Contains(types, domain.EventFailed) {
		t.Errorf("events %v, want a %s", types, domain.EventFailed)
	}
}

// TestBackoff runs automatic checks that find nothing: each waits the next step
// of the schedule, the last repeating.
func TestBackoff(t *testing.T) {
	f := newFixture(t)
	d := f.addDomain(t, "missing.example")
	v := f.verifier(t, &checker{fn: answer(domain.CheckMissing)}, time.Second, time.Second)
	at := d.NextCheckAt
	for i, step := range []time.Duration{2 * time.Minute, 5 * time.Minute, 5 * time.Minute} {
		f.clock.Set(at)
		if err := v.CheckDue(t.Context(), f.p.ID, d.ID); err != nil {
			t.Fatal(err)
		}
		if out := f.obs.next(t); out != "pending_configuration" {
			t.Errorf("outcome %q, want pending_configuration", out)
		}
		got := f.get(t, d.ID)
		if !got.NextCheckAt.Equal(at.Add(step)) || got.CheckAttempt != i+1 {
			t.Fatalf("check %d: next %v (attempt %d), want %v (attempt %d)", i, got.NextCheckAt, got.CheckAttempt, at.Add(step), i+1)
		}
		at = got.NextCheckAt
	}
}

// TestSingleFlight asks for a domain three times while its check runs: one
// check, whose result all three get.
func TestSingleFlight(t *testing.T) {
	f := newFixture(t)
	d := f.addDomain(t, "busy.example")
	c, release := heldChecker(domain.CheckVerified)
	v := f.verifier(t, c, 10*time.Second, 10*time.Second)
	results := []<-chan verifyResult{verifyAsync(t, v, f.p.ID, d.ID), verifyAsync(t, v, f.p.ID, d.ID)}
	dueErr := checkDueAsync(t, v, f.p.ID, d.ID)
	c.waitCalled(t, "the checker was never called")
	if !v.InProgress(d.ID) {
		t.Error("InProgress is false while the check runs")
	}
	// The check ends only once the two other calls are waiting for it: a
	// call that came after it ended would rightly start another.
	waitJoins(t, v, 2)
	close(release)
	for _, result := range results {
		r := <-result
		if r.err != nil || r.out.InProgress || r.out.Domain.Status != domain.StatusVerified {
			t.Errorf("Verify = %+v, %v; want the verified result", r.out, r.err)
		}
	}
	if err := <-dueErr; err != nil {
		t.Errorf("CheckDue = %v", err)
	}
	if n := c.calls.Load(); n != 1 {
		t.Errorf("%d checks ran, want 1", n)
	}
	verified := 0
	for _, typ := range f.eventTypes(t, d.ID) {
		if typ == domain.EventVerified {
			verified++
		}
	}
	if verified != 1 {
		t.Errorf("%d %s events, want 1", verified, domain.EventVerified)
	}
}

// TestVerifyAfterScheduledCheck: a Verify made while the scheduler's check of
// the domain runs waits for it and, as that check did not verify the domain,
// checks again as asked, rather than answering with the scheduler's result.
func TestVerifyAfterScheduledCheck(t *testing.T) {
	f := newFixture(t)
	d := f.addDomain(t, "late.example")
	c, release := heldChecker(domain.CheckMissing)
	v := f.verifier(t, c, 10*time.Second, 10*time.Second)
	dueErr := checkDueAsync(t, v, f.p.ID, d.ID)
	c.waitCalled(t, "the scheduler's check never called the checker")
	got := verifyAsync(t, v, f.p.ID, d.ID)
	waitJoins(t, v, 1)
	close(release)
	if err := <-dueErr; err != nil {
		t.Fatalf("CheckDue = %v", err)
	}
	r := <-got
	if r.err != nil || r.out.InProgress {
		t.Fatalf("Verify = %+v, %v", r.out, r.err)
	}
	if n := c.calls.Load(); n != 2 {
		t.Fatalf("%d checks ran, want the scheduler's and the one Verify asked for", n)
	}
}

// TestBudgetEndsInBackground verifies a domain whose DNS never answers with a
// budget shorter than the check: verify answers in progress, and the check goes
// on in the background and saves its timeout, which starts the new window an
// explicit verify starts.
func TestBudgetEndsInBackground(t *testing.T) {
	f := newFixture(t)
	d := f.addDomain(t, "slow.example")
	v := f.verifier(t, &checker{fn: blockUntilDone}, time.Millisecond, 50*time.Millisecond)
	f.clock.Set(t0.Add(10 * time.Minute))
	out, err := v.Verify(t.Context(), f.p.ID, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !out.InProgress || !out.Domain.LastCheckedAt.Equal(d.LastCheckedAt) {
		t.Fatalf("Verify with a spent budget = in progress %v, last checked %v; want the stored state in progress", out.InProgress, out.Domain.LastCheckedAt)
	}
	if got := f.obs.next(t); got != "timeout" {
		t.Errorf("outcome %q, want timeout", got)
	}
	got := f.get(t, d.ID)
	if !got.LastCheckedAt.Equal(t0.Add(10*time.Minute)) || got.Records[0].Problems[0].Code != dnscheck.CodeTimeout {
		t.Errorf("the background check saved last checked %v, problems %+v", got.LastCheckedAt, got.Records[0].Problems)
	}
	if want := t0.Add(10 * time.Minute).Add(recheck.Steps[0]); !got.NextCheckAt.Equal(want) || !got.WindowStartedAt.Equal(t0.Add(10*time.Minute)) {
		t.Errorf("next %v, window %v; want %v from a new window", got.NextCheckAt, got.WindowStartedAt, want)
	}
}

// TestLeaseAcrossReplicas checks a domain on two verifiers of one database, as
// two replicas: while one holds the check's lease, the other runs no check of
// its own and returns what the first saved; a lease whose holder died ends on
// the clock.
func TestLeaseAcrossReplicas(t *testing.T) {
	f := newFixture(t)
	d := f.addDomain(t, "shared.example")
	ca, release := heldChecker(domain.CheckVerified)
	cb := &checker{fn: answer(domain.CheckMissing)}
	a := f.verifier(t, ca, 10*time.Second, 10*time.Second)
	// b's store tells the test when b has asked for the lease, so that a's check
	// ends only after b found it taken.
	bStore := &leaseSpy{Store: f.st, acquired: make(chan bool, 10)}
	b := verify.New(bStore, cb, verify.Config{Budget: 10 * time.Second, CheckTimeout: 10 * time.Second, Recheck: recheck},
		f.clock.Now, slog.New(slog.DiscardHandler))
	t.Cleanup(b.Close)
	aDone := checkDueAsync(t, a, f.p.ID, d.ID)
	ca.waitCalled(t, "replica a never checked")
	if !b.Checking(f.get(t, d.ID)) {
		t.Error("replica b does not see a's check")
	}
	bOut := verifyAsync(t, b, f.p.ID, d.ID)
	if got := <-bStore.acquired; got {
		t.Fatal("replica b took the lease a holds")
	}
	close(release)
	if err := <-aDone; err != nil {
		t.Fatal(err)
	}
	r := <-bOut
	if r.err != nil {
		t.Error(r.err)
	}
	if r.out.Domain == nil || r.out.Domain.Status != domain.StatusVerified {
		t.Errorf("b's verify during a's check = %+v, want a's verified result", r.out)
	}
	if n := cb.calls.Load(); n != 0 {
		t.Errorf("replica b ran %d checks of its own during a's", n)
	}

	// A replica died holding the lease: the domain is checked once it ends.
	if ok, err := f.st.AcquireCheck(t.Context(), d.ID, "dead", f.clock.Now(), time.Minute); err != nil || !ok {
		t.Fatalf("AcquireCheck = %v, %v", ok, err)
	}
	f.clock.Set(f.clock.Now().Add(time.Minute + time.Second))
	if err := b.CheckDue(t.Context(), f.p.ID, d.ID); err != nil {
		t.Fatal(err)
	}
	if n := cb.calls.Load(); n != 1 {
		t.Errorf("after the dead replica's lease ended b ran %d checks, want 1", n)
	}
}

// leaseSpy is a store that reports each AcquireCheck's answer.
type leaseSpy struct {
	store.Store
	acquired chan bool
}

func (s *leaseSpy) AcquireCheck(ctx context.Context, id, owner string, now time.Time, lease time.Duration) (bool, error) {
	ok, err := s.Store.AcquireCheck(ctx, id, owner, now, lease)
	s.acquired <- ok
	return ok, err
}

// TestCloseSavesNothing closes a verifier while its check waits for DNS: the
// check was cut short by the shutdown, not by DNS, so nothing is saved and the
// domain stays as it was for the next claim.
func TestCloseSavesNothing(t *testing.T) {
	f := newFixture(t)
	d := f.addDomain(t, "closing.example")
	c := &checker{fn: blockUntilDone}
	v := verify.New(f.st, c, verify.Config{Budget: time.Second, CheckTimeout: time.Hour, Recheck: recheck}, f.clock.Now, slog.New(slog.DiscardHandler))
	f.clock.Set(d.NextCheckAt)
	done := checkDueAsync(t, v, f.p.ID, d.ID)
	c.waitCalled(t, "the checker was never called")
	v.Close()
	if err := <-done; err == nil {
		t.Error("a check cut short by Close reported success")
	}
	got := f.get(t, d.ID)
	if !got.LastCheckedAt.Equal(d.LastCheckedAt) || !got.NextCheckAt.Equal(d.NextCheckAt) || got.CheckAttempt != 0 {
		t.Errorf("a check cut short by Close saved: last %v, next %v, attempt %d", got.LastCheckedAt, got.NextCheckAt, got.CheckAttempt)
	}
	if got.CheckingUntil.After(f.clock.Now()) {
		t.Errorf("the lease was kept until %v", got.CheckingUntil)
	}
}

// TestHostileChecker answers twice for one record, for a record the domain does
// not have, and not at all for the others: each record is judged once, and the
// unanswered ones are timeouts.
func TestHostileChecker(t *testing.T) {
	f := newFixture(t)
	d := f.addDomain(t, "odd.example")
	c := &checker{fn: func(_ context.Context, exps []dnscheck.Expectation) []domain.Observation {
		return []domain.Observation{
			{Key: domain.KeyOwnership, Status: domain.CheckVerified, Found: []string{exps[0].Value}},
			{Key: domain.KeyOwnership, Status: domain.CheckMissing},
			{Key: "bogus", Status: domain.CheckVerified},
		}
	}}
	v := f.verifier(t, c, time.Second, time.Second)
	f.clock.Set(d.NextCheckAt)
	if err := v.CheckDue(t.Context(), f.p.ID, d.ID); err != nil {
		t.Fatal(err)
	}
	f.obs.next(t)
	got := f.get(t, d.ID)
	if !got.OwnershipVerified || got.Records[0].Failures != 0 {
		t.Errorf("ownership verified %v, failures %d; want the first answer only", got.OwnershipVerified, got.Records[0].Failures)
	}
	for _, r := range got.Records[1:] {
		if r.Status != domain.CheckTemporaryFailure || r.Problems[0].Code != dnscheck.CodeTimeout {
			t.Errorf("%s: %s %+v, want DNS_TIMEOUT", r.Key, r.Status, r.Problems)
		}
	}
}

// writeCounter is a store that counts the reads of domains and the lease and
// save writes of checks.
type writeCounter struct {
	store.Store
	acquires, releases, saves, finishes, reads, batches atomic.Int32
	failFinish                                          atomic.Bool
}

func (s *writeCounter) Domain(ctx context.Context, projectID int64, id string) (*domain.Domain, error) {
	s.reads.Add(1)
	return s.Store.Domain(ctx, projectID, id)
}

func (s *writeCounter) DomainsByID(ctx context.Context, ids []string) ([]*domain.Domain, error) {
	s.batches.Add(1)
	return s.Store.DomainsByID(ctx, ids)
}

func (s *writeCounter) AcquireCheck(ctx context.Context, id, owner string, now time.Time, lease time.Duration) (bool, error) {
	s.acquires.Add(1)
	return s.Store.AcquireCheck(ctx, id, owner, now, lease)
}

func (s *writeCounter) ReleaseCheck(ctx context.Context, id, owner string) error {
	s.releases.Add(1)
	return s.Store.ReleaseCheck(ctx, id, owner)
}

func (s *writeCounter) SaveCheck(ctx context.Context, d *domain.Domain, events []store.Event) error {
	s.saves.Add(1)
	return s.Store.SaveCheck(ctx, d, events)
}

func (s *writeCounter) FinishCheck(ctx context.Context, d *domain.Domain, events []store.Event, owner string) error {
	s.finishes.Add(1)
	if s.failFinish.Load() {
		return errors.New("injected save failure")
	}
	return s.Store.FinishCheck(ctx, d, events, owner)
}

// TestLeaseEndsWithSave: a check that saves ends its lease with the save, in
// one write, and one whose save fails still releases it on its own.
func TestLeaseEndsWithSave(t *testing.T) {
	f := newFixture(t)
	d := f.addDomain(t, "lease.example")
	st, v := f.countedVerifier(t, &checker{fn: answer(domain.CheckVerified)})
	f.clock.Set(d.NextCheckAt)
	if err := v.CheckDue(t.Context(), f.p.ID, d.ID); err != nil {
		t.Fatal(err)
	}
	got := f.get(t, d.ID)
	if got.Status != domain.StatusVerified || !got.CheckingUntil.IsZero() {
		t.Errorf("after the check: status %s, lease until %v; want VERIFIED and no lease", got.Status, got.CheckingUntil)
	}
	if a, r, s, fin := st.acquires.Load(), st.releases.Load(), st.saves.Load(), st.finishes.Load(); a != 1 || r != 0 || s != 0 || fin != 1 {
		t.Errorf("writes of one check: %d acquires, %d releases, %d saves, %d finishes; want 1, 0, 0, 1", a, r, s, fin)
	}
	// A scheduled check reads the domain before DNS and saves over that read
	// (nothing wrote the domain meanwhile); an explicit one asks DNS for the
	// domain as Verify read it, and saves over that.
	if n := st.reads.Swap(0); n != 1 {
		t.Errorf("a scheduled check read the domain %d times, want 1", n)
	}
	f.clock.Set(f.clock.Now().Add(time.Minute))
	if out, err := v.Verify(t.Context(), f.p.ID, d.ID); err != nil || out.Domain == nil || out.Domain.Status != domain.StatusVerified {
		t.Fatalf("Verify = %+v, %v", out, err)
	}
	if n := st.reads.Load(); n != 1 {
		t.Errorf("an explicit check read the domain %d times, want 1", n)
	}

	st.failFinish.Store(true)
	f.clock.Set(f.clock.Now().Add(time.Minute))
	releases := st.releases.Load()
	if _, err := v.Verify(t.Context(), f.p.ID, d.ID); err == nil {
		t.Fatal("a check whose save failed reported success")
	}
	if r := st.releases.Load() - releases; r != 1 {
		t.Errorf("a check whose save failed released its lease %d times, want 1", r)
	}
	if got := f.get(t, d.ID); !got.CheckingUntil.IsZero() {
		t.Errorf("a check whose save failed kept its lease until %v", got.CheckingUntil)
	}
}

// TestLeaseChecks: the leases LeaseChecks takes in one write are the ones the
// checks then run under, with no write of their own; one taken too long ago is
// taken again by its check; one held by another replica is not taken, and its
// check waits for that replica's; ReleaseLeases gives back the unused ones.
func TestLeaseChecks(t *testing.T) {
	f := newFixture(t)
	fresh := f.addDomain(t, "fresh.example")
	stale := f.addDomain(t, "stale.example")
	other := f.addDomain(t, "other.example")
	unused := f.addDomain(t, "unused.example")
	st, v := f.countedVerifier(t, &checker{fn: answer(domain.CheckVerified)})
	f.clock.Set(fresh.NextCheckAt)
	if ok, err := f.st.AcquireCheck(t.Context(), other.ID, "elsewhere", f.clock.Now(), time.Minute); err != nil || !ok {
		t.Fatalf("AcquireCheck = %v, %v", ok, err)
	}
	var due []store.Due
	for _, d := range []*domain.Domain{fresh, stale, other, unused} {
		due = append(due, store.Due{ID: d.ID, ProjectID: f.p.ID})
	}
	v.LeaseChecks(t.Context(), due)
	for _, d := range []*domain.Domain{fresh, stale, unused} {
		if got := f.get(t, d.ID); !got.CheckingUntil.After(f.clock.Now()) {
			t.Errorf("%s: no lease after LeaseChecks", d.Name)
		}
	}
	// checkDue runs the due check of d, leased when says, and wants the checks
	// to have taken their leases acquires times in all by then, and this one to
	// have read its domain alone reads times.
	checkDue := func(d *domain.Domain, when string, acquires, reads int32) {
		t.Helper()
		if err := v.CheckDue(t.Context(), f.p.ID, d.ID); err != nil {
			t.Fatal(err)
		}
		if n := st.acquires.Load(); n != acquires {
			t.Errorf("a check leased %s: leases taken %d times in all, want %d", when, n, acquires)
		}
		if n := st.reads.Swap(0); n != reads {
			t.Errorf("a check leased %s read its domain %d times, want %d", when, n, reads)
		}
	}
	// The check of fresh took no lease of its own. It started from the domain
	// as LeaseChecks read it, with all the others in one read, and saved over
	// that read: it read the domain alone not at all.
	checkDue(fresh, "moments ago", 0, 0)
	if n := st.batches.Load(); n != 1 {
		t.Errorf("LeaseChecks read the leased domains in %d batch reads, want 1", n)
	}
	if got := f.get(t, fresh.ID); got.Status != domain.StatusVerified || !got.CheckingUntil.IsZero() {
		t.Errorf("after its check: %s, lease until %v; want VERIFIED, no lease", got.Status, got.CheckingUntil)
	}
	// Half the margin later the lease may be too short for a whole check.
	f.clock.Set(f.clock.Now().Add(3 * time.Second))
	// So the check of stale takes its lease again, once. Nor is what
	// LeaseChecks read then trusted: the check reads the domain itself, once.
	checkDue(stale, "long ago", 1, 1)
	// other's lease is another replica's: its check waits for it to end.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	checked := make(chan error, 1)
	go func() { checked <- v.CheckDue(ctx, f.p.ID, other.ID) }()
	for st.acquires.Load() < 2 {
		select {
		case err := <-checked:
			t.Fatalf("the check of a domain another replica holds ended at once: %v", err)
		case <-ctx.Done():
			t.Fatal("the check of other never asked for its lease")
		case <-time.After(time.Millisecond):
		}
	}
	if err := f.st.ReleaseCheck(t.Context(), other.ID, "elsewhere"); err != nil {
		t.Fatal(err)
	}
	if err := <-checked; err != nil {
		t.Fatal(err)
	}
	if c := st.finishes.Load(); c != 2 {
		t.Errorf("%d checks saved, want 2: other's was the other replica's to run", c)
	}
	v.ReleaseLeases(t.Context(), due)
	if got := f.get(t, unused.ID); !got.CheckingUntil.IsZero() {
		t.Errorf("the unused lease holds until %v after ReleaseLeases", got.CheckingUntil)
	}
	if r := st.releases.Load(); r != 1 {
		t.Errorf("ReleaseLeases released %d leases, want 1: only the unused one was still held", r)
	}
}

// TestLeaseTakenWhileRunning: a lease LeaseChecks takes while a check of the
// domain is already running (an explicit verify) is ended by that check's
// save, so the scheduled check that follows must take a lease of its own
// instead of running with none.
func TestLeaseTakenWhileRunning(t *testing.T) {
	f := newFixture(t)
	d := f.addDomain(t, "busy.example")
	c, release := heldChecker(domain.CheckVerified)
	st, v := f.countedVerifier(t, c)
	verified := verifyAsync(t, v, f.p.ID, d.ID)
	c.waitCalled(t, "the explicit check never asked DNS")
	v.LeaseChecks(t.Context(), []store.Due{{ID: d.ID, ProjectID: f.p.ID}})
	close(release)
	if r := <-verified; r.err != nil {
		t.Fatal(r.err)
	}
	if got := f.get(t, d.ID); !got.CheckingUntil.IsZero() {
		t.Fatalf("lease until %v after the explicit check saved; want none", got.CheckingUntil)
	}
	before := st.acquires.Load()
	if err := v.CheckDue(t.Context(), f.p.ID, d.ID); err != nil {
		t.Fatal(err)
	}
	if st.acquires.Load() == before {
		t.Error("the scheduled check ran on the lease the explicit check's save had ended, taking none of its own")
	}
}

// TestLeasedReadOtherProject: what LeaseChecks read of a domain is not what a
// check asked for under another project starts from: that check finds no such
// domain, asks DNS nothing, and leaves the domain as it was.
func TestLeasedReadOtherProject(t *testing.T) {
	f := newFixture(t)
	d := f.addDomain(t, "mine.example")
	c := &checker{fn: answer(domain.CheckVerified)}
	v := f.verifier(t, c, time.Second, time.Second)
	f.clock.Set(d.NextCheckAt)
	v.LeaseChecks(t.Context(), []store.Due{{ID: d.ID, ProjectID: f.p.ID}})
	if err := v.CheckDue(t.Context(), f.p.ID+1, d.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a check of the domain under another project: %v, want ErrNotFound", err)
	}
	if n := c.calls.Load(); n != 0 {
		t.Errorf("a check of the domain under another project asked DNS %d times", n)
	}
	if got := f.get(t, d.ID); got.Status == domain.StatusVerified || !got.LastCheckedAt.Equal(d.LastCheckedAt) {
		t.Errorf("a check under another project saved the domain: %s, last checked %v", got.Status, got.LastCheckedAt)
	}
}

// failingBatch is a store whose batch read of domains fails.
type failingBatch struct{ store.Store }

func (failingBatch) DomainsByID(context.Context, []string) ([]*domain.Domain, error) {
	return nil, errors.New("batch read broken")
}

// TestLeasedReadFails: when the batch read of leased domains fails, the
// failure is logged (it would otherwise hide a broken query for good) and
// each check reads its domain itself.
func TestLeasedReadFails(t *testing.T) {
	f := newFixture(t)
	d := f.addDomain(t, "batch.example")
	var logged testenv.Buffer
	v := verify.New(failingBatch{f.st}, &checker{fn: answer(domain.CheckVerified)}, verify.Config{Budget: time.Second, Recheck: recheck},
		f.clock.Now, slog.New(slog.NewTextHandler(&logged, nil)))
	t.Cleanup(v.Close)
	f.clock.Set(d.NextCheckAt)
	v.LeaseChecks(t.Context(), []store.Due{{ID: d.ID, ProjectID: f.p.ID}})
	if !strings.Contains(logged.String(), "reading leased domains") || !strings.Contains(logged.String(), "batch read broken") {
		t.Errorf("a failed batch read was not logged; the log: %q", logged.String())
	}
	if err := v.CheckDue(t.Context(), f.p.ID, d.ID); err != nil {
		t.Fatal(err)
	}
	if got := f.get(t, d.ID); got.Status != domain.StatusVerified {
		t.Errorf("after a failed batch read the check left the domain %s, want VERIFIED", got.Status)
	}
}

// TestWriteDuringCheck: a write to the domain while its check asks DNS
// (receiving switched on here) is not overwritten by the check's save, which
// was made on the domain as read before: the save is refused, the domain read
// again, and the check applied to it as it is now.
func TestWriteDuringCheck(t *testing.T) {
	f := newFixture(t)
	d := f.addDomain(t, "during.example")
	enabled := f.clock.Now().Add(time.Second)
	c := &checker{fn: func(ctx context.Context, exps []dnscheck.Expectation) []domain.Observation {
		// The customer switches receiving on while DNS is asked.
		in, err := f.st.Domain(ctx, f.p.ID, d.ID)
		if err != nil {
			t.Error(err)
			return nil
		}
		in.EnableInbound(domain.Record{Key: domain.KeyInboundMX, Type: "MX", Name: in.Name, Value: "in.example.net", Priority: 10,
			Status: domain.CheckUnchecked, CreatedAt: enabled, UpdatedAt: enabled}, recheck, enabled)
		if err := f.st.SaveInbound(ctx, in); err != nil {
			t.Error(err)
		}
		return answer(domain.CheckVerified)(ctx, exps)
	}}
	st, v := f.countedVerifier(t, c)
	f.clock.Set(d.NextCheckAt)
	if err := v.CheckDue(t.Context(), f.p.ID, d.ID); err != nil {
		t.Fatal(err)
	}
	got := f.get(t, d.ID)
	if got.Status != domain.StatusVerified || !got.InboundEnabledAt.Equal(enabled.UTC().Truncate(time.Millisecond)) || got.Record(domain.KeyInboundMX) == nil {
		t.Fatalf("after the check: status %s, receiving since %v, inbound MX %v; want VERIFIED with receiving on since %v",
			got.Status, got.InboundEnabledAt, got.Record(domain.KeyInboundMX), enabled)
	}
	// The inbound MX was not asked for: the check saw the domain before it.
	if r := got.Record(domain.KeyInboundMX); r.Status != domain.CheckUnchecked {
		t.Errorf("inbound MX status %s after a check that did not ask for it, want unchecked", r.Status)
	}
	// Its schedule is the one of a domain with an inbound MX still to see: the
	// next check within the steps, not a day away as for a domain fully verified.
	if next := got.NextCheckAt.Sub(f.clock.Now()); next <= 0 || next > recheck.Steps[len(recheck.Steps)-1] {
		t.Errorf("next check %v after the check, want within %v: the check's save overwrote the schedule receiving set",
			next, recheck.Steps[len(recheck.Steps)-1])
	}
	if n := st.reads.Load(); n != 2 {
		t.Errorf("the check read the domain %d times, want 2 (before DNS, and again after its save was refused)", n)
	}
	if n := st.finishes.Load(); n != 2 {
		t.Errorf("the check tried to save %d times, want 2", n)
	}
	if !got.CheckingUntil.IsZero() {
		t.Errorf("lease until %v after the check, want none", got.CheckingUntil)
	}
}
