package sqlstore

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/domaind/domaind/internal/domain"
)

// The row format of both databases: times as Unix milliseconds with 0 for
// unset, a record's found values, problems and propagation as one JSON text
// (its state, kept in its domain's checks: see checks.go), its name relative
// to the domain's, and the domain columns in one order.

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

// stateOf is what a check found of a record (its found values, problems and
// propagation) as its entry in the checks column keeps it: nil when there is
// nothing, else a value equal to the record's expected value is null, and a
// server's value equal to a found value is that value's index. A verified DKIM
// record seen by four servers so keeps its 400-character key once, as the
// expected value, rather than five more times.
func stateOf(r *domain.Record) *recordState {
	if len(r.Found) == 0 && len(r.Problems) == 0 && len(r.Propagation) == 0 {
		return nil
	}
	st := &recordState{Problems: r.Problems}
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
	return st
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

// recordState is the JSON of what a check found of a record (see stateOf);
// before migration 00015 it was the record row's state column.
type recordState struct {
	Found       []any            `json:"f,omitempty"`
	Problems    []domain.Problem `json:"p,omitempty"`
	Propagation []sighting       `json:"g,omitempty"`
}

// sighting is a domain.Sighting as a recordState keeps it. Rows that
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

// apply is the inverse of stateOf, into r, whose Value must be set.
func (st *recordState) apply(r *domain.Record) error {
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

// dkimKeyPrefix starts the DKIM key records that storedValue keeps as bytes.
const dkimKeyPrefix = domain.DKIMRSAPrefix

// storedValue is how a record's value is kept where the dialect keeps bytes
// in the value column (binary): a DKIM key record "v=DKIM1; k=rsa; p=<base64>"
// whose base64 has no padding (a key of a multiple of three bytes, as every
// RSA key domaind makes: 294 bytes for 2,048 bits) is kept as the key's bytes,
// 294 bytes rather than 410 characters; any other value as it is. Migration
// 00011 makes the same choice in SQL, which is why the padding is left out.
func storedValue(v string, binary bool) any {
	b64, ok := strings.CutPrefix(v, dkimKeyPrefix)
	if !binary || !ok || b64 == "" || len(b64)%4 != 0 || strings.ContainsRune(b64, '=') {
		return v
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	// The decoder skips line breaks, which valueOf would not give back (nor
	// does the migration's SQL take them): bytes only for what they restore.
	if err != nil || base64.StdEncoding.EncodeToString(key) != b64 {
		return v
	}
	return key
}

// ValueText is a stored record value as text (valueOf), for the SQL function
// migration 00011's Down calls where SQLite keeps a value as bytes.
func ValueText(v any) (string, error) { return valueOf(v) }

// valueOf is the inverse of storedValue, for a value as the driver scanned it.
func valueOf(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case []byte:
		return dkimKeyPrefix + base64.StdEncoding.EncodeToString(v), nil
	case nil:
		return "", nil
	}
	return "", fmt.Errorf("store: value of type %T", v)
}

// storedStatus is how a record's status is kept: "" for unchecked, the status
// of every record not yet checked, else the status itself.
func storedStatus(s domain.CheckStatus) string {
	if s == domain.CheckUnchecked {
		return ""
	}
	return string(s)
}

// statusOf is the inverse of storedStatus.
func statusOf(stored string) domain.CheckStatus {
	if stored == "" {
		return domain.CheckUnchecked
	}
	return domain.CheckStatus(stored)
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

// domainColumns are the domains table's columns, as the alias d, that a
// domainRow reads, in its order.
const domainColumns = `d.id, d.project_id, d.name, d.region, d.status, d.ownership_verified, d.dkim_enabled,
	d.mail_from_enabled, d.dmarc_enabled, d.created_at, d.last_checked_at, d.verified_at,
	d.inbound_enabled_at, d.inbound_verified_at, d.next_check_at, d.check_attempt, d.window_started_at, d.failed_at,
	d.check_until, d.version, d.checks`

// domainRow is where a row selected with domainColumns is scanned to.
type domainRow struct {
	d      domain.Domain
	status string
	times  [9]int64
	// checks is the checks column's text, for applyChecks once the domain's
	// records are read.
	checks string
}

// dest returns the scan destinations of domainColumns, in its order.
func (x *domainRow) dest() []any {
	d, t := &x.d, &x.times
	return []any{&d.ID, &d.ProjectID, &d.Name, &d.Region, &x.status, &d.OwnershipVerified,
		&d.DKIMEnabled, &d.MailFromEnabled, &d.DMARCEnabled, &t[0], &t[1], &t[2],
		&t[3], &t[4], &t[5], &d.CheckAttempt, &t[6], &t[7], &t[8], &d.Version, &x.checks}
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

// loaded is a domain as scanned, before its records are read.
type loaded struct {
	d      *domain.Domain
	checks string
}

// scanDomain reads a domain row selected with domainColumns; its records are
// left for the caller to load, and then the checks to apply.
func scanDomain(sc Row) (loaded, error) {
	var x domainRow
	if err := sc.Scan(x.dest()...); err != nil {
		return loaded{}, err
	}
	return loaded{x.domain(), x.checks}, nil
}

// recordColumns are the domain_records table's columns, as the alias r, that a
// recordRow reads, in its order. What checks found of the record is not among
// them: it is the domain's (see applyChecks).
const recordColumns = `r.key, r.name, r.type, r.value, r.priority, r.created_at, r.updated_at`

// recordRow is where a row selected with recordColumns is scanned to.
type recordRow struct {
	r                domain.Record
	key, name        string
	value            any
	priority         int32
	created, updated int64
}

// dest returns the scan destinations of recordColumns, in its order.
func (x *recordRow) dest() []any {
	r := &x.r
	return []any{&x.key, &x.name, &r.Type, &x.value, &x.priority, &x.created, &x.updated}
}

// record returns the record scanned, of the domain d, as never checked. Its
// purpose is not stored: it follows from its key, type and value. Its creation
// is kept as the milliseconds after d's, and its last change as those after
// its creation (see insertRecord).
func (x *recordRow) record(d *domain.Domain) (domain.Record, error) {
	r := x.r
	v, err := valueOf(x.value)
	if err != nil {
		return domain.Record{}, err
	}
	r.Key, r.Status, r.Priority, r.Value = domain.RecordKey(x.key), domain.CheckUnchecked, uint16(x.priority), v
	r.Name, r.Purpose = fullName(x.name, d.Name), domain.PurposeOf(r.Key, r.Type, r.Value)
	created := millis(d.CreatedAt) + x.created
	r.CreatedAt, r.UpdatedAt = fromMillis(created), fromMillis(created+x.updated)
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
