package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/domaind/domaind/internal/store"
)

// insertEvents stores events and, for each, a pending delivery to every webhook of
// its project that wants it, due at once.
func insertEvents(ctx context.Context, tx *sql.Tx, events []store.Event) error {
	hooks := map[int64][]store.Webhook{}
	for _, e := range events {
		if _, err := tx.ExecContext(ctx, `INSERT INTO events (id, project_id, domain_id, type, payload, created_at)
			VALUES (?, ?, ?, ?, ?, ?)`, e.ID, e.ProjectID, e.DomainID, e.Type, string(e.Payload), store.Millis(e.CreatedAt)); err != nil {
			return fmt.Errorf("sqlite: insert event: %w", err)
		}
		whs, ok := hooks[e.ProjectID]
		if !ok {
			var err error
			if whs, err = webhooks(ctx, tx, e.ProjectID); err != nil {
				return err
			}
			hooks[e.ProjectID] = whs
		}
		for _, w := range whs {
			if !store.Wants(w.Events, e.Type) {
				continue
			}
			id, err := store.NewID("msg_")
			if err != nil {
				return err
			}
			// A parked endpoint's new deliveries wait for the parking to end, as
			// its others do, so that claims find none of them due meanwhile.
			due := max(store.Millis(e.CreatedAt), store.Millis(w.ParkedUntil))
			if _, err := tx.ExecContext(ctx, `INSERT INTO webhook_deliveries (id, webhook_id, event_id, event_type,
				project_id, payload, status, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				id, w.ID, e.ID, e.Type, e.ProjectID, string(e.Payload), store.DeliveryPending, due, store.Millis(e.CreatedAt)); err != nil {
				return fmt.Errorf("sqlite: insert delivery: %w", err)
			}
		}
	}
	return nil
}

// OldestDue implements store.Store.
func (s *Store) OldestDue(ctx context.Context) (time.Time, error) {
	var v sql.NullInt64
	if err := s.r.QueryRowContext(ctx, `SELECT min(next_check_at) FROM domains WHERE next_check_at > 0`).Scan(&v); err != nil {
		return time.Time{}, fmt.Errorf("sqlite: oldest due: %w", err)
	}
	return store.FromMillis(v.Int64), nil
}

// Events implements store.Store.
func (s *Store) Events(ctx context.Context, projectID int64, domainID string, p store.Page) ([]store.Event, int, error) {
	var total int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM events WHERE domain_id = ? AND project_id = ?`,
		domainID, projectID).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("sqlite: count events: %w", err)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT id, project_id, domain_id, type, payload, created_at FROM events
		WHERE domain_id = ? AND project_id = ? ORDER BY seq DESC LIMIT ? OFFSET ?`,
		domainID, projectID, limitOf(p), max(p.Offset, 0))
	if err != nil {
		return nil, 0, fmt.Errorf("sqlite: events: %w", err)
	}
	defer rows.Close()
	var out []store.Event
	for rows.Next() {
		var e store.Event
		var payload string
		var created int64
		if err := rows.Scan(&e.ID, &e.ProjectID, &e.DomainID, &e.Type, &payload, &created); err != nil {
			return nil, 0, fmt.Errorf("sqlite: events: %w", err)
		}
		e.Payload, e.CreatedAt = []byte(payload), store.FromMillis(created)
		out = append(out, e)
	}
	return out, total, rows.Err()
}

func limitOf(p store.Page) int {
	if p.Limit <= 0 {
		return -1
	}
	return p.Limit
}

// CreateWebhook implements store.Store. The write transaction is the only one of
// the database at a time, so the count and the insert cannot interleave with
// another registration's.
func (s *Store) CreateWebhook(ctx context.Context, w store.Webhook, maxHooks int) error {
	events, err := store.EncodeStrings(w.Events)
	if err != nil {
		return fmt.Errorf("sqlite: webhook events: %w", err)
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		if maxHooks > 0 {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM webhooks WHERE project_id = ?`, w.ProjectID).Scan(&n); err != nil {
				return fmt.Errorf("sqlite: count webhooks: %w", err)
			}
			if n >= maxHooks {
				return store.ErrTooManyWebhooks
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO webhooks (id, project_id, url, events, sealed_secret, created_at)
			VALUES (?, ?, ?, ?, ?, ?)`, w.ID, w.ProjectID, w.URL, string(events), w.SealedSecret, store.Millis(w.CreatedAt)); err != nil {
			return fmt.Errorf("sqlite: create webhook: %w", err)
		}
		return nil
	})
}

type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func webhooks(ctx context.Context, q queryer, projectID int64) ([]store.Webhook, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, project_id, url, events, sealed_secret, created_at, failures, parked_until
		FROM webhooks WHERE project_id = ? ORDER BY created_at, id`, projectID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: webhooks: %w", err)
	}
	defer rows.Close()
	var out []store.Webhook
	for rows.Next() {
		var w store.Webhook
		var events string
		var created, parked int64
		if err := rows.Scan(&w.ID, &w.ProjectID, &w.URL, &events, &w.SealedSecret, &created, &w.Failures, &parked); err != nil {
			return nil, fmt.Errorf("sqlite: webhooks: %w", err)
		}
		if err := json.Unmarshal([]byte(events), &w.Events); err != nil {
			return nil, fmt.Errorf("sqlite: webhook %s events: %w", w.ID, err)
		}
		w.CreatedAt, w.ParkedUntil = store.FromMillis(created), store.FromMillis(parked)
		out = append(out, w)
	}
	return out, rows.Err()
}

// Webhooks implements store.Store.
func (s *Store) Webhooks(ctx context.Context, projectID int64) ([]store.Webhook, error) {
	return webhooks(ctx, s.r, projectID)
}

// DeleteWebhook implements store.Store.
func (s *Store) DeleteWebhook(ctx context.Context, projectID int64, id string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM webhooks WHERE id = ? AND project_id = ?`, id, projectID)
		if err != nil {
			return fmt.Errorf("sqlite: delete webhook: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return store.ErrNotFound
		}
		return nil
	})
}

// claimDeliveriesQuery picks the deliveries a claim takes: of the endpoints
// that are not parked, each one's due deliveries ranked oldest first (rn), and of
// those the ones that keep the endpoint within its in-flight allowance once
// counted with the ones it has in flight already (busy); then the first rank of
// every endpoint before any second one, so that no endpoint's backlog takes the
// batch. Parked endpoints' deliveries are not due (RecordAttempt pushes them past
// the parking), so the due index never reads a parked backlog; the parked_until
// test only covers a claim whose lease ran out while its endpoint was parked.
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

// ClaimDeliveries implements store.Store. The write transaction is the only one
// of the database at a time, so two claims never see the same deliveries as free.
func (s *Store) ClaimDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit, perEndpoint int) ([]store.Delivery, error) {
	var out []store.Delivery
	err := s.tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `UPDATE webhook_deliveries SET next_attempt_at = :until, claimed_until = :until
			WHERE id IN (`+claimDeliveriesQuery+`)
			RETURNING id`, sql.Named("until", store.Millis(now.Add(lease))), sql.Named("now", store.Millis(now)),
			sql.Named("per", max(perEndpoint, 1)), sql.Named("limit", limit))
		if err != nil {
			return fmt.Errorf("sqlite: claim deliveries: %w", err)
		}
		var ids []any
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return fmt.Errorf("sqlite: claim deliveries: %w", err)
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil || len(ids) == 0 {
			return err
		}
		out, err = deliveries(ctx, tx, `d.id IN (?`+strings.Repeat(",?", len(ids)-1)+`) ORDER BY d.next_attempt_at, d.seq`, ids...)
		return err
	})
	return out, err
}

const deliveryColumns = `d.id, d.webhook_id, d.event_id, d.event_type, d.project_id, d.status, d.next_attempt_at,
	d.created_at, d.payload, w.url, w.sealed_secret, w.failures`

func deliveries(ctx context.Context, q queryer, where string, args ...any) ([]store.Delivery, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries d
		JOIN webhooks w ON w.id = d.webhook_id WHERE `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: deliveries: %w", err)
	}
	defer rows.Close()
	var out []store.Delivery
	for rows.Next() {
		var d store.Delivery
		var next, created int64
		var payload string
		if err := rows.Scan(&d.ID, &d.WebhookID, &d.EventID, &d.EventType, &d.ProjectID, &d.Status, &next,
			&created, &payload, &d.URL, &d.SealedSecret, &d.EndpointFailures); err != nil {
			return nil, fmt.Errorf("sqlite: deliveries: %w", err)
		}
		d.NextAttemptAt, d.CreatedAt, d.Payload = store.FromMillis(next), store.FromMillis(created), []byte(payload)
		out = append(out, d)
	}
	return out, rows.Err()
}

