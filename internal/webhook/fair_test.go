package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/store"
)

// blackHole is an endpoint that accepts every request and never answers it; it
// keeps, per path, how many requests it holds now and the most it ever held.
type blackHole struct {
	*httptest.Server
	mu      sync.Mutex
	held    map[string]int
	most    map[string]int
	arrived map[string]int
}

func newBlackHole(t *testing.T) *blackHole {
	b := &blackHole{held: map[string]int{}, most: map[string]int{}, arrived: map[string]int{}}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.arrived[r.URL.Path]++
		b.held[r.URL.Path]++
		b.most[r.URL.Path] = max(b.most[r.URL.Path], b.held[r.URL.Path])
		b.mu.Unlock()
		// With the body read, the server watches the connection, and the
		// request's context ends when the client gives up and closes it.
		_, _ = io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
		b.mu.Lock()
		b.held[r.URL.Path]--
		b.mu.Unlock()
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *blackHole) stats() (arrived, most map[string]int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	arrived, most = map[string]int{}, map[string]int{}
	for k, v := range b.arrived {
		arrived[k] = v
	}
	for k, v := range b.most {
		most[k] = v
	}
	return arrived, most
}

// tenant is another project of the fixture's database, with a domain of its own.
type tenant struct {
	proj store.Project
	dom  *domain.Domain
}

func (f *fixture) tenant(name string) tenant {
	f.t.Helper()
	ctx := f.t.Context()
	p, err := f.st.EnsureProject(ctx, name, t0)
	if err != nil {
		f.t.Fatal(err)
	}
	id, err := domain.NewID(t0)
	if err != nil {
		f.t.Fatal(err)
	}
	d := &domain.Domain{ID: id, ProjectID: p.ID, Name: name + ".example", Region: "us-east-1",
		Status: domain.StatusPendingConfiguration, CreatedAt: t0, LastCheckedAt: t0}
	if err := f.st.CreateDomain(ctx, d, []byte{1}); err != nil {
		f.t.Fatal(err)
	}
	return tenant{proj: p, dom: d}
}

// addWebhookFor registers url for tn's project, within the default limit.
func (f *fixture) addWebhookFor(tn tenant, url string) store.Webhook {
	f.t.Helper()
	w, _ := f.addWebhookIn(tn.proj.ID, url, DefaultMaxWebhooks)
	return w
}

// emitFor stores n events of tn's domain at the fixture's now.
func (f *fixture) emitFor(tn tenant, n int) []store.Event {
	f.t.Helper()
	var events []store.Event
	for range n {
		id, err := store.NewID("evt_")
		if err != nil {
			f.t.Fatal(err)
		}
		payload, _ := json.Marshal(map[string]any{"type": domain.EventVerified, "data": map[string]any{"eventId": id}})
		events = append(events, store.Event{ID: id, ProjectID: tn.proj.ID, DomainID: tn.dom.ID, Type: domain.EventVerified,
			Payload: payload, CreatedAt: f.now()})
	}
	if err := f.st.SaveCheck(f.t.Context(), tn.dom, events); err != nil {
		f.t.Fatal(err)
	}
	return events
}

