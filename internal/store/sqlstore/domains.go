package sqlstore

import (
	"context"
	"database/sql"
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

// CreateDomain implements store.Store.
func (s *Store) CreateDomain(ctx context.Context, d *domain.Domain, sealedKey []byte) error {
	return s.db.Tx(ctx, func(tx Querier) error {
		return s.createDomain(ctx, tx, d, sealedKey)
	})
}

// CreateDomainRotating implements store.Rotations.
func (s *Store) CreateDomainRotating(ctx context.Context, d *domain.Domain, sealedKey []byte, r store.Rotation) error {
	return s.db.Tx(ctx, func(tx Querier) error {
		if err := s.createDomain(ctx, tx, d, sealedKey); err != nil {
			return err
		}
		return s.createRotation(ctx, tx, r)
	})
}

func (s *Store) createDomain(ctx context.Context, tx Querier, d *domain.Domain, sealedKey []byte) error {
	_, checks, err := s.storedChecks(d)
	if err != nil {
		return err
	}
	// A second replica inserting the same (project, name) waits on the unique
	// index until the first commits, and then fails with unique_violation.
	_, err = tx.Exec(ctx, `INSERT INTO domains (id, project_id, name, region, status,
		ownership_verified, dkim_enabled, mail_from_enabled, dmarc_enabled, dkim_private_key,
		created_at, last_checked_at, verified_at, inbound_enabled_at, inbound_verified_at,
		next_check_at, check_attempt, window_started_at, failed_at, checks)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)`,
		d.ID, d.ProjectID, d.Name, d.Region, string(d.Status),
		d.OwnershipVerified, d.DKIMEnabled, d.MailFromEnabled, d.DMARCEnabled, sealedKey,
		millis(d.CreatedAt), millis(d.LastCheckedAt), millis(d.VerifiedAt), millis(d.InboundEnabledAt), millis(d.InboundVerifiedAt),
		millis(d.NextCheckAt), d.CheckAttempt, millis(d.WindowStartedAt), millis(d.FailedAt), checks)
	if s.d.IsUniqueViolation(err) {
		return store.ErrDomainExists
	}
	if err != nil {
		return s.errorf("create domain: %w", err)
	}
	for i := range d.Records {
		if err := s.insertRecord(ctx, tx, d.ID, d.Name, i, &d.Records[i]); err != nil {
			return err
		}
	}
	return nil
}

// domainSeq is the seq of the domain whose id is the argument $n: records
// refer to their domain by it.
func domainSeq(n int) string {
	return `(SELECT seq FROM domains WHERE id = $` + strconv.Itoa(n) + `)`
}

// updatedAt is the value of a record's updated_at column for the time $t, of
// the domain whose id is $id: the milliseconds after the record's creation,
// itself kept as those after the domain's.
func updatedAt(t, id int) string { return updatedAtOf(`$`+strconv.Itoa(t), id) }

// updatedAtOf is updatedAt for the time the SQL expression t gives.
func updatedAtOf(t string, id int) string {
	return t + ` - created_at - (SELECT created_at FROM domains WHERE id = $` + strconv.Itoa(id) + `)`
}

// value is how the value v is kept in the value column (see storedValue).
func (s *Store) value(v string) any { return storedValue(v, s.d.BinaryValues()) }

// insertRecord inserts the record r of a domain. What a check found of it is
// the domain's checks column's, which the caller writes.
func (s *Store) insertRecord(ctx context.Context, tx Querier, domainID, domainName string, pos int, r *domain.Record) error {
	// The purpose is not stored: it follows from the key. The record refers
	// to its domain by the domain's seq; its creation is kept as the
	// milliseconds after the domain's, and its last change as those after its
	// creation, both 0 for a record made with its domain and not changed since.
	_, err := tx.Exec(ctx, `INSERT INTO domain_records (domain_seq, key, position, name, type, value,
		priority, created_at, updated_at)
		VALUES (`+domainSeq(1)+`, $2, $3, $4, $5, $6, $7, $8 - (SELECT created_at FROM domains WHERE id = $1), $9)`,
		domainID, string(r.Key), pos, storedName(r.Name, domainName), r.Type, s.value(r.Value), int(r.Priority),
		millis(r.CreatedAt), millis(r.UpdatedAt)-millis(r.CreatedAt))
	if err != nil {
		return s.errorf("insert record %s: %w", r.Key, err)
	}
	return nil
}

// DomainSQL reads a domain and its records in one statement, which sees one
// snapshot however the domain is being saved, with no transaction around it.
const DomainSQL = `SELECT ` + domainColumns + `, ` + recordColumns + `
	FROM domains d JOIN domain_records r ON r.domain_seq = d.seq
	WHERE d.id = $1 AND d.project_id = $2 ORDER BY r.position`

// Domain implements store.Store.
func (s *Store) Domain(ctx context.Context, projectID int64, id string) (*domain.Domain, error) {
	rows, err := s.db.Read().Query(ctx, DomainSQL, id, projectID)
	if err != nil {
		return nil, s.errorf("domain %s: %w", id, err)
	}
	defer rows.Close()
	var (
		dr domainRow
		rr recordRow
		d  *domain.Domain
	)
	dest := append(dr.dest(), rr.dest()...)
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, s.errorf("domain %s: %w", id, err)
		}
		if d == nil {
			d = dr.domain()
			d.Records = make([]domain.Record, 0, len(domain.SendingKeys)+1)
		}
		r, err := rr.record(d)
		if err != nil {
			return nil, s.errorf("domain %s: %w", id, err)
		}
		d.Records = append(d.Records, r)
	}
	if err := rows.Err(); err != nil {
		return nil, s.errorf("domain %s: %w", id, err)
	}
	checks := dr.checks
	if d == nil {
		// No row: no such domain, or (never through the service, which stores
		// every domain with its records) one without records.
		l, err := scanDomain(s.db.Read().QueryRow(ctx,
			`SELECT `+domainColumns+` FROM domains d WHERE d.id = $1 AND d.project_id = $2`, id, projectID))
		if errors.Is(err, sql.ErrNoRows) {
			return nil, store.ErrNotFound
		}
		if err != nil {
			return nil, s.errorf("domain %s: %w", id, err)
		}
		d, checks = l.d, l.checks
	}
	if err := s.applyStoredChecks(d, checks); err != nil {
		return nil, s.errorf("domain %s: %w", id, err)
	}
	return d, nil
}

