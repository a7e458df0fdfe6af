package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/domaind/domaind/internal/store"
	"github.com/domaind/domaind/internal/store/sqlstore"
)

// dialect is SQLite's sqlstore.Dialect.
type dialect struct{}

func (dialect) Name() string { return "sqlite" }

func (dialect) IsUniqueViolation(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && (se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)
}

// LocksRows is false: the write transaction is the only one of the database at a
// time, so nothing another writer does can come between a transaction's reads and
// its writes.
func (dialect) LocksRows() bool { return false }

// NoLimit is SQLite's LIMIT of none: a negative number.
func (dialect) NoLimit() any { return -1 }

// In is "expr IN ($n, $n+1, ...)": SQLite has no arrays.
func (dialect) In(expr string, n int, values []string) (string, []any) {
	var b strings.Builder
	args := make([]any, len(values))
	b.WriteString(expr + " IN (")
	for i, v := range values {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("$" + strconv.Itoa(n+i))
		args[i] = v
	}
	b.WriteString(")")
	return b.String(), args
}

// MaxIn keeps a statement well under SQLite's bound-parameter limit.
func (dialect) MaxIn() int { return 500 }

// KeyPrefixMatch compares text: SQLite's substr and length count characters of
// the text as stored, whatever bytes it holds.
func (dialect) KeyPrefixMatch(prefix string) (string, any) {
	return `(substr(k.prefix, 1, length($1)) = $1 OR substr($1, 1, length(k.prefix)) = k.prefix)`, prefix
}

// BinaryValues is true: a column keeps a BLOB beside text.
func (dialect) BinaryValues() bool { return true }

// AttemptSeq is the rowid: webhook_attempts has no column of its own for the order.
func (dialect) AttemptSeq() string { return "rowid" }

// claimChecksSQL claims due domains. For each project it reads, through the
// partial index domains_project_due, at most its share (?3) of its most overdue
// due domains, and no more than the claim takes (?5): a project's backlog costs
// one probe, however long it is, and domains that are not due are never read.
// Numbering them keeps each project to its share left (?3 less its running
// checks, ?4 a JSON object of them by project id), and the oldest ?5 of what is
// left are taken. (A project's domain past its ?5th could only be taken after
// ?5 of its older ones, so reading it changes at most which of equally due
// domains are taken, which was never fixed; a worker with one busy project
// claims a quarter of its slots at a time, and reading its whole share each
// time made the claim cost several times what it takes. A ?5 below 0 takes
// any number.)
const claimChecksSQL = `UPDATE domains SET next_check_at = ?1
	WHERE id IN (
		SELECT id FROM (
			SELECT d.id, d.project_id, d.next_check_at,
				row_number() OVER (PARTITION BY d.project_id ORDER BY d.next_check_at, d.id) AS n
			FROM projects p JOIN domains d ON d.id IN (
				SELECT id FROM domains
				WHERE project_id = p.id AND next_check_at > 0 AND next_check_at <= ?2
				ORDER BY next_check_at LIMIT CASE WHEN ?5 < 0 THEN ?3 ELSE min(?3, ?5) END)
		) AS due
		WHERE n <= ?3 - coalesce(json_extract(?4, '$."' || project_id || '"'), 0)
		ORDER BY next_check_at, id LIMIT ?5)
	RETURNING id, project_id`

// ClaimChecks runs claimChecksSQL in the write transaction, which is the only
// one of the database at a time, so two claims never see the same domains as due.
func (dialect) ClaimChecks(ctx context.Context, q sqlstore.Querier, until, now int64, perProject int, running map[int64]int, limit int) ([]store.Due, error) {
	busy, err := json.Marshal(running) // {"12":3}: JSON keys are strings
	if err != nil {
		return nil, err
	}
	rows, err := q.Query(ctx, claimChecksSQL, until, now, perProject, string(busy), limit)
	if err != nil {
		return nil, err
	}
	return sqlstore.Collect(rows, sqlstore.ScanDue)
}

// claimDeliveriesQuery picks the deliveries a claim takes: of the endpoints
// that are not parked, each one's due deliveries ranked oldest first (rn), and of
// those the ones that keep the endpoint within its in-flight allowance once
// counted with the ones it has in flight already (busy); then the first rank of
// every endpoint before any second one, so that no endpoint's backlog takes the
// batch. The parked_until test only covers a claim whose lease ran out while its
// endpoint was parked.
const claimDeliveriesQuery = `WITH due AS (
		SELECT d.id, d.webhook_id, d.next_attempt_at, d.seq,
			ROW_NUMBER() OVER (PARTITION BY d.webhook_id ORDER BY d.next_attempt_at, d.seq) AS rn
		FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
		WHERE d.status = 'pending' AND d.next_attempt_at <= :now AND w.parked_until <= :now
	), busy AS (
		SELECT webhook_id, count(*) AS n FROM webhook_deliveries
		WHERE status = 'pending' AND claimed_until > :now GROUP BY webhook_id
	)
	SELECT due.id FROM due LEFT JOIN busy ON busy.webhook_id = due.webhook_id
	WHERE due.rn + coalesce(busy.n, 0) <= :per
	ORDER BY due.rn, due.next_attempt_at, due.seq LIMIT :limit`

// ClaimDeliveries claims in the write transaction q, which is the only one of the
// database at a time, so two claims never see the same deliveries as free: it
// moves the picked deliveries' due time, then reads them with their webhooks.
func (dialect) ClaimDeliveries(ctx context.Context, q sqlstore.Querier, now, until int64, perEndpoint, limit int) ([]store.Delivery, error) {
	rows, err := q.Query(ctx, `UPDATE webhook_deliveries SET next_attempt_at = :until, claimed_until = :until
		WHERE id IN (`+claimDeliveriesQuery+`)
		RETURNING id`, sql.Named("until", until), sql.Named("now", now),
		sql.Named("per", perEndpoint), sql.Named("limit", limit))
	if err != nil {
		return nil, err
	}
	ids, err := sqlstore.Collect(rows, sqlstore.ScanString)
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	in, args := dialect{}.In("d.id", 1, ids)
	rows, err = q.Query(ctx, `SELECT `+sqlstore.DeliveryColumns+` FROM webhook_deliveries d
		JOIN webhooks w ON w.id = d.webhook_id WHERE `+in+` ORDER BY d.next_attempt_at, d.seq`, args...)
	if err != nil {
		return nil, err
	}
	return sqlstore.Collect(rows, sqlstore.ScanDelivery)
}
