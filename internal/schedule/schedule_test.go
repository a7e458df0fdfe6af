package schedule_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/schedule"
	"github.com/domaind/domaind/internal/store"
	"github.com/domaind/domaind/internal/store/sqlite"
	"github.com/domaind/domaind/internal/store/storetest"
	"github.com/domaind/domaind/internal/testenv"
)

var t0 = time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)

func openStore(t *testing.T) store.Store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "domaind.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// addDue stores a domain of the project, due at due. Its records do not matter
// to the worker.
func addDue(t *testing.T, st store.Store, projectID int64, name string, due time.Time) string {
	t.Helper()
	id, err := domain.NewID(t0)
	if err != nil {
		t.Fatal(err)
	}
	d := &domain.Domain{
		ID: id, ProjectID: projectID, Name: name, Region: "us-east-1", Status: domain.StatusPendingConfiguration,
		CreatedAt: t0, LastCheckedAt: t0, WindowStartedAt: t0, NextCheckAt: due,
		Records: []domain.Record{{Key: domain.KeyOwnership, Name: "_v." + name, Type: "TXT", Value: "v",
			Status: domain.CheckUnchecked, CreatedAt: t0, UpdatedAt: t0}},
	}
	if err := st.CreateDomain(t.Context(), d, []byte("k")); err != nil {
		t.Fatal(err)
	}
	return id
}

// gate is a schedule.Checker whose checks of blocked projects wait until the
// test releases them, as checks of domains whose DNS never answers wait for
// their deadline. It records every start and the most checks of each project
// it ever saw at once.
type gate struct {
	mu       sync.Mutex
	blocked  map[int64]bool
	release  chan struct{}
	inFlight map[int64]int
	most     map[int64]int
	started  chan store.Due
}

func newGate(blocked ...int64) *gate {
	g := &gate{blocked: map[int64]bool{}, release: make(chan struct{}), inFlight: map[int64]int{},
		most: map[int64]int{}, started: make(chan store.Due, 1000)}
	for _, p := range blocked {
		g.blocked[p] = true
	}
	return g
}

func (g *gate) CheckDue(ctx context.Context, projectID int64, id string) error {
	g.mu.Lock()
	g.inFlight[projectID]++
	g.most[projectID] = max(g.most[projectID], g.inFlight[projectID])
	blocked := g.blocked[projectID]
	g.mu.Unlock()
	g.started <- store.Due{ID: id, ProjectID: projectID}
	if blocked {
		select {
		case <-g.release:
		case <-ctx.Done():
		}
	}
	g.mu.Lock()
	g.inFlight[projectID]--
	g.mu.Unlock()
	return nil
}

func (g *gate) next(t *testing.T) store.Due {
	t.Helper()
	return testenv.Receive(t, g.started, "a check started")
}

func (g *gate) mostAtOnce(p int64) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.most[p]
}

