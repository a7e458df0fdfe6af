// Package sqlite implements store.Store on an embedded SQLite database through the
// pure-Go modernc.org/sqlite driver, so domaind builds and runs without cgo.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is a store.Store on one SQLite file. It keeps two pools: a single writer
// connection whose transactions take the write lock up front (BEGIN IMMEDIATE, so
// two writers never deadlock upgrading read locks), and several read-only
// connections that WAL mode lets run beside the writer.
type Store struct {
	w, r *sql.DB
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the database file at path and migrates it to the
// current schema.
func Open(ctx context.Context, path string) (*Store, error) {
	// The driver reads the path as a URI, where these characters mean something.
	if path == "" || strings.ContainsAny(path, "?#%") {
		return nil, fmt.Errorf("sqlite: invalid database path %q: it must not be empty or contain ?, # or %%", path)
	}
	dsn := func(extra string) string {
		q := url.Values{}
		q.Add("_pragma", "busy_timeout(10000)")
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(NORMAL)")
		q.Add("_pragma", "foreign_keys(1)")
		if extra != "" {
			k, v, _ := strings.Cut(extra, "=")
			q.Add(k, v)
		}
		return "file:" + path + "?" + q.Encode()
	}
	// The file holds sealed DKIM keys and API key hashes: only its owner may read
	// it. SQLite gives the -wal and -shm files it creates the database file's mode.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	f.Close()
	w, err := sql.Open("sqlite", dsn("_txlock=immediate"))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	if err := migrate(ctx, w); err != nil {
		w.Close()
		return nil, err
	}
	r, err := sql.Open("sqlite", dsn("_pragma=query_only(1)"))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	r.SetMaxOpenConns(max(4, runtime.GOMAXPROCS(0)))
	return &Store{w: w, r: r}, nil
}

func migrate(ctx context.Context, db *sql.DB) error {
	p, err := goose.NewProvider(goose.DialectSQLite3, db, mustSub(migrations, "migrations"))
	if err != nil {
		return fmt.Errorf("sqlite: migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	return nil
}

// Close closes both pools.
func (s *Store) Close() error {
	return errors.Join(s.r.Close(), s.w.Close())
}

func isUnique(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && (se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)
}

// tx runs fn in a write transaction, committing if it returns nil.
func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: commit: %w", err)
	}
	return nil
}

// EnsureProject implements store.Store.
func (s *Store) EnsureProject(ctx context.Context, name string, now time.Time) (store.Project, error) {
	p := store.Project{Name: name}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var created int64
		err := tx.QueryRowContext(ctx, `SELECT id, created_at FROM projects WHERE name = ?`, name).Scan(&p.ID, &created)
		if err == nil {
			p.CreatedAt = store.FromMillis(created)
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("sqlite: project %q: %w", name, err)
		}
		p.CreatedAt = now.UTC().Truncate(time.Millisecond)
		return tx.QueryRowContext(ctx, `INSERT INTO projects (name, created_at) VALUES (?, ?) RETURNING id`,
			name, store.Millis(now)).Scan(&p.ID)
	})
	return p, err
}

// CreateAPIKey implements store.Store.
func (s *Store) CreateAPIKey(ctx context.Context, k store.APIKey) (store.APIKey, error) {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx,
			`INSERT INTO api_keys (project_id, prefix, hash, created_at) VALUES (?, ?, ?, ?) RETURNING id`,
			k.ProjectID, k.Prefix, k.Hash[:], store.Millis(k.CreatedAt)).Scan(&k.ID)
	})
	if err != nil {
		return store.APIKey{}, fmt.Errorf("sqlite: create api key: %w", err)
	}
	return k, nil
}

const apiKeyColumns = `k.id, k.project_id, p.name, k.prefix, k.hash, k.created_at, k.revoked_at`

func scanAPIKey(sc interface{ Scan(...any) error }) (store.APIKey, error) {
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
	row := s.r.QueryRowContext(ctx, `SELECT `+apiKeyColumns+`
		FROM api_keys k JOIN projects p ON p.id = k.project_id WHERE k.hash = ?`, hash[:])
	k, err := scanAPIKey(row)
	if errors.Is(err, sql.ErrNoRows) {
		return k, store.ErrNotFound
	}
	if err != nil {
		return k, fmt.Errorf("sqlite: api key: %w", err)
	}
	return k, nil
}

