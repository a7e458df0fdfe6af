package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/store"
)

var (
	_ store.Sessions = (*Store)(nil)
	_ store.Inbound  = (*Store)(nil)
)

// CreateSession implements store.Sessions. It also removes expired sessions, so
// the table does not grow with every sign-in ever made.
func (s *Store) CreateSession(ctx context.Context, sess store.Session) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM sessions WHERE expires_at <= $1`, store.Millis(sess.CreatedAt)); err != nil {
			return fmt.Errorf("postgres: expire sessions: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO sessions (hash, api_key_id, project_id, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5)`, sess.Hash[:], sess.APIKeyID, sess.ProjectID, store.Millis(sess.CreatedAt), store.Millis(sess.ExpiresAt)); err != nil {
			return fmt.Errorf("postgres: create session: %w", err)
		}
		return nil
	})
}

// SessionByHash implements store.Sessions.
func (s *Store) SessionByHash(ctx context.Context, hash [32]byte, now time.Time) (store.Session, error) {
	sess := store.Session{Hash: hash}
	var created, expires int64
	err := s.pool.QueryRow(ctx, `SELECT s.api_key_id, s.project_id, p.name, s.created_at, s.expires_at
		FROM sessions s JOIN api_keys k ON k.id = s.api_key_id JOIN projects p ON p.id = s.project_id
		WHERE s.hash = $1 AND s.expires_at > $2 AND k.revoked_at = 0`, hash[:], store.Millis(now)).
		Scan(&sess.APIKeyID, &sess.ProjectID, &sess.ProjectName, &created, &expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Session{}, store.ErrNotFound
	}
	if err != nil {
		return store.Session{}, fmt.Errorf("postgres: session: %w", err)
	}
	sess.CreatedAt, sess.ExpiresAt = store.FromMillis(created), store.FromMillis(expires)
	return sess, nil
}

// DeleteSession implements store.Sessions.
func (s *Store) DeleteSession(ctx context.Context, hash [32]byte) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE hash = $1`, hash[:]); err != nil {
		return fmt.Errorf("postgres: delete session: %w", err)
	}
	return nil
}

// SaveInbound implements store.Inbound.
func (s *Store) SaveInbound(ctx context.Context, d *domain.Domain) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE domains SET inbound_enabled_at = $1, inbound_verified_at = $2,
			next_check_at = $3, check_attempt = $4 WHERE id = $5 AND project_id = $6`,
			store.Millis(d.InboundEnabledAt), store.Millis(d.InboundVerifiedAt), store.Millis(d.NextCheckAt), d.CheckAttempt, d.ID, d.ProjectID)
		if err != nil {
			return fmt.Errorf("postgres: save inbound %s: %w", d.ID, err)
		}
		if tag.RowsAffected() == 0 {
			return store.ErrNotFound
		}
		if _, err := tx.Exec(ctx, `DELETE FROM domain_records WHERE domain_id = $1 AND key = $2`,
			d.ID, string(domain.KeyInboundMX)); err != nil {
			return fmt.Errorf("postgres: save inbound %s: %w", d.ID, err)
		}
		for i := range d.Records {
			if d.Records[i].Key == domain.KeyInboundMX {
				return insertRecord(ctx, tx, d.ID, i, &d.Records[i])
			}
		}
		return nil
	})
}
