package postgres

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/store"
	"github.com/domaind/domaind/internal/store/sqlite"
	"github.com/domaind/domaind/internal/store/storetest"
	"github.com/domaind/domaind/internal/testenv"
)

// adminDSN returns the DSN of the server the tests may create databases in. Without
// one the tests are skipped, unless DOMAIND_REQUIRE_POSTGRES=1 says they must run.
func adminDSN(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv("DOMAIND_TEST_POSTGRES")
	if dsn == "" {
		const why = "DOMAIND_TEST_POSTGRES is not set. Install postgresql and run scripts/test.sh, " +
			"which starts a throwaway server, or set DOMAIND_TEST_POSTGRES to a DSN whose role may CREATE DATABASE."
		if os.Getenv("DOMAIND_REQUIRE_POSTGRES") == "1" {
			t.Fatal("PostgreSQL tests cannot run, and DOMAIND_REQUIRE_POSTGRES=1 requires them: " + why)
		}
		t.Skip("!!! PostgreSQL tests SKIPPED: " + why + " !!!")
	}
	return dsn
}

// freshDatabase creates an empty database for the test, dropped when it ends, and
// returns its DSN.
func freshDatabase(t *testing.T) string {
	t.Helper()
	return freshDatabaseWith(t, "")
}

// freshDatabaseWith is freshDatabase with options for CREATE DATABASE.
func freshDatabaseWith(t *testing.T, options string) string {
	t.Helper()
	admin := adminDSN(t)
	var b [8]byte
	rand.Read(b[:])
	name := "domaind_test_" + hex.EncodeToString(b[:])

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("connect to DOMAIND_TEST_POSTGRES: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+name+` `+options); err != nil {
		t.Fatalf("CREATE DATABASE %s: %v", name, err)
	}
	t.Cleanup(func() {
		// t.Context is done by now. Stores are closed before this runs (cleanups run
		// last first); FORCE ends any connection a failed test left open.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("drop %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
			t.Errorf("DROP DATABASE %s: %v", name, err)
		}
	})
	dsn, err := withDatabase(admin, name)
	if err != nil {
		t.Fatal(err)
	}
	return dsn
}

// withDatabase returns dsn naming database name instead of its own.
func withDatabase(dsn, name string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("DOMAIND_TEST_POSTGRES is not a valid URL: %w", err)
		}
		u.Path, u.RawPath = "/"+name, ""
		return u.String(), nil
	}
	// In the keyword/value form a later keyword wins.
	return dsn + " dbname=" + name, nil
}

func TestWithDatabase(t *testing.T) {
	for _, dsn := range []string{
		"postgres://u:p%40ss@127.0.0.1:5433/admin?sslmode=disable",
		"postgresql://u@127.0.0.1:5433?sslmode=disable",
		"postgres://u@127.0.0.1:5433/",
		"host=127.0.0.1 port=5433 user=u password='p ss' dbname=admin sslmode=disable",
		"host=127.0.0.1 port=5433 user=u",
	} {
		got, err := withDatabase(dsn, "domaind_test_x")
		if err != nil {
			t.Errorf("withDatabase(%q): %v", dsn, err)
			continue
		}
		want, err := pgx.ParseConfig(dsn)
		if err != nil {
			t.Fatalf("ParseConfig(%q): %v", dsn, err)
		}
		cfg, err := pgx.ParseConfig(got)
		if err != nil {
			t.Errorf("withDatabase(%q) = %q, which does not parse: %v", dsn, got, err)
			continue
		}
		if cfg.Database != "domaind_test_x" || cfg.Host != want.Host || cfg.Port != want.Port ||
			cfg.User != want.User || cfg.Password != want.Password || (cfg.TLSConfig == nil) != (want.TLSConfig == nil) {
			t.Errorf("withDatabase(%q) = %q: database %q, %s@%s:%d; want domaind_test_x and the rest unchanged",
				dsn, got, cfg.Database, cfg.User, cfg.Host, cfg.Port)
		}
	}
}

// connect opens a session of its own on the database, as another replica's, closed
// when the test ends.
func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// begin opens a transaction in a session of its own, as another replica's in the middle
// of its work; it rolls back when the test ends unless the test ends it first.
func begin(t *testing.T, dsn string) pgx.Tx {
	t.Helper()
	tx, err := connect(t, dsn).Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Rollback(context.Background()) })
	return tx
}

func openStore(t *testing.T, dsn string) *Store {
	t.Helper()
	s, err := Open(t.Context(), dsn)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	adminDSN(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := Open(t.Context(), freshDatabase(t))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s
	})
}

func TestSessions(t *testing.T) {
	adminDSN(t)
	storetest.RunSessions(t, func(t *testing.T) store.Sessions {
		return openStore(t, freshDatabase(t))
	}, storetest.StoreKeys)
}

var t0 = time.UnixMilli(1_750_000_000_123).UTC()

