package sqlstore

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/domaind/domaind/internal/domain"
)

// The row format of both databases: times as Unix milliseconds with 0 for
// unset, a record's found values, problems and propagation as JSON text, and the
// domain columns in one order.

// millis converts a time to the stored Unix milliseconds; the zero time is 0.
func millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// fromMillis is the inverse of millis: UTC, and the zero time for 0.
func fromMillis(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

// encodeRecordState encodes a record's found values, problems and propagation as
// the JSON text the stores keep; empty lists are stored as [] rather than null.
func encodeRecordState(r *domain.Record) (found, problems, propagation string, err error) {
	f, err := json.Marshal(nonNil(r.Found))
	if err != nil {
		return "", "", "", fmt.Errorf("store: record %s: %w", r.Key, err)
	}
	p, err := json.Marshal(nonNil(r.Problems))
	if err != nil {
		return "", "", "", fmt.Errorf("store: record %s: %w", r.Key, err)
	}
	g, err := json.Marshal(nonNil(r.Propagation))
	if err != nil {
		return "", "", "", fmt.Errorf("store: record %s: %w", r.Key, err)
	}
	return string(f), string(p), string(g), nil
}

// decodeRecordState is the inverse of encodeRecordState, into r.
func decodeRecordState(r *domain.Record, found, problems, propagation string) error {
	if err := decodeList(&r.Found, found); err != nil {
		return fmt.Errorf("store: record %s found: %w", r.Key, err)
	}
	if err := decodeList(&r.Problems, problems); err != nil {
		return fmt.Errorf("store: record %s problems: %w", r.Key, err)
	}
	if err := decodeList(&r.Propagation, propagation); err != nil {
		return fmt.Errorf("store: record %s propagation: %w", r.Key, err)
	}
	return nil
}

// decodeList decodes the JSON list text into dst. The empty list, which every
// record of a domain never checked holds, is common enough on the read path
// to be spared encoding/json; it decodes as json.Unmarshal would, to an empty
// list that is not nil.
func decodeList[T any](dst *[]T, text string) error {
	if text == "[]" {
		*dst = []T{}
		return nil
	}
	return json.Unmarshal([]byte(text), dst)
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// domainColumns are the domains table's columns, as the alias d, that a
// domainRow reads, in its order.
const domainColumns = `d.id, d.project_id, d.name, d.region, d.status, d.ownership_verified, d.dkim_enabled,
	d.mail_from_enabled, d.dmarc_enabled, d.created_at, d.last_checked_at, d.verified_at,
	d.inbound_enabled_at, d.inbound_verified_at, d.next_check_at, d.check_attempt, d.window_started_at, d.failed_at,
	d.check_until`

// domainRow is where a row selected with domainColumns is scanned to.
type domainRow struct {
	d      domain.Domain
	status string
	times  [9]int64
}

// dest returns the scan destinations of domainColumns, in its order.
func (x *domainRow) dest() []any {
	d, t := &x.d, &x.times
	return []any{&d.ID, &d.ProjectID, &d.Name, &d.Region, &x.status, &d.OwnershipVerified,
		&d.DKIMEnabled, &d.MailFromEnabled, &d.DMARCEnabled, &t[0], &t[1], &t[2],
		&t[3], &t[4], &t[5], &d.CheckAttempt, &t[6], &t[7], &t[8]}
}

// domain returns the domain scanned, without its records.
func (x *domainRow) domain() *domain.Domain {
	d, t := x.d, &x.times
	d.Status = domain.Status(x.status)
	d.CreatedAt, d.LastCheckedAt, d.VerifiedAt = fromMillis(t[0]), fromMillis(t[1]), fromMillis(t[2])
	d.InboundEnabledAt, d.InboundVerifiedAt = fromMillis(t[3]), fromMillis(t[4])
	d.NextCheckAt, d.WindowStartedAt, d.FailedAt = fromMillis(t[5]), fromMillis(t[6]), fromMillis(t[7])
	d.CheckingUntil = fromMillis(t[8])
	return &d
}

// scanDomain reads a domain row selected with domainColumns; its records are
// left for the caller to load.
func scanDomain(sc Row) (*domain.Domain, error) {
	var x domainRow
	if err := sc.Scan(x.dest()...); err != nil {
		return nil, err
	}
	return x.domain(), nil
}

// recordColumns are the domain_records table's columns, as the alias r, that a
// recordRow reads, in its order.
const recordColumns = `r.key, r.name, r.type, r.value, r.priority, r.purpose, r.verified, r.status,
	r.found, r.problems, r.propagation, r.failures, r.checked_at, r.created_at, r.updated_at`

// recordRow is where a row selected with recordColumns is scanned to.
type recordRow struct {
	r                            domain.Record
	key, status                  string
	found, problems, propagation string
	priority                     int32
	checked, created, updated    int64
}

// dest returns the scan destinations of recordColumns, in its order.
func (x *recordRow) dest() []any {
	r := &x.r
	return []any{&x.key, &r.Name, &r.Type, &r.Value, &x.priority, &r.Purpose, &r.Verified, &x.status,
		&x.found, &x.problems, &x.propagation, &r.Failures, &x.checked, &x.created, &x.updated}
}

// record returns the record scanned.
func (x *recordRow) record() (domain.Record, error) {
	r := x.r
	r.Key, r.Status, r.Priority = domain.RecordKey(x.key), domain.CheckStatus(x.status), uint16(x.priority)
	r.CheckedAt, r.CreatedAt, r.UpdatedAt = fromMillis(x.checked), fromMillis(x.created), fromMillis(x.updated)
	if err := decodeRecordState(&r, x.found, x.problems, x.propagation); err != nil {
		return domain.Record{}, err
	}
	return r, nil
}

// encodeStrings encodes a list (a webhook's event types) as JSON text, [] for none.
func encodeStrings(s []string) (string, error) {
	b, err := json.Marshal(nonNil(s))
	if err != nil {
		return "", fmt.Errorf("store: encode list: %w", err)
	}
	return string(b), nil
}
