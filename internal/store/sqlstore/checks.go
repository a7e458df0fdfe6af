package sqlstore

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"

	segjson "github.com/segmentio/encoding/json"

	"github.com/domaind/domaind/internal/domain"
)

// What checks found of a domain's records is kept in one column of the
// domain's row, checks, not in the records' rows: a check then writes the one
// row it writes anyway, where it wrote five more (on SQLite the records'
// update was a tenth of the CPU of a check). The records' rows keep what the
// service made them (name, type, value, priority) and when.
//
// The column is a JSON array of recordCheck, one for each record a check has
// judged, or "" when none has. Each names its record by a fingerprint of what
// was judged (its stored name, type and value), not by its key: a rotation
// moves a record from one key to another (dkim_next becomes dkim) and what
// was found of it follows, while one that puts another value under a key
// (a retirement's revoked key, a new next key) leaves it with no state, read
// as never checked, without touching the column. An entry whose record is
// gone is dropped at the next check's save.

// Where the dialect keeps bytes in a text column (SQLite), the column keeps
// the JSON compressed as the events' payloads are (PayloadCodec), with a
// dictionary of what a domain's checks repeat: a verified domain's five
// entries, about 1.1 KB of JSON, take about 220 bytes. PostgreSQL keeps the
// JSON. Either reads both: JSON starts with '[', a packed column with
// checksS2 (or checksPacked, for DEFLATE before).

// checksDict is the dictionary of versions 2 and 4: the entries of a domain whose
// records all verified, most frequent last.
const checksDict = `"s":"temporary_failure","s":"missing","s":"mismatch","p":[{"code":"","message":""}],` +
	`{"h":"","k":"inbound_mx","k":"dkim_next","k":"dkim_previous",` +
	`"f":["10 feedback-smtp.us-east-1.amazonses.com"],"v":[0]},` +
	`[{"h":"","k":"ownership","v":true,"s":"verified","st":{"f":[null],"g":[{"s":"","r":"authoritative","z":"","t":"verified","v":[null]}]},"c":,"u":},` +
	`{"h":"","k":"dkim","v":true,"s":"verified","st":{"f":[null],"g":[{"s":"","r":"authoritative","z":"","t":"verified","v":[null]}]},"c":,"u":},` +
	`{"h":"","k":"mailfrom_mx","v":true,"s":"verified","st":{"f":[null],"g":[{"s":"","r":"authoritative","z":"","t":"verified","v":[null]}]},"c":,"u":},` +
	`{"h":"","k":"mailfrom_spf","v":true,"s":"verified","st":{"f":[null],"g":[{"s":"","r":"authoritative","z":"","t":"verified","v":[null]}]},"c":,"u":},` +
	`{"h":"","k":"dmarc","v":true,"s":"verified","st":{"f":[null],"g":[{"s":"","r":"authoritative","z":"","t":"verified","v":[null]}]},"c":,"u":}]`

// recordCheck is what a check found of one record, as the checks column keeps
// it.
type recordCheck struct {
	// Print is the record's fingerprint (see fingerprint).
	Print string `json:"h"`
	// Key is the record's key when it was judged, for a reader of the column.
	Key      string       `json:"k,omitempty"`
	Verified bool         `json:"v,omitempty"`
	Status   string       `json:"s,omitempty"` // storedStatus
	State    *recordState `json:"st,omitempty"`
	Failures int          `json:"f,omitempty"`
	// CheckedAt and UpdatedAt are Unix milliseconds. UpdatedAt is when a check
	// last flipped the record's verified flag; 0 leaves the record's own
	// (when it was made or changed).
	CheckedAt int64 `json:"c,omitempty"`
	UpdatedAt int64 `json:"u,omitempty"`
}

// Fingerprint is what names a record in the checks column: the first 64 bits,
// in hexadecimal, of the MD5 digest of its stored name, type and value (as
// text), each ended by a line feed. Migration 00015 computes it in SQL the same
// way (md5 is PostgreSQL's own; SQLite's is this function, registered). It is
// not a security boundary: the values are the service's own, and a collision
// would at worst show one record's last check on another.
func Fingerprint(storedName, typ, value string) string {
	sum := md5.Sum([]byte(storedName + "\n" + typ + "\n" + value + "\n"))
	return hex.EncodeToString(sum[:8])
}

// fingerprintOf is the fingerprint of the record r of the domain named
// domainName.
func fingerprintOf(r *domain.Record, domainName string) string {
	return Fingerprint(storedName(r.Name, domainName), r.Type, r.Value)
}

// checked reports whether a check ever judged r: what a record never checked
// holds is not kept.
func checked(r *domain.Record) bool {
	return r.Verified || r.Status != domain.CheckUnchecked || r.Failures != 0 || !r.CheckedAt.IsZero() ||
		len(r.Found) > 0 || len(r.Problems) > 0 || len(r.Propagation) > 0
}

// checkOf is what the checks column keeps of the record r of the domain d.
func checkOf(d *domain.Domain, r *domain.Record) recordCheck {
	c := recordCheck{Print: fingerprintOf(r, d.Name), Key: string(r.Key), Verified: r.Verified,
		Status: storedStatus(r.Status), Failures: r.Failures, CheckedAt: millis(r.CheckedAt)}
	if !r.UpdatedAt.Equal(r.CreatedAt) {
		c.UpdatedAt = millis(r.UpdatedAt)
	}
	c.State = stateOf(r)
	return c
}

