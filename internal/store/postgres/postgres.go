// Package postgres implements store.Store on PostgreSQL through pgx, for operators
// who run several domaind replicas on one database. It keeps the data exactly as the
// SQLite store does (times as Unix milliseconds, JSON as text), and its claims use
// FOR UPDATE SKIP LOCKED so that replicas claiming at once never claim the same row.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// migrationLock is the key of the session advisory lock held while migrating: the
// ASCII bytes of "domaind". Advisory locks are per database, so only replicas of
// one database wait for each other.
const migrationLock int64 = 0x646f6d61696e64

// maxLockWait bounds how long Open waits for another replica's migrations and then
// runs its own, when its context sets no earlier deadline.
const maxLockWait = 5 * time.Minute

// Store is a store.Store on a PostgreSQL database, through a pool of connections.
// Any number of Stores, in one process or in several, may share the database.
type Store struct {
	pool *pgxpool.Pool
}

var _ store.Store = (*Store)(nil)

// Open connects to the database named by dsn (a postgres:// URL or a libpq
// keyword/value string; pool_max_conns and the other pgxpool settings may be set in
// it) and migrates it to the current schema. When several replicas open the same
// database at once, one migrates while the others wait for it, for as long as ctx
// allows but at most five minutes.
func Open(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx quotes the DSN in the error with its password masked.
		return nil, fmt.Errorf("postgres: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	if err := migrate(ctx, pool, cfg.ConnConfig); err != nil {
		pool.Close()
		return nil, err
	}
	return &Store{pool: pool}, nil
}

