package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/store"
)

// insertEvents stores events and, for each, a pending delivery to every webhook of
// its project that wants it, due at once. Each domain's events go in one row
// of event_groups (see eventGroups), and the rows in one statement per
// maxInsertRows of them, as do the deliveries: a check that verifies a domain
// raises half a dozen events, and its save waits on the one writer for each
// statement. The caller counts them first (countEvents).
func (s *Store) insertEvents(ctx context.Context, tx Querier, events []store.Event) error {
	groups, err := s.eventGroups(events)
	if err != nil {
		return err
	}
	return s.insertPackedEvents(ctx, tx, events, groups)
}

// countEvents counts events, about to be inserted, to their domains, and
// prunes those that hold too many (see store.MaxDomainEvents). A transaction
// calls it before it locks anything else, as it updates the domain row, which
// a check's save locks first (see bumpVersion). A check's save counts its
// events in its own update of the domain instead.
func (s *Store) countEvents(ctx context.Context, tx Querier, events []store.Event) error {
	added := map[string]int{}
	var ids []string
	for _, e := range events {
		if added[e.DomainID] == 0 {
			ids = append(ids, e.DomainID)
		}
		added[e.DomainID]++
	}
	for _, id := range ids {
		var rows int64
		err := tx.QueryRow(ctx, `UPDATE domains SET event_rows = event_rows + CAST($2 AS BIGINT) WHERE id = $1 RETURNING event_rows`,
			id, added[id]).Scan(&rows)
		if errors.Is(err, sql.ErrNoRows) {
			continue // the insert fails on the missing domain, as before
		}
		if err != nil {
			return s.errorf("count events of %s: %w", id, err)
		}
		if err := s.pruneEvents(ctx, tx, id, rows); err != nil {
			return err
		}
	}
	return nil
}

// eventSlack is how many events past store.MaxDomainEvents a domain may hold
// before the oldest are deleted, so that a prune runs once in a while, not on
// every save.
const eventSlack = store.MaxDomainEvents / 10

// pruneBatch bounds the rows one prune deletes, so that a domain or a webhook
// with a long history from before migration 00013 never holds its
// transaction (on SQLite, the one writer) for long: its history shrinks by
// that much at each save that finds it too long.
const pruneBatch = 500

// pruneEvents deletes the oldest events of the domain id, which holds rows of
// them as counted, if it holds more than store.MaxDomainEvents and
// eventSlack, and counts them again. It deletes whole groups: the oldest that
// hold any of the oldest events past store.MaxDomainEvents, or of the oldest
// pruneBatch of them (so a prune deletes at most pruneBatch events and the
// rest of one group). So a domain may keep a few fewer than the bound (less
// than one group's events fewer), never more than the bound and the slack,
// and its newest are kept.
func (s *Store) pruneEvents(ctx context.Context, tx Querier, id string, rows int64) error {
	if rows <= store.MaxDomainEvents+eventSlack {
		return nil
	}
	// upto counts a group's events and those of every older group.
	deleted, err := tx.Query(ctx, `DELETE FROM event_groups WHERE seq IN (
		SELECT seq FROM (SELECT seq, events, sum(events) OVER (ORDER BY seq) AS upto
			FROM event_groups WHERE domain_id = $1) AS g
		WHERE upto - events < $2) RETURNING events`,
		id, min(rows-store.MaxDomainEvents, pruneBatch))
	if err != nil {
		return s.errorf("prune events of %s: %w", id, err)
	}
	counts, err := Collect(deleted, func(r Row) (n int64, err error) { err = r.Scan(&n); return })
	if err != nil {
		return s.errorf("prune events of %s: %w", id, err)
	}
	var n int64
	for _, c := range counts {
		n += c
	}
	if _, err := tx.Exec(ctx, `UPDATE domains SET event_rows = event_rows - CAST($2 AS BIGINT) WHERE id = $1`, id, n); err != nil {
		return s.errorf("count events of %s: %w", id, err)
	}
	return nil
}

