package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/store"
)

// rotationColumns are the columns of a rotation row, as scanRotation reads them
// (r. the row, d. its domain, dk. the domain's dkim record, see rotationFrom).
const rotationColumns = `d.id, d.project_id, d.name, r.mode, r.state, r.current_selector, r.current_value,
	dk.value, r.current_since, r.current_visible_at, r.next_selector, r.next_value, r.next_key, r.prev_selector, r.prev_value,
	r.reason, r.started_at, r.published_at, r.visible_at, r.switched_at, r.retire_at, r.retired_at, r.reminded_at,
	r.attempts, r.last_error, r.step_at`

// rotationFrom joins a rotation row r to its domain d and the domain's dkim
// record dk, whose value is the current one while the row keeps none. A row
// refers to its domain by the domain's seq, as the records do.
const rotationFrom = `dkim_rotations r JOIN domains d ON d.seq = r.domain_seq
	LEFT JOIN domain_records dk ON dk.domain_seq = d.seq AND dk.key = 'dkim'`

func scanRotation(row Row) (store.Rotation, error) {
	var r store.Rotation
	var mode, state string
	var current, record any
	var since, visibleCur, started, published, visible, switched, retire, retired, reminded, step int64
	err := row.Scan(&r.DomainID, &r.ProjectID, &r.Domain, &mode, &state, &r.CurrentSelector, &current, &record,
		&since, &visibleCur, &r.NextSelector, &r.NextValue, &r.NextSealed, &r.PrevSelector, &r.PrevValue,
		&r.Reason, &started, &published, &visible, &switched, &retire, &retired, &reminded,
		&r.Attempts, &r.LastError, &step)
	r.Mode, r.State = domain.DKIMMode(mode), domain.RotationState(state)
	r.CurrentSince, r.CurrentVisibleAt = fromMillis(since), fromMillis(visibleCur)
	r.StartedAt, r.PublishedAt, r.VisibleAt = fromMillis(started), fromMillis(published), fromMillis(visible)
	r.SwitchedAt, r.RetireAt, r.RetiredAt = fromMillis(switched), fromMillis(retire), fromMillis(retired)
	r.RemindedAt, r.StepAt = fromMillis(reminded), fromMillis(step)
	if err != nil {
		return r, err
	}
	if current == nil {
		current = record
	}
	r.CurrentValue, err = valueOf(current)
	return r, err
}

// shareCurrentValue drops the rotation's current value where it is the
// domain's dkim record's value (txt mode, between the steps that move
// records), which the row then reads instead of repeating it: NULL means
// "the dkim record's value". Every write that stores a current value or moves
// the dkim record ends with it.
func (s *Store) shareCurrentValue(ctx context.Context, q Querier, domainID string) error {
	_, err := q.Exec(ctx, `UPDATE dkim_rotations SET current_value = NULL
		WHERE domain_seq = `+domainSeq(1)+` AND current_value = (SELECT value FROM domain_records
			WHERE domain_seq = `+domainSeq(1)+` AND key = 'dkim')`, domainID)
	if err != nil {
		return s.errorf("rotation %s: %w", domainID, err)
	}
	return nil
}

// CreateRotation implements store.Rotations.
func (s *Store) CreateRotation(ctx context.Context, r store.Rotation) error {
	return s.db.Write(ctx, func(q Querier) error { return s.createRotation(ctx, q, r) })
}

func (s *Store) createRotation(ctx context.Context, q Querier, r store.Rotation) error {
	// Another replica's row stands (ON CONFLICT DO NOTHING).
	// The project is the domain's.
	_, err := q.Exec(ctx, `INSERT INTO dkim_rotations (domain_seq, mode, state, current_selector,
		current_value, current_since, current_visible_at, step_at)
		VALUES (`+domainSeq(1)+`, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (domain_seq) DO NOTHING`,
		r.DomainID, string(r.Mode), string(r.State), r.CurrentSelector, s.value(r.CurrentValue),
		millis(r.CurrentSince), millis(r.CurrentVisibleAt), millis(r.StepAt))
	if err != nil {
		return s.errorf("create rotation %s: %w", r.DomainID, err)
	}
	return s.shareCurrentValue(ctx, q, r.DomainID)
}