// migrate applies the pending migrations while holding the migration lock.
//
// The lock is a blocking pg_advisory_lock on a connection of its own rather than
// goose's session locker, which polls pg_try_advisory_lock at intervals of whole
// seconds (five by default): a replica that loses the race here starts as soon as
// the winner is done. When ctx ends first, pgx sends the server a cancel request, so
// the wait ends there too and the lock is not taken after Open has given up. If a
// replica dies while migrating, PostgreSQL ends its session and so releases the lock.
func migrate(ctx context.Context, pool *pgxpool.Pool, connCfg *pgx.ConnConfig) error {
	ctx, cancel := context.WithTimeout(ctx, maxLockWait)
	defer cancel()

	conn, err := pgx.ConnectConfig(ctx, connCfg)
	if err != nil {
		return fmt.Errorf("postgres: migration lock: %w", err)
	}
	defer func() {
		// Ending the session releases the lock, whatever happened meanwhile.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		conn.Close(ctx)
	}()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrationLock); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("postgres: waiting for another replica's migrations: %w (%w)", ctx.Err(), err)
		}
		return fmt.Errorf("postgres: migration lock: %w", err)
	}

	db := stdlib.OpenDBFromPool(pool) // closing db leaves the pool open
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, mustSub(migrations, "migrations"))
	if err != nil {
		return fmt.Errorf("postgres: migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	return nil
}

// Close closes the pool, waiting for connections in use to be returned.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// isUnique reports whether err is a unique_violation.
func isUnique(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// noLimit turns a limit into the argument of a LIMIT clause. A negative limit means
// none, as it does in SQLite, and so does NULL in PostgreSQL.
func noLimit(limit int) any {
	if limit < 0 {
		return nil
	}
	return limit
}

// limitOf is the LIMIT argument for a page: a Limit of 0 or less means none.
func limitOf(p store.Page) any {
	if p.Limit <= 0 {
		return nil
	}
	return p.Limit
}

// querier is what a pool and a transaction have in common.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// tx runs fn in a transaction, committing if it returns nil and rolling back if not.
// A write of one statement needs none: a statement is a transaction of its own.
func (s *Store) tx(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, fn)
}

// EnsureProject implements store.Store.
func (s *Store) EnsureProject(ctx context.Context, name string, now time.Time) (store.Project, error) {
	p := store.Project{Name: name}
	var created int64
	// Look first, so that the common case burns no identity value. Two replicas may
	// both find nothing: ON CONFLICT makes the second insert return no row, and the
	// second look then sees the first replica's project.
	const find = `SELECT id, created_at FROM projects WHERE name = $1`
	err := s.pool.QueryRow(ctx, find, name).Scan(&p.ID, &created)
	if errors.Is(err, pgx.ErrNoRows) {
		err = s.pool.QueryRow(ctx, `INSERT INTO projects (name, created_at) VALUES ($1, $2)
			ON CONFLICT (name) DO NOTHING RETURNING id, created_at`, name, store.Millis(now)).Scan(&p.ID, &created)
		if errors.Is(err, pgx.ErrNoRows) {
			err = s.pool.QueryRow(ctx, find, name).Scan(&p.ID, &created)
		}
	}
	if err != nil {
		return store.Project{}, fmt.Errorf("postgres: project %q: %w", name, err)
	}
	p.CreatedAt = store.FromMillis(created)
	return p, nil
}

// CreateAPIKey implements store.Store.
func (s *Store) CreateAPIKey(ctx context.Context, k store.APIKey) (store.APIKey, error) {
	err := s.pool.QueryRow(ctx,
		`INSERT INTO api_keys (project_id, prefix, hash, created_at) VALUES ($1, $2, $3, $4) RETURNING id`,
		k.ProjectID, k.Prefix, k.Hash[:], store.Millis(k.CreatedAt)).Scan(&k.ID)
	if err != nil {
		return store.APIKey{}, fmt.Errorf("postgres: create api key: %w", err)
	}
	return k, nil
}

const apiKeyColumns = `k.id, k.project_id, p.name, k.prefix, k.hash, k.created_at, k.revoked_at`

func scanAPIKey(sc pgx.Row) (store.APIKey, error) {
	var k store.APIKey
	var hash []byte
	var created, revoked int64
	if err := sc.Scan(&k.ID, &k.ProjectID, &k.ProjectName, &k.Prefix, &hash, &created, &revoked); err != nil {
		return k, err
	}
	copy(k.Hash[:], hash)
	k.CreatedAt, k.RevokedAt = store.FromMillis(created), store.FromMillis(revoked)
	return k, nil
}

// APIKeyByHash implements store.Store.
func (s *Store) APIKeyByHash(ctx context.Context, hash [32]byte) (store.APIKey, error) {
	k, err := scanAPIKey(s.pool.QueryRow(ctx, `SELECT `+apiKeyColumns+`
		FROM api_keys k JOIN projects p ON p.id = k.project_id WHERE k.hash = $1`, hash[:]))
	if errors.Is(err, pgx.ErrNoRows) {
		return k, store.ErrNotFound
	}
	if err != nil {
		return k, fmt.Errorf("postgres: api key: %w", err)
	}
	return k, nil
}

// APIKeys implements store.Store.
func (s *Store) APIKeys(ctx context.Context) ([]store.APIKey, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+apiKeyColumns+`
		FROM api_keys k JOIN projects p ON p.id = k.project_id ORDER BY k.id`)
	if err != nil {
		return nil, fmt.Errorf("postgres: api keys: %w", err)
	}
	keys, err := collect(rows, scanAPIKey)
	if err != nil {
		return nil, fmt.Errorf("postgres: api keys: %w", err)
	}
	return keys, nil
}