// insertPackedEvents is insertEvents with the events' groups already made by
// eventGroups.
func (s *Store) insertPackedEvents(ctx context.Context, tx Querier, events []store.Event, groups []eventGroup) error {
	if len(events) == 0 {
		return nil
	}
	const groupColumns = 4
	for part := range slices.Chunk(groups, maxInsertRows) {
		args := make([]any, 0, len(part)*groupColumns)
		for _, g := range part {
			args = append(args, g.projectID, g.domainID, g.events, g.body)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO event_groups (project_id, domain_id, events, body)
			VALUES `+valuesList(len(part), groupColumns), args...); err != nil {
			return s.errorf("insert events: %w", err)
		}
	}
	hooks := map[int64][]store.Webhook{}
	if r := batchReadsOf(ctx); r != nil {
		if r.webhooks == nil {
			r.webhooks = hooks
		}
		hooks = r.webhooks
	}
	var deliveries []any
	const deliveryColumns = 9
	for _, e := range events {
		whs, ok := hooks[e.ProjectID]
		if !ok {
			// FOR KEY SHARE: a webhook deleted by another replica between this read
			// and the inserts below would make them fail on the foreign key; the
			// lock makes the delete wait for this transaction instead, and then
			// take the new deliveries with it.
			var err error
			if whs, err = s.webhooks(ctx, tx, e.ProjectID, s.lock("FOR KEY SHARE")); err != nil {
				return err
			}
			hooks[e.ProjectID] = whs
		}
		for _, w := range whs {
			if !domain.Wants(w.Events, e.Type) {
				continue
			}
			id, err := store.NewTimeID("msg_", e.CreatedAt)
			if err != nil {
				return err
			}
			// A parked endpoint's new deliveries wait for the parking to end, as
			// its others do, so that claims find none of them due meanwhile.
			due := max(millis(e.CreatedAt), millis(w.ParkedUntil))
			deliveries = append(deliveries, id, w.ID, e.ID, e.Type, e.ProjectID, string(e.Payload), store.DeliveryPending, due, millis(e.CreatedAt))
		}
	}
	for part := range slices.Chunk(deliveries, maxInsertRows*deliveryColumns) {
		if _, err := tx.Exec(ctx, `INSERT INTO webhook_deliveries (id, webhook_id, event_id, event_type,
			project_id, payload, status, next_attempt_at, created_at) VALUES `+valuesList(len(part)/deliveryColumns, deliveryColumns),
			part...); err != nil {
			return s.errorf("insert delivery: %w", err)
		}
	}
	return nil
}

// maxInsertRows bounds the rows of one multi-row INSERT, so that the statements'
// texts are few (the writer keeps each prepared) and far from either database's
// bound on placeholders.
const maxInsertRows = 16

// valuesList returns the VALUES list of rows rows of cols placeholders each,
// numbered from $1: "($1, $2), ($3, $4)".
func valuesList(rows, cols int) string {
	var b strings.Builder
	n := 1
	for r := range rows {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for c := range cols {
			if c > 0 {
				b.WriteString(", ")
			}
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			n++
		}
		b.WriteByte(')')
	}
	return b.String()
}

// Events implements store.Store. It reads the domain's groups newest first,
// and unpacks only those that hold events of the page: at most the groups of
// about store.MaxDomainEvents events are read, however far the page is.
func (s *Store) Events(ctx context.Context, projectID int64, domainID string, p store.Page) ([]store.Event, int, error) {
	var total int
	if err := s.db.Read().QueryRow(ctx, `SELECT coalesce(sum(events), 0) FROM event_groups WHERE domain_id = $1 AND project_id = $2`,
		domainID, projectID).Scan(&total); err != nil {
		return nil, 0, s.errorf("count events: %w", err)
	}
	skip, limit := max(p.Offset, 0), p.Limit
	// A group holds at least one event, so the page is within the newest
	// skip+limit groups; a database that sends every row asked for before the
	// loop stops (PostgreSQL) sends only those.
	groups := s.d.NoLimit()
	if limit > 0 {
		groups = skip + limit
	} else {
		limit = math.MaxInt
	}
	rows, err := s.db.Read().Query(ctx, `SELECT events, body FROM event_groups
		WHERE domain_id = $1 AND project_id = $2 ORDER BY seq DESC LIMIT $3`, domainID, projectID, groups)
	if err != nil {
		return nil, 0, s.errorf("events: %w", err)
	}
	defer rows.Close()
	var out []store.Event
	for len(out) < limit && rows.Next() {
		var n int
		var body any
		if err := rows.Scan(&n, &body); err != nil {
			return nil, 0, s.errorf("events: %w", err)
		}
		if skip >= n {
			skip -= n
			continue
		}
		text, err := s.payloadText(body)
		if err != nil {
			return nil, 0, s.errorf("events of %s: %w", domainID, err)
		}
		group, err := parseEventGroup(text, projectID, domainID)
		if err != nil {
			return nil, 0, s.errorf("events of %s: %w", domainID, err)
		}
		// A group holds its events oldest first.
		for i := len(group) - 1 - skip; i >= 0 && len(out) < limit; i-- {
			out = append(out, group[i])
		}
		skip = 0
	}
	if err := rows.Err(); err != nil {
		return nil, 0, s.errorf("events: %w", err)
	}
	return out, total, nil
}

// CreateWebhook implements store.Store. Registrations of one project take turns:
// where the database locks rows, on the project's row; in SQLite, as every write
// transaction does, on the whole database. So a count never misses a webhook
// another replica is adding at the same moment.
func (s *Store) CreateWebhook(ctx context.Context, w store.Webhook, maxHooks int) error {
	events, err := encodeStrings(w.Events)
	if err != nil {
		return s.errorf("webhook events: %w", err)
	}
	return s.db.Tx(ctx, func(tx Querier) error {
		if maxHooks > 0 {
			// The count must be a statement of its own, after the one that takes the
			// lock: in READ COMMITTED a statement sees the rows committed before it
			// began, so a count in the statement that waited for the lock would miss
			// the webhook the registration it waited for has just added. FOR NO KEY
			// UPDATE does not wait for, nor hold up, the key-share locks that inserts
			// referring to the project take.
			if lock := s.lock("FOR NO KEY UPDATE"); lock != "" {
				if _, err := tx.Exec(ctx, `SELECT 1 FROM projects WHERE id = $1`+lock, w.ProjectID); err != nil {
					return s.errorf("lock project: %w", err)
				}
			}
			var n int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM webhooks WHERE project_id = $1`, w.ProjectID).Scan(&n); err != nil {
				return s.errorf("count webhooks: %w", err)
			}
			if n >= maxHooks {
				return store.ErrTooManyWebhooks
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO webhooks (id, project_id, url, events, sealed_secret, created_at)
			VALUES ($1, $2, $3, $4, $5, $6)`, w.ID, w.ProjectID, w.URL, events, w.SealedSecret, millis(w.CreatedAt)); err != nil {
			return s.errorf("create webhook: %w", err)
		}
		return nil
	})
}

// webhooks lists a project's webhooks, oldest first; lock is appended to the query.
func (s *Store) webhooks(ctx context.Context, q Querier, projectID int64, lock string) ([]store.Webhook, error) {
	rows, err := q.Query(ctx, `SELECT id, project_id, url, events, sealed_secret, created_at, failures, parked_until
		FROM webhooks WHERE project_id = $1 ORDER BY created_at, id`+lock, projectID)
	if err != nil {
		return nil, s.errorf("webhooks: %w", err)
	}
	out, err := Collect(rows, func(r Row) (store.Webhook, error) {
		var w store.Webhook
		var events string
		var created, parked int64
		if err := r.Scan(&w.ID, &w.ProjectID, &w.URL, &events, &w.SealedSecret, &created, &w.Failures, &parked); err != nil {
			return w, err
		}
		if err := json.Unmarshal([]byte(events), &w.Events); err != nil {
			return w, fmt.Errorf("webhook %s events: %w", w.ID, err)
		}
		w.CreatedAt, w.ParkedUntil = fromMillis(created), fromMillis(parked)
		return w, nil
	})
	if err != nil {
		return nil, s.errorf("webhooks: %w", err)
	}
	return out, nil
}

// Webhooks implements store.Store.
func (s *Store) Webhooks(ctx context.Context, projectID int64) ([]store.Webhook, error) {
	return s.webhooks(ctx, s.db.Read(), projectID, "")
}

// DeleteWebhook implements store.Store.
func (s *Store) DeleteWebhook(ctx context.Context, projectID int64, id string) error {
	// One statement: deliveries and their attempts go with it through ON DELETE CASCADE.
	return s.db.Write(ctx, func(q Querier) error {
		n, err := q.Exec(ctx, `DELETE FROM webhooks WHERE id = $1 AND project_id = $2`, id, projectID)
		if err != nil {
			return s.errorf("delete webhook: %w", err)
		}
		if n == 0 {
			return store.ErrNotFound
		}
		return nil
	})
}

// ClaimDeliveries implements store.Store, in one transaction, in the way of the
// dialect. Parked endpoints' deliveries are not due (RecordAttempt pushes them
// past the parking), so the due index never reads a parked backlog.
func (s *Store) ClaimDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit, perEndpoint int) ([]store.Delivery, error) {
	var out []store.Delivery
	err := s.db.Tx(ctx, func(tx Querier) error {
		var err error
		out, err = s.d.ClaimDeliveries(ctx, tx, millis(now), millis(now.Add(lease)), max(perEndpoint, 1), limit)
		if err != nil {
			return s.errorf("claim deliveries: %w", err)
		}
		return nil
	})
	return out, err
}

// DeliveryColumns are the columns ScanDelivery reads, of a delivery d and its
// webhook w.
const DeliveryColumns = `d.id, d.webhook_id, d.event_id, d.event_type, d.project_id, d.status, d.next_attempt_at,
	d.created_at, d.payload, w.url, w.sealed_secret, w.failures`

// ScanDelivery reads a row of DeliveryColumns.
func ScanDelivery(r Row) (store.Delivery, error) {
	var d store.Delivery
	var next, created int64
	var payload string
	err := r.Scan(&d.ID, &d.WebhookID, &d.EventID, &d.EventType, &d.ProjectID, &d.Status, &next,
		&created, &payload, &d.URL, &d.SealedSecret, &d.EndpointFailures)
	d.NextAttemptAt, d.CreatedAt, d.Payload = fromMillis(next), fromMillis(created), []byte(payload)
	return d, err
}

// RecordAttempt implements store.Store. It locks the endpoint's row first, as
// claims do, so that the two take their locks in one order and never deadlock
// over a delivery whose lease ran out while its attempt was being recorded.
func (s *Store) RecordAttempt(ctx context.Context, a store.Attempt, next store.DeliveryState, parkedUntil time.Time) error {
	return s.db.Tx(ctx, func(tx Querier) error {
		var webhookID string
		err := tx.QueryRow(ctx, `SELECT w.id FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
			WHERE d.id = $1`+s.lock("FOR NO KEY UPDATE OF w"), a.DeliveryID).Scan(&webhookID)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound // the webhook was deleted meanwhile
		}
		if err != nil {
			return s.errorf("record attempt: %w", err)
		}
		n, err := tx.Exec(ctx, `UPDATE webhook_deliveries SET status = $1, next_attempt_at = $2, claimed_until = 0 WHERE id = $3`,
			next.Status, millis(next.NextAttemptAt), a.DeliveryID)
		if err != nil {
			return s.errorf("record attempt: %w", err)
		}
		if n == 0 {
			return store.ErrNotFound
		}
		if _, err := tx.Exec(ctx, `INSERT INTO webhook_attempts (delivery_id, at, status_code, error, duration_ms)
			VALUES ($1, $2, $3, $4, $5)`, a.DeliveryID, millis(a.At), a.StatusCode, a.Error, a.Duration.Milliseconds()); err != nil {
			return s.errorf("record attempt: %w", err)
		}
		if next.Status != store.DeliveryPending {
			if err := s.pruneDeliveries(ctx, tx, webhookID); err != nil {
				return err
			}
		}
		if next.Status == store.DeliveryDelivered {
			// Most endpoints are healthy: the row is written only when there is
			// something to reset.
			if _, err := tx.Exec(ctx, `UPDATE webhooks SET failures = 0, parked_until = 0
				WHERE id = $1 AND (failures <> 0 OR parked_until <> 0)`, webhookID); err != nil {
				return s.errorf("reset webhook health: %w", err)
			}
			return nil
		}
		// A failed attempt parks the endpoint until parkedUntil, unless it is
		// parked longer already, and pushes its pending deliveries that are not in
		// flight past the parking.
		var parked int64
		if err := tx.QueryRow(ctx, `UPDATE webhooks SET failures = failures + 1,
				parked_until = CASE WHEN parked_until > $1 THEN parked_until ELSE $1 END
			WHERE id = $2 RETURNING parked_until`, millis(parkedUntil), webhookID).Scan(&parked); err != nil {
			return s.errorf("park webhook: %w", err)
		}
		if at := millis(a.At); parked > at {
			if _, err := tx.Exec(ctx, `UPDATE webhook_deliveries SET next_attempt_at = $1
				WHERE webhook_id = $2 AND status = 'pending' AND next_attempt_at < $1 AND claimed_until <= $3`,
				parked, webhookID, at); err != nil {
				return s.errorf("push parked deliveries: %w", err)
			}
		}
		return nil
	})
}

// ExpireDeliveries implements store.Store. It locks the parked endpoints first,
// in the order claims and RecordAttempt do, skipping any being worked on: their
// deliveries expire at the next call.
func (s *Store) ExpireDeliveries(ctx context.Context, now time.Time, giveUpAfter time.Duration) (int, error) {
	var n int
	err := s.db.Tx(ctx, func(q Querier) error {
		rows, err := q.Query(ctx, `WITH parked AS (
				SELECT id FROM webhooks WHERE parked_until > $1 AND parked_until > 0`+s.lock("FOR NO KEY UPDATE SKIP LOCKED")+`
			)
			UPDATE webhook_deliveries SET status = 'failed', next_attempt_at = 0, claimed_until = 0
			WHERE status = 'pending' AND created_at <= $2 AND claimed_until <= $1 AND webhook_id IN (SELECT id FROM parked)
			RETURNING webhook_id`,
			millis(now), millis(now.Add(-giveUpAfter)))
		if err != nil {
			return s.errorf("expire deliveries: %w", err)
		}
		// The webhook of each delivery that ended: their histories grew, and
		// each is pruned once.
		ended, err := Collect(rows, ScanString)
		if err != nil {
			return s.errorf("expire deliveries: %w", err)
		}
		n = len(ended)
		slices.Sort(ended)
		for _, id := range slices.Compact(ended) {
			if err := s.pruneDeliveries(ctx, q, id); err != nil {
				return err
			}
		}
		return nil
	})
	return n, err
}

// pruneDeliveries deletes the oldest ended deliveries of the webhook id (and
// their attempts, by cascade) beyond its store.MaxWebhookDeliveries newest
// ended ones, at most pruneBatch at once; pending ones are never deleted. It
// runs when one of them ends, in that transaction, which holds the webhook's
// row, and walks that many entries of the index of its ended deliveries.
func (s *Store) pruneDeliveries(ctx context.Context, q Querier, id string) error {
	if _, err := q.Exec(ctx, `DELETE FROM webhook_deliveries WHERE seq IN (
		SELECT seq FROM webhook_deliveries WHERE webhook_id = $1 AND status <> 'pending' AND seq < (
			SELECT seq FROM webhook_deliveries WHERE webhook_id = $1 AND status <> 'pending'
			ORDER BY seq DESC LIMIT 1 OFFSET $2)
		ORDER BY seq LIMIT $3)`,
		id, store.MaxWebhookDeliveries-1, pruneBatch); err != nil {
		return s.errorf("prune deliveries of %s: %w", id, err)
	}
	return nil
}

// Deliveries implements store.Store.
func (s *Store) Deliveries(ctx context.Context, projectID int64, webhookID string, p store.Page) ([]store.Delivery, int, error) {
	var total int
	if err := s.db.Read().QueryRow(ctx, `SELECT count(*) FROM webhook_deliveries WHERE webhook_id = $1 AND project_id = $2`,
		webhookID, projectID).Scan(&total); err != nil {
		return nil, 0, s.errorf("count deliveries: %w", err)
	}
	rows, err := s.db.Read().Query(ctx, `SELECT `+DeliveryColumns+` FROM webhook_deliveries d
		JOIN webhooks w ON w.id = d.webhook_id WHERE d.webhook_id = $1 AND d.project_id = $2
		ORDER BY d.seq DESC LIMIT $3 OFFSET $4`, webhookID, projectID, s.limitOf(p), max(p.Offset, 0))
	if err != nil {
		return nil, 0, s.errorf("deliveries: %w", err)
	}
	ds, err := Collect(rows, ScanDelivery)
	if err != nil {
		return nil, 0, s.errorf("deliveries: %w", err)
	}
	if len(ds) == 0 {
		return ds, total, nil
	}
	index := make(map[string]int, len(ds))
	ids := make([]string, len(ds))
	for i := range ds {
		ds[i].SealedSecret, ds[i].Payload = nil, nil // not for listing
		index[ds[i].ID] = i
		ids[i] = ds[i].ID
	}
	for _, part := range chunks(ids, s.d.MaxIn()) {
		in, args := s.d.In("delivery_id", 1, part)
		rows, err = s.db.Read().Query(ctx, `SELECT delivery_id, at, status_code, error, duration_ms FROM webhook_attempts
			WHERE `+in+` ORDER BY delivery_id, at, `+s.d.AttemptSeq(), args...)
		if err != nil {
			return nil, 0, s.errorf("attempts: %w", err)
		}
		attempts, err := Collect(rows, func(r Row) (store.Attempt, error) {
			var a store.Attempt
			var at, dur int64
			err := r.Scan(&a.DeliveryID, &at, &a.StatusCode, &a.Error, &dur)
			a.At, a.Duration = fromMillis(at), time.Duration(dur)*time.Millisecond
			return a, err
		})
		if err != nil {
			return nil, 0, s.errorf("attempts: %w", err)
		}
		for _, a := range attempts {
			d := &ds[index[a.DeliveryID]]
			d.Attempts = append(d.Attempts, a)
		}
	}
	return ds, total, nil
}
