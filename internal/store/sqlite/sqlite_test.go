package sqlite

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/store"
	"github.com/domaind/domaind/internal/store/storetest"
)

func open(tb testing.TB, path string) *Store {
	tb.Helper()
	s, err := Open(tb.Context(), path)
	if err != nil {
		tb.Fatalf("Open(%s): %v", path, err)
	}
	return s
}

// openAcme opens a store in a new file with the project acme in it, and
// returns the file's path too, for the tests that open it again.
func openAcme(t *testing.T) (path string, s *Store, p store.Project) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "domaind.db")
	s = open(t, path)
	return path, s, storetest.Project(t, s, "acme")
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, filepath.Join(t.TempDir(), "domaind.db"))
	})
}

var t0 = time.UnixMilli(1_750_000_000_123).UTC()

func testDomain(t *testing.T, projectID int64) *domain.Domain {
	t.Helper()
	id, err := domain.NewID(t0)
	if err != nil {
		t.Fatal(err)
	}
	return &domain.Domain{
		ID: id, ProjectID: projectID, Name: "example.com", Region: "us-east-1",
		Status: domain.StatusPendingConfiguration, CreatedAt: t0, LastCheckedAt: t0,
		Records: []domain.Record{
			{Key: domain.KeyOwnership, Name: "_autosend-verify.example.com", Type: "TXT", Value: "v",
				Purpose: "p", Status: domain.CheckUnchecked, CreatedAt: t0, UpdatedAt: t0},
			{Key: domain.KeyDKIM, Name: "autosend._domainkey.example.com", Type: "TXT", Value: "k",
				Purpose: "p", Status: domain.CheckUnchecked, CreatedAt: t0, UpdatedAt: t0},
		},
	}
}

// TestReopen checks that a database file keeps its data across restarts and that
// opening an up-to-date database applies no migration again.
func TestReopen(t *testing.T) {
	ctx := t.Context()
	path, s, p := openAcme(t)
	d := testDomain(t, p.ID)
	if err := s.CreateDomain(ctx, d, []byte("sealed")); err != nil {
		t.Fatal(err)
	}
	before := migrationRows(t, s)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = open(t, path)
	defer s.Close()
	if after := migrationRows(t, s); after != before {
		t.Errorf("reopening changed the migration table from %d rows to %d", before, after)
	}
	gp := provider(t, s)
	if pending, err := gp.HasPending(ctx); err != nil || pending {
		t.Errorf("HasPending after reopening = %v, %v; want false", pending, err)
	}
	if res, err := gp.Up(ctx); err != nil || len(res) != 0 {
		t.Errorf("running the migrations again applied %d, %v; want none", len(res), err)
	}
	if after := migrationRows(t, s); after != before {
		t.Errorf("running the migrations again changed the migration table from %d rows to %d", before, after)
	}

	again, err := s.EnsureProject(ctx, "acme", t0.Add(time.Hour))
	if err != nil || again.ID != p.ID {
		t.Errorf("EnsureProject(acme) after reopening = %+v, %v; want id %d", again, err, p.ID)
	}
	got, err := s.Domain(ctx, p.ID, d.ID)
	if err != nil {
		t.Fatalf("Domain after reopening: %v", err)
	}
	if got.Name != d.Name || len(got.Records) != 2 || got.Records[1].Value != "k" {
		t.Errorf("Domain after reopening = %+v, want %+v", got, d)
	}
}

func migrationRows(t *testing.T, s *Store) int {
	t.Helper()
	var n int
	if err := s.r.QueryRowContext(t.Context(), `SELECT count(*) FROM goose_db_version`).Scan(&n); err != nil {
		t.Fatalf("count migrations: %v", err)
	}
	return n
}