// DomainsByID implements store.Store. The domains are read in one snapshot,
// with one query for the domains and one for their records per as many as the
// dialect's In takes: a scheduler reads a claimed batch so for less than a
// point read (Domain) of each.
func (s *Store) DomainsByID(ctx context.Context, ids []string) ([]*domain.Domain, error) {
	// Each domain once, however often it is asked for (loadRecords keys the
	// domains by id).
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	if len(ids) == 0 {
		return nil, nil
	}
	var ds []loaded
	err := s.db.Snapshot(ctx, func(tx Querier) error {
		ds = ds[:0]
		for _, part := range chunks(ids, s.d.MaxIn()) {
			in, args := s.d.In("d.id", 1, part)
			rows, err := tx.Query(ctx, `SELECT `+domainColumns+` FROM domains d WHERE `+in, args...)
			if err != nil {
				return s.errorf("domains by id: %w", err)
			}
			got, err := Collect(rows, scanDomain)
			if err != nil {
				return s.errorf("domains by id: %w", err)
			}
			ds = append(ds, got...)
		}
		return s.loadRecords(ctx, tx, ds)
	})
	if err != nil {
		return nil, err
	}
	return domainsOf(ds), nil
}

// Domains implements store.Store.
func (s *Store) Domains(ctx context.Context, projectID int64, p store.Page) ([]*domain.Domain, int, error) {
	var (
		ds    []loaded
		total int
	)
	err := s.db.Snapshot(ctx, func(tx Querier) error {
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM domains WHERE project_id = $1`, projectID).Scan(&total); err != nil {
			return s.errorf("count domains: %w", err)
		}
		query, args := `SELECT `+domainColumns+` FROM domains d WHERE project_id = $1
			ORDER BY created_at, id LIMIT $2 OFFSET $3`, []any{projectID, s.limitOf(p), max(p.Offset, 0)}
		if a := p.After; a != nil {
			// Keyset pagination ignores Offset. The row comparison is the order of
			// the list, and of the index domains_project_created.
			query = `SELECT ` + domainColumns + ` FROM domains d WHERE project_id = $1
				AND (created_at, id) > ($2, $3) ORDER BY created_at, id LIMIT $4`
			args = []any{projectID, millis(a.CreatedAt), a.ID, s.limitOf(p)}
		}
		rows, err := tx.Query(ctx, query, args...)
		if err != nil {
			return s.errorf("list domains: %w", err)
		}
		if ds, err = Collect(rows, scanDomain); err != nil {
			return s.errorf("list domains: %w", err)
		}
		return s.loadRecords(ctx, tx, ds)
	})
	if err != nil {
		return nil, 0, err
	}
	return domainsOf(ds), total, nil
}

// domainsOf is the domains of ds.
func domainsOf(ds []loaded) []*domain.Domain {
	out := make([]*domain.Domain, len(ds))
	for i, l := range ds {
		out[i] = l.d
	}
	return out
}

// loadRecords fills in the records of ds, with one query per as many domains as
// the dialect's In takes, and applies their checks.
func (s *Store) loadRecords(ctx context.Context, q Querier, ds []loaded) error {
	if len(ds) == 0 {
		return nil
	}
	byID := make(map[string]*domain.Domain, len(ds))
	ids := make([]string, len(ds))
	for i, l := range ds {
		l.d.Records = make([]domain.Record, 0, len(domain.SendingKeys)+1)
		byID[l.d.ID] = l.d
		ids[i] = l.d.ID
	}
	for _, part := range chunks(ids, s.d.MaxIn()) {
		in, args := s.d.In("d.id", 1, part)
		rows, err := q.Query(ctx, `SELECT d.id, `+recordColumns+`
			FROM domains d JOIN domain_records r ON r.domain_seq = d.seq WHERE `+in+`
			ORDER BY r.domain_seq, r.position`, args...)
		if err != nil {
			return s.errorf("records: %w", err)
		}
		var (
			id string
			rr recordRow
		)
		dest := append([]any{&id}, rr.dest()...)
		_, err = Collect(rows, func(row Row) (struct{}, error) {
			if err := row.Scan(dest...); err != nil {
				return struct{}{}, err
			}
			d := byID[id]
			r, err := rr.record(d)
			if err != nil {
				return struct{}{}, fmt.Errorf("domain %s: %w", id, err)
			}
			d.Records = append(d.Records, r)
			return struct{}{}, nil
		})
		if err != nil {
			return s.errorf("records: %w", err)
		}
	}
	for _, l := range ds {
		if err := s.applyStoredChecks(l.d, l.checks); err != nil {
			return s.errorf("domain %s: %w", l.d.ID, err)
		}
	}
	return nil
}

// DeleteDomain implements store.Store.
func (s *Store) DeleteDomain(ctx context.Context, projectID int64, id string) error {
	// One statement: records and events go with the domain through ON DELETE
	// CASCADE, and the DKIM key is a column of the domain row.
	return s.db.Write(ctx, func(q Querier) error {
		n, err := q.Exec(ctx, `DELETE FROM domains WHERE id = $1 AND project_id = $2`, id, projectID)
		if err != nil {
			return s.errorf("delete domain %s: %w", id, err)
		}
		if n == 0 {
			return store.ErrNotFound
		}
		return nil
	})
}

// SaveCheck implements store.Store.
//
// Checks that finish together are saved together, in one group commit (see
// group); each is still whole or not at all, and a failed one fails alone.
func (s *Store) SaveCheck(ctx context.Context, d *domain.Domain, events []store.Event) error {
	return s.saveCheck(ctx, d, events, "", anyVersion)
}

// anyVersion is the version saveCheck is given when it may save over any.
const anyVersion = -1

// FinishCheck implements store.Store.
func (s *Store) FinishCheck(ctx context.Context, d *domain.Domain, events []store.Event, owner string) error {
	if owner == "" {
		return errors.New("finish check: no lease owner")
	}
	if err := s.saveCheck(ctx, d, events, owner, d.Version); err != nil {
		return err
	}
	d.Version++
	return nil
}

// saveCheck saves a check and, when owner is not empty, ends owner's lease on
// checking the domain in the same statement (as ReleaseCheck does). It saves
// only over the domain's version version, unless that is anyVersion.
func (s *Store) saveCheck(ctx context.Context, d *domain.Domain, events []store.Event, owner string, version int64) error {
	// What does not depend on the database (the records' checks, the events'
	// packed group) is made here, by the checks that finish in parallel,
	// rather than in the transaction, which the one writer runs for a whole
	// group of checks in turn, and may run up to three times (see group).
	cs, checks, err := s.storedChecks(d)
	if err != nil {
		return err
	}
	groups, err := s.eventGroups(events)
	if err != nil {
		return err
	}
	return s.writes.do(ctx, d.ID, func(ctx context.Context, tx Querier) error {
		// The update locks the domain row first, so two replicas saving checks of
		// one domain take turns, and a concurrent delete waits for this one.
		// It counts the events the save adds, and returns how many the domain
		// holds (see store.MaxDomainEvents). It writes the records' checks
		// whole over the version d was read at, whose records are the ones
		// judged; over another (a save over any version), mergeChecks does.
		var eventRows, saved int64
		err := tx.QueryRow(ctx, `UPDATE domains SET status = $1, ownership_verified = $2,
			dkim_enabled = $3, mail_from_enabled = $4, dmarc_enabled = $5, last_checked_at = $6,
			verified_at = $7, inbound_verified_at = $8, next_check_at = $9, check_attempt = $10,
			window_started_at = $11, failed_at = $12,
			check_until = CASE WHEN check_owner = $14 AND $14 <> '' THEN 0 ELSE check_until END,
			checks = CASE WHEN version = CAST($17 AS BIGINT) THEN $18 ELSE checks END,
			version = version + 1, event_rows = event_rows + CAST($16 AS BIGINT)
			WHERE id = $13 AND (CAST($15 AS BIGINT) = -1 OR version = CAST($15 AS BIGINT))
			RETURNING event_rows, version`,
			string(d.Status), d.OwnershipVerified, d.DKIMEnabled, d.MailFromEnabled, d.DMARCEnabled,
			millis(d.LastCheckedAt), millis(d.VerifiedAt), millis(d.InboundVerifiedAt), millis(d.NextCheckAt), d.CheckAttempt,
			millis(d.WindowStartedAt), millis(d.FailedAt), d.ID, owner, version, len(events), d.Version, checks).Scan(&eventRows, &saved)
		if errors.Is(err, sql.ErrNoRows) {
			return s.unsaved(ctx, tx, d, version)
		}
		if err != nil {
			return s.errorf("save check %s: %w", d.ID, err)
		}
		if saved != d.Version+1 {
			if err := s.mergeSaved(ctx, tx, d.ID, cs); err != nil {
				return err
			}
		}
		if err := s.insertPackedEvents(ctx, tx, events, groups); err != nil {
			return err
		}
		return s.pruneEvents(ctx, tx, d.ID, eventRows)
	})
}

// mergeSaved saves the records' checks cs over what the domain id holds, in
// tx, which has locked its row: a rotation may have moved records since they
// were read, and marked one verified after the check (see mergeChecks).
func (s *Store) mergeSaved(ctx context.Context, tx Querier, id string, cs []recordCheck) error {
	return s.editChecks(ctx, tx, id, func(stored []recordCheck, current []recordPrint) []recordCheck {
		return mergeChecks(cs, stored, current)
	})
}

// editChecks rewrites the checks column of the domain id, in tx, which has
// locked its row, with what edit makes of the entries stored and the
// fingerprints of the domain's records, in their order.
func (s *Store) editChecks(ctx context.Context, tx Querier, id string, edit func(stored []recordCheck, current []recordPrint) []recordCheck) error {
	var text string
	if err := tx.QueryRow(ctx, `SELECT checks FROM domains WHERE id = $1`, id).Scan(&text); err != nil {
		return s.errorf("checks of %s: %w", id, err)
	}
	stored, err := s.readChecks(text)
	if err != nil {
		return s.errorf("checks of %s: %w", id, err)
	}
	rows, err := tx.Query(ctx, `SELECT key, name, type, value FROM domain_records
		WHERE domain_seq = `+domainSeq(1)+` ORDER BY position`, id)
	if err != nil {
		return s.errorf("checks of %s: %w", id, err)
	}
	current, err := Collect(rows, func(r Row) (recordPrint, error) {
		var key, name, typ string
		var value any
		if err := r.Scan(&key, &name, &typ, &value); err != nil {
			return recordPrint{}, err
		}
		v, err := valueOf(value)
		return recordPrint{domain.RecordKey(key), Fingerprint(name, typ, v)}, err
	})
	if err != nil {
		return s.errorf("checks of %s: %w", id, err)
	}
	edited, err := encodeChecks(edit(stored, current))
	if err != nil {
		return err
	}
	arg, err := s.checksArg(edited)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE domains SET checks = $1 WHERE id = $2`, arg, id); err != nil {
		return s.errorf("checks of %s: %w", id, err)
	}
	return nil
}

// renewChecks rewrites the checks of the domain id, in tx, which has locked
// its row, for its record under key made anew (a new next key, a revoked
// previous one, an inbound MX added again): nothing kept of a record of the
// same name and value before holds of it, and c, if not nil, is its check.
// What was kept of records gone goes with them.
func (s *Store) renewChecks(ctx context.Context, tx Querier, id string, key domain.RecordKey, c *recordCheck) error {
	return s.editChecks(ctx, tx, id, func(stored []recordCheck, current []recordPrint) []recordCheck {
		current = slices.DeleteFunc(current, func(p recordPrint) bool { return p.Key == key })
		out := mergeChecks(nil, stored, current)
		if c != nil {
			out = append(out, *c)
		}
		return out
	})
}

// unsaved tells why a save of the domain d over its version changed no row:
// the domain is gone (deleted meanwhile, or not of d's project), or it is at
// another version than d was read at.
func (s *Store) unsaved(ctx context.Context, tx Querier, d *domain.Domain, version int64) error {
	if version == anyVersion {
		return store.ErrNotFound
	}
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM domains WHERE id = $1 AND project_id = $2`, d.ID, d.ProjectID).Scan(&n); err != nil {
		return s.errorf("save %s: %w", d.ID, err)
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return store.ErrChanged
}

// bumpVersion marks the domain id as changed for the checks that read it
// before (see store.ErrChanged). A transaction calls it before it writes the
// domain's records or rotation: every write locks the domain row first, and a
// write that locked them in the other order could deadlock with another on
// PostgreSQL.
func bumpVersion(ctx context.Context, tx Querier, id string) error {
	_, err := tx.Exec(ctx, `UPDATE domains SET version = version + 1 WHERE id = $1`, id)
	return err
}

// SaveInbound implements store.Inbound.
func (s *Store) SaveInbound(ctx context.Context, d *domain.Domain) error {
	err := s.db.Tx(ctx, func(tx Querier) error {
		// The domain row first, as a check's save locks it (see bumpVersion).
		n, err := tx.Exec(ctx, `UPDATE domains SET inbound_enabled_at = $1, inbound_verified_at = $2,
			next_check_at = $3, check_attempt = $4, version = version + 1
			WHERE id = $5 AND project_id = $6 AND version = CAST($7 AS BIGINT)`,
			millis(d.InboundEnabledAt), millis(d.InboundVerifiedAt), millis(d.NextCheckAt), d.CheckAttempt, d.ID, d.ProjectID, d.Version)
		if err != nil {
			return s.errorf("save inbound %s: %w", d.ID, err)
		}
		if n == 0 {
			return s.unsaved(ctx, tx, d, d.Version)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM domain_records WHERE domain_seq = `+domainSeq(1)+` AND key = $2`,
			d.ID, string(domain.KeyInboundMX)); err != nil {
			return s.errorf("save inbound %s: %w", d.ID, err)
		}
		// The record's check, if d has one, replaces any kept of an earlier
		// record of the same name and value: a record removed and added again
		// starts as d says.
		var inbound *recordCheck
		for i := range d.Records {
			r := &d.Records[i]
			if r.Key != domain.KeyInboundMX {
				continue
			}
			if err := s.insertRecord(ctx, tx, d.ID, d.Name, i, r); err != nil {
				return err
			}
			if checked(r) {
				c := checkOf(d, r)
				inbound = &c
			}
		}
		return s.renewChecks(ctx, tx, d.ID, domain.KeyInboundMX, inbound)
	})
	if err == nil {
		d.Version++
	}
	return err
}

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
	var out []store.Due
	err := s.db.Write(ctx, func(q Querier) error {
		var err error
		if out, err = s.d.ClaimChecks(ctx, q, millis(now.Add(lease)), millis(now), perProject, counts, limit); err != nil {
			return s.errorf("claim due: %w", err)
		}
		return nil
	})
	return out, err
}