// newDomain returns a domain with one record, due for a check at next (zero: not
// scheduled).
func newDomain(t *testing.T, projectID int64, name string, next time.Time) *domain.Domain {
	t.Helper()
	id, err := domain.NewID(t0)
	if err != nil {
		t.Fatal(err)
	}
	return &domain.Domain{
		ID: id, ProjectID: projectID, Name: name, Region: "us-east-1",
		Status: domain.StatusPendingConfiguration, CreatedAt: t0, LastCheckedAt: t0, NextCheckAt: next,
		Records: []domain.Record{{Key: domain.KeyOwnership, Name: "_autosend-verify." + name, Type: "TXT",
			Value: "v", Purpose: "p", Status: domain.CheckUnchecked, CreatedAt: t0, UpdatedAt: t0}},
	}
}

// claimAll runs perStore claimers on each store at once, each claiming batches with
// claim until it gets an empty batch, and returns every id claimed, in any order.
func claimAll(t *testing.T, stores []*Store, perStore int, claim func(*Store) ([]string, error)) []string {
	t.Helper()
	var (
		mu      sync.Mutex
		claimed []string
		wg      sync.WaitGroup
		start   = make(chan struct{})
		counts  = make([]int, len(stores))
	)
	for i, s := range stores {
		for range perStore {
			wg.Go(func() {
				<-start
				for {
					ids, err := claim(s)
					if err != nil {
						t.Errorf("claim on store %d: %v", i, err)
						return
					}
					if len(ids) == 0 {
						return
					}
					mu.Lock()
					claimed = append(claimed, ids...)
					counts[i] += len(ids)
					mu.Unlock()
				}
			})
		}
	}
	close(start)
	wg.Wait()
	t.Logf("claims per store: %v", counts)
	return claimed
}

// checkOnce reports ids claimed more than once and ids of want never claimed.
func checkOnce(t *testing.T, claimed, want []string) {
	t.Helper()
	seen := map[string]int{}
	for _, id := range claimed {
		seen[id]++
	}
	for id, n := range seen {
		if n > 1 {
			t.Errorf("%s was claimed %d times", id, n)
		}
	}
	for _, id := range want {
		if seen[id] == 0 {
			t.Errorf("%s was never claimed", id)
		}
		delete(seen, id)
	}
	for id := range seen {
		t.Errorf("%s was claimed but is not due", id)
	}
	if len(claimed) != len(want) {
		t.Errorf("%d claims, want %d", len(claimed), len(want))
	}
}

// TestClaimDueReplicas claims from one database through two stores (two pools, as two
// replicas have), four claimers each, and checks that every due domain is claimed
// exactly once and no other domain is claimed at all.
func TestClaimDueReplicas(t *testing.T) {
	dsn := freshDatabase(t)
	a, b := openStore(t, dsn), openStore(t, dsn)
	ctx := t.Context()
	p := storetest.Project(t, a, "acme")
	now := t0.Add(24 * time.Hour)
	const due, lease = 500, time.Hour
	var want []string
	for i := range due + 100 {
		var next time.Time
		switch {
		case i < due:
			next = now.Add(-time.Duration(i) * time.Second) // due, some long overdue
		case i < due+50:
			next = now.Add(2 * lease) // scheduled, not due
		}
		d := newDomain(t, p.ID, fmt.Sprintf("d%d.example", i), next)
		if err := a.CreateDomain(ctx, d, []byte("k")); err != nil {
			t.Fatal(err)
		}
		if i < due {
			want = append(want, d.ID)
		}
	}

	claimed := claimAll(t, []*Store{a, b}, 4, func(s *Store) ([]string, error) {
		ds, err := s.ClaimChecks(ctx, now, lease, 7, 0, nil)
		var ids []string
		for _, d := range ds {
			if d.ProjectID != p.ID {
				t.Errorf("claimed %s of project %d, want %d", d.ID, d.ProjectID, p.ID)
			}
			ids = append(ids, d.ID)
		}
		return ids, err
	})
	checkOnce(t, claimed, want)

	if more, err := b.ClaimChecks(ctx, now, lease, 100, 0, nil); err != nil || len(more) != 0 {
		t.Errorf("ClaimDue after all were claimed = %v, %v; want none", more, err)
	}
	// The claims moved each due time to now+lease, before the unclaimed 2×lease.
	if oldest, err := a.OldestDue(ctx); err != nil || !oldest.Equal(now.Add(lease)) {
		t.Errorf("OldestDue = %v, %v; want %v", oldest, err, now.Add(lease))
	}
	// When the lease runs out, the domains are claimable again.
	again, err := a.ClaimChecks(ctx, now.Add(lease), lease, -1, 0, nil)
	if err != nil || len(again) != due {
		t.Errorf("ClaimDue after the lease = %d domains, %v; want %d", len(again), err, due)
	}
}

// TestClaimDeliveriesReplicas claims deliveries of many endpoints from one
// database through two stores (two pools, as two replicas have), four claimers
// each: every delivery is claimed exactly once, and no endpoint ever has more
// than one delivery in flight across the replicas.
func TestClaimDeliveriesReplicas(t *testing.T) {
	dsn := freshDatabase(t)
	storetest.ClaimConcurrently(t, []store.Store{openStore(t, dsn), openStore(t, dsn)})
}

