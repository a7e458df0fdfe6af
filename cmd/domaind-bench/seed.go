package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite" // the driver package sqlite uses; read here for seeded ids

	"github.com/domaind/domaind/internal/apikey"
	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/records"
	"github.com/domaind/domaind/internal/rotation"
	"github.com/domaind/domaind/internal/store"
	"github.com/domaind/domaind/internal/store/postgres"
	"github.com/domaind/domaind/internal/store/sqlite"
	"github.com/domaind/domaind/internal/store/sqlstore"
)

// The projects of the bench. Seeded domains live in seedProject; the API benchmark
// adds domains to postProject, so that a cached database keeps exactly the
// seeded domains in seedProject and the added ones can be found and removed.
const (
	seedProject = "bench"
	postProject = "bench-post"
	zoneOrigin  = "bench.test"
	region      = "us-east-1"
)

// template is one domain's generated records, reused for every seeded domain:
// generating an RSA key per domain (tens of milliseconds each) would make seeding a
// million domains take hours, and what is stored is the same size either way.
type template struct {
	cfg    records.Config
	name   string
	gen    records.Generated
	recs   []domain.Record
	priv   []byte
	sealer *records.Sealer
	// rot makes each domain's DKIM rotation row as serve's does (the default
	// --dkim-mode txt and --dkim-rotate-every).
	rot *rotation.Rotator
}

func newTemplate(sealer *records.Sealer) (*template, error) {
	cfg := records.DefaultConfig()
	name := "template." + zoneOrigin
	gen, err := cfg.Generate(name, region, time.Now())
	if err != nil {
		return nil, fmt.Errorf("generate template records: %w", err)
	}
	// Stored as domains.Service.Add stores a new domain's key.
	priv, err := records.StoredKey(gen.DKIMPrivateKey)
	if err != nil {
		return nil, err
	}
	rot := &rotation.Rotator{Records: cfg, Config: rotation.DefaultConfig()}
	return &template{cfg: cfg, name: name, gen: gen, recs: gen.Records, priv: priv, sealer: sealer, rot: rot}, nil
}

// domain returns a new domain named name with the template's records, a fresh
// ownership token and id, and its DKIM key sealed under its own id as the real
// path seals it, with its next automatic check at next.
func (t *template) domain(projectID int64, name string, now, next time.Time) (*domain.Domain, []byte, error) {
	now = domain.NowMillis(now)
	id, err := domain.NewID(now)
	if err != nil {
		return nil, nil, err
	}
	var tok [16]byte
	if _, err := rand.Read(tok[:]); err != nil {
		return nil, nil, fmt.Errorf("ownership token: %w", err)
	}
	recs := make([]domain.Record, len(t.recs))
	for i, r := range t.recs {
		r.Name = strings.TrimSuffix(r.Name, t.name) + name
		if r.Key == domain.KeyOwnership {
			r.Value = t.cfg.OwnershipPrefix + "-" + hex.EncodeToString(tok[:])
		}
		r.CreatedAt, r.UpdatedAt = now, now
		recs[i] = r
	}
	sealed, err := t.sealer.Seal(t.priv, id)
	if err != nil {
		return nil, nil, err
	}
	d := &domain.Domain{
		ID: id, ProjectID: projectID, Name: name, Region: region,
		Status: domain.StatusPendingConfiguration, Records: recs,
		CreatedAt: now, LastCheckedAt: now, WindowStartedAt: now,
		NextCheckAt: domain.NowMillis(next),
	}
	return d, sealed, nil
}

// seedSpec says what to seed.
type seedSpec struct {
	label     string // for progress lines
	n         int
	projectID int64
	name      func(i int) string
	next      func(i int, now time.Time) time.Time
	// made, if set, is called with each stored domain, from several goroutines.
	made func(i int, d *domain.Domain)
}

// seed stores spec.n domains from several goroutines, each with its DKIM
// rotation row, through Store.CreateDomainRotating as serve adds a domain,
// printing progress every few seconds.
func seed(ctx context.Context, st store.Store, t *template, spec seedSpec, workers int, log io.Writer) (time.Duration, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	start := time.Now()
	var next, done atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= spec.n {
					return
				}
				now := time.Now()
				d, sealed, err := t.domain(spec.projectID, spec.name(i), now, spec.next(i, now))
				if err == nil {
					err = st.CreateDomainRotating(ctx, d, sealed, t.rot.NewRotation(d, t.gen))
				}
				if err != nil {
					cancel(fmt.Errorf("seed %s: domain %d: %w", spec.label, i, err))
					return
				}
				if spec.made != nil {
					spec.made(i, d)
				}
				done.Add(1)
			}
		})
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-finished:
			if err := context.Cause(ctx); err != nil {
				return 0, err
			}
			took := time.Since(start)
			fmt.Fprintf(log, "  seeded %s: %d domains in %s (%.0f/s)\n", spec.label, spec.n, took.Round(100*time.Millisecond), float64(spec.n)/took.Seconds())
			return took, nil
		case <-tick.C:
			n := done.Load()
			fmt.Fprintf(log, "  seeding %s: %d of %d (%.0f/s)\n", spec.label, n, spec.n, float64(n)/time.Since(start).Seconds())
		}
	}
}

