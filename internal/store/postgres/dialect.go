package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/domaind/domaind/internal/store"
	"github.com/domaind/domaind/internal/store/sqlstore"
)

// dialect is PostgreSQL's sqlstore.Dialect.
type dialect struct{}

func (dialect) Name() string { return "postgres" }

// IsUniqueViolation reports whether err is a unique_violation.
func (dialect) IsUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// LocksRows is true: replicas' transactions run side by side, and take turns on
// the rows they lock.
func (dialect) LocksRows() bool { return true }

// NoLimit is PostgreSQL's LIMIT of none: NULL.
func (dialect) NoLimit() any { return nil }

// In is "expr = ANY($n)" with the values as one array, however many there are.
func (dialect) In(expr string, n int, values []string) (string, []any) {
	return expr + " = ANY($" + strconv.Itoa(n) + ")", []any{values}
}

func (dialect) MaxIn() int { return 0 }

// KeyPrefixMatch compares bytes (bytea), so that what the operator typed needs to
// be neither valid UTF-8 nor free of NUL to be compared, as in SQLite.
func (dialect) KeyPrefixMatch(prefix string) (string, any) {
	return `(substr(convert_to(k.prefix, 'UTF8'), 1, length($1::bytea)) = $1::bytea
			   OR substr($1::bytea, 1, length(convert_to(k.prefix, 'UTF8'))) = convert_to(k.prefix, 'UTF8'))`, []byte(prefix)
}

// BinaryValues is false: the value column is text.
func (dialect) BinaryValues() bool { return false }

// AttemptSeq is the identity column seq, which breaks ties as SQLite's rowid does.
func (dialect) AttemptSeq() string { return "seq" }

// noLimit turns a limit into the argument of a LIMIT clause. A negative limit means
// none, as it does in SQLite, and so does NULL in PostgreSQL.
func noLimit(limit int) any {
	if limit < 0 {
		return nil
	}
	return limit
}

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

// ClaimChecks runs claimChecksSQL, a statement of its own on the pool.
func (dialect) ClaimChecks(ctx context.Context, q sqlstore.Querier, until, now int64, perProject int, running map[int64]int, limit int) ([]store.Due, error) {
	projects, counts := []int64{}, []int32{}
	for p, n := range running {
		projects, counts = append(projects, p), append(counts, int32(min(n, math.MaxInt32)))
	}
	rows, err := q.Query(ctx, claimChecksSQL, until, now, perProject, projects, counts, noLimit(limit))
	if err != nil {
		return nil, err
	}
	return sqlstore.Collect(rows, sqlstore.ScanDue)
}

// ClaimDeliveries claims in two statements of the transaction q.
//
// The first locks the endpoints the claim will serve: those with due deliveries
// that are not parked and have room in their in-flight allowance, most overdue
// first. SKIP LOCKED passes over an endpoint another replica is claiming for (or
// recording an attempt of) right now, so replicas never wait for each other, and
// while the lock is held no other claim can hand out a delivery of that endpoint.
// FOR NO KEY UPDATE leaves alone the key-share locks that storing events takes.
//
// The second statement starts after the locks are held, so its snapshot sees
// every claim that held them before: it counts what each endpoint has in flight
// with that fresh view, ranks each endpoint's due deliveries oldest first, and
// claims every endpoint's first before any endpoint's second, within the
// allowance. (Counting in the first statement would not do: under READ
// COMMITTED its snapshot is from before it waited for nothing and took a lock
// another claim had just let go, and would miss that claim's deliveries.)
func (dialect) ClaimDeliveries(ctx context.Context, q sqlstore.Querier, now, until int64, per, limit int) ([]store.Delivery, error) {
	rows, err := q.Query(ctx, `SELECT w.id FROM webhooks w
		JOIN (SELECT webhook_id, min(next_attempt_at) AS oldest FROM webhook_deliveries
			WHERE status = 'pending' AND next_attempt_at <= $1 GROUP BY webhook_id) due ON due.webhook_id = w.id
		WHERE w.parked_until <= $1
			AND (SELECT count(*) FROM webhook_deliveries f
				WHERE f.webhook_id = w.id AND f.status = 'pending' AND f.claimed_until > $1) < $2
		ORDER BY due.oldest, w.id
		LIMIT $3
		FOR NO KEY UPDATE OF w SKIP LOCKED`, now, per, noLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("lock endpoints: %w", err)
	}
	hooks, err := sqlstore.Collect(rows, sqlstore.ScanString)
	if err != nil {
		return nil, fmt.Errorf("lock endpoints: %w", err)
	}
	if len(hooks) == 0 {
		return nil, nil
	}
	rows, err = q.Query(ctx, `WITH busy AS (
			SELECT webhook_id, count(*) AS n FROM webhook_deliveries
			WHERE webhook_id = ANY($1) AND status = 'pending' AND claimed_until > $2 GROUP BY webhook_id
		), due AS (
			SELECT d.id, d.webhook_id, d.next_attempt_at, d.seq,
				ROW_NUMBER() OVER (PARTITION BY d.webhook_id ORDER BY d.next_attempt_at, d.seq) AS rn
			FROM webhook_deliveries d
			WHERE d.webhook_id = ANY($1) AND d.status = 'pending' AND d.next_attempt_at <= $2
		), pick AS (
			SELECT due.id FROM due LEFT JOIN busy ON busy.webhook_id = due.webhook_id
			WHERE due.rn + coalesce(busy.n, 0) <= $3
			ORDER BY due.rn, due.next_attempt_at, due.seq
			LIMIT $4
		), d AS (
			UPDATE webhook_deliveries d SET next_attempt_at = $5, claimed_until = $5
			FROM pick WHERE d.id = pick.id AND d.status = 'pending' AND d.next_attempt_at <= $2
			RETURNING d.*
		)
		SELECT `+sqlstore.DeliveryColumns+` FROM d JOIN webhooks w ON w.id = d.webhook_id
		ORDER BY d.next_attempt_at, d.seq`, hooks, now, per, noLimit(limit), until)
	if err != nil {
		return nil, err
	}
	return sqlstore.Collect(rows, sqlstore.ScanDelivery)
}