// checksOf is what the checks column keeps of the domain d's records, in
// their order, and its text.
func checksOf(d *domain.Domain) ([]recordCheck, []byte, error) {
	var cs []recordCheck
	for i := range d.Records {
		if !checked(&d.Records[i]) {
			continue
		}
		cs = append(cs, checkOf(d, &d.Records[i]))
	}
	text, err := encodeChecks(cs)
	return cs, text, err
}

// encodeChecks is the checks column's JSON text of cs, nil for none.
func encodeChecks(cs []recordCheck) ([]byte, error) {
	if len(cs) == 0 {
		return nil, nil
	}
	// Every check's save encodes its checks: segmentio's encoder writes the
	// same bytes as encoding/json's in about half the time (FuzzChecksJSON).
	b, err := segjson.Marshal(cs)
	if err != nil {
		return nil, fmt.Errorf("store: encode checks: %w", err)
	}
	return b, nil
}

// storedChecks is what the checks column keeps of d's records, and the
// column's value for it.
func (s *Store) storedChecks(d *domain.Domain) ([]recordCheck, any, error) {
	cs, text, err := checksOf(d)
	if err != nil {
		return nil, nil, err
	}
	arg, err := s.checksArg(text)
	return cs, arg, err
}

// checksArg is the checks column's value for its JSON text ("" for none).
func (s *Store) checksArg(text []byte) (any, error) {
	if len(text) == 0 || !s.d.BinaryValues() {
		return string(text), nil
	}
	return s.payloads.PackChecks(text)
}

// readChecks decodes the checks column as scanned, packed or not.
func (s *Store) readChecks(raw string) ([]recordCheck, error) {
	text, err := s.payloads.checksText(raw)
	if err != nil {
		return nil, err
	}
	return decodeChecks(text)
}

// applyStoredChecks applies to d, whose records are read, its checks column
// as scanned (raw).
func (s *Store) applyStoredChecks(d *domain.Domain, raw string) error {
	cs, err := s.readChecks(raw)
	if err != nil {
		return err
	}
	return applyChecks(d, cs)
}

// checksText is the JSON text of the checks column's value raw, packed or
// not ("" for none).
func (c *PayloadCodec) checksText(raw string) (string, error) {
	if raw == "" || raw[0] == '[' {
		return raw, nil
	}
	text, err := c.Unpack([]byte(raw))
	if err != nil {
		return "", fmt.Errorf("store: checks: %w", err)
	}
	return text, nil
}

// ChecksJSON is the JSON text of a checks column's value, for the SQL function
// migration 00015's Down calls where SQLite keeps it packed: NULL for none.
func (c *PayloadCodec) ChecksJSON(v any) (any, error) {
	var raw string
	switch v := v.(type) {
	case nil:
	case string:
		raw = v
	case []byte:
		raw = string(v)
	default:
		return nil, fmt.Errorf("store: checks of type %T", v)
	}
	text, err := c.checksText(raw)
	if err != nil || text == "" {
		return nil, err
	}
	return text, nil
}

// decodeChecks is the inverse of encodeChecks.
func decodeChecks(text string) ([]recordCheck, error) {
	if text == "" {
		return nil, nil
	}
	var cs []recordCheck
	if err := json.Unmarshal([]byte(text), &cs); err != nil {
		return nil, fmt.Errorf("store: checks: %w", err)
	}
	return cs, nil
}

// applyChecks sets what the entries cs say of d's records on them: a record
// with no entry of its fingerprint reads as never checked.
func applyChecks(d *domain.Domain, cs []recordCheck) error {
	if len(cs) == 0 {
		return nil
	}
	for i := range d.Records {
		r := &d.Records[i]
		j := checkIndex(cs, fingerprintOf(r, d.Name))
		if j < 0 {
			continue
		}
		c := &cs[j]
		r.Verified, r.Status, r.Failures = c.Verified, statusOf(c.Status), c.Failures
		r.CheckedAt = fromMillis(c.CheckedAt)
		if c.UpdatedAt > millis(r.UpdatedAt) {
			r.UpdatedAt = fromMillis(c.UpdatedAt)
		}
		if c.State != nil {
			if err := c.State.apply(r); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkIndex is the index in cs of the entry of the record whose fingerprint
// is fp, or -1.
func checkIndex(cs []recordCheck, fp string) int {
	return slices.IndexFunc(cs, func(c recordCheck) bool { return c.Print == fp })
}

// recordPrint is a record's key and fingerprint.
type recordPrint struct {
	Key   domain.RecordKey
	Print string
}

// mergeChecks is what the checks column keeps after a save of the entries
// saved over the entries stored, for records whose fingerprints are current:
// for each, the entry of the later check (a rotation's switch marks the new
// key verified after the check that is saved read it), and none for a record
// gone. It is for a save over a domain that changed since it was read.
func mergeChecks(saved, stored []recordCheck, current []recordPrint) []recordCheck {
	var out []recordCheck
	for _, cur := range current {
		var pick *recordCheck
		for _, list := range [][]recordCheck{saved, stored} {
			for i := range list {
				if c := &list[i]; c.Print == cur.Print && (pick == nil || c.CheckedAt > pick.CheckedAt) {
					pick = c
				}
			}
		}
		if pick != nil {
			out = append(out, *pick)
		}
	}
	return out
}