// seededName is the name of the i-th seeded domain.
func seededName(i int) string { return fmt.Sprintf("s%07d.%s", i, zoneOrigin) }

// notDue puts a seeded domain's next check a year away, spread over a day as
// re-verifications of verified domains are, so the domains sit in the due index as
// real ones do but no background check runs during a benchmark.
func notDue(i int, now time.Time) time.Time {
	return now.Add(365*24*time.Hour + time.Duration(i%86400)*time.Second)
}

// newAPIKey creates a project if new and an API key for it, as
// `domaind apikey create` does; it returns the project's id and the key.
func newAPIKey(ctx context.Context, st store.Store, project string) (int64, string, error) {
	key, k, err := (&apikey.Service{Store: st}).Create(ctx, project, time.Now())
	return k.ProjectID, key, err
}

// seeded is a store holding n seeded domains, ready for a benchmark.
type seeded struct {
	store    store.Store
	n        int
	ids      []string // of the seeded domains
	seedTime time.Duration
	cached   bool
	path     string // the SQLite file, for serve
	dsn      string // the PostgreSQL database, for the bare point reads
}

// reuseSeeded opens a store that an earlier run seeded, with the ids of its
// seeded domains, and refuses one that does not hold s.n of them; s says where
// the store is (its path or dsn), what names it in that error.
func reuseSeeded(ctx context.Context, s seeded, what string,
	open func(context.Context) (store.Store, error), readIDs func(context.Context) ([]string, error)) (*seeded, error) {
	st, err := open(ctx)
	if err != nil {
		return nil, err
	}
	ids, err := readIDs(ctx)
	if err == nil && len(ids) != s.n {
		err = fmt.Errorf("%s holds %d seeded domains, not %d; delete it to seed again", what, len(ids), s.n)
	}
	if err != nil {
		st.Close()
		return nil, err
	}
	s.store, s.ids, s.cached = st, ids, true
	return &s, nil
}

