package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/domaind/domaind/internal/store"
)

// claimChecksSQL claims due domains. For each project it reads, through the
// partial index domains_project_due, at most its share (?3) of its most overdue
// due domains: a project's backlog costs one probe, however long it is, and
// domains that are not due are never read. Numbering them keeps each project to
// its share left (?3 less its running checks, ?4 a JSON object of them by
// project id), and the oldest ?5 of what is left are taken.
const claimChecksSQL = `UPDATE domains SET next_check_at = ?1
	WHERE id IN (
		SELECT id FROM (
			SELECT d.id, d.project_id, d.next_check_at,
				row_number() OVER (PARTITION BY d.project_id ORDER BY d.next_check_at, d.id) AS n
			FROM projects p JOIN domains d ON d.id IN (
				SELECT id FROM domains
				WHERE project_id = p.id AND next_check_at > 0 AND next_check_at <= ?2
				ORDER BY next_check_at LIMIT ?3)
		) AS due
		WHERE n <= ?3 - coalesce(json_extract(?4, '$."' || project_id || '"'), 0)
		ORDER BY next_check_at, id LIMIT ?5)
	RETURNING id, project_id`

// ClaimChecks implements store.Store.
func (s *Store) ClaimChecks(ctx context.Context, now time.Time, lease time.Duration, limit, perProject int, running map[int64]int) ([]store.Due, error) {
	if perProject < 1 {
		perProject, running = math.MaxInt32, nil
	}
	// Only positive counts: a negative one would lift a project past its share.
	counts := map[int64]int{}
	for p, n := range running {
		if n > 0 {
			counts[p] = n
		}
	}
	busy, err := json.Marshal(counts) // {"12":3}: JSON keys are strings
	if err != nil {
		return nil, fmt.Errorf("sqlite: claim due: %w", err)
	}
	var out []store.Due
	err = s.tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, claimChecksSQL,
			store.Millis(now.Add(lease)), store.Millis(now), perProject, string(busy), limit)
		if err != nil {
			return fmt.Errorf("sqlite: claim due: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var d store.Due
			if err := rows.Scan(&d.ID, &d.ProjectID); err != nil {
				return fmt.Errorf("sqlite: claim due: %w", err)
			}
			out = append(out, d)
		}
		return rows.Err()
	})
	return out, err
}
