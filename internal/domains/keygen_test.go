package domains

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/records"
	"github.com/domaind/domaind/internal/store"
	"github.com/domaind/domaind/internal/store/sqlite"
	"github.com/domaind/domaind/internal/verify"
)

// keygenProbe stands in for key generation: it counts the generations running at
// once and holds each until the test lets it go.
type keygenProbe struct {
	running, peak, calls atomic.Int64
	entered              chan string   // receives the name of each generation that starts
	release              chan struct{} // closed to let every generation finish
}

func newKeygenProbe() *keygenProbe {
	return &keygenProbe{entered: make(chan string, 100), release: make(chan struct{})}
}

func (p *keygenProbe) generate(cfg records.Config) func(name, region string, now time.Time) (records.Generated, error) {
	return func(name, region string, now time.Time) (records.Generated, error) {
		p.calls.Add(1)
		n := p.running.Add(1)
		for {
			peak := p.peak.Load()
			if n <= peak || p.peak.CompareAndSwap(peak, n) {
				break
			}
		}
		defer p.running.Add(-1)
		p.entered <- name
		<-p.release
		return cfg.Generate(name, region, now)
	}
}

// newService returns a Service on a real SQLite store whose key generation p
// watches, behind a gate of n slots, and the id of a project "acme".
func newService(t *testing.T, p *keygenProbe, gate *KeyGate) (*Service, store.Store, int64) {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "domaind.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	proj, err := st.EnsureProject(t.Context(), "acme", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	v := verify.New(st, nil, verify.Config{Recheck: domain.DefaultRecheck()}, nil, nil)
	t.Cleanup(v.Close)
	sealer, err := records.NewSealer(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	rc := records.DefaultConfig()
	rc.DKIMBits = 1024
	s := &Service{Store: st, Verifier: v, Records: rc, Sealer: sealer, Regions: []string{"us-east-1"}, Keygen: gate}
	s.generate = p.generate(rc)
	return s, st, proj.ID
}

// waitUntil polls cond until it holds, failing the test after 10s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestKeygenIsBounded(t *testing.T) {
	const bound, adds = 2, 7
	p := newKeygenProbe()
	gate := NewKeyGate(bound, time.Hour)
	s, st, project := newService(t, p, gate)

	var wg sync.WaitGroup
	errs := make(chan error, adds)
	for i := range adds {
		wg.Go(func() {
			_, err := s.Add(context.Background(), project, fmt.Sprintf("d%d.example.com", i), "")
			errs <- err
		})
	}
	// Every add is either generating or queued; only then is "no more than the
	// bound" a claim about all of them.
	waitUntil(t, "adds to queue", func() bool { return gate.Waiting() == adds-bound && len(p.entered) == bound })
	if got := p.running.Load(); got != bound {
		t.Fatalf("%d keys generating with %d adds waiting, want %d", got, gate.Waiting(), bound)
	}
	close(p.release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("add: %v", err)
		}
	}
	if peak := p.peak.Load(); peak > bound {
		t.Errorf("%d keys were generated at once, more than the bound %d", peak, bound)
	}
	if p.calls.Load() != adds {
		t.Errorf("%d keys generated for %d adds", p.calls.Load(), adds)
	}
	if _, total, err := st.Domains(t.Context(), project, store.Page{Limit: 100}); err != nil || total != adds {
		t.Errorf("%d domains stored (err %v), want %d", total, err, adds)
	}
}

// holdSlot starts adding first.example.com and returns once its key is being
// generated, holding a slot of the gate until the test calls finish, which lets
// every generation end and checks that the add succeeded with the only key
// generated.
func holdSlot(t *testing.T, s *Service, p *keygenProbe, project int64) (finish func()) {
	t.Helper()
	first := make(chan error, 1)
	go func() {
		_, err := s.Add(context.Background(), project, "first.example.com", "")
		first <- err
	}()
	if name := <-p.entered; name != "first.example.com" {
		t.Fatalf("generating %s", name)
	}
	return func() {
		t.Helper()
		close(p.release)
		if err := <-first; err != nil {
			t.Fatal(err)
		}
		if n := p.calls.Load(); n != 1 {
			t.Errorf("%d keys generated, want only the first add's", n)
		}
	}
}

// heldGate returns a Service behind a gate of one slot, whose adds wait for it
// at most wait, with that slot held by the add of first.example.com (see
// holdSlot), and the gate, the store and the project of the Service.
func heldGate(t *testing.T, wait time.Duration) (s *Service, gate *KeyGate, st store.Store, project int64, finishFirst func()) {
	t.Helper()
	p := newKeygenProbe()
	gate = NewKeyGate(1, wait)
	s, st, project = newService(t, p, gate)
	return s, gate, st, project, holdSlot(t, s, p, project)
}

func TestKeygenWaitIsCancellable(t *testing.T) {
	// One add holds the only slot.
	s, gate, st, project, finishFirst := heldGate(t, time.Hour)

	// A second add waits; its client goes away.
	ctx, cancel := context.WithCancel(context.Background())
	second := make(chan error, 1)
	go func() {
		_, err := s.Add(ctx, project, "second.example.com", "")
		second <- err
	}()
	waitUntil(t, "the second add to queue", func() bool { return gate.Waiting() == 1 })
	cancel()
	if err := <-second; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled add: %v, want context.Canceled", err)
	}
	if gate.Waiting() != 0 {
		t.Errorf("%d adds still waiting", gate.Waiting())
	}

	// An add whose client is gone before it starts does not queue at all.
	if _, err := s.Add(ctx, project, "third.example.com", ""); !errors.Is(err, context.Canceled) {
		t.Fatalf("add with a cancelled context: %v", err)
	}

	finishFirst()
	list, _, err := st.Domains(t.Context(), project, store.Page{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Name != "first.example.com" {
		t.Errorf("stored %v, want only first.example.com", list)
	}
}

func TestKeygenWaitIsBounded(t *testing.T) {
	// The wait is the only time in this test, and what it bounds is held until
	// the test lets go, so no timing can make it pass or fail by luck.
	s, _, st, project, finishFirst := heldGate(t, time.Millisecond)

	_, err := s.Add(context.Background(), project, "second.example.com", "")
	var busy *BusyError
	if !errors.As(err, &busy) || busy.RetryAfter <= 0 {
		t.Fatalf("add with every slot taken: %v, want a *BusyError with RetryAfter", err)
	}
	finishFirst()
	if _, total, _ := st.Domains(t.Context(), project, store.Page{Limit: 10}); total != 1 {
		t.Errorf("%d domains stored, want 1", total)
	}
}

func TestKeyGateDefaults(t *testing.T) {
	g := NewKeyGate(0, 0)
	if g.Size() < 1 || g.wait != DefaultKeygenWait {
		t.Errorf("default gate: %d slots, wait %s", g.Size(), g.wait)
	}
	// A Service without a gate still has one.
	var s Service
	if s.gate() == nil || s.gate() != s.gate() {
		t.Error("a Service without Keygen has no gate of its own")
	}
}
