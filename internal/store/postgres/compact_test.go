package postgres

import (
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/store"
	"github.com/domaind/domaind/internal/store/sqlstore"
	"github.com/domaind/domaind/internal/store/storetest"
)

// TestMigrateCompactStorage takes a database with a domain, its records and
// its rotation down through migration 00011 and up again: going down, the
// records' times come back as times and the rotation's project and current
// value as columns; going up, all of it reads back as it did.
func TestMigrateCompactStorage(t *testing.T) {
	ctx := t.Context()
	dsn := freshDatabase(t)
	s := openStore(t, dsn)
	p := storetest.Project(t, s, "acme")
	id, err := domain.NewID(t0)
	if err != nil {
		t.Fatal(err)
	}
	value := "v=DKIM1; k=rsa; p=QUJD"
	d := &domain.Domain{ID: id, ProjectID: p.ID, Name: "example.com", Region: "us-east-1",
		Status: domain.StatusPendingConfiguration, CreatedAt: t0, LastCheckedAt: t0,
		Records: []domain.Record{
			{Key: domain.KeyOwnership, Name: "_autosend-verify.example.com", Type: "TXT", Value: "v",
				Status: domain.CheckUnchecked, CreatedAt: t0, UpdatedAt: t0},
			{Key: domain.KeyDKIM, Name: "autosend._domainkey.example.com", Type: "TXT", Value: value,
				Status: domain.CheckVerified, Verified: true, CreatedAt: t0, UpdatedAt: t0.Add(time.Hour), CheckedAt: t0.Add(time.Hour)},
		}}
	rot := store.Rotation{DomainID: d.ID, ProjectID: p.ID, Domain: d.Name, Mode: domain.DKIMModeTXT, State: domain.RotationIdle,
		CurrentSelector: "autosend", CurrentValue: value, CurrentSince: t0, StepAt: t0.Add(time.Hour)}
	if err := s.CreateDomainRotating(ctx, d, []byte{1}, rot); err != nil {
		t.Fatal(err)
	}
	// An event as the checks write it, kept less its start, and one kept
	// whole.
	events := storetest.CheckEvents(p.ID, d.ID, t0.Add(time.Hour))
	if err := s.SaveCheck(ctx, d, events); err != nil {
		t.Fatal(err)
	}
	want, err := s.Domain(ctx, p.ID, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantRot, err := s.Rotation(ctx, d.ID)
	if err != nil || wantRot.CurrentValue != value || wantRot.ProjectID != p.ID {
		t.Fatalf("rotation = %+v, %v", wantRot, err)
	}
	// The payload of evt_1 as its group keeps it (see sqlstore's eventGroups).
	const keptSQL = `SELECT split_part(e.x, chr(31), 4) FROM event_groups g, regexp_split_to_table(g.body, chr(30)) AS e(x)
		WHERE split_part(e.x, chr(31), 1) = 'evt_1'`
	var kept string
	if err := s.pool.QueryRow(ctx, keptSQL).Scan(&kept); err != nil || kept != `"domain":"x"}}` {
		t.Errorf("event payload kept as %q (%v); want its rest after the start the group gives", kept, err)
	}
	var shared bool
	if err := s.pool.QueryRow(ctx, `SELECT current_value IS NULL FROM dkim_rotations`).Scan(&shared); err != nil || !shared {
		t.Errorf("current value kept beside the dkim record's (%v)", err)
	}

	db := stdlib.OpenDBFromPool(s.pool)
	defer db.Close()
	prov, err := goose.NewProvider(goose.DialectPostgres, db, sqlstore.MustSub(migrations, "migrations"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := prov.DownTo(ctx, 10); err != nil {
		t.Fatal(err)
	}
	var created, updated, project int64
	var current, status string
	if err := s.pool.QueryRow(ctx, `SELECT r.created_at, r.updated_at, k.project_id, k.current_value, o.status
		FROM domain_records r JOIN dkim_rotations k ON k.domain_id = r.domain_id
		JOIN domain_records o ON o.domain_id = r.domain_id AND o.key = 'ownership'
		WHERE r.domain_id = $1 AND r.key = 'dkim'`, d.ID).Scan(&created, &updated, &project, &current, &status); err != nil {
		t.Fatal(err)
	}
	if created != t0.UnixMilli() || updated != t0.Add(time.Hour).UnixMilli() || project != p.ID || current != value || status != "unchecked" {
		t.Errorf("after going down to 10: created %d updated %d project %d current %q ownership status %q",
			created, updated, project, current, status)
	}
	for _, e := range events {
		var payload string
		if err := s.pool.QueryRow(ctx, `SELECT payload FROM events WHERE id = $1`, e.ID).Scan(&payload); err != nil || payload != string(e.Payload) {
			t.Errorf("%s payload after going down to 10: %q (%v); want %q", e.ID, payload, err, e.Payload)
		}
	}
	if _, err := prov.Up(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := s.Domain(ctx, p.ID, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	// Going down past 00012 drops the version, which starts again.
	got.Version = want.Version
	if !reflect.DeepEqual(got, want) {
		t.Errorf("after down and up:\n%+v\nwant\n%+v", got, want)
	}
	if r, err := s.Rotation(ctx, d.ID); err != nil || !reflect.DeepEqual(r, wantRot) {
		t.Errorf("rotation after down and up:\n%+v, %v\nwant\n%+v", r, err, wantRot)
	}
	storetest.SamePayloads(t, s, p.ID, d.ID, events, "after down and up")
	if err := s.pool.QueryRow(ctx, keptSQL).Scan(&kept); err != nil || kept != `"domain":"x"}}` {
		t.Errorf("event payload kept as %q after up again (%v); want its rest after the start the group gives", kept, err)
	}
}
