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
	if err := json.Unmarshal([]byte(found), &r.Found); err != nil {
		return fmt.Errorf("store: record %s found: %w", r.Key, err)
	}
	if err := json.Unmarshal([]byte(problems), &r.Problems); err != nil {
		return fmt.Errorf("store: record %s problems: %w", r.Key, err)
	}
	if err := json.Unmarshal([]byte(propagation), &r.Propagation); err != nil {
		return fmt.Errorf("store: record %s propagation: %w", r.Key, err)
	}
	return nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// domainColumns are the domains table's columns scanDomain reads, in its order.
const domainColumns = `id, project_id, name, region, status, ownership_verified, dkim_enabled,
	mail_from_enabled, dmarc_enabled, created_at, last_checked_at, verified_at,
	inbound_enabled_at, inbound_verified_at, next_check_at, check_attempt, window_started_at, failed_at,
	check_until`

// scanDomain reads a domain row selected with domainColumns; its records are
// left for the caller to load.
func scanDomain(sc Row) (*domain.Domain, error) {
	d := new(domain.Domain)
	var status string
	var created, checked, verified, inEnabled, inVerified, next, window, failed, checking int64
	err := sc.Scan(&d.ID, &d.ProjectID, &d.Name, &d.Region, &status, &d.OwnershipVerified,
		&d.DKIMEnabled, &d.MailFromEnabled, &d.DMARCEnabled, &created, &checked, &verified,
		&inEnabled, &inVerified, &next, &d.CheckAttempt, &window, &failed, &checking)
	if err != nil {
		return nil, err
	}
	d.Status = domain.Status(status)
	d.CreatedAt, d.LastCheckedAt, d.VerifiedAt = fromMillis(created), fromMillis(checked), fromMillis(verified)
	d.InboundEnabledAt, d.InboundVerifiedAt = fromMillis(inEnabled), fromMillis(inVerified)
	d.NextCheckAt, d.WindowStartedAt, d.FailedAt = fromMillis(next), fromMillis(window), fromMillis(failed)
	d.CheckingUntil = fromMillis(checking)
	return d, nil
}

// encodeStrings encodes a list (a webhook's event types) as JSON text, [] for none.
func encodeStrings(s []string) (string, error) {
	b, err := json.Marshal(nonNil(s))
	if err != nil {
		return "", fmt.Errorf("store: encode list: %w", err)
	}
	return string(b), nil
}
