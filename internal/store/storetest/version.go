package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/store"
)

// testFinishCheckChanged checks that FinishCheck saves only over the version of
// the domain the check read: a check that read the domain before another write
// changed what it reads (receiving switched on, a rotation's record moves) is
// refused with ErrChanged, saves nothing and keeps its lease, while a check
// that read the latest version saves, and may save again.
func testFinishCheckChanged(t *testing.T, s store.Store) {
	ctx := t.Context()
	p := project(t, s, "acme")
	d := signingDomain(t, s, p, "version.example")
	now := at(time.Hour)
	if ok, err := s.AcquireCheck(ctx, d.ID, "a", now, time.Hour); err != nil || !ok {
		t.Fatalf("AcquireCheck = %v, %v", ok, err)
	}

	read := getDomain(t, s, p.ID, d.ID)
	c := clone(read)
	c.LastCheckedAt = now
	if err := s.FinishCheck(ctx, c, nil, "a"); err != nil {
		t.Fatalf("FinishCheck over the version read: %v", err)
	}
	if got := getDomain(t, s, p.ID, d.ID); got.Version != c.Version || c.Version == read.Version {
		t.Fatalf("version after a save: stored %d, the saved domain's %d, read %d; want the stored one moved on and given back",
			got.Version, c.Version, read.Version)
	}
	// The version FinishCheck gave back is the stored one: a second save over
	// it goes through.
	c.LastCheckedAt = now.Add(time.Second)
	if err := s.FinishCheck(ctx, c, nil, "a"); err != nil {
		t.Fatalf("second FinishCheck: %v", err)
	}

	// Every write that changes what a check reads makes an earlier read stale.
	// The saves ended the lease: the refused saves below must keep this one.
	if ok, err := s.AcquireCheck(ctx, d.ID, "a", now.Add(2*time.Second), time.Hour); err != nil || !ok {
		t.Fatalf("AcquireCheck again = %v, %v", ok, err)
	}
	every := 180 * 24 * time.Hour
	if err := s.InitRotation(ctx, d.ID, t0, every); err != nil {
		t.Fatal(err)
	}
	rot, err := s.Rotation(ctx, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	start := rot
	start.State, start.StartedAt = domain.RotationGenerated, at(2*time.Hour)
	start.NextSelector, start.NextValue, start.NextSealed = "autosend2", "v=DKIM1; k=rsa; p=NEXT", []byte("sealed-next")
	next := &domain.Record{Key: domain.KeyDKIMNext, Type: "TXT", Name: "autosend2._domainkey." + d.Name, Value: start.NextValue,
		Purpose: domain.PurposeOf(domain.KeyDKIMNext, "TXT", ""), Status: domain.CheckUnchecked, CreatedAt: at(2 * time.Hour), UpdatedAt: at(2 * time.Hour)}
	vis := start
	vis.State, vis.VisibleAt = domain.RotationVisible, at(3*time.Hour)
	sw := vis
	sw.State, sw.SwitchedAt, sw.RetireAt = domain.RotationSwitched, at(3*time.Hour), at(4*time.Hour)
	sw.PrevSelector, sw.PrevValue, sw.CurrentSelector, sw.CurrentValue = rot.CurrentSelector, rot.CurrentValue, "autosend2", start.NextValue
	sw.NextSelector, sw.NextValue, sw.NextSealed = "", "", nil
	ret := sw
	ret.State = domain.RotationRetiring
	idle := ret
	idle.State, idle.RetiredAt, idle.PrevSelector, idle.PrevValue = domain.RotationIdle, at(5*time.Hour), "", ""
	revoked := &domain.Record{Value: domain.RevokedDKIMValue, Purpose: domain.PurposeOf(domain.KeyDKIMPrevious, "TXT", domain.RevokedDKIMValue), UpdatedAt: at(5 * time.Hour)}

	writes := []struct {
		name  string
		write func() error
	}{
		{"SaveInbound", func() error {
			in := getDomain(t, s, p.ID, d.ID)
			in.InboundEnabledAt = at(90 * time.Minute)
			return s.SaveInbound(ctx, in)
		}},
		{"StartRotation", func() error { return s.StartRotation(ctx, start, domain.RotationIdle, next, nil) }},
		{"SwitchRotation", func() error {
			if err := s.SaveRotation(ctx, vis, domain.RotationGenerated, nil); err != nil {
				return err
			}
			return s.SwitchRotation(ctx, sw, at(3*time.Hour), nil)
		}},
		{"RetireRotation", func() error {
			if err := s.SaveRotation(ctx, ret, domain.RotationSwitched, nil); err != nil {
				return err
			}
			return s.RetireRotation(ctx, idle, revoked, nil)
		}},
	}
	for i, w := range writes {
		before := getDomain(t, s, p.ID, d.ID)
		if err := w.write(); err != nil {
			t.Fatalf("%s: %v", w.name, err)
		}
		after := getDomain(t, s, p.ID, d.ID)
		stale := clone(before)
		stale.Status, stale.LastCheckedAt = domain.StatusVerified, now.Add(time.Duration(i+3)*time.Second)
		if err := s.FinishCheck(ctx, stale, nil, "a"); !errors.Is(err, store.ErrChanged) {
			t.Fatalf("FinishCheck of a domain read before %s = %v, want ErrChanged", w.name, err)
		}
		got := getDomain(t, s, p.ID, d.ID)
		if got.Status != after.Status || !got.LastCheckedAt.Equal(after.LastCheckedAt) || got.Version != after.Version {
			t.Fatalf("a refused save after %s changed the domain: status %s, last checked %v, version %d; want %s, %v, %d",
				w.name, got.Status, got.LastCheckedAt, got.Version, after.Status, after.LastCheckedAt, after.Version)
		}
		if got.CheckingUntil.IsZero() {
			t.Fatalf("a refused save after %s ended the check's lease", w.name)
		}
	}

	// A save of a deleted domain is ErrNotFound, whatever the version.
	gone := getDomain(t, s, p.ID, d.ID)
	if err := s.DeleteDomain(ctx, p.ID, d.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishCheck(ctx, gone, nil, "a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("FinishCheck of a deleted domain = %v, want ErrNotFound", err)
	}
}