// TestHostileTenant is the measured attack, scaled down: a project fills its
// quota of webhooks with endpoints that accept and never answer, with a backlog
// on each, and another project's healthy endpoint must still get its event
// within seconds, while no black-hole endpoint ever has more than one request
// open. Before fair delivery, 8 slots went to the oldest deliveries, batch
// after batch, and the healthy event waited for the whole backlog to time out.
func TestHostileTenant(t *testing.T) {
	f := newFixture(t)
	f.now = time.Now // Run on the real clock
	hole := newBlackHole(t)
	hostile, victim := f.tenant("hostile"), f.tenant("victim")
	for i := range DefaultMaxWebhooks {
		f.addWebhookFor(hostile, fmt.Sprintf("%s/hole/%d", hole.URL, i))
	}
	f.emitFor(hostile, 8) // 80 deliveries, all older than the victim's
	r := newReceiver(t)
	healthy := f.addWebhookFor(victim, r.URL+"/ok")

	const timeout = time.Second
	d := &Deliverer{
		Store: f.st, Sealer: f.sealer, Client: NewClient(true, timeout),
		Interval: 10 * time.Millisecond, Concurrency: 8, // the slots of the measurement
		ParkBase: time.Minute, // no second attempt at a black hole within the test
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	// Run stops, and its attempts end, before the endpoints close (cleanups run
	// last first).
	stop := sync.OnceValue(func() error { cancel(); return <-done })
	t.Cleanup(func() { stop() })

	emitted := time.Now()
	f.emitFor(victim, 1)
	const within = 4 * time.Second
	for {
		ds, _, err := f.st.Deliveries(t.Context(), victim.proj.ID, healthy.ID, store.Page{})
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) == 1 && ds[0].Status == store.DeliveryDelivered {
			t.Logf("the healthy endpoint got its event %v after it happened", time.Since(emitted).Round(time.Millisecond))
			break
		}
		if time.Since(emitted) > within {
			t.Fatalf("the healthy endpoint had not got its event %v after it happened: %+v", within, ds)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Every black-hole endpoint is tried, each by one request at a time, fails
	// and is parked, its backlog untouched meanwhile.
	deadline := time.Now().Add(3 * timeout * DefaultMaxWebhooks / 8)
	for {
		hooks, err := f.st.Webhooks(t.Context(), hostile.proj.ID)
		if err != nil {
			t.Fatal(err)
		}
		parked := 0
		for _, w := range hooks {
			if w.Failures > 0 && w.ParkedUntil.After(emitted) {
				parked++
			}
		}
		if parked == DefaultMaxWebhooks {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of the %d black-hole endpoints were parked: %+v", parked, DefaultMaxWebhooks, hooks)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := stop(); err != nil {
		t.Errorf("Run: %v", err)
	}
	arrived, most := hole.stats()
	for path, n := range most {
		if n > 1 {
			t.Errorf("%s had %d requests open at once, want 1", path, n)
		}
		if arrived[path] != 1 {
			t.Errorf("%s got %d requests, want 1 and then none while parked", path, arrived[path])
		}
	}
}

// TestEndpointParking checks, on a compressed clock, that failures park an
// endpoint for longer and longer, that none of its deliveries is claimed while
// it is parked, that a success ends the parking, and that a parked endpoint's
// deliveries still expire when their retry window closes.
func TestEndpointParking(t *testing.T) {
	f := newFixture(t)
	r := newReceiver(t, 500, 500, 200, 200, 503)
	wh, _ := f.addWebhook(r.URL)
	f.emit(domain.EventVerified)
	f.emit(domain.EventVerified)
	obs := &counter{}
	d := f.deliverer(obs, time.Millisecond) // deliveries alone would retry at once
	d.ParkBase, d.ParkMax, d.GiveUpAfter = time.Minute, 90*time.Second, time.Hour
	parked := func(wantFailures int, wantUntil time.Time) {
		t.Helper()
		hooks, err := f.st.Webhooks(t.Context(), f.proj.ID)
		if err != nil || len(hooks) != 1 || hooks[0].Failures != wantFailures || !hooks[0].ParkedUntil.Equal(wantUntil) {
			t.Fatalf("webhook = %+v, %v; want %d failures, parked until %v", hooks, err, wantFailures, wantUntil)
		}
	}

	runOnce(t, d, 1) // 500
	parked(1, t0.Add(time.Minute))
	for _, del := range f.deliveries(wh.ID) {
		if !del.NextAttemptAt.Equal(t0.Add(time.Minute)) {
			t.Errorf("delivery %s next at %v, want the end of the parking %v", del.ID, del.NextAttemptAt, t0.Add(time.Minute))
		}
	}
	runOnce(t, d, 0)
	f.clock.Advance(time.Minute - time.Millisecond)
	runOnce(t, d, 0)
	f.clock.Advance(time.Millisecond)
	runOnce(t, d, 1) // 500 again: twice as long, capped at 90s
	parked(2, t0.Add(time.Minute+90*time.Second))
	f.clock.Advance(90*time.Second - time.Millisecond)
	runOnce(t, d, 0)
	f.clock.Advance(time.Millisecond)
	runOnce(t, d, 1) // 200: the parking ends
	parked(0, time.Time{})
	runOnce(t, d, 1) // the other delivery, at once: 200
	if n := len(r.requests()); n != 4 {
		t.Errorf("endpoint got %d requests, want 4", n)
	}

	// Failing again, with a delivery pending: parked for a minute at first, so
	// the delivery created now would wait; it expires when its hour is up.
	e := f.emit(domain.EventDegraded)
	late := f.emit(domain.EventDegraded)
	runOnce(t, d, 1) // 503
	parked(1, f.now().Add(time.Minute))
	d.ParkBase, d.ParkMax = 2*time.Hour, 2*time.Hour // a long parking from now on
	f.clock.Advance(time.Minute)
	runOnce(t, d, 1) // 503, the receiver's last code, again
	parked(2, f.now().Add(2*time.Hour))
	f.clock.Advance(time.Hour - time.Minute - time.Millisecond)
	runOnce(t, d, 0)
	f.clock.Advance(time.Millisecond)
	runOnce(t, d, 0) // expired, not attempted
	ds := f.deliveries(wh.ID)
	for _, id := range []string{e.ID, late.ID} {
		if ds[id].Status != store.DeliveryFailed {
			t.Errorf("delivery of %s = %s after its hour, want failed", id, ds[id].Status)
		}
	}
	if n := len(r.requests()); n != 6 {
		t.Errorf("endpoint got %d requests, want 6: none once parked past the window", n)
	}
	if c := obs.Counts(); c[OutcomeFailed] != 2 {
		t.Errorf("observed %v, want 2 failed", c)
	}
}

func TestParkFor(t *testing.T) {
	for _, tc := range []struct {
		failures int
		want     time.Duration
	}{{0, 5 * time.Second}, {1, 10 * time.Second}, {2, 20 * time.Second}, {9, 2560 * time.Second},
		{10, time.Hour}, {63, time.Hour}, {1 << 40, time.Hour}, {-1, 5 * time.Second}} {
		if got := parkFor(DefaultParkBase, DefaultParkMax, tc.failures); got != tc.want {
			t.Errorf("parkFor(%d) = %v, want %v", tc.failures, got, tc.want)
		}
	}
}
