package records

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"strconv"
	"strings"

	"github.com/domaind/domaind/internal/domain"
)

// The records to paste: a domain's records as BIND zone-file lines, for DNS
// providers that import zone files, and as CSV, for spreadsheets and providers
// that import those. The API and the dashboard both serve them.

// Format is a form of a domain's records as a file.
type Format int

// The formats.
const (
	// FormatZone is a BIND zone file (ZoneFile).
	FormatZone Format = iota
	// FormatCSV is a CSV table (CSV).
	FormatCSV
)

// Render renders d's records in the format.
func (f Format) Render(d *domain.Domain) ([]byte, error) {
	if f == FormatCSV {
		return CSV(d)
	}
	return ZoneFile(d)
}

// ContentType is the format's media type, with its character set.
func (f Format) ContentType() string {
	if f == FormatCSV {
		return "text/csv; charset=utf-8"
	}
	return "text/plain; charset=utf-8"
}

// FileName is the name of the file of domain name's records in the format.
func (f Format) FileName(name string) string {
	if f == FormatCSV {
		return name + "-records.csv"
	}
	return name + ".zone"
}

// zoneTTL is the TTL of every zone-file line: an hour, long enough not to load
// anyone's servers and short enough that a mistake is soon corrected.
const zoneTTL = 3600

// txtChunk is the most bytes one character-string of a TXT record holds.
const txtChunk = 255

// ZoneFile renders d's records as master-file lines (RFC 1035 section 5) with
// absolute names, so that the text means the same whatever $ORIGIN the
// provider's importer assumes. Each record is preceded by a comment saying what
// it is for.
func ZoneFile(d *domain.Domain) ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "; domaind records for %s\n", commentText(d.Name))
	for i := range d.Records {
		r := &d.Records[i]
		fmt.Fprintf(&b, "; %s, %s: %s\n", r.Key.Role(), r.Need(), commentText(r.Purpose))
		switch r.Type {
		case "TXT":
			fmt.Fprintf(&b, "%s %d IN TXT %s\n", zoneName(r.Name), zoneTTL, txtStrings(r.Value))
		case "MX":
			fmt.Fprintf(&b, "%s %d IN MX %d %s\n", zoneName(r.Name), zoneTTL, r.Priority, zoneName(r.Value))
		case "CNAME":
			// cname mode's DKIM selectors; the target is a host name domaind made.
			fmt.Fprintf(&b, "%s %d IN CNAME %s\n", zoneName(r.Name), zoneTTL, zoneName(r.Value))
		default:
			// Only TXT and MX records are generated; a new type must be taught
			// here rather than written out unescaped.
			return nil, fmt.Errorf("records: zone file of %s: record %s has type %q, which it cannot write", d.ID, r.Key, r.Type)
		}
	}
	return b.Bytes(), nil
}

// zoneName returns name as an absolute master-file name: with the trailing dot,
// and any byte that is not a letter, digit, hyphen, underscore or dot written as
// \DDD, so that no name can end a line or start a comment.
func zoneName(name string) string {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "\\%03d", c)
		}
	}
	if !strings.HasSuffix(name, ".") {
		b.WriteByte('.')
	}
	return b.String()
}

// txtStrings returns a TXT value as master-file character-strings: split into
// pieces of at most 255 bytes (the wire limit of one string; resolvers and DKIM
// verifiers join them again), each quoted, with quotes and backslashes escaped
// and bytes outside printable ASCII written as \DDD. The value is split before it
// is escaped, so the limit counts the bytes DNS holds, and no escape is cut.
func txtStrings(v string) string {
	if v == "" {
		return `""`
	}
	var b strings.Builder
	for len(v) > 0 {
		n := min(len(v), txtChunk)
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteByte('"')
		for i := 0; i < n; i++ {
			c := v[i]
			switch {
			case c == '"' || c == '\\':
				b.WriteByte('\\')
				b.WriteByte(c)
			case c < 0x20 || c >= 0x7f:
				fmt.Fprintf(&b, "\\%03d", c)
			default:
				b.WriteByte(c)
			}
		}
		b.WriteByte('"')
		v = v[n:]
	}
	return b.String()
}

// commentText makes s safe inside a one-line comment: a line break in it would
// start a line the importer reads as a record.
func commentText(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// CSV renders d's records as CSV (RFC 4180: CRLF line ends, quoting where
// needed) under the header name,type,priority,value,record,status,dns_returned:
// what to publish first, then the record's role, its latest status and the values
// DNS returned, one a line. Names carry no trailing dot and values are whole.
// Every cell, and every returned value within one, is defused with csvSafe, and
// returned values show control and bidirectional characters as escapes
// (domain.Printable): they are written by whoever controls the zone, and a CR in
// one would otherwise start a row of the attacker's choosing in some readers.
func CSV(d *domain.Domain) ([]byte, error) {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.UseCRLF = true
	if err := w.Write([]string{"name", "type", "priority", "value", "record", "status", "dns_returned"}); err != nil {
		return nil, fmt.Errorf("records: csv: %w", err)
	}
	for _, r := range d.Records {
		priority := ""
		if p, ok := r.ShownPriority(); ok {
			priority = strconv.Itoa(int(p))
		}
		found := make([]string, len(r.Found))
		for i, f := range r.Found {
			found[i] = csvSafe(domain.Printable(f))
		}
		row := []string{r.Name, r.Type, priority, r.Value, r.Key.Role(), string(r.ShownStatus()), strings.Join(found, "\n")}
		for i := range row {
			row[i] = csvSafe(row[i])
		}
		if err := w.Write(row); err != nil {
			return nil, fmt.Errorf("records: csv: %w", err)
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return nil, fmt.Errorf("records: csv: %w", err)
	}
	return b.Bytes(), nil
}

// csvSafe defuses a field a spreadsheet would run as a formula (OWASP's CSV
// injection advice): one starting with =, +, -, @, a tab or a carriage return
// gets a leading apostrophe, which spreadsheets show as text.
func csvSafe(s string) string {
	if s != "" && strings.IndexByte("=+-@\t\r", s[0]) >= 0 {
		return "'" + s
	}
	return s
}