// APIKeys implements store.Store.
func (s *Store) APIKeys(ctx context.Context) ([]store.APIKey, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+apiKeyColumns+`
		FROM api_keys k JOIN projects p ON p.id = k.project_id ORDER BY k.id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: api keys: %w", err)
	}
	defer rows.Close()
	var keys []store.APIKey
	for rows.Next() {
		k, err := scanAPIKey(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: api keys: %w", err)
		}
		keys = append(keys, k)
	}
	return keys, rows.Err()
}

// RevokeAPIKey implements store.Store.
func (s *Store) RevokeAPIKey(ctx context.Context, prefix string, now time.Time) (store.APIKey, error) {
	var k store.APIKey
	if prefix == "" {
		return k, store.ErrNotFound // an empty prefix would match every key
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		// The stored prefix is a fixed-length start of the key; an operator may type
		// more or fewer characters, so match in both directions. LIKE would not do:
		// it ignores ASCII case, and the stored prefix itself contains _, a wildcard.
		rows, err := tx.QueryContext(ctx, `SELECT `+apiKeyColumns+`
			FROM api_keys k JOIN projects p ON p.id = k.project_id
			WHERE substr(k.prefix, 1, length(?)) = ? OR substr(?, 1, length(k.prefix)) = k.prefix`,
			prefix, prefix, prefix)
		if err != nil {
			return fmt.Errorf("sqlite: revoke: %w", err)
		}
		var found []store.APIKey
		for rows.Next() {
			k, err := scanAPIKey(rows)
			if err != nil {
				rows.Close()
				return fmt.Errorf("sqlite: revoke: %w", err)
			}
			found = append(found, k)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("sqlite: revoke: %w", err)
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
			if _, err := tx.ExecContext(ctx, `UPDATE api_keys SET revoked_at = ? WHERE id = ?`, store.Millis(now), k.ID); err != nil {
				return fmt.Errorf("sqlite: revoke: %w", err)
			}
		}
		return nil
	})
	return k, err
}

// CreateDomain implements store.Store.
func (s *Store) CreateDomain(ctx context.Context, d *domain.Domain, sealedKey []byte) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO domains (id, project_id, name, region, status,
			ownership_verified, dkim_enabled, mail_from_enabled, dmarc_enabled, dkim_private_key,
			created_at, last_checked_at, verified_at, inbound_enabled_at, inbound_verified_at,
			next_check_at, check_attempt, window_started_at, failed_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			d.ID, d.ProjectID, d.Name, d.Region, string(d.Status),
			d.OwnershipVerified, d.DKIMEnabled, d.MailFromEnabled, d.DMARCEnabled, sealedKey,
			store.Millis(d.CreatedAt), store.Millis(d.LastCheckedAt), store.Millis(d.VerifiedAt), store.Millis(d.InboundEnabledAt), store.Millis(d.InboundVerifiedAt),
			store.Millis(d.NextCheckAt), d.CheckAttempt, store.Millis(d.WindowStartedAt), store.Millis(d.FailedAt))
		if isUnique(err) {
			return store.ErrDomainExists
		}
		if err != nil {
			return fmt.Errorf("sqlite: create domain: %w", err)
		}
		for i := range d.Records {
			if err := insertRecord(ctx, tx, d.ID, i, &d.Records[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

func insertRecord(ctx context.Context, tx *sql.Tx, domainID string, pos int, r *domain.Record) error {
	found, problems, propagation, err := store.EncodeRecordState(r)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO domain_records (domain_id, key, position, name, type, value,
		priority, purpose, verified, status, found, problems, propagation, failures, checked_at, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		domainID, string(r.Key), pos, r.Name, r.Type, r.Value, r.Priority, r.Purpose, r.Verified,
		string(r.Status), found, problems, propagation, r.Failures, store.Millis(r.CheckedAt), store.Millis(r.CreatedAt), store.Millis(r.UpdatedAt))
	if err != nil {
		return fmt.Errorf("sqlite: insert record %s: %w", r.Key, err)
	}
	return nil
}

// Domain implements store.Store.
func (s *Store) Domain(ctx context.Context, projectID int64, id string) (*domain.Domain, error) {
	tx, err := s.readTx(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	d, err := store.ScanDomain(tx.QueryRowContext(ctx,
		`SELECT `+store.DomainColumns+` FROM domains WHERE id = ? AND project_id = ?`, id, projectID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: domain %s: %w", id, err)
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
	defer tx.Rollback()
	var total int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM domains WHERE project_id = ?`, projectID).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("sqlite: count domains: %w", err)
	}
	limit := p.Limit
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	query, args := `SELECT `+store.DomainColumns+` FROM domains WHERE project_id = ?
		ORDER BY created_at, id LIMIT ? OFFSET ?`, []any{projectID, limit, max(p.Offset, 0)}
	if a := p.After; a != nil {
		query = `SELECT ` + store.DomainColumns + ` FROM domains WHERE project_id = ?
			AND (created_at > ? OR (created_at = ? AND id > ?)) ORDER BY created_at, id LIMIT ?`
		args = []any{projectID, store.Millis(a.CreatedAt), store.Millis(a.CreatedAt), a.ID, limit}
	}
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, 0, fmt.Errorf("sqlite: list domains: %w", err)
	}
	defer rows.Close()
	var ds []*domain.Domain
	for rows.Next() {
		d, err := store.ScanDomain(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("sqlite: list domains: %w", err)
		}
		ds = append(ds, d)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("sqlite: list domains: %w", err)
	}
	rows.Close()
	if err := loadRecords(ctx, tx, ds); err != nil {
		return nil, 0, err
	}
	return ds, total, nil
}

// readTx begins a read-only transaction: a domain and its records are read from
// one snapshot, so a check committing between the two reads cannot tear them
// (a domain row from before it with records from after it).
func (s *Store) readTx(ctx context.Context) (*sql.Tx, error) {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("sqlite: begin read: %w", err)
	}
	return tx, nil
}

