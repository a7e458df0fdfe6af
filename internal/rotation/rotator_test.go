package rotation_test

import (
	"errors"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/domaind/domaind/internal/app"
	"github.com/domaind/domaind/internal/apptest"
	"github.com/domaind/domaind/internal/dnstest"
	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/rotation"
	"github.com/domaind/domaind/internal/store"
	"github.com/domaind/domaind/internal/store/sqlite"
	"github.com/domaind/domaind/internal/testenv"
)

// unit is a txt-mode platform on in-process DNS (one authoritative server)
// with a clock the test moves, for the state machine's rules.
type unit struct {
	t     *testing.T
	zone  *dnstest.Zone
	clock *testenv.Clock
	st    store.Store
	cfg   app.Config
	apps  []*app.App
	proj  int64
}

func newUnit(t *testing.T, dkim rotation.Config) *unit {
	n := dnstest.StartNet(t, 1)
	zone, err := n.AddZone("shop.example.", n.Servers()[0])
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "d.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	u := &unit{t: t, zone: zone, st: st, clock: testenv.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))}
	u.cfg = apptest.Config(masterKey)
	u.cfg.Store, u.cfg.Now, u.cfg.VerifyMinInterval = st, u.clock.Now, 0
	u.cfg.DNS = apptest.AuthoritativeDNS(n.RootIPs(), n.Port())
	u.cfg.NoScheduler, u.cfg.NoDeliverer, u.cfg.NoRotator = true, true, true
	u.cfg.RotationPoll = time.Minute
	u.cfg.DKIM = dkim
	u.apps = []*app.App{apptest.New(t, u.cfg), apptest.New(t, u.cfg)}
	p, err := st.EnsureProject(t.Context(), "p", u.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	u.proj = p.ID
	return u
}

// add adds shop.example and, when publish, publishes and verifies it.
func (u *unit) add(publish bool) *domain.Domain {
	u.t.Helper()
	d, err := u.apps[0].Domains().Add(u.t.Context(), u.proj, "shop.example", "")
	if err != nil {
		u.t.Fatal(err)
	}
	if publish {
		u.publish(d, domain.KeyOwnership, domain.KeyDKIM)
		if out, err := u.apps[0].Domains().Verify(u.t.Context(), u.proj, d.ID); err != nil || !out.Domain.CanSend() {
			u.t.Fatalf("verify: %v %+v", err, out.Domain)
		}
	}
	return d
}

func (u *unit) publish(d *domain.Domain, keys ...domain.RecordKey) {
	u.t.Helper()
	for _, r := range pick(d, keys...) {
		u.zone.Remove(r.Name+".", 16)
		if err := u.zone.AddTXT(r.Name+".", r.Value); err != nil {
			u.t.Fatal(err)
		}
	}
}

func (u *unit) rot(id string) store.Rotation {
	u.t.Helper()
	r, err := u.st.Rotation(u.t.Context(), id)
	if err != nil {
		u.t.Fatal(err)
	}
	return r
}

func (u *unit) events(id string) []string {
	u.t.Helper()
	evs, _, err := u.st.Events(u.t.Context(), u.proj, id, store.Page{})
	if err != nil {
		u.t.Fatal(err)
	}
	var out []string
	for i := len(evs) - 1; i >= 0; i-- {
		if strings.HasPrefix(string(evs[i].Type), "domain.dkim.") {
			out = append(out, strings.TrimPrefix(string(evs[i].Type), "domain.dkim."))
		}
	}
	return out
}

// counted is what the rotation events counter of the app's /metrics says for
// the event type typ, or -1 when it has no such series.
func (u *unit) counted(typ string) int {
	u.t.Helper()
	rec := httptest.NewRecorder()
	u.apps[0].Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	prefix := `domaind_dkim_rotation_events_total{type="` + typ + `"} `
	for line := range strings.Lines(rec.Body.String()) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), prefix); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				u.t.Fatalf("%s: %v", line, err)
			}
			return n
		}
	}
	return -1
}

