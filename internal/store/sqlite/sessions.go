package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/domaind/domaind/internal/store"
)

var _ store.Sessions = (*Store)(nil)

// CreateSession implements store.Sessions. It also removes expired sessions, so
// the table does not grow with every sign-in ever made.
func (s *Store) CreateSession(ctx context.Context, sess store.Session) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at <= ?`, store.Millis(sess.CreatedAt)); err != nil {
			return fmt.Errorf("sqlite: expire sessions: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO sessions (hash, api_key_id, project_id, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?)`, sess.Hash[:], sess.APIKeyID, sess.ProjectID, store.Millis(sess.CreatedAt), store.Millis(sess.ExpiresAt)); err != nil {
			return fmt.Errorf("sqlite: create session: %w", err)
		}
		return nil
	})
}

// SessionByHash implements store.Sessions.
func (s *Store) SessionByHash(ctx context.Context, hash [32]byte, now time.Time) (store.Session, error) {
	sess := store.Session{Hash: hash}
	var created, expires int64
	err := s.r.QueryRowContext(ctx, `SELECT s.api_key_id, s.project_id, p.name, s.created_at, s.expires_at
		FROM sessions s JOIN api_keys k ON k.id = s.api_key_id JOIN projects p ON p.id = s.project_id
		WHERE s.hash = ? AND s.expires_at > ? AND k.revoked_at = 0`, hash[:], store.Millis(now)).
		Scan(&sess.APIKeyID, &sess.ProjectID, &sess.ProjectName, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Session{}, store.ErrNotFound
	}
	if err != nil {
		return store.Session{}, fmt.Errorf("sqlite: session: %w", err)
	}
	sess.CreatedAt, sess.ExpiresAt = store.FromMillis(created), store.FromMillis(expires)
	return sess, nil
}

// DeleteSession implements store.Sessions.
func (s *Store) DeleteSession(ctx context.Context, hash [32]byte) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE hash = ?`, hash[:]); err != nil {
			return fmt.Errorf("sqlite: delete session: %w", err)
		}
		return nil
	})
}