// run runs the worker until the test ends.
func run(t *testing.T, w *schedule.Worker) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// TestProjectShare gives a hostile project a backlog of due domains, all more
// overdue than another project's one, whose checks never end: the hostile
// project gets its share of the slots and no more, the other project's check
// starts while all of the hostile ones still hang, and the hostile domains the
// worker did not start are not left claimed.
func TestProjectShare(t *testing.T) {
	st := openStore(t)
	hostile := storetest.Project(t, st, "hostile")
	other := storetest.Project(t, st, "other")
	now := t0.Add(time.Hour)
	for i := range 40 {
		addDue(t, st, hostile.ID, fmt.Sprintf("h%d.example", i), now.Add(-time.Duration(40-i)*time.Minute))
	}
	otherID := addDue(t, st, other.ID, "customer.example", now.Add(-time.Second))

	g := newGate(hostile.ID)
	spy := newClaimSpy(st)
	// Four slots, and a share of one: the default quarter.
	w := &schedule.Worker{Store: spy, Checker: g, Now: func() time.Time { return now }, Concurrency: 4,
		Interval: time.Millisecond, Lease: time.Minute}
	run(t, w)
	// Both projects start, in whatever order the claim returns them.
	starts := map[int64]int{}
	var otherStarted bool
	for range 2 {
		d := g.next(t)
		starts[d.ProjectID]++
		otherStarted = otherStarted || d.ID == otherID
	}
	if !otherStarted || starts[hostile.ID] != 1 {
		t.Fatalf("first two starts by project %v; want one of the hostile project's and the other's %s", starts, otherID)
	}
	// The worker keeps looking every millisecond with two slots free: no more of
	// the hostile project's domains start while its one check hangs. Twenty
	// looks are enough to catch one that does.
	spy.wait(t, 20)
	select {
	case d := <-g.started:
		t.Fatalf("another check of project %d started (%s) while the hostile one hangs", d.ProjectID, d.ID)
	default:
	}
	// Claimed means started: the hostile domains that did not start are still
	// due, not leased away for minutes.
	leased := 0
	for _, d := range spy.claimed() {
		if d.ProjectID == hostile.ID {
			leased++
		}
	}
	if leased != 1 {
		t.Errorf("%d hostile domains were claimed, want only the one that runs", leased)
	}

	// The hostile checks end (at their deadline): the rest of the backlog runs,
	// still one at a time.
	close(g.release)
	for range 10 {
		if d := g.next(t); d.ProjectID != hostile.ID {
			t.Fatalf("start of project %d, want the hostile backlog", d.ProjectID)
		}
	}
	if m := g.mostAtOnce(hostile.ID); m != 1 {
		t.Errorf("the hostile project had %d checks at once, want its share 1", m)
	}
}

// claimSpy is the real store, telling the test of each claim the worker makes.
type claimSpy struct {
	store.Store
	mu    sync.Mutex
	due   []store.Due
	looks chan struct{}
}

func newClaimSpy(st store.Store) *claimSpy {
	return &claimSpy{Store: st, looks: make(chan struct{}, 10000)}
}

func (s *claimSpy) ClaimChecks(ctx context.Context, now time.Time, lease time.Duration, limit, perProject int, running map[int64]int) ([]store.Due, error) {
	due, err := s.Store.ClaimChecks(ctx, now, lease, limit, perProject, running)
	s.mu.Lock()
	s.due = append(s.due, due...)
	s.mu.Unlock()
	s.looks <- struct{}{}
	return due, err
}

func (s *claimSpy) claimed() []store.Due {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]store.Due(nil), s.due...)
}

// wait waits for n claims after those made so far.
func (s *claimSpy) wait(t *testing.T, n int) {
	t.Helper()
	for len(s.looks) > 0 {
		<-s.looks
	}
	timeout := time.After(10 * time.Second)
	for range n {
		select {
		case <-s.looks:
		case <-timeout:
			t.Fatalf("the worker made fewer than %d claims in 10s", n)
		}
	}
}

func TestParseShare(t *testing.T) {
	for _, tc := range []struct {
		in          string
		concurrency int
		want        int
		ok          bool
	}{
		{"25%", 64, 16, true},
		{"25%", 4, 1, true},
		{"25%", 1, 1, true},
		{"1%", 64, 1, true},
		{"100%", 64, 64, true},
		{" 50 % ", 10, 5, true},
		{"8", 64, 8, true},
		{"100", 64, 64, true},
		{"0", 64, 0, false},
		{"-3", 64, 0, false},
		{"0%", 64, 0, false},
		{"101%", 64, 0, false},
		{"%", 64, 0, false},
		{"1e3", 64, 0, false},
		{"", 64, 0, false},
		{"99999999999999999999", 64, 0, false},
	} {
		got, err := schedule.ParseShare(tc.in, tc.concurrency)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseShare(%q, %d) = %d, %v; want %d (ok %v)", tc.in, tc.concurrency, got, err, tc.want, tc.ok)
		}
	}
}

// hangingClaims is the real store whose claims, after the first, hang until the
// worker stops: a database that has become slow to answer.
type hangingClaims struct {
	store.Store
	mu     sync.Mutex
	claims int
}