// collect scans every row with scan, closing rows. Like the SQLite store, it returns
// nil, not an empty slice, when there are no rows.
func collect[T any](rows pgx.Rows, scan func(pgx.Row) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// RevokeAPIKey implements store.Store.
func (s *Store) RevokeAPIKey(ctx context.Context, prefix string, now time.Time) (store.APIKey, error) {
	var k store.APIKey
	if prefix == "" {
		return k, store.ErrNotFound // an empty prefix would match every key
	}
	err := s.tx(ctx, func(tx pgx.Tx) error {
		// The stored prefix is a fixed-length start of the key; an operator may type
		// more or fewer characters, so match in both directions. LIKE would not do:
		// it may ignore case, and the stored prefix itself contains _, a wildcard.
		// The comparison is of bytes (bytea), so that what the operator typed needs
		// to be neither valid UTF-8 nor free of NUL to be compared, as in SQLite.
		// FOR UPDATE makes a concurrent revoke wait and then see the first one's time.
		rows, err := tx.Query(ctx, `SELECT `+apiKeyColumns+`
			FROM api_keys k JOIN projects p ON p.id = k.project_id
			WHERE substr(convert_to(k.prefix, 'UTF8'), 1, length($1::bytea)) = $1::bytea
			   OR substr($1::bytea, 1, length(convert_to(k.prefix, 'UTF8'))) = convert_to(k.prefix, 'UTF8')
			FOR UPDATE OF k`, []byte(prefix))
		if err != nil {
			return fmt.Errorf("postgres: revoke: %w", err)
		}
		found, err := collect(rows, scanAPIKey)
		if err != nil {
			return fmt.Errorf("postgres: revoke: %w", err)
		}
		switch len(found) {
		case 0:
			return store.ErrNotFound
		case 1:
		default:
			return store.ErrAmbiguous
		}
		k = found[0]
		if k.RevokedAt.IsZero() {
			k.RevokedAt = now.UTC().Truncate(time.Millisecond)
			if _, err := tx.Exec(ctx, `UPDATE api_keys SET revoked_at = $1 WHERE id = $2`, store.Millis(now), k.ID); err != nil {
				return fmt.Errorf("postgres: revoke: %w", err)
			}
		}
		return nil
	})
	return k, err
}

// CreateDomain implements store.Store.
func (s *Store) CreateDomain(ctx context.Context, d *domain.Domain, sealedKey []byte) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		// A second replica inserting the same (project, name) waits on the unique
		// index until the first commits, and then fails with unique_violation.
		_, err := tx.Exec(ctx, `INSERT INTO domains (id, project_id, name, region, status,
			ownership_verified, dkim_enabled, mail_from_enabled, dmarc_enabled, dkim_private_key,
			created_at, last_checked_at, verified_at, inbound_enabled_at, inbound_verified_at,
			next_check_at, check_attempt, window_started_at, failed_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)`,
			d.ID, d.ProjectID, d.Name, d.Region, string(d.Status),
			d.OwnershipVerified, d.DKIMEnabled, d.MailFromEnabled, d.DMARCEnabled, sealedKey,
			store.Millis(d.CreatedAt), store.Millis(d.LastCheckedAt), store.Millis(d.VerifiedAt), store.Millis(d.InboundEnabledAt), store.Millis(d.InboundVerifiedAt),
			store.Millis(d.NextCheckAt), d.CheckAttempt, store.Millis(d.WindowStartedAt), store.Millis(d.FailedAt))
		if isUnique(err) {
			return store.ErrDomainExists
		}
		if err != nil {
			return fmt.Errorf("postgres: create domain: %w", err)
		}
		for i := range d.Records {
			if err := insertRecord(ctx, tx, d.ID, i, &d.Records[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

func insertRecord(ctx context.Context, tx pgx.Tx, domainID string, pos int, r *domain.Record) error {
	found, problems, propagation, err := store.EncodeRecordState(r)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO domain_records (domain_id, key, position, name, type, value,
		priority, purpose, verified, status, found, problems, propagation, failures, checked_at, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
		domainID, string(r.Key), pos, r.Name, r.Type, r.Value, int(r.Priority), r.Purpose, r.Verified,
		string(r.Status), found, problems, propagation, r.Failures, store.Millis(r.CheckedAt), store.Millis(r.CreatedAt), store.Millis(r.UpdatedAt))
	if err != nil {
		return fmt.Errorf("postgres: insert record %s: %w", r.Key, err)
	}
	return nil
}

// Domain implements store.Store.
func (s *Store) Domain(ctx context.Context, projectID int64, id string) (*domain.Domain, error) {
	tx, err := s.readTx(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(ctx)
	d, err := store.ScanDomain(tx.QueryRow(ctx,
		`SELECT `+store.DomainColumns+` FROM domains WHERE id = $1 AND project_id = $2`, id, projectID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: domain %s: %w", id, err)
	}
	if err := loadRecords(ctx, tx, []*domain.Domain{d}); err != nil {
		return nil, err
	}
	return d, nil
}

// Domains implements store.Store.
func (s *Store) Domains(ctx context.Context, projectID int64, p store.Page) ([]*domain.Domain, int, error) {
	tx, err := s.readTx(ctx)
	if err != nil {
		return nil, 0, err
	}
	defer tx.Rollback(ctx)
	var total int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM domains WHERE project_id = $1`, projectID).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("postgres: count domains: %w", err)
	}
	query, args := `SELECT `+store.DomainColumns+` FROM domains WHERE project_id = $1
		ORDER BY created_at, id LIMIT $2 OFFSET $3`, []any{projectID, limitOf(p), max(p.Offset, 0)}
	if a := p.After; a != nil {
		// Keyset pagination ignores Offset, as in SQLite. The row comparison is the
		// order of the list, and of the index domains_project_created.
		query = `SELECT ` + store.DomainColumns + ` FROM domains WHERE project_id = $1
			AND (created_at, id) > ($2, $3) ORDER BY created_at, id LIMIT $4`
		args = []any{projectID, store.Millis(a.CreatedAt), a.ID, limitOf(p)}
	}
	rows, err := tx.Query(ctx, query, args...)
	if err != nil {
		return nil, 0, fmt.Errorf("postgres: list domains: %w", err)
	}
	ds, err := collect(rows, func(r pgx.Row) (*domain.Domain, error) { return store.ScanDomain(r) })
	if err != nil {
		return nil, 0, fmt.Errorf("postgres: list domains: %w", err)
	}
	if err := loadRecords(ctx, tx, ds); err != nil {
		return nil, 0, err
	}
	return ds, total, nil
}

// readTx begins a read-only REPEATABLE READ transaction: a domain and its
// records are read from one snapshot, so a check committing between the two
// reads cannot tear them (a domain row from before it with records from after).
func (s *Store) readTx(ctx context.Context) (pgx.Tx, error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("postgres: begin read: %w", err)
	}
	return tx, nil
}

// loadRecords fills in the records of ds with one query.
func loadRecords(ctx context.Context, q querier, ds []*domain.Domain) error {
	if len(ds) == 0 {
		return nil
	}
	byID := make(map[string]*domain.Domain, len(ds))
	ids := make([]string, len(ds))
	for i, d := range ds {
		byID[d.ID] = d
		ids[i] = d.ID
	}
	rows, err := q.Query(ctx, `SELECT domain_id, key, name, type, value, priority, purpose,
		verified, status, found, problems, propagation, failures, checked_at, created_at, updated_at
		FROM domain_records WHERE domain_id = ANY($1) ORDER BY domain_id, position`, ids)
	if err != nil {
		return fmt.Errorf("postgres: records: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, key, status, found, problems, propagation string
		var r domain.Record
		var priority int32
		var checked, created, updated int64
		if err := rows.Scan(&id, &key, &r.Name, &r.Type, &r.Value, &priority, &r.Purpose,
			&r.Verified, &status, &found, &problems, &propagation, &r.Failures, &checked, &created, &updated); err != nil {
			return fmt.Errorf("postgres: records: %w", err)
		}
		r.Key, r.Status, r.Priority = domain.RecordKey(key), domain.CheckStatus(status), uint16(priority)
		r.CheckedAt, r.CreatedAt, r.UpdatedAt = store.FromMillis(checked), store.FromMillis(created), store.FromMillis(updated)
		if err := store.DecodeRecordState(&r, found, problems, propagation); err != nil {
			return fmt.Errorf("postgres: domain %s: %w", id, err)
		}
		d := byID[id]
		d.Records = append(d.Records, r)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("postgres: records: %w", err)
	}
	return nil
}

// DeleteDomain implements store.Store.
func (s *Store) DeleteDomain(ctx context.Context, projectID int64, id string) error {
	// One statement: records and events go with the domain through ON DELETE
	// CASCADE, and the DKIM key is a column of the domain row.
	tag, err := s.pool.Exec(ctx, `DELETE FROM domains WHERE id = $1 AND project_id = $2`, id, projectID)
	if err != nil {
		return fmt.Errorf("postgres: delete domain %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return store.ErrNotFound
	}
	return nil
}

// SaveCheck implements store.Store.
func (s *Store) SaveCheck(ctx context.Context, d *domain.Domain, events []store.Event) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		// The update locks the domain row first, so two replicas saving checks of
		// one domain take turns, and a concurrent delete waits for this one.
		tag, err := tx.Exec(ctx, `UPDATE domains SET status = $1, ownership_verified = $2,
			dkim_enabled = $3, mail_from_enabled = $4, dmarc_enabled = $5, last_checked_at = $6,
			verified_at = $7, inbound_verified_at = $8, next_check_at = $9, check_attempt = $10,
			window_started_at = $11, failed_at = $12 WHERE id = $13`,
			string(d.Status), d.OwnershipVerified, d.DKIMEnabled, d.MailFromEnabled, d.DMARCEnabled,
			store.Millis(d.LastCheckedAt), store.Millis(d.VerifiedAt), store.Millis(d.InboundVerifiedAt), store.Millis(d.NextCheckAt), d.CheckAttempt,
			store.Millis(d.WindowStartedAt), store.Millis(d.FailedAt), d.ID)
		if err != nil {
			return fmt.Errorf("postgres: save check %s: %w", d.ID, err)
		}
		if tag.RowsAffected() == 0 {
			return store.ErrNotFound // deleted while the check ran
		}
		for i := range d.Records {
			r := &d.Records[i]
			found, problems, propagation, err := store.EncodeRecordState(r)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `UPDATE domain_records SET verified = $1, status = $2, found = $3,
				problems = $4, propagation = $5, failures = $6, checked_at = $7, updated_at = $8
				WHERE domain_id = $9 AND key = $10`,
				r.Verified, string(r.Status), found, problems, propagation, r.Failures, store.Millis(r.CheckedAt), store.Millis(r.UpdatedAt),
				d.ID, string(r.Key)); err != nil {
				return fmt.Errorf("postgres: save record %s/%s: %w", d.ID, r.Key, err)
			}
		}
		return insertEvents(ctx, tx, events)
	})
}

// SealedDKIMKey implements store.Store.
func (s *Store) SealedDKIMKey(ctx context.Context, id string) ([]byte, error) {
	var key []byte
	err := s.pool.QueryRow(ctx, `SELECT dkim_private_key FROM domains WHERE id = $1`, id).Scan(&key)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: dkim key %s: %w", id, err)
	}
	return key, nil
}

// SigningKeys implements store.Store.
func (s *Store) SigningKeys(ctx context.Context, names []string) ([]store.SigningKey, error) {
	q, args := store.SigningKeysQuery, []any{}
	if names != nil {
		if len(names) == 0 {
			return nil, nil
		}
		q += ` AND d.name = ANY($1)`
		args = append(args, names)
	}
	rows, err := s.pool.Query(ctx, q+store.SigningKeysOrder, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: signing keys: %w", err)
	}
	defer rows.Close()
	keys, err := store.ScanSigningKeys(rows)
	if err != nil {
		return nil, fmt.Errorf("postgres: signing keys: %w", err)
	}
	return keys, nil
}

func mustSub(f embed.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		// The directory is embedded at build time, so this cannot fail at run time.
		panic(err)
	}
	return sub
}
