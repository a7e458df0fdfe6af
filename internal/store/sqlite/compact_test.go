package sqlite

import (
	"crypto/rand"
	"encoding/base64"
	"reflect"
	"testing"
	"time"

	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/store"
	"github.com/domaind/domaind/internal/store/storetest"
)

// TestMigrateCompactStorage takes a database with data in it down through
// migration 00011 and up again: going down, the DKIM key kept as bytes comes
// back as its text, the records' times as times, and the rotations' project
// and current value as columns; going up, every domain, record and rotation
// reads back as it did.
func TestMigrateCompactStorage(t *testing.T) {
	ctx := t.Context()
	path, s, p := openAcme(t)

	key := make([]byte, 294) // a 2,048-bit RSA key's SubjectPublicKeyInfo
	rand.Read(key)
	keyValue := "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(key)
	txt := testDomain(t, p.ID)
	txt.Record(domain.KeyDKIM).Value = keyValue
	txt.Records = append(txt.Records, domain.Record{Key: domain.KeyInboundMX, Name: "example.com", Type: "MX", Priority: 10,
		Value: "in.example.net", Status: domain.CheckUnchecked, CreatedAt: t0.Add(time.Hour), UpdatedAt: t0.Add(time.Hour)})
	// Padded base64 stays text; so does a value not of the key record's form.
	cname := testDomain(t, p.ID)
	cname.Name = "cname.example"
	cname.Record(domain.KeyDKIM).Value = "v=DKIM1; k=rsa; p=QUI="
	rots := map[string]store.Rotation{
		txt.ID: {DomainID: txt.ID, ProjectID: p.ID, Domain: txt.Name, Mode: domain.DKIMModeTXT, State: domain.RotationIdle,
			CurrentSelector: "autosend", CurrentValue: keyValue, CurrentSince: t0, StepAt: t0.Add(time.Hour)},
		cname.ID: {DomainID: cname.ID, ProjectID: p.ID, Domain: cname.Name, Mode: domain.DKIMModeCNAME, State: domain.RotationIdle,
			CurrentSelector: "autosend", CurrentValue: keyValue, CurrentSince: t0, CurrentVisibleAt: t0.Add(time.Minute)},
	}
	for _, d := range []*domain.Domain{txt, cname} {
		if err := s.CreateDomainRotating(ctx, d, []byte{1}, rots[d.ID]); err != nil {
			t.Fatal(err)
		}
	}
	checked := t0.Add(2 * time.Hour)
	dkim := txt.Record(domain.KeyDKIM)
	dkim.Verified, dkim.Status, dkim.CheckedAt, dkim.UpdatedAt = true, domain.CheckVerified, checked, checked
	dkim.Found = []string{keyValue}
	// An event as the checks write it, kept less its start, and one kept
	// whole.
	events := storetest.CheckEvents(p.ID, txt.ID, checked)
	if err := s.SaveCheck(ctx, txt, events); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		id, typ string
		shared  bool
	}{{txt.ID, "blob", true}, {cname.ID, "text", false}} {
		var typ string
		var shared bool
		if err := s.r.QueryRowContext(ctx, `SELECT typeof(r.value), k.current_value IS NULL
			FROM domains d JOIN domain_records r ON r.domain_seq = d.seq AND r.key = 'dkim'
			JOIN dkim_rotations k ON k.domain_seq = d.seq WHERE d.id = ?`, tc.id).Scan(&typ, &shared); err != nil {
			t.Fatal(err)
		}
		if typ != tc.typ || shared != tc.shared {
			t.Errorf("%s: DKIM value kept as %s, rotation's current value shared %v; want %s, %v", tc.id, typ, shared, tc.typ, tc.shared)
		}
	}
	if kept := keptPayload(t, s, "evt_1"); kept != `"domain":"x"}}` {
		t.Errorf("event payload kept as %q; want its rest after the start the group gives, packed", kept)
	}
	want := map[string]*domain.Domain{}
	wantRot := map[string]store.Rotation{}
	for _, d := range []*domain.Domain{txt, cname} {
		got, err := s.Domain(ctx, p.ID, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		for i := range got.Records {
			if r, w := got.Records[i], d.Records[i]; r.Value != w.Value || !r.CreatedAt.Equal(w.CreatedAt) || !r.UpdatedAt.Equal(w.UpdatedAt) {
				t.Errorf("%s %s read back: value %q created %v updated %v; want %q, %v, %v", d.Name, r.Key,
					r.Value, r.CreatedAt, r.UpdatedAt, w.Value, w.CreatedAt, w.UpdatedAt)
			}
		}
		rot, err := s.Rotation(ctx, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if w := rots[d.ID]; rot.CurrentValue != w.CurrentValue || rot.ProjectID != p.ID || rot.Domain != d.Name {
			t.Errorf("%s rotation read back: current %q project %d domain %q", d.Name, rot.CurrentValue, rot.ProjectID, rot.Domain)
		}
		want[d.ID], wantRot[d.ID] = got, rot
	}

	migrateDown(t, s, 10)
	var value string
	var created, updated, project int64
	var current string
	if err := s.r.QueryRowContext(ctx, `SELECT r.value, r.created_at, r.updated_at, k.project_id, k.current_value
		FROM domain_records r JOIN dkim_rotations k ON k.domain_id = r.domain_id
		WHERE r.domain_id = ? AND r.key = 'dkim'`, txt.ID).Scan(&value, &created, &updated, &project, &current); err != nil {
		t.Fatal(err)
	}
	if value != keyValue || created != t0.UnixMilli() || updated != checked.UnixMilli() || project != p.ID || current != keyValue {
		t.Errorf("after going down to 10: value %q created %d updated %d project %d current %q", value, created, updated, project, current)
	}
	// The cname domain's current value is its own (its dkim record is a
	// CNAME), kept as bytes: it goes down as the text the old code reads.
	if err := s.r.QueryRowContext(ctx, `SELECT current_value FROM dkim_rotations WHERE domain_id = ?`, cname.ID).Scan(&current); err != nil || current != keyValue {
		t.Errorf("cname domain's current value after going down to 10: %q (%v); want %q", current, err, keyValue)
	}
	if err := s.r.QueryRowContext(ctx, `SELECT created_at FROM domain_records WHERE domain_id = ? AND key = 'inbound_mx'`,
		txt.ID).Scan(&created); err != nil || created != t0.Add(time.Hour).UnixMilli() {
		t.Errorf("inbound MX created at %d after going down to 10 (%v); want %d", created, err, t0.Add(time.Hour).UnixMilli())
	}
	for _, e := range events {
		var payload string
		if err := s.r.QueryRowContext(ctx, `SELECT payload FROM events WHERE id = ?`, e.ID).Scan(&payload); err != nil || payload != string(e.Payload) {
			t.Errorf("%s payload after going down to 10: %q (%v); want %q", e.ID, payload, err, e.Payload)
		}
	}
	var blank int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM domain_records WHERE status NOT IN ('unchecked', 'verified')`).Scan(&blank); err != nil || blank != 0 {
		t.Errorf("%d records of another status than unchecked or verified after going down to 10 (%v)", blank, err)
	}
	s.Close()

	s = open(t, path)
	defer s.Close()
	for _, d := range []*domain.Domain{txt, cname} {
		got, err := s.Domain(ctx, p.ID, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		// Going down past 00012 drops the version, which starts again.
		got.Version = want[d.ID].Version
		if !reflect.DeepEqual(got, want[d.ID]) {
			t.Errorf("%s after down and up:\n%+v\nwant\n%+v", d.Name, got, want[d.ID])
		}
		rot, err := s.Rotation(ctx, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(rot, wantRot[d.ID]) {
			t.Errorf("%s rotation after down and up:\n%+v\nwant\n%+v", d.Name, rot, wantRot[d.ID])
		}
	}
	var typ string
	if err := s.r.QueryRowContext(ctx, `SELECT typeof(r.value) FROM domains d JOIN domain_records r
		ON r.domain_seq = d.seq AND r.key = 'dkim' WHERE d.id = ?`, txt.ID).Scan(&typ); err != nil || typ != "blob" {
		t.Errorf("DKIM value kept as %s after up again (%v); want blob", typ, err)
	}
	storetest.SamePayloads(t, s, p.ID, txt.ID, events, "after down and up")
	if kept := keptPayload(t, s, "evt_1"); kept != `"domain":"x"}}` {
		t.Errorf("event payload kept as %q after up again; want its rest after the start the group gives, packed", kept)
	}
}

// keptPayload is the payload of the event id as its group keeps it, packed
// (see sqlstore's eventGroups): less the start that the group's fields give.
func keptPayload(t *testing.T, s *Store, id string) string {
	t.Helper()
	var kept string
	if err := s.r.QueryRowContext(t.Context(), `SELECT json_extract(e.value, '$[3]')
		FROM event_groups g, json_each(domaind_event_group_json(domaind_unpack_payload(g.body))) AS e
		WHERE typeof(g.body) = 'blob' AND json_extract(e.value, '$[0]') = ?`, id).Scan(&kept); err != nil {
		t.Fatalf("no packed group holds event %s: %v", id, err)
	}
	return kept
}

// TestMigrationsPackDeflate checks the forms packed values take across the
// migrations: the store packs with S2, and the migrations that pack (00014's
// Down the events, its Up their groups, 00015's Up the checks) with DEFLATE,
// which the code of their schema versions reads.
func TestMigrationsPackDeflate(t *testing.T) {
	ctx := t.Context()
	path, s, p := openAcme(t)
	d := testDomain(t, p.ID)
	if err := s.CreateDomainRotating(ctx, d, []byte{1}, store.Rotation{DomainID: d.ID, ProjectID: p.ID, Domain: d.Name,
		Mode: domain.DKIMModeTXT, State: domain.RotationIdle, CurrentSelector: "autosend", CurrentSince: t0}); err != nil {
		t.Fatal(err)
	}
	checked := t0.Add(time.Hour)
	r := d.Record(domain.KeyOwnership)
	r.Verified, r.Status, r.CheckedAt = true, domain.CheckVerified, checked
	if err := s.SaveCheck(ctx, d, storetest.CheckEvents(p.ID, d.ID, checked)); err != nil {
		t.Fatal(err)
	}
	first := func(query string, want byte) {
		t.Helper()
		var b []byte
		if err := s.r.QueryRowContext(ctx, query, d.ID).Scan(&b); err != nil || len(b) == 0 || b[0] != want {
			t.Errorf("%s: first byte of %x (%v); want %d", query, b, err, want)
		}
	}
	const checks = `SELECT checks FROM domains WHERE id = ?`
	const group = `SELECT body FROM event_groups WHERE domain_id = ? LIMIT 1`
	first(checks, 4) // checksS2
	first(group, 3)  // payloadS2

	migrateDown(t, s, 13)
	first(`SELECT payload FROM events WHERE domain_id = ? LIMIT 1`, 1) // payloadPacked
	s.Close()

	s = open(t, path)
	defer s.Close()
	first(checks, 2) // checksPacked
	first(group, 1)
	got, err := s.Domain(ctx, p.ID, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if r := got.Record(domain.KeyOwnership); !r.Verified || !r.CheckedAt.Equal(checked) {
		t.Errorf("ownership record after going down to 13 and up: verified %v, checked %v", r.Verified, r.CheckedAt)
	}
}