func (s *hangingClaims) ClaimChecks(ctx context.Context, now time.Time, lease time.Duration, limit, perProject int, running map[int64]int) ([]store.Due, error) {
	s.mu.Lock()
	s.claims++
	first := s.claims == 1
	s.mu.Unlock()
	if !first {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return s.Store.ClaimChecks(ctx, now, lease, limit, perProject, running)
}

// TestClaimsAhead checks that the worker claims more than its free slots, so a
// slot that frees starts the next check at once, without waiting for a claim:
// here the claims after the first never answer, and the check after the four
// that fill the slots starts all the same when one of them ends.
func TestClaimsAhead(t *testing.T) {
	st := openStore(t)
	p := storetest.Project(t, st, "acme")
	now := t0.Add(time.Hour)
	for i := range 20 {
		addDue(t, st, p.ID, fmt.Sprintf("d%d.example", i), now.Add(-time.Duration(20-i)*time.Minute))
	}
	g := newGate(p.ID)
	w := &schedule.Worker{Store: &hangingClaims{Store: st}, Checker: g, Now: func() time.Time { return now },
		Concurrency: 4, ProjectShare: 4, Interval: time.Millisecond, Lease: time.Minute}
	run(t, w)
	seen := map[string]bool{}
	for range 4 {
		seen[g.next(t).ID] = true
	}
	select {
	case d := <-g.started:
		t.Fatalf("a fifth check (%s) started while four slots were busy", d.ID)
	default:
	}
	g.release <- struct{}{} // one check ends
	if d := g.next(t); seen[d.ID] {
		t.Fatalf("%s started twice", d.ID)
	}
	if m := g.mostAtOnce(p.ID); m != 4 {
		t.Errorf("%d checks at once, want the 4 slots", m)
	}
}

// leasingGate is a gate that is also a schedule.Leaser: it records the domains
// whose leases the worker asked it to take, and to give back.
type leasingGate struct {
	*gate
	lmu              sync.Mutex
	leased, released map[string]bool
	startedUnleased  []string
}

func (g *leasingGate) LeaseChecks(_ context.Context, due []store.Due) {
	g.lmu.Lock()
	defer g.lmu.Unlock()
	for _, d := range due {
		g.leased[d.ID] = true
	}
}

func (g *leasingGate) ReleaseLeases(_ context.Context, due []store.Due) {
	g.lmu.Lock()
	defer g.lmu.Unlock()
	for _, d := range due {
		g.released[d.ID] = true
	}
}

func (g *leasingGate) CheckDue(ctx context.Context, projectID int64, id string) error {
	g.lmu.Lock()
	if !g.leased[id] {
		g.startedUnleased = append(g.startedUnleased, id)
	}
	g.lmu.Unlock()
	return g.gate.CheckDue(ctx, projectID, id)
}

// TestLeaser: a worker whose checker takes leases has it take those of each
// claim before any of its checks starts, and, when it stops, give back those
// of the checks it claimed and never started, and only those.
func TestLeaser(t *testing.T) {
	st := openStore(t)
	p := storetest.Project(t, st, "acme")
	const n = 12
	for i := range n {
		addDue(t, st, p.ID, fmt.Sprintf("d%02d.example", i), t0)
	}
	g := &leasingGate{gate: newGate(p.ID), leased: map[string]bool{}, released: map[string]bool{}}
	w := &schedule.Worker{Store: st, Checker: g, Now: func() time.Time { return t0.Add(time.Minute) },
		Concurrency: 4, ProjectShare: 4, Interval: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	started := map[string]bool{}
	for range 4 {
		started[g.next(t).ID] = true
	}
	cancel()
	close(g.release)
	<-done
	g.lmu.Lock()
	defer g.lmu.Unlock()
	if len(g.startedUnleased) > 0 {
		t.Errorf("checks started before their lease was asked for: %v", g.startedUnleased)
	}
	// 4 slots and 4 claimed ahead: 8 claimed, 4 started, 4 given back.
	if len(g.leased) != 8 {
		t.Errorf("%d leases taken, want 8 (the slots and the claims ahead)", len(g.leased))
	}
	for id := range g.released {
		if started[id] {
			t.Errorf("the lease of %s, whose check started, was given back", id)
		}
		if !g.leased[id] {
			t.Errorf("%s was given back but never leased", id)
		}
	}
	if len(g.released)+len(started) != len(g.leased) {
		t.Errorf("%d leases given back and %d checks started of %d leased", len(g.released), len(started), len(g.leased))
	}
}