// InitRotations implements store.Rotations. It looks at a window of limit ids
// at a time, so walking every domain costs one look at each, however many
// already have their row.
func (s *Store) InitRotations(ctx context.Context, now time.Time, every time.Duration, after string, limit int) (int, string, error) {
	var (
		n    int64
		last string
	)
	err := s.db.Write(ctx, func(q Querier) error {
		rows, err := q.Query(ctx, `SELECT id FROM domains WHERE id > $1 ORDER BY id LIMIT $2`, after, limit)
		if err != nil {
			return s.errorf("init rotations: %w", err)
		}
		ids, err := Collect(rows, ScanString)
		if err != nil {
			return s.errorf("init rotations: %w", err)
		}
		if len(ids) == 0 {
			return nil
		}
		last = ids[len(ids)-1]
		n, err = s.initRotations(ctx, q, now, every, `d.id > $1 AND d.id <= $2`, after, last)
		return err
	})
	return int(n), last, err
}

// InitRotation implements store.Rotations.
func (s *Store) InitRotation(ctx context.Context, domainID string, now time.Time, every time.Duration) error {
	return s.db.Write(ctx, func(q Querier) error {
		_, err := s.initRotations(ctx, q, now, every, `d.id = $1 AND d.id = $2`, domainID, domainID)
		return err
	})
}

// initRotations creates the missing rows of the domains where (over $1 and
// $2) selects.
func (s *Store) initRotations(ctx context.Context, q Querier, now time.Time, every time.Duration, where string, a, b string) (int64, error) {
	// The selector is the DKIM record's stored name (relative to the domain)
	// less "._domainkey.", and the current value the record's (NULL). Only txt-mode records (TXT) are taken: a cname-mode
	// domain gets its row when it is added.
	// The first rotation is due a period after the later of the key's
	// creation and now: domains older than a period when rotation came do not
	// all start one at once.
	step := `0`
	args := []any{a, b}
	if every > 0 {
		step = `(CASE WHEN d.created_at + rec.created_at > $4 THEN d.created_at + rec.created_at ELSE $4 END) + $3`
		args = append(args, every.Milliseconds(), millis(now))
	}
	n, err := q.Exec(ctx, `INSERT INTO dkim_rotations (domain_seq, mode, state, current_selector,
		current_value, current_since, step_at)
		SELECT d.seq, 'txt', 'idle',
			substr(rec.name, 1, length(rec.name) - length('._domainkey.')),
			NULL, d.created_at + rec.created_at, `+step+`
		FROM domains d JOIN domain_records rec ON rec.domain_seq = d.seq AND rec.key = 'dkim'
		WHERE `+where+` AND rec.type = 'TXT' AND NOT EXISTS (SELECT 1 FROM dkim_rotations x WHERE x.domain_seq = d.seq)
		ON CONFLICT (domain_seq) DO NOTHING`, args...)
	if err != nil {
		return 0, s.errorf("init rotations: %w", err)
	}
	return n, nil
}

// Rotation implements store.Rotations.
func (s *Store) Rotation(ctx context.Context, domainID string) (store.Rotation, error) {
	r, err := scanRotation(s.db.Read().QueryRow(ctx, `SELECT `+rotationColumns+`
		FROM `+rotationFrom+` WHERE d.id = $1`, domainID))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Rotation{}, store.ErrNotFound
	}
	if err != nil {
		return store.Rotation{}, s.errorf("rotation %s: %w", domainID, err)
	}
	return r, nil
}