// RecordAttempt implements store.Store.
func (s *Store) RecordAttempt(ctx context.Context, a store.Attempt, next store.DeliveryState, parkedUntil time.Time) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		var webhookID string
		err := tx.QueryRowContext(ctx, `UPDATE webhook_deliveries SET status = ?, next_attempt_at = ?, claimed_until = 0
			WHERE id = ? RETURNING webhook_id`, next.Status, store.Millis(next.NextAttemptAt), a.DeliveryID).Scan(&webhookID)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound // the webhook was deleted meanwhile
		}
		if err != nil {
			return fmt.Errorf("sqlite: record attempt: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO webhook_attempts (delivery_id, at, status_code, error, duration_ms)
			VALUES (?, ?, ?, ?, ?)`, a.DeliveryID, store.Millis(a.At), a.StatusCode, a.Error, a.Duration.Milliseconds()); err != nil {
			return fmt.Errorf("sqlite: record attempt: %w", err)
		}
		return recordHealth(ctx, tx, webhookID, a.At, next.Status == store.DeliveryDelivered, parkedUntil)
	})
}

// recordHealth updates a webhook's failures and parking after an attempt, and
// pushes its pending deliveries that are not in flight past the parking.
func recordHealth(ctx context.Context, tx *sql.Tx, webhookID string, at time.Time, delivered bool, parkedUntil time.Time) error {
	if delivered {
		// Most endpoints are healthy: the row is written only when there is
		// something to reset.
		if _, err := tx.ExecContext(ctx, `UPDATE webhooks SET failures = 0, parked_until = 0
			WHERE id = ? AND (failures <> 0 OR parked_until <> 0)`, webhookID); err != nil {
			return fmt.Errorf("sqlite: reset webhook health: %w", err)
		}
		return nil
	}
	var parked int64
	if err := tx.QueryRowContext(ctx, `UPDATE webhooks SET failures = failures + 1, parked_until = max(parked_until, ?)
		WHERE id = ? RETURNING parked_until`, store.Millis(parkedUntil), webhookID).Scan(&parked); err != nil {
		return fmt.Errorf("sqlite: park webhook: %w", err)
	}
	if parked <= store.Millis(at) {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries SET next_attempt_at = ?
		WHERE webhook_id = ? AND status = 'pending' AND next_attempt_at < ? AND claimed_until <= ?`,
		parked, webhookID, parked, store.Millis(at)); err != nil {
		return fmt.Errorf("sqlite: push parked deliveries: %w", err)
	}
	return nil
}