// TestCreateDomainReplicas creates one (project, name) from two replicas at once,
// several times over.
func TestCreateDomainReplicas(t *testing.T) {
	dsn := freshDatabase(t)
	stores := []*Store{openStore(t, dsn), openStore(t, dsn)}
	ctx := t.Context()
	p := storetest.Project(t, stores[0], "acme")
	const rounds, racers = 10, 8
	for round := range rounds {
		name := fmt.Sprintf("race%d.example", round)
		errs := make([]error, racers)
		ds := make([]*domain.Domain, racers)
		for i := range ds {
			ds[i] = newDomain(t, p.ID, name, time.Time{})
		}
		testenv.Race(racers, func(i int) {
			errs[i] = stores[i%2].CreateDomain(ctx, ds[i], []byte("k"))
		})
		if wins := storetest.Wins(t, errs, store.ErrDomainExists, fmt.Sprintf("round %d: CreateDomain", round)); wins != 1 {
			t.Errorf("round %d: %d CreateDomain calls succeeded, want exactly 1", round, wins)
		}
	}
	if _, total, err := stores[1].Domains(ctx, p.ID, store.Page{}); err != nil || total != rounds {
		t.Errorf("Domains total = %d, %v; want %d", total, err, rounds)
	}
}

// TestEnsureProjectReplicas: replicas that ensure one new project at once all get it,
// and none gets an error.
func TestEnsureProjectReplicas(t *testing.T) {
	dsn := freshDatabase(t)
	stores := []*Store{openStore(t, dsn), openStore(t, dsn)}
	const racers = 8
	got := make([]store.Project, racers)
	errs := make([]error, racers)
	testenv.Race(racers, func(i int) {
		got[i], errs[i] = stores[i%2].EnsureProject(t.Context(), "acme", t0.Add(time.Duration(i)*time.Second))
	})
	for i := range racers {
		if errs[i] != nil || got[i] != got[0] {
			t.Errorf("EnsureProject on store %d = %+v, %v; want %+v like the others", i%2, got[i], errs[i], got[0])
		}
	}
}

// waitForLockWaiters waits until n sessions of the database wait for a lock.
func waitForLockWaiters(t *testing.T, conn *pgx.Conn, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var waiting int
		if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions wait for a lock after 10s, want %d", waiting, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRevokeAPIKeyReplicas revokes a key from two replicas while a third has revoked
// it but not yet committed: once it commits, every revoke succeeds and reports its
// time, the first, which stays stored.
func TestRevokeAPIKeyReplicas(t *testing.T) {
	dsn := freshDatabase(t)
	stores := []*Store{openStore(t, dsn), openStore(t, dsn)}
	ctx := t.Context()
	p := storetest.Project(t, stores[0], "acme")
	k, err := stores[0].CreateAPIKey(ctx, store.APIKey{ProjectID: p.ID, Prefix: "AS_revoke01",
		Hash: sha256.Sum256([]byte("AS_revoke01-key")), CreatedAt: t0})
	if err != nil {
		t.Fatal(err)
	}

	first := t0.Add(time.Hour)
	tx := begin(t, dsn)
	if _, err := tx.Exec(ctx, `UPDATE api_keys SET revoked_at = $1 WHERE id = $2`, first.UnixMilli(), k.ID); err != nil {
		t.Fatal(err)
	}

	const racers = 4
	got := make([]store.APIKey, racers)
	errs := make([]error, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			got[i], errs[i] = stores[i%2].RevokeAPIKey(ctx, "AS_revoke", t0.Add(time.Duration(i+2)*time.Hour))
		})
	}
	watch := connect(t, dsn)
	waitForLockWaiters(t, watch, racers)
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	for i := range racers {
		if errs[i] != nil || !got[i].RevokedAt.Equal(first) {
			t.Errorf("RevokeAPIKey %d = revoked at %v, %v; want the first revocation's %v", i, got[i].RevokedAt, errs[i], first)
		}
	}
	if stored, err := stores[1].APIKeyByHash(ctx, k.Hash); err != nil || !stored.RevokedAt.Equal(first) {
		t.Errorf("APIKeyByHash = revoked at %v, %v; want %v", stored.RevokedAt, err, first)
	}
}

