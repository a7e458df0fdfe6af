package domains

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/fault"
	"github.com/domaind/domaind/internal/store"
)

// checkingStore is a store in which a check of the domain saves right after the
// first read of it, as a scheduled check that finishes between a switch's read
// and its save does.
type checkingStore struct {
	store.Store
	reads   atomic.Int32
	checked time.Time
	always  bool // a check saves after every read, not only the first
}

func (s *checkingStore) Domain(ctx context.Context, projectID int64, id string) (*domain.Domain, error) {
	d, err := s.Store.Domain(ctx, projectID, id)
	if err != nil || (s.reads.Add(1) > 1 && !s.always) {
		return d, err
	}
	c, err := s.Store.Domain(ctx, projectID, id)
	if err != nil {
		return nil, err
	}
	c.LastCheckedAt, c.NextCheckAt, c.CheckAttempt = s.checked, s.checked.Add(time.Hour), 3
	return d, s.Store.FinishCheck(ctx, c, nil, "checker")
}

// verifiedDomain adds the domain name to a new service's project "acme" and
// marks it VERIFIED, as receiving requires.
func verifiedDomain(t *testing.T, name string) (*Service, store.Store, int64, *domain.Domain) {
	t.Helper()
	p := newKeygenProbe()
	close(p.release)
	s, st, project := newService(t, p, NewKeyGate(1, 0))
	ctx := t.Context()
	d, err := s.Add(ctx, project, name, "")
	if err != nil {
		t.Fatal(err)
	}
	v, err := st.Domain(ctx, project, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	v.Status = domain.StatusVerified
	if err := st.FinishCheck(ctx, v, nil, "checker"); err != nil {
		t.Fatal(err)
	}
	return s, st, project, d
}

// TestSwitchInboundKeepsACheck: receiving switched on or off while a check saves
// the domain keeps both: the switch's save over the older read is refused, and
// the switch made again on the domain as the check left it.
func TestSwitchInboundKeepsACheck(t *testing.T) {
	s, st, project, d := verifiedDomain(t, "inbound-switch.com")
	ctx := t.Context()
	for _, tc := range []struct {
		name    string
		switch_ func(context.Context, int64, string) (*domain.Domain, error)
		on      bool
	}{
		{"enable", s.EnableInbound, true},
		{"disable", s.DisableInbound, false},
	} {
		cs := &checkingStore{Store: st, checked: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC).Add(time.Duration(len(tc.name)) * time.Hour)}
		s.Store = cs
		got, err := tc.switch_(ctx, project, d.ID)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		stored, err := st.Domain(ctx, project, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if stored.Receiving() != tc.on || got.Receiving() != tc.on {
			t.Errorf("%s: receiving %v (answered %v), want %v", tc.name, stored.Receiving(), got.Receiving(), tc.on)
		}
		if !stored.LastCheckedAt.Equal(cs.checked) {
			t.Errorf("%s: last checked %v, want %v: the check that saved meanwhile was lost", tc.name, stored.LastCheckedAt, cs.checked)
		}
		// Switching receiving off keeps the schedule the check set (switching
		// it on starts one of its own): a save over the read from before the
		// check would put the older one back.
		if !tc.on && (!stored.NextCheckAt.Equal(cs.checked.Add(time.Hour)) || stored.CheckAttempt != 3) {
			t.Errorf("%s: next check %v, attempt %d; want %v, 3: the check's schedule was overwritten",
				tc.name, stored.NextCheckAt, stored.CheckAttempt, cs.checked.Add(time.Hour))
		}
		if n := cs.reads.Load(); n != 2 {
			t.Errorf("%s read the domain %d times, want 2 (again after its save was refused)", tc.name, n)
		}
		if got.Version != stored.Version {
			t.Errorf("%s answered version %d, stored %d", tc.name, got.Version, stored.Version)
		}
	}
}

// TestSwitchInboundBusy: a domain saved by checks after every read of the switch
// is answered busy (429 with Retry-After) after three tries, not with an
// internal error, and left as the checks saved it.
func TestSwitchInboundBusy(t *testing.T) {
	s, st, project, d := verifiedDomain(t, "inbound-busy.com")
	ctx := t.Context()
	cs := &checkingStore{Store: st, checked: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC), always: true}
	s.Store = cs
	_, err := s.EnableInbound(ctx, project, d.ID)
	if f := fault.As(err); f == nil || f.Code != fault.Busy || f.RetryAfter <= 0 {
		t.Fatalf("EnableInbound of a domain saved after every read = %v, want busy with a Retry-After", err)
	}
	if n := cs.reads.Load(); n != maxInboundTries {
		t.Errorf("read the domain %d times, want %d", n, maxInboundTries)
	}
	if got, err := st.Domain(ctx, project, d.ID); err != nil || got.Receiving() {
		t.Errorf("after a refused switch: receiving %v, %v; want off", got != nil && got.Receiving(), err)
	}
}
