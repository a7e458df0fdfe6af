package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/domaind/domaind/internal/store"
)

// insertEvents stores events and, for each, a pending delivery to every webhook of
// its project that wants it, due at once.
func insertEvents(ctx context.Context, tx pgx.Tx, events []store.Event) error {
	hooks := map[int64][]store.Webhook{}
	for _, e := range events {
		if _, err := tx.Exec(ctx, `INSERT INTO events (id, project_id, domain_id, type, payload, created_at)
			VALUES ($1, $2, $3, $4, $5, $6)`, e.ID, e.ProjectID, e.DomainID, e.Type, string(e.Payload), store.Millis(e.CreatedAt)); err != nil {
			return fmt.Errorf("postgres: insert event: %w", err)
		}
		whs, ok := hooks[e.ProjectID]
		if !ok {
			// FOR KEY SHARE: a webhook deleted by another replica between this read
			// and the inserts below would make them fail on the foreign key; the
			// lock makes the delete wait for this transaction instead, and then
			// take the new deliveries with it.
			var err error
			if whs, err = webhooks(ctx, tx, e.ProjectID, " FOR KEY SHARE"); err != nil {
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
			if _, err := tx.Exec(ctx, `INSERT INTO webhook_deliveries (id, webhook_id, event_id, event_type,
				project_id, payload, status, next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
				id, w.ID, e.ID, e.Type, e.ProjectID, string(e.Payload), store.DeliveryPending, due, store.Millis(e.CreatedAt)); err != nil {
				return fmt.Errorf("postgres: insert delivery: %w", err)
			}
		}
	}
	return nil
}

// OldestDue implements store.Store.
func (s *Store) OldestDue(ctx context.Context) (time.Time, error) {
	var v *int64
	if err := s.pool.QueryRow(ctx, `SELECT min(next_check_at) FROM domains WHERE next_check_at > 0`).Scan(&v); err != nil {
		return time.Time{}, fmt.Errorf("postgres: oldest due: %w", err)
	}
	if v == nil {
		return time.Time{}, nil
	}
	return store.FromMillis(*v), nil
}

// Events implements store.Store.
func (s *Store) Events(ctx context.Context, projectID int64, domainID string, p store.Page) ([]store.Event, int, error) {
	var total int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM events WHERE domain_id = $1 AND project_id = $2`,
		domainID, projectID).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("postgres: count events: %w", err)
	}
	rows, err := s.pool.Query(ctx, `SELECT id, project_id, domain_id, type, payload, created_at FROM events
		WHERE domain_id = $1 AND project_id = $2 ORDER BY seq DESC LIMIT $3 OFFSET $4`,
		domainID, projectID, limitOf(p), max(p.Offset, 0))
	if err != nil {
		return nil, 0, fmt.Errorf("postgres: events: %w", err)
	}
	out, err := collect(rows, func(r pgx.Row) (store.Event, error) {
		var e store.Event
		var payload string
		var created int64
		err := r.Scan(&e.ID, &e.ProjectID, &e.DomainID, &e.Type, &payload, &created)
		e.Payload, e.CreatedAt = []byte(payload), store.FromMillis(created)
		return e, err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("postgres: events: %w", err)
	}
	return out, total, nil
}

// CreateWebhook implements store.Store. Registrations of one project take turns
// on the project's row, so a count never misses a webhook another replica is
// adding at the same moment. FOR NO KEY UPDATE does not wait for, nor hold up,
// the key-share locks that inserts referring to the project take.
func (s *Store) CreateWebhook(ctx context.Context, w store.Webhook, maxHooks int) error {
	events, err := store.EncodeStrings(w.Events)
	if err != nil {
		return fmt.Errorf("postgres: webhook events: %w", err)
	}
	return s.tx(ctx, func(tx pgx.Tx) error {
		if maxHooks > 0 {
			// The project's row lock makes registrations of one project take
			// turns. The count must be a statement of its own: in READ COMMITTED
			// a statement sees the rows committed before it began, so a count in
			// the statement that waited for the lock would miss the webhook the
			// registration it waited for has just added.
			if _, err := tx.Exec(ctx, `SELECT 1 FROM projects WHERE id = $1 FOR NO KEY UPDATE`, w.ProjectID); err != nil {
				return fmt.Errorf("postgres: lock project: %w", err)
			}
			var n int
			err := tx.QueryRow(ctx, `SELECT count(*) FROM webhooks WHERE project_id = $1`, w.ProjectID).Scan(&n)
			if err != nil {
				return fmt.Errorf("postgres: count webhooks: %w", err)
			}
			if n >= maxHooks {
				return store.ErrTooManyWebhooks
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO webhooks (id, project_id, url, events, sealed_secret, created_at)
			VALUES ($1, $2, $3, $4, $5, $6)`, w.ID, w.ProjectID, w.URL, string(events), w.SealedSecret, store.Millis(w.CreatedAt)); err != nil {
			return fmt.Errorf("postgres: create webhook: %w", err)
		}
		return nil
	})
}

// webhooks lists a project's webhooks, oldest first; lock is appended to the query.
func webhooks(ctx context.Context, q querier, projectID int64, lock string) ([]store.Webhook, error) {
	rows, err := q.Query(ctx, `SELECT id, project_id, url, events, sealed_secret, created_at, failures, parked_until
		FROM webhooks WHERE project_id = $1 ORDER BY created_at, id`+lock, projectID)
	if err != nil {
		return nil, fmt.Errorf("postgres: webhooks: %w", err)
	}
	out, err := collect(rows, func(r pgx.Row) (store.Webhook, error) {
		var w store.Webhook
		var events string
		var created, parked int64
		if err := r.Scan(&w.ID, &w.ProjectID, &w.URL, &events, &w.SealedSecret, &created, &w.Failures, &parked); err != nil {
			return w, err
		}
		if err := json.Unmarshal([]byte(events), &w.Events); err != nil {
			return w, fmt.Errorf("webhook %s events: %w", w.ID, err)
		}
		w.CreatedAt, w.ParkedUntil = store.FromMillis(created), store.FromMillis(parked)
		return w, nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: webhooks: %w", err)
	}
	return out, nil
}

// Webhooks implements store.Store.
func (s *Store) Webhooks(ctx context.Context, projectID int64) ([]store.Webhook, error) {
	return webhooks(ctx, s.pool, projectID, "")
}

// DeleteWebhook implements store.Store.
func (s *Store) DeleteWebhook(ctx context.Context, projectID int64, id string) error {
	// One statement: deliveries and their attempts go with it through ON DELETE CASCADE.
	tag, err := s.pool.Exec(ctx, `DELETE FROM webhooks WHERE id = $1 AND project_id = $2`, id, projectID)
	if err != nil {
		return fmt.Errorf("postgres: delete webhook: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return store.ErrNotFound
	}
	return nil
}

// ClaimDeliveries implements store.Store, in two statements of one transaction.
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
//
// Parked endpoints' deliveries are not due (RecordAttempt pushes them past the
// parking), so the due index never reads a parked backlog.
func (s *Store) ClaimDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit, perEndpoint int) ([]store.Delivery, error) {
	var out []store.Delivery
	err := s.tx(ctx, func(tx pgx.Tx) error {
		nowMS, per := store.Millis(now), max(perEndpoint, 1)
		rows, err := tx.Query(ctx, `SELECT w.id FROM webhooks w
			JOIN (SELECT webhook_id, min(next_attempt_at) AS oldest FROM webhook_deliveries
				WHERE status = 'pending' AND next_attempt_at <= $1 GROUP BY webhook_id) due ON due.webhook_id = w.id
			WHERE w.parked_until <= $1
				AND (SELECT count(*) FROM webhook_deliveries f
					WHERE f.webhook_id = w.id AND f.status = 'pending' AND f.claimed_until > $1) < $2
			ORDER BY due.oldest, w.id
			LIMIT $3
			FOR NO KEY UPDATE OF w SKIP LOCKED`, nowMS, per, noLimit(limit))
		if err != nil {
			return fmt.Errorf("postgres: claim deliveries: lock endpoints: %w", err)
		}
		hooks, err := collect(rows, func(r pgx.Row) (string, error) {
			var id string
			err := r.Scan(&id)
			return id, err
		})
		if err != nil {
			return fmt.Errorf("postgres: claim deliveries: lock endpoints: %w", err)
		}
		if len(hooks) == 0 {
			return nil
		}
		rows, err = tx.Query(ctx, `WITH busy AS (
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
			SELECT `+deliveryColumns+` FROM d JOIN webhooks w ON w.id = d.webhook_id
			ORDER BY d.next_attempt_at, d.seq`, hooks, nowMS, per, noLimit(limit), store.Millis(now.Add(lease)))
		if err != nil {
			return fmt.Errorf("postgres: claim deliveries: %w", err)
		}
		if out, err = collect(rows, scanDelivery); err != nil {
			return fmt.Errorf("postgres: claim deliveries: %w", err)
		}
		return nil
	})
	return out, err
}

const deliveryColumns = `d.id, d.webhook_id, d.event_id, d.event_type, d.project_id, d.status, d.next_attempt_at,
	d.created_at, d.payload, w.url, w.sealed_secret, w.failures`

func scanDelivery(r pgx.Row) (store.Delivery, error) {
	var d store.Delivery
	var next, created int64
	var payload string
	err := r.Scan(&d.ID, &d.WebhookID, &d.EventID, &d.EventType, &d.ProjectID, &d.Status, &next,
		&created, &payload, &d.URL, &d.SealedSecret, &d.EndpointFailures)
	d.NextAttemptAt, d.CreatedAt, d.Payload = store.FromMillis(next), store.FromMillis(created), []byte(payload)
	return d, err
}

// RecordAttempt implements store.Store. It locks the endpoint's row first, as
// claims do, so that the two take their locks in one order and never deadlock
// over a delivery whose lease ran out while its attempt was being recorded.
func (s *Store) RecordAttempt(ctx context.Context, a store.Attempt, next store.DeliveryState, parkedUntil time.Time) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		var webhookID string
		err := tx.QueryRow(ctx, `SELECT w.id FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
			WHERE d.id = $1 FOR NO KEY UPDATE OF w`, a.DeliveryID).Scan(&webhookID)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrNotFound // the webhook was deleted meanwhile
		}
		if err != nil {
			return fmt.Errorf("postgres: record attempt: %w", err)
		}
		tag, err := tx.Exec(ctx, `UPDATE webhook_deliveries SET status = $1, next_attempt_at = $2, claimed_until = 0 WHERE id = $3`,
			next.Status, store.Millis(next.NextAttemptAt), a.DeliveryID)
		if err != nil {
			return fmt.Errorf("postgres: record attempt: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return store.ErrNotFound
		}
		if _, err := tx.Exec(ctx, `INSERT INTO webhook_attempts (delivery_id, at, status_code, error, duration_ms)
			VALUES ($1, $2, $3, $4, $5)`, a.DeliveryID, store.Millis(a.At), a.StatusCode, a.Error, a.Duration.Milliseconds()); err != nil {
			return fmt.Errorf("postgres: record attempt: %w", err)
		}
		if next.Status == store.DeliveryDelivered {
			// Most endpoints are healthy: the row is written only when there is
			// something to reset.
			if _, err := tx.Exec(ctx, `UPDATE webhooks SET failures = 0, parked_until = 0
				WHERE id = $1 AND (failures <> 0 OR parked_until <> 0)`, webhookID); err != nil {
				return fmt.Errorf("postgres: reset webhook health: %w", err)
			}
			return nil
		}
		var parked int64
		if err := tx.QueryRow(ctx, `UPDATE webhooks SET failures = failures + 1, parked_until = greatest(parked_until, $1)
			WHERE id = $2 RETURNING parked_until`, store.Millis(parkedUntil), webhookID).Scan(&parked); err != nil {
			return fmt.Errorf("postgres: park webhook: %w", err)
		}
		if at := store.Millis(a.At); parked > at {
			if _, err := tx.Exec(ctx, `UPDATE webhook_deliveries SET next_attempt_at = $1
				WHERE webhook_id = $2 AND status = 'pending' AND next_attempt_at < $1 AND claimed_until <= $3`,
				parked, webhookID, at); err != nil {
				return fmt.Errorf("postgres: push parked deliveries: %w", err)
			}
		}
		return nil
	})
}

// ExpireDeliveries implements store.Store. It locks the parked endpoints first,
// in the order claims and RecordAttempt do, skipping any being worked on: their
// deliveries expire at the next call.
func (s *Store) ExpireDeliveries(ctx context.Context, now time.Time, giveUpAfter time.Duration) (int, error) {
	tag, err := s.pool.Exec(ctx, `WITH parked AS (
			SELECT id FROM webhooks WHERE parked_until > $1 AND parked_until > 0 FOR NO KEY UPDATE SKIP LOCKED
		)
		UPDATE webhook_deliveries d SET status = 'failed', next_attempt_at = 0, claimed_until = 0
		FROM parked WHERE d.webhook_id = parked.id AND d.status = 'pending' AND d.created_at <= $2 AND d.claimed_until <= $1`,
		store.Millis(now), store.Millis(now.Add(-giveUpAfter)))
	if err != nil {
		return 0, fmt.Errorf("postgres: expire deliveries: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// Deliveries implements store.Store.
func (s *Store) Deliveries(ctx context.Context, projectID int64, webhookID string, p store.Page) ([]store.Delivery, int, error) {
	var total int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM webhook_deliveries WHERE webhook_id = $1 AND project_id = $2`,
		webhookID, projectID).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("postgres: count deliveries: %w", err)
	}
	rows, err := s.pool.Query(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries d
		JOIN webhooks w ON w.id = d.webhook_id WHERE d.webhook_id = $1 AND d.project_id = $2
		ORDER BY d.seq DESC LIMIT $3 OFFSET $4`, webhookID, projectID, limitOf(p), max(p.Offset, 0))
	if err != nil {
		return nil, 0, fmt.Errorf("postgres: deliveries: %w", err)
	}
	ds, err := collect(rows, scanDelivery)
	if err != nil {
		return nil, 0, fmt.Errorf("postgres: deliveries: %w", err)
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
	rows, err = s.pool.Query(ctx, `SELECT delivery_id, at, status_code, error, duration_ms FROM webhook_attempts
		WHERE delivery_id = ANY($1) ORDER BY delivery_id, at, seq`, ids)
	if err != nil {
		return nil, 0, fmt.Errorf("postgres: attempts: %w", err)
	}
	attempts, err := collect(rows, func(r pgx.Row) (store.Attempt, error) {
		var a store.Attempt
		var at, dur int64
		err := r.Scan(&a.DeliveryID, &at, &a.StatusCode, &a.Error, &dur)
		a.At, a.Duration = store.FromMillis(at), time.Duration(dur)*time.Millisecond
		return a, err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("postgres: attempts: %w", err)
	}
	for _, a := range attempts {
		d := &ds[index[a.DeliveryID]]
		d.Attempts = append(d.Attempts, a)
	}
	return ds, total, nil
}

// AcquireCheck implements store.Store.
func (s *Store) AcquireCheck(ctx context.Context, id, owner string, now time.Time, lease time.Duration) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE domains SET check_owner = $1, check_until = $2
		WHERE id = $3 AND (check_until <= $4 OR check_owner = $1)`, owner, store.Millis(now.Add(lease)), id, store.Millis(now))
	if err != nil {
		return false, fmt.Errorf("postgres: acquire check %s: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}

// ReleaseCheck implements store.Store.
func (s *Store) ReleaseCheck(ctx context.Context, id, owner string) error {
	if _, err := s.pool.Exec(ctx, `UPDATE domains SET check_until = 0 WHERE id = $1 AND check_owner = $2`, id, owner); err != nil {
		return fmt.Errorf("postgres: release check %s: %w", id, err)
	}
	return nil
}