// ClaimRotations implements store.Rotations.
func (s *Store) ClaimRotations(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]string, error) {
	var ids []string
	err := s.db.Tx(ctx, func(tx Querier) error {
		type claimed struct {
			id  string
			seq int64
		}
		// Only the rotation rows are locked (OF r), not their domains.
		rows, err := tx.Query(ctx, `SELECT d.id, r.domain_seq FROM dkim_rotations r JOIN domains d ON d.seq = r.domain_seq
			WHERE r.step_at > 0 AND r.step_at <= $1
			ORDER BY r.step_at LIMIT $2`+s.lock("FOR UPDATE OF r SKIP LOCKED"), millis(now), limit)
		if err != nil {
			return s.errorf("claim rotations: %w", err)
		}
		got, err := Collect(rows, func(r Row) (c claimed, err error) { err = r.Scan(&c.id, &c.seq); return })
		if err != nil {
			return s.errorf("claim rotations: %w", err)
		}
		for _, c := range got {
			if _, err := tx.Exec(ctx, `UPDATE dkim_rotations SET step_at = $1 WHERE domain_seq = $2`,
				millis(now.Add(lease)), c.seq); err != nil {
				return s.errorf("claim rotation %s: %w", c.id, err)
			}
			ids = append(ids, c.id)
		}
		return nil
	})
	return ids, err
}

// saveRotation writes r over the row in state from, in tx.
func (s *Store) saveRotation(ctx context.Context, tx Querier, r store.Rotation, from domain.RotationState) error {
	n, err := tx.Exec(ctx, `UPDATE dkim_rotations SET mode = $1, state = $2, current_selector = $3, current_value = $4,
		current_since = $5, current_visible_at = $6, next_selector = $7, next_value = $8, next_key = $9,
		prev_selector = $10, prev_value = $11, reason = $12, started_at = $13, published_at = $14, visible_at = $15,
		switched_at = $16, retire_at = $17, retired_at = $18, reminded_at = $19, attempts = $20, last_error = $21,
		step_at = $22 WHERE domain_seq = `+domainSeq(23)+` AND state = $24`,
		string(r.Mode), string(r.State), r.CurrentSelector, s.value(r.CurrentValue),
		millis(r.CurrentSince), millis(r.CurrentVisibleAt), r.NextSelector, r.NextValue, r.NextSealed,
		r.PrevSelector, r.PrevValue, r.Reason, millis(r.StartedAt), millis(r.PublishedAt), millis(r.VisibleAt),
		millis(r.SwitchedAt), millis(r.RetireAt), millis(r.RetiredAt), millis(r.RemindedAt), r.Attempts, r.LastError,
		millis(r.StepAt), r.DomainID, string(from))
	if err != nil {
		return s.errorf("save rotation %s: %w", r.DomainID, err)
	}
	if n == 0 {
		var state string
		err := tx.QueryRow(ctx, `SELECT state FROM dkim_rotations WHERE domain_seq = `+domainSeq(1), r.DomainID).Scan(&state)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return s.errorf("save rotation %s: %w", r.DomainID, err)
		}
		return store.ErrStale
	}
	return s.shareCurrentValue(ctx, tx, r.DomainID)
}

// rotationStep runs fn, the writes of a rotation step, in one transaction with
// the step's events: counted first, which locks the domain row before the
// rotation's, as every write of both does (see countEvents and bumpVersion),
// and inserted last.
func (s *Store) rotationStep(ctx context.Context, events []store.Event, fn func(tx Querier) error) error {
	return s.db.Tx(ctx, func(tx Querier) error {
		if err := s.countEvents(ctx, tx, events); err != nil {
			return err
		}
		if err := fn(tx); err != nil {
			return err
		}
		return s.insertEvents(ctx, tx, events)
	})
}

// SaveRotation implements store.Rotations.
func (s *Store) SaveRotation(ctx context.Context, r store.Rotation, from domain.RotationState, events []store.Event) error {
	return s.rotationStep(ctx, events, func(tx Querier) error { return s.saveRotation(ctx, tx, r, from) })
}

