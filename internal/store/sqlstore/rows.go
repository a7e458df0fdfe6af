package sqlstore

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/domaind/domaind/internal/domain"
)

// The row format of both databases: times as Unix milliseconds with 0 for
// unset, a record's found values, problems and propagation as one JSON text
// (state), its name relative to the domain's, and the domain columns in one
// order.

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

// encodeRecordState encodes what a check found of a record (its found values,
// problems and propagation) as the one state column keeps it: "" when there is
// nothing, else JSON in which a value equal to the record's expected value is
// null, and a server's value equal to a found value is that value's index. A
// verified DKIM record seen by four servers so keeps its 400-character key once,
// as the expected value, rather than five more times.
func encodeRecordState(r *domain.Record) (string, error) {
	if len(r.Found) == 0 && len(r.Problems) == 0 && len(r.Propagation) == 0 {
		return "", nil
	}
	st := recordState{Problems: r.Problems}
	for _, v := range r.Found {
		st.Found = append(st.Found, ref(v, r.Value, nil))
	}
	for _, g := range r.Propagation {
		sg := sighting{S: g.Server, R: g.Role, Z: g.Zone, T: g.Status, E: g.Error}
		for _, v := range g.Values {
			sg.V = append(sg.V, ref(v, r.Value, r.Found))
		}
		st.Propagation = append(st.Propagation, sg)
	}
	b, err := json.Marshal(st)
	if err != nil {
		return "", fmt.Errorf("store: record %s: %w", r.Key, err)
	}
	return string(b), nil
}

// ref is how a value is kept: nil for the expected value, the index of an equal
// found value, or the value itself.
func ref(v, expected string, found []string) any {
	if v == expected {
		return nil
	}
	for i, f := range found {
		if f == v {
			return i
		}
	}
	return v
}

// recordState is the state column's JSON.
type recordState struct {
	Found       []any            `json:"f,omitempty"`
	Problems    []domain.Problem `json:"p,omitempty"`
	Propagation []sighting       `json:"g,omitempty"`
}

// sighting is a domain.Sighting as the state column keeps it. Rows that
// migration 00009 moved from the columns before it keep domain.Sighting's own
// field names, which are read too.
type sighting struct {
	S string             `json:"s,omitempty"`
	R domain.Role        `json:"r,omitempty"`
	Z string             `json:"z,omitempty"`
	T domain.CheckStatus `json:"t,omitempty"`
	V []any              `json:"v,omitempty"`
	E string             `json:"e,omitempty"`

	Server string             `json:"server,omitempty"`
	Role   domain.Role        `json:"role,omitempty"`
	Zone   string             `json:"zone,omitempty"`
	Status domain.CheckStatus `json:"status,omitempty"`
	Values []any              `json:"values,omitempty"`
	Error  string             `json:"error,omitempty"`
}

// decodeRecordState is the inverse of encodeRecordState, into r, whose Value
// must be set.
func decodeRecordState(r *domain.Record, state string) error {
	if state == "" {
		return nil
	}
	var st recordState
	if err := json.Unmarshal([]byte(state), &st); err != nil {
		return fmt.Errorf("store: record %s state: %w", r.Key, err)
	}
	deref := func(v any, found []string) (string, error) {
		switch v := v.(type) {
		case nil:
			return r.Value, nil
		case string:
			return v, nil
		case float64:
			if i := int(v); float64(i) == v && i >= 0 && i < len(found) {
				return found[i], nil
			}
		}
		return "", fmt.Errorf("store: record %s state: value %v", r.Key, v)
	}
	r.Problems = st.Problems
	for _, v := range st.Found {
		f, err := deref(v, nil)
		if err != nil {
			return err
		}
		r.Found = append(r.Found, f)
	}
	for _, sg := range st.Propagation {
		g := domain.Sighting{Server: sg.S + sg.Server, Role: sg.R + sg.Role, Zone: sg.Z + sg.Zone,
			Status: sg.T + sg.Status, Error: sg.E + sg.Error}
		for _, v := range append(sg.V, sg.Values...) {
			val, err := deref(v, r.Found)
			if err != nil {
				return err
			}
			g.Values = append(g.Values, val)
		}
		r.Propagation = append(r.Propagation, g)
	}
	return nil
}

// storedName is how a record's name is kept: less the domain's name where it
// is under it ("_dmarc." for "_dmarc.example.com", "." for the domain itself),
// else whole. Names never end with a dot otherwise, so the two never meet.
func storedName(name, domainName string) string {
	if name == domainName {
		return "."
	}
	if rest, ok := strings.CutSuffix(name, "."+domainName); ok && rest != "" {
		return rest + "."
	}
	return name
}

// fullName is the inverse of storedName.
func fullName(stored, domainName string) string {
	if stored == "." {
		return domainName
	}
	if strings.HasSuffix(stored, ".") {
		return stored + domainName
	}
	return stored
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
