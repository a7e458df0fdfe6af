package postgres

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/domaind/domaind/internal/store"
)

// claimChecksSQL claims due domains. For each project it reads, through the
// partial index domains_project_due, at most its share ($3) of its most overdue
// due domains: a project's backlog costs one probe, however long it is, and
// domains that are not due are never read. Numbering them keeps each project to
// its share left ($3 less its running checks, given as the arrays $4 and $5).
// PostgreSQL locks no rows in a query with a window function, so the candidates
// are locked in a second step, the oldest first, skipping those another
// replica's claim holds, until $6 are taken; the due time is checked again on
// the locked row, in case that claim has moved it since.
const claimChecksSQL = `WITH running AS (
		SELECT * FROM unnest($4::bigint[], $5::int[]) AS r(project_id, n)
	), due AS (
		SELECT c.id, c.next_check_at,
			row_number() OVER (PARTITION BY c.project_id ORDER BY c.next_check_at, c.id) AS n,
			coalesce(r.n, 0) AS busy
		FROM projects p
		CROSS JOIN LATERAL (
			SELECT id, project_id, next_check_at FROM domains
			WHERE project_id = p.id AND next_check_at > 0 AND next_check_at <= $2
			ORDER BY next_check_at LIMIT $3
		) c
		LEFT JOIN running r ON r.project_id = p.id
	), claimed AS (
		SELECT d.id FROM domains d JOIN due ON due.id = d.id
		WHERE due.n <= $3 - due.busy AND d.next_check_at > 0 AND d.next_check_at <= $2
		ORDER BY due.next_check_at, due.id LIMIT $6
		FOR UPDATE OF d SKIP LOCKED
	)
	UPDATE domains d SET next_check_at = $1 FROM claimed WHERE d.id = claimed.id
	RETURNING d.id, d.project_id`

// ClaimChecks implements store.Store.
func (s *Store) ClaimChecks(ctx context.Context, now time.Time, lease time.Duration, limit, perProject int, running map[int64]int) ([]store.Due, error) {
	if perProject < 1 {
		perProject, running = math.MaxInt32, nil
	}
	projects, counts := []int64{}, []int32{}
	for p, n := range running {
		// Only positive counts: a negative one would lift a project past its share.
		if n > 0 {
			projects, counts = append(projects, p), append(counts, int32(min(n, math.MaxInt32)))
		}
	}
	rows, err := s.pool.Query(ctx, claimChecksSQL, store.Millis(now.Add(lease)), store.Millis(now),
		perProject, projects, counts, noLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("postgres: claim due: %w", err)
	}
	out, err := collect(rows, func(r pgx.Row) (store.Due, error) {
		var d store.Due
		err := r.Scan(&d.ID, &d.ProjectID)
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: claim due: %w", err)
	}
	return out, nil
}