// loadRecords fills in the records of ds with one query per batch of domains.
func loadRecords(ctx context.Context, q queryer, ds []*domain.Domain) error {
	const batch = 500 // well under SQLite's bound-parameter limit
	for start := 0; start < len(ds); start += batch {
		part := ds[start:min(start+batch, len(ds))]
		byID := make(map[string]*domain.Domain, len(part))
		args := make([]any, len(part))
		for i, d := range part {
			byID[d.ID] = d
			args[i] = d.ID
		}
		rows, err := q.QueryContext(ctx, `SELECT domain_id, key, name, type, value, priority, purpose,
			verified, status, found, problems, propagation, failures, checked_at, created_at, updated_at
			FROM domain_records WHERE domain_id IN (?`+strings.Repeat(",?", len(part)-1)+`)
			ORDER BY domain_id, position`, args...)
		if err != nil {
			return fmt.Errorf("sqlite: records: %w", err)
		}
		for rows.Next() {
			var id, key, status, found, problems, propagation string
			var r domain.Record
			var checked, created, updated int64
			if err := rows.Scan(&id, &key, &r.Name, &r.Type, &r.Value, &r.Priority, &r.Purpose,
				&r.Verified, &status, &found, &problems, &propagation, &r.Failures, &checked, &created, &updated); err != nil {
				rows.Close()
				return fmt.Errorf("sqlite: records: %w", err)
			}
			r.Key, r.Status = domain.RecordKey(key), domain.CheckStatus(status)
			r.CheckedAt, r.CreatedAt, r.UpdatedAt = store.FromMillis(checked), store.FromMillis(created), store.FromMillis(updated)
			if err := store.DecodeRecordState(&r, found, problems, propagation); err != nil {
				rows.Close()
				return fmt.Errorf("sqlite: domain %s: %w", id, err)
			}
			d := byID[id]
			d.Records = append(d.Records, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("sqlite: records: %w", err)
		}
	}
	return nil
}

// DeleteDomain implements store.Store.
func (s *Store) DeleteDomain(ctx context.Context, projectID int64, id string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM domains WHERE id = ? AND project_id = ?`, id, projectID)
		if err != nil {
			return fmt.Errorf("sqlite: delete domain %s: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return store.ErrNotFound
		}
		// Records go with the domain through ON DELETE CASCADE; the DKIM key is a
		// column of the domain row.
		return nil
	})
}

// SaveCheck implements store.Store.
func (s *Store) SaveCheck(ctx context.Context, d *domain.Domain, events []store.Event) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE domains SET status = ?, ownership_verified = ?,
			dkim_enabled = ?, mail_from_enabled = ?, dmarc_enabled = ?, last_checked_at = ?,
			verified_at = ?, inbound_verified_at = ?, next_check_at = ?, check_attempt = ?,
			window_started_at = ?, failed_at = ? WHERE id = ?`,
			string(d.Status), d.OwnershipVerified, d.DKIMEnabled, d.MailFromEnabled, d.DMARCEnabled,
			store.Millis(d.LastCheckedAt), store.Millis(d.VerifiedAt), store.Millis(d.InboundVerifiedAt), store.Millis(d.NextCheckAt), d.CheckAttempt,
			store.Millis(d.WindowStartedAt), store.Millis(d.FailedAt), d.ID)
		if err != nil {
			return fmt.Errorf("sqlite: save check %s: %w", d.ID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return store.ErrNotFound // deleted while the check ran
		}
		for i := range d.Records {
			r := &d.Records[i]
			found, problems, propagation, err := store.EncodeRecordState(r)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE domain_records SET verified = ?, status = ?, found = ?,
				problems = ?, propagation = ?, failures = ?, checked_at = ?, updated_at = ? WHERE domain_id = ? AND key = ?`,
				r.Verified, string(r.Status), found, problems, propagation, r.Failures, store.Millis(r.CheckedAt), store.Millis(r.UpdatedAt),
				d.ID, string(r.Key)); err != nil {
				return fmt.Errorf("sqlite: save record %s/%s: %w", d.ID, r.Key, err)
			}
		}
		return insertEvents(ctx, tx, events)
	})
}

// SealedDKIMKey implements store.Store.
func (s *Store) SealedDKIMKey(ctx context.Context, id string) ([]byte, error) {
	var key []byte
	err := s.r.QueryRowContext(ctx, `SELECT dkim_private_key FROM domains WHERE id = ?`, id).Scan(&key)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: dkim key %s: %w", id, err)
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
		q += ` AND d.name IN (?` + strings.Repeat(`, ?`, len(names)-1) + `)`
		for _, n := range names {
			args = append(args, n)
		}
	}
	rows, err := s.r.QueryContext(ctx, q+store.SigningKeysOrder, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: signing keys: %w", err)
	}
	defer rows.Close()
	keys, err := store.ScanSigningKeys(rows)
	if err != nil {
		return nil, fmt.Errorf("sqlite: signing keys: %w", err)
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