// TestClaimSkipsLockedRows claims while another replica's claim holds some due rows:
// the claim takes the others at once instead of waiting, and the held ones after.
func TestClaimSkipsLockedRows(t *testing.T) {
	dsn := freshDatabase(t)
	s := openStore(t, dsn)
	ctx := t.Context()
	p := storetest.Project(t, s, "acme")
	now := t0.Add(24 * time.Hour)
	var domains []string
	for i := range 4 {
		d := newDomain(t, p.ID, fmt.Sprintf("d%d.example", i), now.Add(-time.Duration(i)*time.Minute))
		if err := s.CreateDomain(ctx, d, []byte("k")); err != nil {
			t.Fatal(err)
		}
		domains = append(domains, d.ID)
	}
	// Two endpoints, each with two deliveries.
	var hooks []string
	for i := range 2 {
		w := store.Webhook{ID: fmt.Sprintf("wh_00000000000000000000000%d", i), ProjectID: p.ID, URL: "https://hooks.example/",
			SealedSecret: []byte("s"), CreatedAt: t0}
		if err := s.CreateWebhook(ctx, w, 0); err != nil {
			t.Fatal(err)
		}
		hooks = append(hooks, w.ID)
	}
	d := newDomain(t, p.ID, "events.example", time.Time{})
	if err := s.CreateDomain(ctx, d, []byte("k")); err != nil {
		t.Fatal(err)
	}
	var events []store.Event
	for i := range 2 {
		events = append(events, store.Event{ID: fmt.Sprintf("evt_%024d", i), ProjectID: p.ID, DomainID: d.ID,
			Type: domain.EventVerified, Payload: []byte("{}"), CreatedAt: t0.Add(time.Duration(i) * time.Second)})
	}
	if err := s.SaveCheck(ctx, d, events); err != nil {
		t.Fatal(err)
	}
	deliveriesOf := func(hook string) []string {
		listed, _, err := s.Deliveries(ctx, p.ID, hook, store.Page{})
		if err != nil || len(listed) != 2 {
			t.Fatalf("Deliveries(%s) = %d, %v; want 2", hook, len(listed), err)
		}
		var ids []string
		for _, d := range listed {
			ids = append(ids, d.ID)
		}
		return ids
	}
	held, free := deliveriesOf(hooks[0]), deliveriesOf(hooks[1])

	// Another replica, mid-claim, holds the most overdue domains and the first
	// endpoint (claims of deliveries lock their endpoints' rows).
	tx := begin(t, dsn)
	for _, q := range []struct {
		table string
		ids   []string
	}{{"domains", domains[2:]}, {"webhooks", hooks[:1]}} {
		if _, err := tx.Exec(ctx, `SELECT 1 FROM `+q.table+` WHERE id = ANY($1) FOR NO KEY UPDATE`, q.ids); err != nil {
			t.Fatal(err)
		}
	}

	// Without SKIP LOCKED these claims would wait for the other replica until
	// their deadline.
	claimCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	due, err := s.ClaimChecks(claimCtx, now, time.Hour, 10, 0, nil)
	if err != nil {
		t.Fatalf("ClaimDue while rows are locked: %v", err)
	}
	var ids []string
	for _, d := range due {
		ids = append(ids, d.ID)
	}
	if slices.Sort(ids); !slices.Equal(ids, sorted(domains[:2])) {
		t.Errorf("ClaimDue while two rows are locked = %v, want the other two %v", ids, sorted(domains[:2]))
	}
	claimed, err := s.ClaimDeliveries(claimCtx, now, time.Hour, 10, 2)
	if err != nil {
		t.Fatalf("ClaimDeliveries while rows are locked: %v", err)
	}
	ids = nil
	for _, d := range claimed {
		ids = append(ids, d.ID)
	}
	if slices.Sort(ids); !slices.Equal(ids, sorted(free)) {
		t.Errorf("ClaimDeliveries while an endpoint is locked = %v, want the other endpoint's %v", ids, sorted(free))
	}

	// The other replica gives up its claim: the rows it held are due again.
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if due, err := s.ClaimChecks(ctx, now, time.Hour, 10, 0, nil); err != nil || len(due) != 2 {
		t.Errorf("ClaimDue after the lock = %v, %v; want the two held domains", due, err)
	}
	claimed, err = s.ClaimDeliveries(ctx, now, time.Hour, 10, 2)
	ids = nil
	for _, d := range claimed {
		ids = append(ids, d.ID)
	}
	if slices.Sort(ids); err != nil || !slices.Equal(ids, sorted(held)) {
		t.Errorf("ClaimDeliveries after the lock = %v, %v; want the held endpoint's %v", ids, err, sorted(held))
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// TestOpenConcurrently opens a fresh database from several replicas at once: all of
// them succeed, and each migration is applied once.
func TestOpenConcurrently(t *testing.T) {
	dsn := freshDatabase(t)
	const replicas = 4
	errs := make([]error, replicas)
	stores := make([]*Store, replicas)
	testenv.Race(replicas, func(i int) {
		stores[i], errs[i] = Open(t.Context(), dsn)
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open %d: %v", i, err)
			continue
		}
		defer stores[i].Close()
	}
	if t.Failed() {
		return
	}
	files, err := filepath.Glob("migrations/*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("no migrations found: %v", err)
	}
	var rows, versions int
	var maxVersion int64
	err = stores[0].pool.QueryRow(t.Context(), `SELECT count(*), count(DISTINCT version_id), max(version_id)
		FROM goose_db_version WHERE version_id > 0`).Scan(&rows, &versions, &maxVersion)
	if err != nil {
		t.Fatal(err)
	}
	// Migrations may skip a number (one added on another branch comes
	// later), so the highest version is the highest file's number.
	var maxFile int64
	for _, f := range files {
		var n int64
		if _, err := fmt.Sscanf(filepath.Base(f), "%05d_", &n); err == nil && n > maxFile {
			maxFile = n
		}
	}
	if rows != len(files) || versions != len(files) || maxVersion != maxFile {
		t.Errorf("goose_db_version has %d rows of %d versions up to %d; want each of the %d migrations once",
			rows, versions, maxVersion, len(files))
	}
	// Every store works on the schema.
	for i, s := range stores {
		if _, err := s.EnsureProject(t.Context(), fmt.Sprint("p", i), t0); err != nil {
			t.Errorf("store %d: EnsureProject: %v", i, err)
		}
	}
}

// TestOpenWaitsForMigrationLock holds the migration lock as another replica in the
// middle of migrating would: Open waits, migrating nothing, until its context ends,
// and stops waiting on the server too; once the lock is free, Open succeeds.
func TestOpenWaitsForMigrationLock(t *testing.T) {
	dsn := freshDatabase(t)
	ctx := t.Context()
	holder := connect(t, dsn)
	if _, err := holder.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrationLock); err != nil {
		t.Fatal(err)
	}

	wait, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	s, err := Open(wait, dsn)
	cancel()
	if err == nil {
		s.Close()
		t.Fatal("Open succeeded while another session held the migration lock")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Open while locked: error = %v, want one that is context.DeadlineExceeded", err)
	}
	var tables int
	if err := holder.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()`).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables != 0 {
		t.Errorf("%d tables were created while the lock was held, want none", tables)
	}
	// The canceled wait must not linger on the server, where it would take the lock
	// as soon as it is free and keep it until the server noticed the client gone.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var waiting int
		if err := holder.QueryRow(ctx, `SELECT count(*) FROM pg_locks
			WHERE locktype = 'advisory' AND NOT granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions still wait for the advisory lock after Open returned", waiting)
		}
		time.Sleep(20 * time.Millisecond)
	}

	if _, err := holder.Exec(ctx, `SELECT pg_advisory_unlock($1)`, migrationLock); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dsn)
	if _, err := s.EnsureProject(ctx, "acme", t0); err != nil {
		t.Errorf("EnsureProject after Open: %v", err)
	}
}

