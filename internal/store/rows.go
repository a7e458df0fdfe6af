package store

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/domaind/domaind/internal/domain"
)

// The row format both SQL stores share: times as Unix milliseconds with 0 for
// unset, a record's found values, problems and propagation as JSON text, and the
// domain columns in one order.

// Millis converts a time to the stored Unix milliseconds; the zero time is 0.
func Millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// FromMillis is the inverse of Millis: UTC, and the zero time for 0.
func FromMillis(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

// EncodeRecordState encodes a record's found values, problems and propagation as
// the JSON text the stores keep; empty lists are stored as [] rather than null.
func EncodeRecordState(r *domain.Record) (found, problems, propagation string, err error) {
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

// DecodeRecordState is the inverse of EncodeRecordState, into r.
func DecodeRecordState(r *domain.Record, found, problems, propagation string) error {
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

// DomainColumns are the domains table's columns ScanDomain reads, in its order.
const DomainColumns = `id, project_id, name, region, status, ownership_verified, dkim_enabled,
	mail_from_enabled, dmarc_enabled, created_at, last_checked_at, verified_at,
	inbound_enabled_at, inbound_verified_at, next_check_at, check_attempt, window_started_at, failed_at,
	check_until`

// Scanner is a row of either store's driver.
type Scanner interface {
	Scan(dest ...any) error
}

// ScanDomain reads a domain row selected with DomainColumns; its records are
// left for the caller to load.
func ScanDomain(sc Scanner) (*domain.Domain, error) {
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
	d.CreatedAt, d.LastCheckedAt, d.VerifiedAt = FromMillis(created), FromMillis(checked), FromMillis(verified)
	d.InboundEnabledAt, d.InboundVerifiedAt = FromMillis(inEnabled), FromMillis(inVerified)
	d.NextCheckAt, d.WindowStartedAt, d.FailedAt = FromMillis(next), FromMillis(window), FromMillis(failed)
	d.CheckingUntil = FromMillis(checking)
	return d, nil
}

// EncodeStrings encodes a list (a webhook's event types) as JSON text, [] for none.
func EncodeStrings(s []string) (string, error) {
	b, err := json.Marshal(nonNil(s))
	if err != nil {
		return "", fmt.Errorf("store: encode list: %w", err)
	}
	return string(b), nil
}