// TestScheduledRotation: a verified domain starts a rotation by itself
// --dkim-rotate-every after its key began signing, not a moment earlier; a
// domain whose key never signed is left alone; and the txt-mode reminder
// comes once per reminder interval, not at every look.
func TestScheduledRotation(t *testing.T) {
	cfg := rotation.DefaultConfig()
	cfg.RotateEvery, cfg.RetireAfter = 30*24*time.Hour, 24*time.Hour
	u := newUnit(t, cfg)
	d := u.add(true)
	w := u.apps[0].RotationWorker()
	ctx := t.Context()

	if r := u.rot(d.ID); r.State != domain.RotationIdle || !r.StepAt.Equal(d.CreatedAt.Add(cfg.RotateEvery)) {
		t.Fatalf("new domain's rotation: %+v", r)
	}
	u.clock.Advance(cfg.RotateEvery - time.Second)
	if n := w.RunOnce(ctx); n != 0 {
		t.Fatalf("%d steps ran before the rotation was due", n)
	}
	u.clock.Advance(time.Second)
	if n := w.RunOnce(ctx); n != 1 {
		t.Fatalf("%d steps ran when due, want 1", n)
	}
	r := u.rot(d.ID)
	if r.State != domain.RotationGenerated || r.Reason != "scheduled" || r.NextSelector != "autosend2" {
		t.Fatalf("due rotation: %+v", r)
	}
	// Looks every Poll; one reminder a day.
	for range 3 * 60 {
		u.clock.Advance(time.Minute)
		w.RunOnce(ctx)
	}
	if got := u.events(d.ID); !slices.Equal(got, []string{"rotation.started", "rotation.waiting"}) {
		t.Fatalf("events after 3 hours of waiting: %q", got)
	}
	u.clock.Advance(24 * time.Hour)
	w.RunOnce(ctx)
	if got := u.events(d.ID); !slices.Equal(got, []string{"rotation.started", "rotation.waiting", "rotation.waiting"}) {
		t.Fatalf("events a day later: %q", got)
	}
	// The metrics count the same steps, and show the others from zero.
	for typ, want := range map[string]int{"domain.dkim.rotation.started": 1, "domain.dkim.rotation.waiting": 2,
		"domain.dkim.rotation.retired": 0, "domain.dkim.update_failed": 0} {
		if got := u.counted(typ); got != want {
			t.Errorf("rotation events counted for %s: %d, want %d", typ, got, want)
		}
	}

	// A domain never verified is not rotated when due; it is looked at again
	// a period later.
	other, err := u.apps[0].Domains().Add(ctx, u.proj, "other.shop.example", "")
	if err != nil {
		t.Fatal(err)
	}
	u.clock.Advance(cfg.RotateEvery)
	w.RunOnce(ctx)
	if r := u.rot(other.ID); r.State != domain.RotationIdle || !r.StepAt.Equal(u.clock.Now().Add(cfg.RotateEvery)) {
		t.Fatalf("unverified domain's rotation: %+v", r)
	}
}

// TestRacingRotators: two replicas step the same rotation at once, and
// rotate-now races them; each step is taken once, and its event stored once.
func TestRacingRotators(t *testing.T) {
	u := newUnit(t, rotation.DefaultConfig())
	d := u.add(true)
	ctx := t.Context()

	errs := make([]error, 4)
	testenv.Race(4, func(i int) { _, errs[i] = u.apps[i%2].Domains().RotateDKIM(ctx, u.proj, d.ID) })
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
		}
	}
	if ok != 1 {
		t.Fatalf("%d of 4 racing rotate-now calls started a rotation: %v", ok, errs)
	}
	u.publish(u.mustDomain(d.ID), domain.KeyDKIMNext)
	testenv.Race(4, func(i int) {
		if err := u.apps[i%2].Rotator().Step(ctx, d.ID); err != nil {
			t.Error(err)
		}
	})
	if got := u.events(d.ID); !slices.Equal(got, []string{"rotation.started", "rotation.visible", "rotation.switched"}) {
		t.Fatalf("events: %q", got)
	}
	if r := u.rot(d.ID); r.State != domain.RotationSwitched || r.CurrentSelector != "autosend2" {
		t.Fatalf("after the race: %+v", r)
	}

	// A domain deleted mid-rotation ends its rotation with it.
	if err := u.apps[0].Domains().Delete(ctx, u.proj, d.ID); err != nil {
		t.Fatal(err)
	}
	if err := u.apps[0].Rotator().Step(ctx, d.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("step of a deleted domain: %v", err)
	}
}

func (u *unit) mustDomain(id string) *domain.Domain {
	u.t.Helper()
	d, err := u.st.Domain(u.t.Context(), u.proj, id)
	if err != nil {
		u.t.Fatal(err)
	}
	return d
}

// TestBackoff: failed updates are retried after a doubling wait, bounded.
func TestBackoff(t *testing.T) {
	r := &rotation.Rotator{RetryBase: time.Second, RetryMax: 10 * time.Second}
	var got []time.Duration
	for i := 1; i <= 6; i++ {
		got = append(got, r.Backoff(i))
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	if !slices.Equal(got, want) {
		t.Fatalf("backoff %v, want %v", got, want)
	}
}