// ScanDue reads a claimed domain: its id and its project's.
func ScanDue(r Row) (store.Due, error) {
	var d store.Due
	err := r.Scan(&d.ID, &d.ProjectID)
	return d, err
}

// ScanString reads a row of one text column, for Collect.
func ScanString(r Row) (string, error) {
	var s string
	err := r.Scan(&s)
	return s, err
}

// OldestDue implements store.Store.
func (s *Store) OldestDue(ctx context.Context) (time.Time, error) {
	var v int64
	if err := s.db.Read().QueryRow(ctx, `SELECT coalesce(min(next_check_at), 0) FROM domains WHERE next_check_at > 0`).Scan(&v); err != nil {
		return time.Time{}, s.errorf("oldest due: %w", err)
	}
	return fromMillis(v), nil
}

// AcquireCheck implements store.Store.
func (s *Store) AcquireCheck(ctx context.Context, id, owner string, now time.Time, lease time.Duration) (bool, error) {
	var n int64
	err := s.checkWrite(ctx, id, func(ctx context.Context, q Querier) error {
		var err error
		n, err = q.Exec(ctx, `UPDATE domains SET check_owner = $1, check_until = $2
			WHERE id = $3 AND (check_until <= $4 OR check_owner = $1)`, owner, millis(now.Add(lease)), id, millis(now))
		if err != nil {
			return s.errorf("acquire check %s: %w", id, err)
		}
		return nil
	})
	return n == 1, err
}