// nextPosition is the position after the domain's last record.
func nextPosition(ctx context.Context, tx Querier, domainID string) (int, error) {
	var pos int
	err := tx.QueryRow(ctx, `SELECT coalesce(max(position), 0) + 1 FROM domain_records WHERE domain_seq = `+domainSeq(1), domainID).Scan(&pos)
	return pos, err
}

// StartRotation implements store.Rotations.
func (s *Store) StartRotation(ctx context.Context, r store.Rotation, from domain.RotationState, next *domain.Record, events []store.Event) error {
	return s.rotationStep(ctx, events, func(tx Querier) error {
		if next != nil {
			if err := bumpVersion(ctx, tx, r.DomainID); err != nil {
				return s.errorf("start rotation %s: %w", r.DomainID, err)
			}
		}
		if err := s.saveRotation(ctx, tx, r, from); err != nil {
			return err
		}
		if next != nil {
			if _, err := tx.Exec(ctx, `DELETE FROM domain_records WHERE domain_seq = `+domainSeq(1)+` AND key IN ($2, $3)`,
				r.DomainID, string(domain.KeyDKIMNext), string(domain.KeyDKIMPrevious)); err != nil {
				return s.errorf("start rotation %s: %w", r.DomainID, err)
			}
			pos, err := nextPosition(ctx, tx, r.DomainID)
			if err != nil {
				return s.errorf("start rotation %s: %w", r.DomainID, err)
			}
			if err := s.insertRecord(ctx, tx, r.DomainID, r.Domain, pos, next); err != nil {
				return err
			}
			// What was kept of the records deleted goes with them; the next
			// key is new, never checked.
			return s.renewChecks(ctx, tx, r.DomainID, domain.KeyDKIMNext, nil)
		}
		return nil
	})
}

// SwitchRotation implements store.Rotations.
func (s *Store) SwitchRotation(ctx context.Context, r store.Rotation, now time.Time, events []store.Event) error {
	return s.rotationStep(ctx, events, func(tx Querier) error {
		// The sealed key comes from the row as stored, not from r: the switch
		// signs with exactly the key whose record was seen.
		var sealed []byte
		if err := tx.QueryRow(ctx, `SELECT next_key FROM dkim_rotations WHERE domain_seq = `+domainSeq(1)+` AND state = $2`,
			r.DomainID, string(domain.RotationVisible)).Scan(&sealed); errors.Is(err, sql.ErrNoRows) {
			return store.ErrStale
		} else if err != nil {
			return s.errorf("switch rotation %s: %w", r.DomainID, err)
		}
		if len(sealed) == 0 {
			return s.errorf("switch rotation %s: no next key", r.DomainID)
		}
		// The domain row before the rotation's and the records', in the order
		// a check's save and a delete lock them (see bumpVersion).
		if _, err := tx.Exec(ctx, `UPDATE domains SET dkim_private_key = $1, version = version + 1 WHERE id = $2`, sealed, r.DomainID); err != nil {
			return s.errorf("switch rotation %s: %w", r.DomainID, err)
		}
		if err := s.saveRotation(ctx, tx, r, domain.RotationVisible); err != nil {
			return err
		}
		// Keys are moved through a name no record has, as one primary key
		// (domain_seq, key) must never hold two rows at any statement's end.
		moves := [][2]domain.RecordKey{{domain.KeyDKIM, "dkim_swap"}, {domain.KeyDKIMNext, domain.KeyDKIM}, {"dkim_swap", domain.KeyDKIMPrevious}}
		if r.Mode == domain.DKIMModeCNAME {
			moves = [][2]domain.RecordKey{{domain.KeyDKIM, "dkim_swap"}, {domain.KeyDKIM2, domain.KeyDKIM}, {"dkim_swap", domain.KeyDKIM2}}
		}
		for _, m := range moves {
			if _, err := tx.Exec(ctx, `UPDATE domain_records SET key = $1 WHERE domain_seq = `+domainSeq(2)+` AND key = $3`,
				string(m[1]), r.DomainID, string(m[0])); err != nil {
				return s.errorf("switch rotation %s: %w", r.DomainID, err)
			}
		}
		// The records that changed role changed now: the new dkim record, and
		// in txt mode the one that is now the previous. Their purposes follow
		// from their new keys (domain.PurposeOf).
		changed := []any{millis(now), r.DomainID, string(domain.KeyDKIM), string(domain.KeyDKIM)}
		if r.Mode != domain.DKIMModeCNAME {
			changed[3] = string(domain.KeyDKIMPrevious)
		}
		if _, err := tx.Exec(ctx, `UPDATE domain_records SET updated_at = `+updatedAt(1, 2)+`
			WHERE domain_seq = `+domainSeq(2)+` AND key IN ($3, $4)`, changed...); err != nil {
			return s.errorf("switch rotation %s: %w", r.DomainID, err)
		}
		// The new dkim record was seen on every authoritative server (in cname
		// mode: the customer's CNAME at the next selector leads to the key the
		// operator's zone shows): it is verified now, which is what lets it
		// sign (SigningKeys), whatever the last regular check of it said. What
		// that check found is dropped if it did not verify, as it no longer
		// holds. What was found of the others follows them to their new keys,
		// as it names them by fingerprint.
		err := s.editChecks(ctx, tx, r.DomainID, func(stored []recordCheck, current []recordPrint) []recordCheck {
			out := mergeChecks(nil, stored, current)
			for _, cur := range current {
				if cur.Key != domain.KeyDKIM {
					continue
				}
				c := recordCheck{Print: cur.Print, Key: string(domain.KeyDKIM), Verified: true,
					Status: storedStatus(domain.CheckVerified), CheckedAt: millis(now), UpdatedAt: millis(now)}
				i := checkIndex(out, cur.Print)
				if i < 0 {
					return append(out, c)
				}
				if out[i].Verified {
					c.State = out[i].State
				}
				out[i] = c
			}
			return out
		})
		if err != nil {
			return err
		}
		// The dkim record holds the current value now.
		if err := s.shareCurrentValue(ctx, tx, r.DomainID); err != nil {
			return err
		}
		return nil
	})
}