// ExpireDeliveries implements store.Store.
func (s *Store) ExpireDeliveries(ctx context.Context, now time.Time, giveUpAfter time.Duration) (int, error) {
	var n int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries SET status = 'failed', next_attempt_at = 0, claimed_until = 0
			WHERE status = 'pending' AND created_at <= :deadline AND claimed_until <= :now
				AND webhook_id IN (SELECT id FROM webhooks WHERE parked_until > :now AND parked_until > 0)`,
			sql.Named("deadline", store.Millis(now.Add(-giveUpAfter))), sql.Named("now", store.Millis(now)))
		if err != nil {
			return fmt.Errorf("sqlite: expire deliveries: %w", err)
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}

// Deliveries implements store.Store.
func (s *Store) Deliveries(ctx context.Context, projectID int64, webhookID string, p store.Page) ([]store.Delivery, int, error) {
	var total int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM webhook_deliveries WHERE webhook_id = ? AND project_id = ?`,
		webhookID, projectID).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("sqlite: count deliveries: %w", err)
	}
	ds, err := deliveries(ctx, s.r, `d.webhook_id = ? AND d.project_id = ? ORDER BY d.seq DESC LIMIT ? OFFSET ?`,
		webhookID, projectID, limitOf(p), max(p.Offset, 0))
	if err != nil {
		return nil, 0, err
	}
	for i := range ds {
		rows, err := s.r.QueryContext(ctx, `SELECT at, status_code, error, duration_ms FROM webhook_attempts
			WHERE delivery_id = ? ORDER BY at`, ds[i].ID)
		if err != nil {
			return nil, 0, fmt.Errorf("sqlite: attempts: %w", err)
		}
		for rows.Next() {
			a := store.Attempt{DeliveryID: ds[i].ID}
			var at, dur int64
			if err := rows.Scan(&at, &a.StatusCode, &a.Error, &dur); err != nil {
				rows.Close()
				return nil, 0, fmt.Errorf("sqlite: attempts: %w", err)
			}
			a.At, a.Duration = store.FromMillis(at), time.Duration(dur)*time.Millisecond
			ds[i].Attempts = append(ds[i].Attempts, a)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, 0, err
		}
		ds[i].SealedSecret, ds[i].Payload = nil, nil // not for listing
	}
	return ds, total, nil
}

// AcquireCheck implements store.Store.
func (s *Store) AcquireCheck(ctx context.Context, id, owner string, now time.Time, lease time.Duration) (bool, error) {
	var n int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE domains SET check_owner = ?, check_until = ?
			WHERE id = ? AND (check_until <= ? OR check_owner = ?)`, owner, store.Millis(now.Add(lease)), id, store.Millis(now), owner)
		if err != nil {
			return fmt.Errorf("sqlite: acquire check %s: %w", id, err)
		}
		n, _ = res.RowsAffected()
		return nil
	})
	return n == 1, err
}

// ReleaseCheck implements store.Store.
func (s *Store) ReleaseCheck(ctx context.Context, id, owner string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE domains SET check_until = 0 WHERE id = ? AND check_owner = ?`, id, owner); err != nil {
			return fmt.Errorf("sqlite: release check %s: %w", id, err)
		}
		return nil
	})
}
