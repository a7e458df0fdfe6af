package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/store"
)

// signingDomain stores a domain named name whose DKIM record (selector
// autosend) verified, so that it signs.
func signingDomain(t *testing.T, s store.Store, p store.Project, name string) *domain.Domain {
	t.Helper()
	d := sampleDomain(p.ID, newID(t), name, t0)
	r := d.Record(domain.KeyDKIM)
	r.Value, r.Verified, r.Status, r.Failures = "v=DKIM1; k=rsa; p=CUR", true, domain.CheckVerified, 0
	createDomain(t, s, d)
	return d
}

func signingSelectors(t *testing.T, s store.Store, name string) []string {
	t.Helper()
	keys, err := s.SigningKeys(t.Context(), []string{name})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range keys {
		out = append(out, k.Selector+"="+string(k.Sealed))
	}
	return out
}

func rotationEvent(t *testing.T, d *domain.Domain, typ domain.EventType, at time.Time) []store.Event {
	t.Helper()
	id, err := store.NewID("evt_")
	if err != nil {
		t.Fatal(err)
	}
	return []store.Event{{ID: id, ProjectID: d.ProjectID, DomainID: d.ID, Type: typ, Payload: []byte(`{"type":"` + string(typ) + `"}`), CreatedAt: at}}
}