// sqliteSeeded opens the SQLite database of n seeded domains in the cache folder,
// seeding it first if no complete one is there. A database being seeded has a
// name of its own until it is complete, so an interrupted run leaves nothing that
// a later run would take for a seeded one.
func (b *bench) sqliteSeeded(ctx context.Context, n int) (*seeded, error) {
	// The name changes with the stored form of a domain (v2: migration 00009 and
	// keys stored as their primes; v3: migration 00011, and each domain seeded
	// with its rotation row as serve makes it), so a file seeded in an older
	// form, which migrating does not shrink, is not reused.
	path := filepath.Join(b.cfg.cacheDir, fmt.Sprintf("sqlite-%d-v3.db", n))
	label := fmt.Sprintf("SQLite %d", n)
	if _, err := os.Stat(path); err == nil {
		fmt.Fprintf(b.log, "  using the seeded %s\n", path)
		return reuseSeeded(ctx, seeded{n: n, path: path}, path,
			func(ctx context.Context) (store.Store, error) { return sqlite.Open(ctx, path) },
			func(ctx context.Context) ([]string, error) { return sqliteIDs(ctx, path) })
	}

	partial := path + ".partial"
	for _, p := range []string{partial, partial + "-wal", partial + "-shm"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	st, err := sqlite.Open(ctx, partial)
	if err != nil {
		return nil, err
	}
	ids, took, err := b.seedAPI(ctx, st, label, n)
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	if err := os.Rename(partial, path); err != nil {
		return nil, err
	}
	if st, err = sqlite.Open(ctx, path); err != nil {
		return nil, err
	}
	return &seeded{store: st, n: n, ids: ids, seedTime: took, path: path}, nil
}

// seedAPI seeds n domains that are not due into the seed project.
func (b *bench) seedAPI(ctx context.Context, st store.Store, label string, n int) ([]string, time.Duration, error) {
	t, err := b.template()
	if err != nil {
		return nil, 0, err
	}
	p, err := st.EnsureProject(ctx, seedProject, time.Now())
	if err != nil {
		return nil, 0, err
	}
	ids := make([]string, n)
	took, err := seed(ctx, st, t, seedSpec{
		label: label, n: n, projectID: p.ID, name: seededName, next: notDue,
		made: func(i int, d *domain.Domain) { ids[i] = d.ID },
	}, b.cfg.seedWorkers, b.log)
	return ids, took, err
}

// sqliteIDs reads the ids of the seed project's domains straight from the file:
// the Store has no call that lists ids alone, and listing a million domains with
// their records to learn their ids would take longer than the benchmark.
func sqliteIDs(ctx context.Context, path string) ([]string, error) {
	ids, err := querySQLite(ctx, "file:"+path+"?mode=ro&_pragma=busy_timeout(10000)",
		func(r sqlstore.Row) (id string, err error) { err = r.Scan(&id); return },
		`SELECT d.id FROM domains d JOIN projects p ON p.id = d.project_id WHERE p.name = ?`, seedProject)
	if err != nil {
		return nil, fmt.Errorf("read seeded ids from %s: %w", path, err)
	}
	return ids, nil
}

// querySQLite runs query on the SQLite database dsn names, outside any Store,
// and returns what scan makes of each row.
func querySQLite[T any](ctx context.Context, dsn string, scan func(sqlstore.Row) (T, error), query string, args ...any) ([]T, error) {
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return sqlstore.Collect(sqlstore.SQLRows{Rows: rows}, scan)
}

// pgSeeded returns a PostgreSQL database of n seeded domains. With -keep-postgres
// a database seeded by an earlier run is reused; it is marked complete (by a
// comment on the database) only once seeding has finished.
func (b *bench) pgSeeded(ctx context.Context, n int) (*seeded, error) {
	name := fmt.Sprintf("domaind_bench_api_%d", n)
	marker := fmt.Sprintf("domaind-bench: %d domains seeded", n)
	label := fmt.Sprintf("PostgreSQL %d", n)
	if b.cfg.keepPostgres {
		comment, exists, err := b.pg.comment(ctx, name)
		if err != nil {
			return nil, err
		}
		if exists && comment == marker {
			fmt.Fprintf(b.log, "  using the seeded database %s\n", name)
			dsn := b.pg.dsn(name, nil)
			return reuseSeeded(ctx, seeded{n: n, dsn: dsn}, "database "+name,
				func(ctx context.Context) (store.Store, error) { return postgres.Open(ctx, dsn) },
				func(ctx context.Context) ([]string, error) { return pgIDs(ctx, dsn) })
		}
	}
	if err := b.pg.create(ctx, name); err != nil {
		return nil, err
	}
	seedStore, err := postgres.Open(ctx, b.pg.dsn(name, b.seedParams()))
	if err != nil {
		return nil, err
	}
	ids, took, err := b.seedAPI(ctx, seedStore, label, n)
	seedStore.Close()
	if err != nil {
		return nil, err
	}
	if b.cfg.keepPostgres {
		if err := b.pg.setComment(ctx, name, marker); err != nil {
			return nil, err
		}
	}
	dsn := b.pg.dsn(name, nil)
	st, err := postgres.Open(ctx, dsn)
	if err != nil {
		return nil, err
	}
	return &seeded{store: st, n: n, ids: ids, seedTime: took, dsn: dsn}, nil
}

// seedParams are the connection settings of a seeding store. The seed's
// durability is worth nothing (a crash means seeding again), so its connections
// do not wait for the WAL to reach the disk, and there is one per seeding
// goroutine; the benchmarks' own stores use the server's settings and pgx's
// default pool, as serve does.
func (b *bench) seedParams() map[string]string {
	return map[string]string{"synchronous_commit": "off", "pool_max_conns": strconv.Itoa(b.cfg.seedWorkers)}
}

func pgIDs(ctx context.Context, dsn string) ([]string, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rows, err := conn.Query(ctx, `SELECT d.id FROM domains d JOIN projects p ON p.id = d.project_id WHERE p.name = $1`, seedProject)
	if err != nil {
		return nil, fmt.Errorf("read seeded ids: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// removePosted deletes the domains the API benchmark added, so that a cached
// database holds only the seeded ones.
func removePosted(ctx context.Context, st store.Store) (int, error) {
	p, err := st.EnsureProject(ctx, postProject, time.Now())
	if err != nil {
		return 0, err
	}
	n := 0
	for {
		ds, _, err := st.Domains(ctx, p.ID, store.Page{Limit: 500})
		if err != nil {
			return n, err
		}
		if len(ds) == 0 {
			return n, nil
		}
		for _, d := range ds {
			if err := st.DeleteDomain(ctx, p.ID, d.ID); err != nil {
				return n, err
			}
			n++
		}
	}
}
