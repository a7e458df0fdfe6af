package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/store"
)

var _ store.Inbound = (*Store)(nil)

// SaveInbound implements store.Inbound.
func (s *Store) SaveInbound(ctx context.Context, d *domain.Domain) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE domains SET inbound_enabled_at = ?, inbound_verified_at = ?,
			next_check_at = ?, check_attempt = ? WHERE id = ? AND project_id = ?`,
			store.Millis(d.InboundEnabledAt), store.Millis(d.InboundVerifiedAt), store.Millis(d.NextCheckAt), d.CheckAttempt, d.ID, d.ProjectID)
		if err != nil {
			return fmt.Errorf("sqlite: save inbound %s: %w", d.ID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return store.ErrNotFound
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM domain_records WHERE domain_id = ? AND key = ?`,
			d.ID, string(domain.KeyInboundMX)); err != nil {
			return fmt.Errorf("sqlite: save inbound %s: %w", d.ID, err)
		}
		for i := range d.Records {
			if d.Records[i].Key == domain.KeyInboundMX {
				return insertRecord(ctx, tx, d.ID, i, &d.Records[i])
			}
		}
		return nil
	})
}