// AcquireChecks implements store.Store.
func (s *Store) AcquireChecks(ctx context.Context, ids []string, owner string, now time.Time, lease time.Duration) ([]string, error) {
	if owner == "" {
		return nil, errors.New("acquire checks: no lease owner")
	}
	var out []string
	for _, part := range chunks(ids, s.d.MaxIn()) {
		if len(part) == 0 {
			continue
		}
		in, args := s.d.In("id", 4, part)
		err := s.db.Write(ctx, func(q Querier) error {
			// The rows are locked in the order of their ids, as a group commit
			// locks them, so that the two never wait for each other in a cycle.
			rows, err := q.Query(ctx, `UPDATE domains SET check_owner = $1, check_until = $2
				WHERE id IN (SELECT id FROM domains WHERE `+in+` ORDER BY id`+s.lock("FOR UPDATE")+`)
				AND (check_until <= $3 OR check_owner = $1) RETURNING id`,
				append([]any{owner, millis(now.Add(lease)), millis(now)}, args...)...)
			if err != nil {
				return err
			}
			got, err := Collect(rows, ScanString)
			out = append(out, got...)
			return err
		})
		if err != nil {
			return out, s.errorf("acquire checks: %w", err)
		}
	}
	return out, nil
}

// checkWrite runs a check's one-statement write (its lease). Where write
// transactions exclude each other whole (SQLite), it joins the group commit of
// the checks' saves, which would otherwise queue behind each other for the one
// writer; where they do not (PostgreSQL), the statement runs on its own, as a
// transaction of its own, beside the others.
func (s *Store) checkWrite(ctx context.Context, id string, fn func(context.Context, Querier) error) error {
	if s.d.LocksRows() {
		return s.db.Write(ctx, func(q Querier) error { return fn(ctx, q) })
	}
	return s.writes.do(ctx, id, fn)
}