// RetireRotation implements store.Rotations.
func (s *Store) RetireRotation(ctx context.Context, r store.Rotation, revoked *domain.Record, events []store.Event) error {
	return s.rotationStep(ctx, events, func(tx Querier) error {
		if revoked != nil {
			if err := bumpVersion(ctx, tx, r.DomainID); err != nil {
				return s.errorf("retire rotation %s: %w", r.DomainID, err)
			}
		}
		if err := s.saveRotation(ctx, tx, r, domain.RotationRetiring); err != nil {
			return err
		}
		if revoked != nil {
			// The purpose is not stored: it follows from the revoked value.
			if _, err := tx.Exec(ctx, `UPDATE domain_records SET value = $1, updated_at = `+updatedAt(2, 3)+`
				WHERE domain_seq = `+domainSeq(3)+` AND key = $4`,
				s.value(revoked.Value), millis(revoked.UpdatedAt), r.DomainID, string(domain.KeyDKIMPrevious)); err != nil {
				return s.errorf("retire rotation %s: %w", r.DomainID, err)
			}
			// The revoked record is new: never checked, whatever was kept of a
			// record of the same name and value before.
			return s.renewChecks(ctx, tx, r.DomainID, domain.KeyDKIMPrevious, nil)
		}
		return nil
	})
}

// DomainIDsByName implements store.Rotations.
func (s *Store) DomainIDsByName(ctx context.Context, name string) ([]store.Due, error) {
	rows, err := s.db.Read().Query(ctx, `SELECT id, project_id FROM domains WHERE name = $1 ORDER BY id`, name)
	if err != nil {
		return nil, s.errorf("domains named %s: %w", name, err)
	}
	out, err := Collect(rows, ScanDue)
	if err != nil {
		return nil, s.errorf("domains named %s: %w", name, err)
	}
	return out, nil
}
