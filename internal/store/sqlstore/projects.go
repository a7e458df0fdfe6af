package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/store"
)

// EnsureProject implements store.Store.
func (s *Store) EnsureProject(ctx context.Context, name string, now time.Time) (store.Project, error) {
	p := store.Project{Name: name}
	var created int64
	// Look first, so that the common case burns no identity value. Two replicas may
	// both find nothing: ON CONFLICT makes the second insert return no row, and the
	// second look then sees the first replica's project.
	const find = `SELECT id, created_at FROM projects WHERE name = $1`
	err := s.db.Read().QueryRow(ctx, find, name).Scan(&p.ID, &created)
	if errors.Is(err, sql.ErrNoRows) {
		err = s.db.Write(ctx, func(q Querier) error {
			return q.QueryRow(ctx, `INSERT INTO projects (name, created_at) VALUES ($1, $2)
				ON CONFLICT (name) DO NOTHING RETURNING id, created_at`, name, millis(now)).Scan(&p.ID, &created)
		})
		if errors.Is(err, sql.ErrNoRows) {
			err = s.db.Read().QueryRow(ctx, find, name).Scan(&p.ID, &created)
		}
	}
	if err != nil {
		return store.Project{}, s.errorf("project %q: %w", name, err)
	}
	p.CreatedAt = fromMillis(created)
	return p, nil
}

// CreateAPIKey implements store.Store.
func (s *Store) CreateAPIKey(ctx context.Context, k store.APIKey) (store.APIKey, error) {
	err := s.db.Write(ctx, func(q Querier) error {
		err := q.QueryRow(ctx,
			`INSERT INTO api_keys (project_id, prefix, hash, created_at) VALUES ($1, $2, $3, $4) RETURNING id`,
			k.ProjectID, k.Prefix, k.Hash[:], millis(k.CreatedAt)).Scan(&k.ID)
		if err != nil {
			return s.errorf("create api key: %w", err)
		}
		return nil
	})
	if err != nil {
		return store.APIKey{}, err
	}
	return k, nil
}

const apiKeyColumns = `k.id, k.project_id, p.name, k.prefix, k.hash, k.created_at, k.revoked_at`

func scanAPIKey(sc Row) (store.APIKey, error) {
	var k store.APIKey
	var hash []byte
	var created, revoked int64
	if err := sc.Scan(&k.ID, &k.ProjectID, &k.ProjectName, &k.Prefix, &hash, &created, &revoked); err != nil {
		return k, err
	}
	copy(k.Hash[:], hash)
	k.CreatedAt, k.RevokedAt = fromMillis(created), fromMillis(revoked)
	return k, nil
}

// apiKeyByHashSQL finds a key by its hash.
const apiKeyByHashSQL = `SELECT ` + apiKeyColumns + `
	FROM api_keys k JOIN projects p ON p.id = k.project_id WHERE k.hash = $1`

// APIKeyByHash implements store.Store.
func (s *Store) APIKeyByHash(ctx context.Context, hash [32]byte) (store.APIKey, error) {
	k, err := scanAPIKey(s.db.Read().QueryRow(ctx, apiKeyByHashSQL, hash[:]))
	if errors.Is(err, sql.ErrNoRows) {
		return k, store.ErrNotFound
	}
	if err != nil {
		return k, s.errorf("api key: %w", err)
	}
	return k, nil
}

// APIKeys implements store.Store.
func (s *Store) APIKeys(ctx context.Context) ([]store.APIKey, error) {
	rows, err := s.db.Read().Query(ctx, `SELECT `+apiKeyColumns+`
		FROM api_keys k JOIN projects p ON p.id = k.project_id ORDER BY k.id`)
	if err != nil {
		return nil, s.errorf("api keys: %w", err)
	}
	keys, err := Collect(rows, scanAPIKey)
	if err != nil {
		return nil, s.errorf("api keys: %w", err)
	}
	return keys, nil
}

// RevokeAPIKey implements store.Store.
func (s *Store) RevokeAPIKey(ctx context.Context, prefix string, now time.Time) (store.APIKey, error) {
	var k store.APIKey
	if prefix == "" {
		return k, store.ErrNotFound // an empty prefix would match every key
	}
	err := s.db.Tx(ctx, func(tx Querier) error {
		// The stored prefix is a fixed-length start of the key; an operator may type
		// more or fewer characters, so match in both directions. LIKE would not do:
		// it may ignore case, and the stored prefix itself contains _, a wildcard.
		// FOR UPDATE makes a concurrent revoke wait and then see the first one's time.
		match, arg := s.d.KeyPrefixMatch(prefix)
		rows, err := tx.Query(ctx, `SELECT `+apiKeyColumns+`
			FROM api_keys k JOIN projects p ON p.id = k.project_id
			WHERE `+match+s.lock("FOR UPDATE OF k"), arg)
		if err != nil {
			return s.errorf("revoke: %w", err)
		}
		found, err := Collect(rows, scanAPIKey)
		if err != nil {
			return s.errorf("revoke: %w", err)
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
			k.RevokedAt = domain.NowMillis(now)
			if _, err := tx.Exec(ctx, `UPDATE api_keys SET revoked_at = $1 WHERE id = $2`, millis(now), k.ID); err != nil {
				return s.errorf("revoke: %w", err)
			}
		}
		return nil
	})
	return k, err
}

// CreateSession implements store.Sessions. It also removes expired sessions, so
// the table does not grow with every sign-in ever made.
func (s *Store) CreateSession(ctx context.Context, sess store.Session) error {
	return s.db.Tx(ctx, func(tx Querier) error {
		if _, err := tx.Exec(ctx, `DELETE FROM sessions WHERE expires_at <= $1`, millis(sess.CreatedAt)); err != nil {
			return s.errorf("expire sessions: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO sessions (hash, api_key_id, project_id, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5)`, sess.Hash[:], sess.APIKeyID, sess.ProjectID, millis(sess.CreatedAt), millis(sess.ExpiresAt)); err != nil {
			return s.errorf("create session: %w", err)
		}
		return nil
	})
}

// sessionByHashSQL finds a live session, of a key not revoked, by its hash.
const sessionByHashSQL = `SELECT s.api_key_id, s.project_id, p.name, s.created_at, s.expires_at
	FROM sessions s JOIN api_keys k ON k.id = s.api_key_id JOIN projects p ON p.id = s.project_id
	WHERE s.hash = $1 AND s.expires_at > $2 AND k.revoked_at = 0`

// SessionByHash implements store.Sessions.
func (s *Store) SessionByHash(ctx context.Context, hash [32]byte, now time.Time) (store.Session, error) {
	sess := store.Session{Hash: hash}
	var created, expires int64
	err := s.db.Read().QueryRow(ctx, sessionByHashSQL, hash[:], millis(now)).
		Scan(&sess.APIKeyID, &sess.ProjectID, &sess.ProjectName, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Session{}, store.ErrNotFound
	}
	if err != nil {
		return store.Session{}, s.errorf("session: %w", err)
	}
	sess.CreatedAt, sess.ExpiresAt = fromMillis(created), fromMillis(expires)
	return sess, nil
}

// DeleteSession implements store.Sessions.
func (s *Store) DeleteSession(ctx context.Context, hash [32]byte) error {
	return s.db.Write(ctx, func(q Querier) error {
		if _, err := q.Exec(ctx, `DELETE FROM sessions WHERE hash = $1`, hash[:]); err != nil {
			return s.errorf("delete session: %w", err)
		}
		return nil
	})
}