// TestDKIMKeyColumn checks that the sealed key is stored as the exact bytes given,
// as a BLOB (not text that a driver might re-encode), and that deleting the domain
// deletes its records through the foreign key rather than leaving them behind.
func TestDKIMKeyColumn(t *testing.T) {
	ctx := t.Context()
	s := open(t, filepath.Join(t.TempDir(), "domaind.db"))
	defer s.Close()
	p := storetest.Project(t, s, "acme")
	d := testDomain(t, p.ID)
	sealed := []byte{1, 0, 0xff, 0xfe, 0x80, 0, 'k', 0xc3}
	if err := s.CreateDomain(ctx, d, sealed); err != nil {
		t.Fatal(err)
	}

	var raw []byte
	var typ string
	if err := s.r.QueryRowContext(ctx, `SELECT dkim_private_key, typeof(dkim_private_key) FROM domains WHERE id = ?`,
		d.ID).Scan(&raw, &typ); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(raw, sealed) || typ != "blob" {
		t.Errorf("dkim_private_key = %x (%s), want %x (blob)", raw, typ, sealed)
	}

	if err := s.DeleteDomain(ctx, p.ID, d.ID); err != nil {
		t.Fatal(err)
	}
	var n int
	// The domain was the only one.
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM domain_records`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d records of the deleted domain are left", n)
	}
}

func TestOpenRejectsPath(t *testing.T) {
	for _, path := range []string{"", filepath.Join(t.TempDir(), "d.db?mode=memory")} {
		if s, err := Open(t.Context(), path); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded, want an error", path)
		}
	}
}

func TestSessions(t *testing.T) {
	storetest.RunSessions(t, func(t *testing.T) store.Sessions {
		st, err := Open(t.Context(), filepath.Join(t.TempDir(), "s.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}, storetest.StoreKeys)
}

// TestMigrateBareDKIMValue upgrades a database made before DKIM records carried
// their tags: the stored bare key is shown as the key record receivers accept, and
// a value that already is a record is left alone.
func TestMigrateBareDKIMValue(t *testing.T) {
	ctx := t.Context()
	path, s, p := openAcme(t)
	bare, tagged := testDomain(t, p.ID), testDomain(t, p.ID)
	tagged.Name = "tagged.example"
	for _, d := range []*domain.Domain{bare, tagged} {
		if err := s.CreateDomain(ctx, d, []byte{1}); err != nil {
			t.Fatal(err)
		}
	}
	// Back to the schema before the migration, with the value as it was stored then.
	migrateDown(t, s, 5)
	if _, err := s.w.ExecContext(ctx, `UPDATE domain_records SET value = 'MIIBIjANBgkq' WHERE key = 'dkim' AND domain_id = ?`, bare.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.ExecContext(ctx, `UPDATE domain_records SET value = 'v=DKIM1; p=MIIBIjANBgkq' WHERE key = 'dkim' AND domain_id = ?`, tagged.ID); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = open(t, path)
	defer s.Close()
	for _, tc := range []struct {
		d    *domain.Domain
		want string
	}{
		{bare, "v=DKIM1; k=rsa; p=MIIBIjANBgkq"},
		{tagged, "v=DKIM1; p=MIIBIjANBgkq"},
	} {
		d, err := s.Domain(ctx, p.ID, tc.d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got := d.Record(domain.KeyDKIM).Value; got != tc.want {
			t.Errorf("%s: DKIM value after migration = %q, want %q", tc.d.Name, got, tc.want)
		}
	}
}

// TestFileMode checks that a new database and its WAL files are readable by their
// owner alone: they hold sealed keys and key hashes.
func TestFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mode.db")
	s := open(t, path)
	defer s.Close()
	if _, err := s.EnsureProject(t.Context(), "acme", t0); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if m := fi.Mode().Perm(); m != 0o600 {
			t.Errorf("%s has mode %o, want 600", filepath.Base(p), m)
		}
	}
}

// TestMigrateCompactRecords upgrades a database whose records were written as
// before migration 00009 (purpose stored, whole names, found values, problems and
// propagation in columns of their own): each record reads back the same, its
// purpose the one its key gives; and a record saved afterwards keeps a found
// value equal to the expected one as a reference, not a copy.
func TestMigrateCompactRecords(t *testing.T) {
	ctx := t.Context()
	path, s, p := openAcme(t)
	d := testDomain(t, p.ID)
	d.Records = append(d.Records, domain.Record{Key: domain.KeyInboundMX, Name: "example.com", Type: "MX", Priority: 10,
		Value: "in.example.net", Status: domain.CheckUnchecked, CreatedAt: t0, UpdatedAt: t0})
	if err := s.CreateDomain(ctx, d, []byte{1}); err != nil {
		t.Fatal(err)
	}
	// A check whose propagation the state keeps as references (the expected
	// value, and a found one by its index), which the code before 00009
	// cannot read: going down must not leave them behind.
	dkim := d.Record(domain.KeyDKIM)
	dkim.Status, dkim.Found = domain.CheckMismatch, []string{"v=DKIM1; p=OTHER"}
	dkim.Propagation = []domain.Sighting{{Server: "127.0.0.1:53", Role: domain.RoleAuthoritative, Status: domain.CheckMismatch,
		Values: []string{dkim.Value, "v=DKIM1; p=OTHER"}}}
	if err := s.SaveCheck(ctx, d, nil); err != nil {
		t.Fatal(err)
	}
	migrateDown(t, s, 8)
	rows, err := s.w.QueryContext(ctx, `SELECT key, found, propagation FROM domain_records`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var key, found, prop string
		var oldFound []string
		var oldProp []domain.Sighting
		if err := rows.Scan(&key, &found, &prop); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(found), &oldFound); err != nil {
			t.Errorf("%s: found %s after going down to 8: %v", key, found, err)
		}
		if err := json.Unmarshal([]byte(prop), &oldProp); err != nil {
			t.Errorf("%s: propagation %s after going down to 8: %v", key, prop, err)
		}
		for _, g := range oldProp {
			if g.Server == "" || g.Status == "" {
				t.Errorf("%s: propagation %s after going down to 8 reads as a sighting of no server", key, prop)
			}
		}
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	// As the code before 00009 wrote a check of the ownership record.
	if _, err := s.w.ExecContext(ctx, `UPDATE domain_records SET purpose = 'old words', found = '["v"]',
		problems = '[{"code":"INCONSISTENT_SERVERS","message":"Wait."}]',
		propagation = '[{"server":"127.0.0.1:53","role":"authoritative","zone":"example.com","status":"verified","values":["v","other"]}]'
		WHERE key = 'ownership' AND domain_id = ?`, d.ID); err != nil {
		t.Fatal(err)
	}
	var name string
	if err := s.w.QueryRowContext(ctx, `SELECT name FROM domain_records WHERE key = 'inbound_mx'`).Scan(&name); err != nil || name != "example.com" {
		t.Fatalf("inbound MX name before 00009: %q, %v", name, err)
	}
	s.Close()

	s = open(t, path)
	defer s.Close()
	got, err := s.Domain(ctx, p.ID, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Records) != 3 {
		t.Fatalf("%d records after migration", len(got.Records))
	}
	for i, r := range got.Records {
		if r.Name != d.Records[i].Name || r.Purpose != r.Key.Purpose() || r.Value != d.Records[i].Value {
			t.Errorf("record %s after migration: name %q purpose %q value %q", r.Key, r.Name, r.Purpose, r.Value)
		}
	}
	own := got.Record(domain.KeyOwnership)
	want := []domain.Sighting{{Server: "127.0.0.1:53", Role: domain.RoleAuthoritative, Zone: "example.com",
		Status: domain.CheckVerified, Values: []string{"v", "other"}}}
	if len(own.Found) != 1 || own.Found[0] != "v" || len(own.Problems) != 1 || own.Problems[0].Code != "INCONSISTENT_SERVERS" ||
		len(own.Propagation) != 1 || !reflect.DeepEqual(own.Propagation, want) {
		t.Errorf("ownership after migration: found %q problems %v propagation %+v", own.Found, own.Problems, own.Propagation)
	}

	// Saved again: the expected value is kept as null, and the server's other
	// value once.
	if err := s.SaveCheck(ctx, got, nil); err != nil {
		t.Fatal(err)
	}
	var state string
	if err := s.r.QueryRowContext(ctx, `SELECT e.value ->> '$.st' FROM domains d, json_each(domaind_checks_json(d.checks)) e
		WHERE d.id = ? AND e.value ->> '$.k' = 'ownership'`, d.ID).Scan(&state); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(state, `"f":[null]`) || !strings.Contains(state, `"v":[null,"other"]`) {
		t.Errorf("state %s: want the expected value as null", state)
	}
	again, err := s.Domain(ctx, p.ID, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(again.Record(domain.KeyOwnership).Propagation, want) || again.Record(domain.KeyOwnership).Found[0] != "v" {
		t.Errorf("ownership after saving again: %+v", again.Record(domain.KeyOwnership))
	}
}

// TestCloseWhileSaving closes the store while checks are being saved together:
// no save is left waiting, and every save that reported success is in the file
// when it is opened again.
func TestCloseWhileSaving(t *testing.T) {
	ctx := t.Context()
	path, s, p := openAcme(t)
	ds := make([]*domain.Domain, 32)
	for i := range ds {
		ds[i] = testDomain(t, p.ID)
		ds[i].Name = fmt.Sprintf("d%d.example", i)
		if err := s.CreateDomain(ctx, ds[i], []byte{1}); err != nil {
			t.Fatal(err)
		}
		ds[i].LastCheckedAt = t0.Add(time.Hour)
	}
	errs := make(chan error, len(ds))
	for _, d := range ds {
		go func() { errs <- s.SaveCheck(ctx, d, nil) }()
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	saved := 0
	timeout := time.After(10 * time.Second)
	for range ds {
		select {
		case err := <-errs:
			if err == nil {
				saved++
			}
		case <-timeout:
			t.Fatal("a save was still waiting 10s after Close")
		}
	}
	s = open(t, path)
	defer s.Close()
	stored := 0
	for _, d := range ds {
		got, err := s.Domain(ctx, p.ID, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.LastCheckedAt.Equal(d.LastCheckedAt) {
			stored++
		}
	}
	if stored != saved {
		t.Errorf("%d saves reported success, %d are stored", saved, stored)
	}
}