// ReleaseCheck implements store.Store.
func (s *Store) ReleaseCheck(ctx context.Context, id, owner string) error {
	return s.checkWrite(ctx, id, func(ctx context.Context, q Querier) error {
		if _, err := q.Exec(ctx, `UPDATE domains SET check_until = 0 WHERE id = $1 AND check_owner = $2`, id, owner); err != nil {
			return s.errorf("release check %s: %w", id, err)
		}
		return nil
	})
}

// SealedDKIMKey implements store.Store.
func (s *Store) SealedDKIMKey(ctx context.Context, id string) ([]byte, error) {
	var key []byte
	err := s.db.Read().QueryRow(ctx, `SELECT dkim_private_key FROM domains WHERE id = $1`, id).Scan(&key)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, s.errorf("dkim key %s: %w", id, err)
	}
	return key, nil
}

// signingKeysQuery selects the rows of SigningKeys: the domains' dkim records
// with the domains' checks, which say whether each signs (signs). In cname mode
// the verified record is the customer's CNAME, so the key it leads to must
// also have been seen in the operator's zone (current_visible_at) before
// anything is signed with it.
const signingKeysQuery = `SELECT d.id, d.project_id, d.name, r.name, r.type, r.value, d.dkim_private_key, d.checks
	FROM domains d JOIN domain_records r ON r.domain_seq = d.seq AND r.key = 'dkim'
	WHERE d.checks <> '' AND NOT EXISTS (SELECT 1 FROM dkim_rotations k
		WHERE k.domain_seq = d.seq AND k.mode = 'cname' AND k.current_visible_at = 0)`