// TestByteOrder lists ids in byte order, as SQLite does, in a database whose own
// collation sorts a before B: the schema's id columns use the "C" collation.
func TestByteOrder(t *testing.T) {
	adminDSN(t)
	s := openStore(t, freshDatabaseWith(t, `TEMPLATE template0 LOCALE 'C.UTF-8' LOCALE_PROVIDER icu ICU_LOCALE 'en-US'`))
	ctx := t.Context()
	var natural bool
	if err := s.pool.QueryRow(ctx, `SELECT 'a' < 'B'`).Scan(&natural); err != nil || !natural {
		t.Fatalf("the database's collation does not sort a before B (%v): the test proves nothing", err)
	}
	p := storetest.Project(t, s, "acme")
	want := []string{"B00000000000000000000000", "_00000000000000000000000", "a00000000000000000000000", "b00000000000000000000000"}
	for _, id := range []string{want[3], want[2], want[1], want[0]} {
		d := newDomain(t, p.ID, id+".example", time.Time{})
		d.ID = id
		if err := s.CreateDomain(ctx, d, []byte("k")); err != nil {
			t.Fatal(err)
		}
	}
	ds, _, err := s.Domains(ctx, p.ID, store.Page{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range ds {
		got = append(got, d.ID)
	}
	if !slices.Equal(got, want) {
		t.Errorf("Domains = %v, want byte order %v", got, want)
	}
	ds, _, err = s.Domains(ctx, p.ID, store.Page{After: &store.Position{CreatedAt: t0, ID: want[1]}})
	got = nil
	for _, d := range ds {
		got = append(got, d.ID)
	}
	if err != nil || !slices.Equal(got, want[2:]) {
		t.Errorf("Domains after %s = %v, %v; want %v", want[1], got, err, want[2:])
	}
}

// TestPartialIndexes checks that the claim queries can use their partial indexes,
// whose predicates must match the queries' for PostgreSQL to consider them.
func TestPartialIndexes(t *testing.T) {
	s := openStore(t, freshDatabase(t))
	for _, tc := range []struct{ index, query string }{
		{"domains_due", `SELECT id FROM domains WHERE next_check_at > 0 AND next_check_at <= $1
			ORDER BY next_check_at LIMIT $2 FOR UPDATE SKIP LOCKED`},
		{"deliveries_due", `SELECT id FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= $1
			ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED`},
	} {
		checkPlanUses(t, s, tc.index, tc.query, int64(1_750_000_000_000), 10)
	}
}

// checkPlanUses fails the test unless PostgreSQL plans query (with args) through the
// index. Sequential scans are off while it asks, so that a test's small tables, which a
// scan reads faster, do not hide whether the index could be used.
func checkPlanUses(t *testing.T, s *Store, index, query string, args ...any) {
	t.Helper()
	ctx := t.Context()
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SET enable_seqscan = off`); err != nil {
		t.Fatal(err)
	}
	defer conn.Exec(context.Background(), `RESET enable_seqscan`)
	rows, err := conn.Query(ctx, `EXPLAIN `+query, args...)
	if err != nil {
		t.Fatalf("EXPLAIN: %v", err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	plan := strings.Join(lines, "\n")
	if !strings.Contains(plan, "using "+index) && !strings.Contains(plan, "Bitmap Index Scan on "+index) {
		t.Errorf("the plan does not use %s:\n%s", index, plan)
	} else if testing.Verbose() {
		t.Log(plan)
	}
}

// TestMatchesSQLite runs the same story of schedules, events, webhooks and deliveries
// (which the conformance suite does not cover) on SQLite and on PostgreSQL, and
// compares everything the two stores return.
func TestMatchesSQLite(t *testing.T) {
	pg := openStore(t, freshDatabase(t))
	lite, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "domaind.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer lite.Close()

	want := story(t, lite)
	got := story(t, pg)
	for i := range max(len(got), len(want)) {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			t.Errorf("step %d:\npostgres: %s\n  sqlite: %s", i, g, w)
		}
	}
}

// story drives s through a sequence of calls and returns what each returned, with
// the random delivery ids replaced by stable names.
func story(t *testing.T, s store.Store) []string {
	ctx := t.Context()
	var out []string
	names := map[string]string{}
	name := func(d store.Delivery) string {
		if n, ok := names[d.ID]; ok {
			return n
		}
		n := fmt.Sprintf("msg(%s,%s)", d.WebhookID, d.EventID)
		names[d.ID] = n
		return n
	}
	errName := func(err error) string {
		for _, e := range []error{store.ErrNotFound, store.ErrDomainExists, store.ErrAmbiguous} {
			if errors.Is(err, e) {
				return e.Error()
			}
		}
		if err != nil {
			return "error"
		}
		return "ok"
	}
	deliveries := func(ds []store.Delivery) []string {
		var s []string
		for _, d := range ds {
			id := name(d)
			d.ID = ""
			for i := range d.Attempts {
				d.Attempts[i].DeliveryID = name(store.Delivery{ID: d.Attempts[i].DeliveryID})
			}
			s = append(s, fmt.Sprintf("%s %+v payload=%q", id, d, d.Payload))
		}
		return s
	}
	log := func(step string, v ...any) { out = append(out, step+": "+fmt.Sprint(v...)) }
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	acme, err := s.EnsureProject(ctx, "acme", t0)
	must(err)
	beta, err := s.EnsureProject(ctx, "beta", t0)
	must(err)
	now := t0.Add(24 * time.Hour)

	// Webhooks: all default events; two named ones; another project's.
	hooks := []store.Webhook{
		{ID: "wh_b00000000000000000000000", ProjectID: acme.ID, URL: "https://a.example/1", SealedSecret: []byte{0, 1, 2}, CreatedAt: t0},
		{ID: "wh_a00000000000000000000000", ProjectID: acme.ID, URL: "https://a.example/2", Events: []string{string(domain.EventStatusChanged), string(domain.EventDegraded)},
			SealedSecret: []byte{0xff}, CreatedAt: t0},
		{ID: "wh_c00000000000000000000000", ProjectID: beta.ID, URL: "https://b.example/", SealedSecret: []byte("s"), CreatedAt: t0.Add(-time.Hour)},
	}
	for _, w := range hooks {
		must(s.CreateWebhook(ctx, w, 0))
	}
	for _, p := range []store.Project{acme, beta} {
		ws, err := s.Webhooks(ctx, p.ID)
		log("Webhooks "+p.Name, fmt.Sprintf("%+v", ws), " ", errName(err))
	}
	ws, err := s.Webhooks(ctx, 999)
	log("Webhooks unknown", fmt.Sprintf("%#v", ws), " ", errName(err))

	// Domains due at various times, one not scheduled and one in the future.
	made := 0
	mk := func(p store.Project, n string, next time.Time) *domain.Domain {
		d := newDomain(t, p.ID, n, next)
		made++
		d.ID = fmt.Sprintf("%024d", made) // fixed, so both stores list them alike
		must(s.CreateDomain(ctx, d, []byte("k")))
		return d
	}
	d1 := mk(acme, "one.example", now.Add(-time.Minute))
	d2 := mk(acme, "two.example", now.Add(-2*time.Minute))
	mk(acme, "three.example", time.Time{})
	mk(acme, "four.example", now.Add(time.Hour))
	d5 := mk(beta, "five.example", now.Add(-30*time.Second))

	dues := func(ds []store.Due) []string {
		var s []string
		for _, d := range ds {
			s = append(s, fmt.Sprintf("%+v", d))
		}
		return sorted(s)
	}
	oldest, err := s.OldestDue(ctx)
	log("OldestDue", oldest, " ", errName(err))
	ds, err := s.ClaimChecks(ctx, now, 10*time.Minute, 2, 0, nil)
	log("ClaimDue 2", dues(ds), " ", errName(err))
	ds, err = s.ClaimChecks(ctx, now, 10*time.Minute, 0, 0, nil)
	log("ClaimDue 0", dues(ds), " ", errName(err))
	ds, err = s.ClaimChecks(ctx, now, 10*time.Minute, -1, 0, nil)
	log("ClaimDue -1", dues(ds), " ", errName(err))
	oldest, err = s.OldestDue(ctx)
	log("OldestDue after claims", oldest, " ", errName(err))

	// Checks that cause events, with payloads whose bytes must survive as they are.
	ev := func(p store.Project, d *domain.Domain, n int, typ domain.EventType, payload string) store.Event {
		return store.Event{ID: fmt.Sprintf("evt_%024d", n), ProjectID: p.ID, DomainID: d.ID, Type: typ,
			Payload: []byte(payload), CreatedAt: now.Add(time.Duration(n) * time.Second)}
	}
	d1.Status, d1.NextCheckAt, d1.CheckAttempt = domain.StatusVerified, now.Add(time.Hour), 3
	must(s.SaveCheck(ctx, d1, []store.Event{
		ev(acme, d1, 1, domain.EventVerified, `{"type":"domain.verified","s":"ünï <&> \u0000 \"q\""}`),
		ev(acme, d1, 2, domain.EventStatusChanged, `{"type":"domain.status.changed",  "spaces" : [1, 2.50, 1e3]}`),
		ev(acme, d1, 3, domain.EventRecordChanged, `{"type":"domain.record.changed","z":1,"a":2}`),
	}))
	must(s.SaveCheck(ctx, d5, []store.Event{ev(beta, d5, 4, domain.EventFailed, `{}`)}))
	must(s.SaveCheck(ctx, d2, nil))
	for _, p := range []store.Page{{}, {Limit: 2}, {Limit: 2, Offset: 2}, {Offset: 1}, {Offset: 5}} {
		es, total, err := s.Events(ctx, acme.ID, d1.ID, p)
		log(fmt.Sprintf("Events %+v", p), fmt.Sprintf("%+v", es), " total ", total, " ", errName(err))
	}
	es, total, err := s.Events(ctx, beta.ID, d1.ID, store.Page{})
	log("Events other project", fmt.Sprintf("%#v", es), " total ", total, " ", errName(err))
	dd, err := s.Domain(ctx, acme.ID, d1.ID)
	if err == nil {
		dd.Records = nil
	}
	log("Domain after check", fmt.Sprintf("%+v", dd), " ", errName(err))

	// The outbox: claim, attempt, retry, list.
	cl, err := s.ClaimDeliveries(ctx, now.Add(2*time.Second), time.Minute, 10, 1)
	log("ClaimDeliveries early", sorted(deliveries(cl)), " ", errName(err))
	cl, err = s.ClaimDeliveries(ctx, now.Add(2*time.Second), time.Minute, 10, 1)
	log("ClaimDeliveries leased", sorted(deliveries(cl)), " ", errName(err))
	cl2, err := s.ClaimDeliveries(ctx, now.Add(time.Hour), time.Minute, 10, 2)
	log("ClaimDeliveries all", sorted(deliveries(cl2)), " ", errName(err))
	// Claims due at one time come in no particular order.
	claimed := slices.Concat(cl, cl2)
	slices.SortFunc(claimed, func(a, b store.Delivery) int { return strings.Compare(name(a), name(b)) })
	for i, d := range claimed {
		a := store.Attempt{DeliveryID: d.ID, At: now.Add(time.Duration(i) * time.Second), StatusCode: 500, Error: "HTTP 500",
			Duration: 1500 * time.Millisecond}
		next := store.DeliveryState{Status: store.DeliveryPending, NextAttemptAt: now.Add(2 * time.Hour)}
		must(s.RecordAttempt(ctx, a, next, now.Add(3*time.Hour)))
		a.StatusCode, a.Error, a.Duration = 200, "", 3*time.Millisecond
		next = store.DeliveryState{Status: store.DeliveryDelivered}
		if d.EventID == "evt_000000000000000000000003" {
			next.Status = store.DeliveryFailed
		}
		must(s.RecordAttempt(ctx, a, next, time.Time{})) // the same millisecond as the first
	}
	err = s.RecordAttempt(ctx, store.Attempt{DeliveryID: "msg_unknown", At: now}, store.DeliveryState{Status: store.DeliveryDelivered}, time.Time{})
	log("RecordAttempt unknown", errName(err))
	for _, w := range hooks {
		ws, err := s.Webhooks(ctx, w.ProjectID)
		log("Webhooks after attempts "+w.ID, fmt.Sprintf("%+v", ws), " ", errName(err))
	}
	n, err := s.ExpireDeliveries(ctx, now.Add(30*time.Hour), 24*time.Hour)
	log("ExpireDeliveries", n, " ", errName(err))
	cl, err = s.ClaimDeliveries(ctx, now.Add(10*time.Hour), time.Minute, -1, 1)
	log("ClaimDeliveries finished", sorted(deliveries(cl)), " ", errName(err))
	for _, w := range hooks {
		for _, p := range []store.Page{{}, {Limit: 1}, {Limit: 1, Offset: 1}, {Offset: 9}} {
			ds, total, err := s.Deliveries(ctx, w.ProjectID, w.ID, p)
			log(fmt.Sprintf("Deliveries %s %+v", w.ID, p), deliveries(ds), " total ", total, " ", errName(err))
		}
	}
	dl, total, err := s.Deliveries(ctx, beta.ID, hooks[0].ID, store.Page{})
	log("Deliveries other project", fmt.Sprintf("%#v", dl), " total ", total, " ", errName(err))

	// Deleting.
	log("DeleteWebhook other project", errName(s.DeleteWebhook(ctx, beta.ID, hooks[0].ID)))
	log("DeleteWebhook", errName(s.DeleteWebhook(ctx, acme.ID, hooks[1].ID)))
	log("DeleteWebhook again", errName(s.DeleteWebhook(ctx, acme.ID, hooks[1].ID)))
	_, total, err = s.Deliveries(ctx, acme.ID, hooks[1].ID, store.Page{})
	log("Deliveries of deleted webhook", total, " ", errName(err))
	must(s.DeleteDomain(ctx, acme.ID, d1.ID))
	_, total, err = s.Events(ctx, acme.ID, d1.ID, store.Page{})
	log("Events of deleted domain", total, " ", errName(err))
	err = s.SaveCheck(ctx, d1, []store.Event{ev(acme, d1, 9, domain.EventVerified, `{}`)})
	log("SaveCheck deleted", errName(err))
	_, total, err = s.Deliveries(ctx, acme.ID, hooks[0].ID, store.Page{})
	log("Deliveries after SaveCheck deleted", total, " ", errName(err))

	// Receiving: the inbound MX record comes and goes with the inbound state.
	in := s.(store.Inbound)
	d2.InboundEnabledAt, d2.NextCheckAt, d2.CheckAttempt = now, now.Add(time.Minute), 1
	d2.Records = append(d2.Records, domain.Record{Key: domain.KeyInboundMX, Name: d2.Name, Type: "MX", Priority: 10,
		Value: "inbound-smtp.us-east-1.amazonaws.com", Purpose: "p", Status: domain.CheckUnchecked, CreatedAt: now, UpdatedAt: now})
	log("SaveInbound on", errName(in.SaveInbound(ctx, d2)))
	dd, err = s.Domain(ctx, acme.ID, d2.ID)
	log("Domain inbound on", fmt.Sprintf("%+v", dd), " ", errName(err))
	d2.InboundEnabledAt, d2.InboundVerifiedAt, d2.Records = time.Time{}, time.Time{}, d2.Records[:1]
	log("SaveInbound off", errName(in.SaveInbound(ctx, d2)))
	dd, err = s.Domain(ctx, acme.ID, d2.ID)
	log("Domain inbound off", fmt.Sprintf("%+v", dd), " ", errName(err))
	other := *d2
	other.ProjectID = beta.ID
	log("SaveInbound other project", errName(in.SaveInbound(ctx, &other)))

	// Dashboard sessions: expiry, purging and revoked keys.
	ss := s.(store.Sessions)
	key, err := s.CreateAPIKey(ctx, store.APIKey{ProjectID: acme.ID, Prefix: "AS_Session1", Hash: sha256.Sum256([]byte("s")), CreatedAt: t0})
	must(err)
	for i, sess := range []store.Session{
		{Hash: sha256.Sum256([]byte("old")), APIKeyID: key.ID, ProjectID: acme.ID, CreatedAt: now, ExpiresAt: now.Add(time.Minute)},
		{Hash: sha256.Sum256([]byte("new")), APIKeyID: key.ID, ProjectID: acme.ID, CreatedAt: now.Add(time.Hour), ExpiresAt: now.Add(2 * time.Hour)},
	} {
		log(fmt.Sprint("CreateSession ", i), errName(ss.CreateSession(ctx, sess)))
	}
	for _, tc := range []struct {
		token string
		at    time.Time
	}{{"old", now}, {"new", now.Add(90 * time.Minute)}, {"new", now.Add(2 * time.Hour)}} {
		got, err := ss.SessionByHash(ctx, sha256.Sum256([]byte(tc.token)), tc.at)
		log(fmt.Sprintf("SessionByHash %s at %v", tc.token, tc.at), fmt.Sprintf("%+v", got), " ", errName(err))
	}
	log("DeleteSession unknown", errName(ss.DeleteSession(ctx, sha256.Sum256([]byte("none")))))
	_, err = s.RevokeAPIKey(ctx, "AS_Session1", now)
	must(err)
	got, err := ss.SessionByHash(ctx, sha256.Sum256([]byte("new")), now.Add(90*time.Minute))
	log("SessionByHash revoked key", fmt.Sprintf("%+v", got), " ", errName(err))

	// Revoking by bytes that are not valid UTF-8: the start of a whole key still
	// names its key.
	k := store.APIKey{ProjectID: acme.ID, Prefix: "AS_Bytes001", Hash: sha256.Sum256([]byte("x")), CreatedAt: t0}
	_, err = s.CreateAPIKey(ctx, k)
	must(err)
	for _, arg := range []string{"AS_By\xff", "AS_Bytes001\xff\xfe-rest", "\xff"} {
		got, err := s.RevokeAPIKey(ctx, arg, now)
		log(fmt.Sprintf("RevokeAPIKey %q", arg), got.Prefix, " ", got.RevokedAt, " ", errName(err))
	}
	return out
}