// testRotationsTXT takes a txt-mode rotation row through every step: rows
// made for older domains, claims, the compare-and-set on the state, the
// records a start and a switch move, the key that signs, and retirement.
func testRotationsTXT(t *testing.T, s store.Store) {
	ctx := t.Context()
	p := project(t, s, "acme")
	d := signingDomain(t, s, p, "rot.example")
	other := signingDomain(t, s, p, "other.example")

	if _, err := s.Rotation(ctx, d.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Rotation before any row: %v, want ErrNotFound", err)
	}
	every := 180 * 24 * time.Hour
	// The walk looks at one window of ids at a time, in id order, and says
	// where it stopped.
	first, second := min(d.ID, other.ID), max(d.ID, other.ID)
	n, last, err := s.InitRotations(ctx, at(time.Hour), every, "", 1)
	if err != nil || n != 1 || last != first {
		t.Fatalf(`InitRotations("", limit 1) = %d, %q, %v; want 1, %q`, n, last, err, first)
	}
	if n, last, err = s.InitRotations(ctx, at(time.Hour), every, last, 10); err != nil || n != 1 || last != second {
		t.Fatalf("InitRotations after %s = %d, %q, %v; want the 1 left, %q", first, n, last, err, second)
	}
	if n, last, err = s.InitRotations(ctx, at(time.Hour), every, last, 10); err != nil || n != 0 || last != "" {
		t.Fatalf("InitRotations past the last = %d, %q, %v; want 0, \"\"", n, last, err)
	}
	if n, last, err = s.InitRotations(ctx, at(time.Hour), every, "", 10); err != nil || n != 0 || last != second {
		t.Fatalf("InitRotations over domains with rows = %d, %q, %v; want 0, %q", n, last, err, second)
	}
	rot, err := s.Rotation(ctx, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	dkimCreated := msUTC(d.Record(domain.KeyDKIM).CreatedAt)
	if rot.Domain != d.Name || rot.ProjectID != p.ID || rot.Mode != domain.DKIMModeTXT || rot.State != domain.RotationIdle ||
		rot.CurrentSelector != "autosend" || rot.CurrentValue != "v=DKIM1; k=rsa; p=CUR" ||
		!rot.CurrentSince.Equal(dkimCreated) || !rot.StepAt.Equal(msUTC(at(time.Hour)).Add(every)) {
		t.Fatalf("initial row = %+v", rot)
	}
	// A key newer than now is due a period after its creation.
	fresh := signingDomain(t, s, p, "fresh.example")
	if err := s.InitRotation(ctx, fresh.ID, t0.Add(-time.Hour), every); err != nil {
		t.Fatalf("InitRotation of a new domain: %v", err)
	}
	if r, err := s.Rotation(ctx, fresh.ID); err != nil || !r.StepAt.Equal(msUTC(fresh.Record(domain.KeyDKIM).CreatedAt).Add(every)) {
		t.Fatalf("new domain's row = %+v, %v", r, err)
	}
	if err := s.DeleteDomain(ctx, p.ID, fresh.ID); err != nil {
		t.Fatal(err)
	}
	// CreateRotation leaves an existing row alone.
	if err := s.CreateRotation(ctx, store.Rotation{DomainID: d.ID, ProjectID: p.ID, Mode: domain.DKIMModeCNAME, State: domain.RotationIdle, CurrentSelector: "x"}); err != nil {
		t.Fatal(err)
	}
	if again, _ := s.Rotation(ctx, d.ID); again.Mode != domain.DKIMModeTXT || again.CurrentSelector != "autosend" {
		t.Fatalf("CreateRotation over a row changed it: %+v", again)
	}

	// Claims hand out due rows once per lease.
	due := rot.StepAt
	if ids, err := s.ClaimRotations(ctx, due.Add(-time.Millisecond), time.Minute, 10); err != nil || len(ids) != 0 {
		t.Fatalf("claim before due = %v, %v", ids, err)
	}
	ids, err := s.ClaimRotations(ctx, due, time.Minute, 1)
	if err != nil || len(ids) != 1 {
		t.Fatalf("claim at due (limit 1) = %v, %v", ids, err)
	}
	ids2, err := s.ClaimRotations(ctx, due, time.Minute, 10)
	if err != nil || len(ids2) != 1 || ids2[0] == ids[0] {
		t.Fatalf("second claim = %v, %v; want only the other row", ids2, err)
	}
	if ids, _ := s.ClaimRotations(ctx, due.Add(time.Minute), time.Minute, 10); len(ids) != 2 {
		t.Fatalf("claim after the lease = %v, want both", ids)
	}

	// Start: from idle only, with the next key and its record.
	start := rot
	start.State, start.Reason, start.StartedAt = domain.RotationGenerated, "requested", at(2*time.Hour)
	start.NextSelector, start.NextValue, start.NextSealed = "autosend2", "v=DKIM1; k=rsa; p=NEXT", []byte("sealed-next")
	next := &domain.Record{Key: domain.KeyDKIMNext, Type: "TXT", Name: "autosend2._domainkey." + d.Name, Value: start.NextValue,
		Purpose: domain.PurposeOf(domain.KeyDKIMNext, "TXT", ""), Status: domain.CheckUnchecked, CreatedAt: at(2 * time.Hour), UpdatedAt: at(2 * time.Hour)}
	if err := s.StartRotation(ctx, start, domain.RotationVisible, next, nil); !errors.Is(err, store.ErrStale) {
		t.Fatalf("StartRotation from the wrong state: %v, want ErrStale", err)
	}
	if err := s.StartRotation(ctx, start, domain.RotationIdle, next, rotationEvent(t, d, domain.EventDKIMRotationStarted, at(2*time.Hour))); err != nil {
		t.Fatal(err)
	}
	if err := s.StartRotation(ctx, start, domain.RotationIdle, next, nil); !errors.Is(err, store.ErrStale) {
		t.Fatalf("second StartRotation: %v, want ErrStale", err)
	}
	got, err := s.Domain(ctx, p.ID, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if r := got.Record(domain.KeyDKIMNext); r == nil || r.Value != next.Value || got.Records[len(got.Records)-1].Key != domain.KeyDKIMNext {
		t.Fatalf("records after start: %+v", got.Records)
	}
	if sel := signingSelectors(t, s, d.Name); !slices.Equal(sel, []string{"autosend=" + string(sealedKey(d.Name))}) {
		t.Fatalf("signing after start = %v, want the current key", sel)
	}

	// The switch runs only from visible.
	vis := start
	vis.State, vis.VisibleAt = domain.RotationVisible, at(3*time.Hour)
	sw := vis
	sw.State, sw.SwitchedAt, sw.RetireAt = domain.RotationSwitched, at(3*time.Hour), at(3*time.Hour+7*24*time.Hour)
	sw.PrevSelector, sw.PrevValue, sw.CurrentSelector, sw.CurrentValue = "autosend", rot.CurrentValue, "autosend2", start.NextValue
	sw.NextSelector, sw.NextValue, sw.NextSealed = "", "", nil
	if err := s.SwitchRotation(ctx, sw, at(3*time.Hour), nil); !errors.Is(err, store.ErrStale) {
		t.Fatalf("SwitchRotation from generated: %v, want ErrStale", err)
	}
	if err := s.SaveRotation(ctx, vis, domain.RotationGenerated, rotationEvent(t, d, domain.EventDKIMRotationVisible, at(3*time.Hour))); err != nil {
		t.Fatal(err)
	}
	// A customer's verify that read the domain before the switch, and found
	// the next key not yet published, is saved after it (over any version).
	stale, err := s.Domain(ctx, p.ID, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	staleNext := stale.Record(domain.KeyDKIMNext)
	staleNext.Status, staleNext.Failures, staleNext.CheckedAt = domain.CheckMissing, 1, at(2*time.Hour+30*time.Minute)
	staleNext.Problems = []domain.Problem{{Code: "NOT_FOUND", Message: "stale"}}
	stale.Record(domain.KeyDKIM).CheckedAt = at(2*time.Hour + 30*time.Minute)
	if err := s.SwitchRotation(ctx, sw, at(3*time.Hour), rotationEvent(t, d, domain.EventDKIMRotationSwitched, at(3*time.Hour))); err != nil {
		t.Fatal(err)
	}
	if sel := signingSelectors(t, s, d.Name); !slices.Equal(sel, []string{"autosend2=sealed-next"}) {
		t.Fatalf("signing after switch = %v, want the next key at autosend2", sel)
	}
	if err := s.SaveCheck(ctx, stale, nil); err != nil {
		t.Fatal(err)
	}
	// The switch looked at the new key later than the verify did: it still
	// signs. What the verify found of the old key holds of it as the previous.
	if sel := signingSelectors(t, s, d.Name); !slices.Equal(sel, []string{"autosend2=sealed-next"}) {
		t.Fatalf("signing after a verify read before the switch was saved = %v, want the next key at autosend2", sel)
	}
	got, _ = s.Domain(ctx, p.ID, d.ID)
	if cur := got.Record(domain.KeyDKIM); cur == nil || !cur.Verified || cur.Status != domain.CheckVerified || cur.Failures != 0 ||
		len(cur.Problems) != 0 || !cur.CheckedAt.Equal(msUTC(at(3*time.Hour))) {
		t.Fatalf("dkim record after a stale verify's save: %+v", cur)
	}
	if prev := got.Record(domain.KeyDKIMPrevious); prev == nil || !prev.Verified || !prev.CheckedAt.Equal(msUTC(at(2*time.Hour+30*time.Minute))) {
		t.Fatalf("previous record after a stale verify's save: %+v; want the old key's check, under its new key", prev)
	}
	if key, err := s.SealedDKIMKey(ctx, d.ID); err != nil || string(key) != "sealed-next" {
		t.Fatalf("SealedDKIMKey after switch = %q, %v", key, err)
	}
	got, _ = s.Domain(ctx, p.ID, d.ID)
	cur, prev := got.Record(domain.KeyDKIM), got.Record(domain.KeyDKIMPrevious)
	if got.Record(domain.KeyDKIMNext) != nil || cur == nil || cur.Name != next.Name || !cur.Verified || cur.Status != domain.CheckVerified ||
		prev == nil || prev.Name != "autosend._domainkey."+d.Name || prev.Value != rot.CurrentValue {
		t.Fatalf("records after switch: %+v", got.Records)
	}
	if sel := signingSelectors(t, s, other.Name); !slices.Equal(sel, []string{"autosend=" + string(sealedKey(other.Name))}) {
		t.Fatalf("another domain's key changed: %v", sel)
	}
	stored, _ := s.Rotation(ctx, d.ID)
	if stored.State != domain.RotationSwitched || stored.NextSealed != nil || !stored.RetireAt.Equal(msUTC(sw.RetireAt)) || stored.PrevSelector != "autosend" {
		t.Fatalf("row after switch: %+v", stored)
	}
	// The values read back as stored, however the store keeps them (the
	// current one may be the dkim record's).
	if stored.CurrentValue != start.NextValue || stored.PrevValue != rot.CurrentValue || cur.Value != start.NextValue {
		t.Fatalf("values after switch: current %q previous %q, dkim record %q; want %q, %q", stored.CurrentValue,
			stored.PrevValue, cur.Value, start.NextValue, rot.CurrentValue)
	}

	// Retirement revokes the previous record.
	ret := sw
	ret.State = domain.RotationRetiring
	if err := s.SaveRotation(ctx, ret, domain.RotationSwitched, nil); err != nil {
		t.Fatal(err)
	}
	idle := ret
	idle.State, idle.RetiredAt, idle.PrevSelector, idle.PrevValue = domain.RotationIdle, at(200*time.Hour), "", ""
	revoked := &domain.Record{Value: domain.RevokedDKIMValue, Purpose: domain.PurposeOf(domain.KeyDKIMPrevious, "TXT", domain.RevokedDKIMValue), UpdatedAt: at(200 * time.Hour)}
	if err := s.RetireRotation(ctx, idle, revoked, rotationEvent(t, d, domain.EventDKIMRotationRetired, at(200*time.Hour))); err != nil {
		t.Fatal(err)
	}
	got, _ = s.Domain(ctx, p.ID, d.ID)
	// What was found of the old key (verified, by the stale verify above)
	// does not hold of the revoked record.
	if prev := got.Record(domain.KeyDKIMPrevious); prev == nil || prev.Value != "v=DKIM1; p=" || prev.Verified || prev.Status != domain.CheckUnchecked ||
		!prev.CheckedAt.IsZero() || prev.Failures != 0 || len(prev.Found) != 0 || len(prev.Propagation) != 0 {
		t.Fatalf("previous record after retirement: %+v", prev)
	}
	if r, err := s.Rotation(ctx, d.ID); err != nil || r.CurrentValue != start.NextValue || r.PrevValue != "" || r.ProjectID != p.ID {
		t.Fatalf("row after retirement = %+v, %v; want the current value %q", r, err, start.NextValue)
	}
	evs, total, err := s.Events(ctx, p.ID, d.ID, store.Page{})
	if err != nil || total != 4 || evs[0].Type != domain.EventDKIMRotationRetired || evs[3].Type != domain.EventDKIMRotationStarted {
		t.Fatalf("events = %d %v", total, err)
	}

	// A new rotation replaces the revoked previous record with the next one.
	start2 := idle
	start2.State, start2.NextSelector, start2.NextValue, start2.NextSealed = domain.RotationGenerated, "autosend", "v=DKIM1; k=rsa; p=THIRD", []byte("third")
	next2 := *next
	next2.Name, next2.Value = "autosend._domainkey."+d.Name, start2.NextValue
	if err := s.StartRotation(ctx, start2, domain.RotationIdle, &next2, nil); err != nil {
		t.Fatal(err)
	}
	got, _ = s.Domain(ctx, p.ID, d.ID)
	if got.Record(domain.KeyDKIMPrevious) != nil || got.Record(domain.KeyDKIMNext) == nil || got.Record(domain.KeyDKIMNext).Name != next2.Name {
		t.Fatalf("records after the second start: %+v", got.Records)
	}

	if ids, err := s.DomainIDsByName(ctx, d.Name); err != nil || len(ids) != 1 || ids[0].ID != d.ID || ids[0].ProjectID != p.ID {
		t.Fatalf("DomainIDsByName = %v, %v", ids, err)
	}
	if err := s.DeleteDomain(ctx, p.ID, d.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Rotation(ctx, d.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Rotation after delete: %v, want ErrNotFound", err)
	}
	if err := s.SaveRotation(ctx, idle, domain.RotationIdle, nil); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("SaveRotation after delete: %v, want ErrNotFound", err)
	}
}

// testRotationsCNAME checks cname mode: a domain signs only once its key was
// seen in the operator's zone, and a switch swaps the two CNAME records.
func testRotationsCNAME(t *testing.T, s store.Store) {
	ctx := t.Context()
	p := project(t, s, "acme")
	d := sampleDomain(p.ID, newID(t), "cn.example", t0)
	for i := range d.Records {
		if d.Records[i].Key == domain.KeyDKIM {
			d.Records[i] = domain.Record{Key: domain.KeyDKIM, Type: "CNAME", Name: "autosend._domainkey.cn.example", Value: "autosend.cn.example.dkim.example",
				Verified: true, Status: domain.CheckVerified, CreatedAt: t0, UpdatedAt: t0}
		}
	}
	// The second CNAME was still missing at its last regular check: the
	// customer published it later, and the rotator saw it lead to the key.
	d.Records = append(d.Records, domain.Record{Key: domain.KeyDKIM2, Type: "CNAME", Name: "autosend2._domainkey.cn.example", Value: "autosend2.cn.example.dkim.example",
		Status: domain.CheckMissing, Failures: 2, Problems: []domain.Problem{{Code: "NOT_FOUND", Message: "missing"}}, CreatedAt: t0, UpdatedAt: t0})
	createDomain(t, s, d)
	rot := store.Rotation{DomainID: d.ID, ProjectID: p.ID, Mode: domain.DKIMModeCNAME, State: domain.RotationIdle,
		CurrentSelector: "autosend", CurrentValue: "v=DKIM1; k=rsa; p=CUR", CurrentSince: t0, StepAt: t0}
	if err := s.CreateRotation(ctx, rot); err != nil {
		t.Fatal(err)
	}
	if n, _, err := s.InitRotations(ctx, t0, time.Hour, "", 10); err != nil || n != 0 {
		t.Fatalf("InitRotations over a cname-mode domain = %d, %v", n, err)
	}
	if sel := signingSelectors(t, s, d.Name); len(sel) != 0 {
		t.Fatalf("signing before the key was seen: %v", sel)
	}
	rot.Domain = d.Name
	rot.CurrentVisibleAt = at(time.Minute)
	if err := s.SaveRotation(ctx, rot, domain.RotationIdle, nil); err != nil {
		t.Fatal(err)
	}
	if sel := signingSelectors(t, s, d.Name); !slices.Equal(sel, []string{"autosend=" + string(sealedKey(d.Name))}) {
		t.Fatalf("signing once seen = %v", sel)
	}
	vis := rot
	vis.State, vis.NextSelector, vis.NextValue, vis.NextSealed = domain.RotationVisible, "autosend2", "v=DKIM1; k=rsa; p=NEXT", []byte("next")
	if err := s.SaveRotation(ctx, vis, domain.RotationIdle, nil); err != nil {
		t.Fatal(err)
	}
	sw := vis
	sw.State, sw.CurrentSelector, sw.CurrentValue, sw.PrevSelector = domain.RotationSwitched, "autosend2", vis.NextValue, "autosend"
	if err := s.SwitchRotation(ctx, sw, at(time.Hour), nil); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Domain(ctx, p.ID, d.ID)
	if c1, c2 := got.Record(domain.KeyDKIM), got.Record(domain.KeyDKIM2); c1.Name != "autosend2._domainkey.cn.example" || c2.Name != "autosend._domainkey.cn.example" || len(got.Records) != len(d.Records) {
		t.Fatalf("records after a cname switch: %+v", got.Records)
	}
	if sel := signingSelectors(t, s, d.Name); !slices.Equal(sel, []string{"autosend2=next"}) {
		t.Fatalf("signing after a cname switch = %v", sel)
	}
	if c1 := got.Record(domain.KeyDKIM); !c1.Verified || c1.Status != domain.CheckVerified || c1.Failures != 0 || len(c1.Problems) != 0 {
		t.Fatalf("the switched-to CNAME keeps its last check's failure: %+v", c1)
	}
}

// testCreateDomainRotating checks that a domain and its rotation row are
// stored together or not at all.
func testCreateDomainRotating(t *testing.T, s store.Store) {
	ctx := t.Context()
	p := project(t, s, "acme")
	d := sampleDomain(p.ID, newID(t), "together.example", t0)
	rot := store.Rotation{DomainID: d.ID, ProjectID: p.ID, Mode: domain.DKIMModeCNAME, State: domain.RotationIdle,
		CurrentSelector: "autosend", CurrentValue: "v=DKIM1; k=rsa; p=CUR", CurrentSince: t0, StepAt: t0}
	// A row that cannot be stored (it names no domain) takes the domain with it.
	bad := rot
	bad.DomainID = newID(t)
	if err := s.CreateDomainRotating(ctx, clone(d), sealedKey(d.Name), bad); err == nil {
		t.Fatal("CreateDomainRotating with a row for another domain succeeded")
	}
	if _, err := s.Domain(ctx, p.ID, d.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the domain was stored without its rotation row: %v", err)
	}
	if err := s.CreateDomainRotating(ctx, clone(d), sealedKey(d.Name), rot); err != nil {
		t.Fatal(err)
	}
	got, err := s.Rotation(ctx, d.ID)
	if err != nil || got.Mode != domain.DKIMModeCNAME || got.CurrentSelector != "autosend" {
		t.Fatalf("rotation row = %+v, %v", got, err)
	}
	checkDomain(t, getDomain(t, s, p.ID, d.ID), d)
	if err := s.CreateDomainRotating(ctx, clone(d), sealedKey(d.Name), rot); !errors.Is(err, store.ErrDomainExists) {
		t.Fatalf("CreateDomainRotating again: %v, want ErrDomainExists", err)
	}
}