// signs reports whether a DKIM record whose check is c signs: while its last
// definite check verified it (no failure since). A record that is being lost
// stops being signed with at the first failed look, even while the hysteresis
// of --degrade-after keeps dkimEnabled on.
func signs(c recordCheck) bool { return c.Verified && c.Failures == 0 }

// SigningKeys implements store.Store.
func (s *Store) SigningKeys(ctx context.Context, names []string) ([]store.SigningKey, error) {
	q, args := signingKeysQuery, []any{}
	if names != nil {
		if len(names) == 0 {
			return nil, nil
		}
		// One statement, however many names.
		in, inArgs := s.d.In("d.name", 1, names)
		q, args = q+` AND `+in, inArgs
	}
	rows, err := s.db.Read().Query(ctx, q, args...)
	if err != nil {
		return nil, s.errorf("signing keys: %w", err)
	}
	// The selector is the DKIM record's name less "._domainkey.<domain>".
	type row struct {
		key   store.SigningKey
		signs bool
	}
	got, err := Collect(rows, func(r Row) (row, error) {
		var k store.SigningKey
		var recName, typ, checks string
		var value any
		if err := r.Scan(&k.DomainID, &k.ProjectID, &k.Domain, &recName, &typ, &value, &k.Sealed, &checks); err != nil {
			return row{}, err
		}
		v, err := valueOf(value)
		if err != nil {
			return row{}, err
		}
		cs, err := s.readChecks(checks)
		if err != nil {
			return row{}, err
		}
		i := checkIndex(cs, Fingerprint(recName, typ, v))
		if i < 0 || !signs(cs[i]) {
			return row{}, nil
		}
		k.Selector = strings.TrimSuffix(fullName(recName, k.Domain), "._domainkey."+k.Domain)
		k.CheckedAt = fromMillis(cs[i].CheckedAt)
		return row{k, true}, nil
	})
	if err != nil {
		return nil, s.errorf("signing keys: %w", err)
	}
	var keys []store.SigningKey
	for _, r := range got {
		if r.signs {
			keys = append(keys, r.key)
		}
	}
	// By name, the most recently checked first.
	slices.SortFunc(keys, func(a, b store.SigningKey) int {
		if c := strings.Compare(a.Domain, b.Domain); c != 0 {
			return c
		}
		if c := b.CheckedAt.Compare(a.CheckedAt); c != 0 {
			return c
		}
		return strings.Compare(a.DomainID, b.DomainID)
	})
	return keys, nil
}
