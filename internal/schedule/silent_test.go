package schedule_test

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/domaind/domaind/internal/dnscheck"
	"github.com/domaind/domaind/internal/dnstest"
	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/schedule"
	"github.com/domaind/domaind/internal/store"
	"github.com/domaind/domaind/internal/store/storetest"
	"github.com/domaind/domaind/internal/verify"
)

// TestSilentDNSFailsInTime runs the worker and the verifier against a real DNS
// server on loopback that never answers, with a per-query timeout longer than
// the whole check's: every check runs out of time. Each one is saved all the same,
// with DNS_TIMEOUT on every record and the next check moved by the back-off, and
// the domain is given up on when its (compressed) window closes, instead of being
// claimed again and again with nothing recorded.
func TestSilentDNSFailsInTime(t *testing.T) {
	silent := dnstest.Start(t, dnstest.NewZone("example.com."))
	silent.SetFault("", 0, dnstest.Drop)
	checker, err := dnscheck.New(dnscheck.Config{Resolvers: []string{silent.Addr()}, Mode: dnscheck.ModeRecursive,
		Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	st := openStore(t)
	p := storetest.Project(t, st, "acme")
	policy := domain.Recheck{
		Steps:         []time.Duration{50 * time.Millisecond, 100 * time.Millisecond},
		GiveUpAfter:   time.Second,
		ReverifyEvery: time.Hour,
	}
	v := verify.New(st, checker, verify.Config{
		Budget: time.Second, CheckTimeout: 100 * time.Millisecond, Rules: domain.Rules{DegradeAfter: 1}, Recheck: policy,
	}, nil, slog.New(slog.DiscardHandler))
	defer v.Close()

	id, err := domain.NewID(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	d := &domain.Domain{ID: id, ProjectID: p.ID, Name: "example.com", Region: "us-east-1",
		Status: domain.StatusPendingConfiguration, CreatedAt: now, LastCheckedAt: now}
	for _, k := range domain.SendingKeys {
		d.Records = append(d.Records, domain.Record{Key: k, Name: "_" + string(k) + ".example.com", Type: "TXT",
			Value: "v", Status: domain.CheckUnchecked, CreatedAt: now, UpdatedAt: now})
	}
	d.StartWindow(policy, now)
	if err := st.CreateDomain(t.Context(), d, []byte("k")); err != nil {
		t.Fatal(err)
	}

	run(t, &schedule.Worker{Store: st, Checker: v, Interval: 5 * time.Millisecond, Lease: time.Minute})

	// Bounded polling of the stored domain, as a client of the API would.
	get := func() *domain.Domain {
		got, err := st.Domain(context.Background(), p.ID, id)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	waitFor := func(what string, ok func(*domain.Domain) bool) *domain.Domain {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); ; {
			if got := get(); ok(got) {
				return got
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not happen within 20s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	got := waitFor("a timed-out check to be saved", func(d *domain.Domain) bool { return d.CheckAttempt >= 1 || !d.FailedAt.IsZero() })
	if got.FailedAt.IsZero() {
		// The back-off's second step, the last, repeats.
		if wait := got.NextCheckAt.Sub(got.LastCheckedAt); wait != policy.Steps[1] {
			t.Errorf("next check %v after the last, want the back-off's %v", wait, policy.Steps[1])
		}
	}
	for _, r := range got.Records {
		if r.Status != domain.CheckTemporaryFailure || len(r.Problems) == 0 || r.Problems[0].Code != dnscheck.CodeTimeout {
			t.Errorf("%s after a silent check: %s %+v, want a temporary failure with DNS_TIMEOUT", r.Key, r.Status, r.Problems)
		}
	}

	got = waitFor("the give-up", func(d *domain.Domain) bool { return !d.FailedAt.IsZero() })
	if got.State() != "failed" || !got.NextCheckAt.IsZero() {
		t.Errorf("after the window: state %s, next check %v; want failed and unscheduled", got.State(), got.NextCheckAt)
	}
	if got.FailedAt.Sub(got.WindowStartedAt) < policy.GiveUpAfter {
		t.Errorf("given up %v into the window, before its end %v", got.FailedAt.Sub(got.WindowStartedAt), policy.GiveUpAfter)
	}
	evs, _, err := st.Events(t.Context(), p.ID, id, store.Page{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(evs, func(e store.Event) bool { return e.Type == domain.EventFailed }) {
		t.Errorf("no %s event", domain.EventFailed)
	}
}
