package domains

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/store"
)

// checkingStore is a store in which a check of the domain saves right after the
// first read of it, as a scheduled check that finishes between a switch's read
// and its save does.
type checkingStore struct {
	store.Store
	reads   atomic.Int32
	checked time.Time
}

func (s *checkingStore) Domain(ctx context.Context, projectID int64, id string) (*domain.Domain, error) {
	d, err := s.Store.Domain(ctx, projectID, id)
	if err != nil || s.reads.Add(1) > 1 {
		return d, err
	}
	c, err := s.Store.Domain(ctx, projectID, id)
	if err != nil {
		return nil, err
	}
	c.LastCheckedAt = s.checked
	return d, s.Store.FinishCheck(ctx, c, nil, "checker")
}

// TestSwitchInboundKeepsACheck: receiving switched on or off while a check saves
// the domain keeps both: the switch's save over the older read is refused, and
// the switch made again on the domain as the check left it.
func TestSwitchInboundKeepsACheck(t *testing.T) {
	p := newKeygenProbe()
	close(p.release)
	s, st, project := newService(t, p, NewKeyGate(1, 0))
	ctx := t.Context()
	d, err := s.Add(ctx, project, "inbound-switch.com", "")
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
			t.Errorf("%s: last checked %v, want %v: the check that saved meanwhile was overwritten", tc.name, stored.LastCheckedAt, cs.checked)
		}
		if n := cs.reads.Load(); n != 2 {
			t.Errorf("%s read the domain %d times, want 2 (again after its save was refused)", tc.name, n)
		}
		if got.Version != stored.Version {
			t.Errorf("%s answered version %d, stored %d", tc.name, got.Version, stored.Version)
		}
	}
}
