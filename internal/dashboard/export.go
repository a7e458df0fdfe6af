package dashboard

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/domaind/domaind/internal/domain"
)

// zoneTTL is the TTL of the records in the zone file: short, so that a mistake
// published while setting a domain up is corrected quickly.
const zoneTTL = 300

// maxTXTString is the longest character-string a TXT record holds; longer values
// (a DKIM key) are split into several strings of one record.
const maxTXTString = 255

// zoneFile serves the domain's records as a BIND zone file.
func (h *handler) zoneFile(w http.ResponseWriter, r *http.Request, s *session) {
	d := h.loadDomain(w, r, s)
	if d == nil {
		return
	}
	download(w, "text/plain; charset=utf-8", d.Name+".zone", renderZone(d, h.cfg.Now()))
}

// recordsCSV serves the domain's records as CSV.
func (h *handler) recordsCSV(w http.ResponseWriter, r *http.Request, s *session) {
	d := h.loadDomain(w, r, s)
	if d == nil {
		return
	}
	b, err := renderCSV(d)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	download(w, "text/csv; charset=utf-8", d.Name+"-records.csv", b)
}

func download(w http.ResponseWriter, contentType, filename string, body []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": filename}))
	w.Header().Set("Cache-Control", "no-store")
	w.Write(body)
}

// renderZone writes the records to publish as zone-file lines with absolute
// names, each after comments that say what it is for and what domaind last saw.
// The records come from dns.RR's own presentation format; whatever DNS returned
// appears only inside comments, quoted with every byte outside printable ASCII
// escaped, so a hostile value cannot end its comment and add a record.
func renderZone(d *domain.Domain, now time.Time) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "; DNS records for %s, to publish in its zone.\n", commentText(d.Name))
	fmt.Fprintf(&b, "; Exported by domaind on %s; statuses are those of the latest check.\n", now.UTC().Format(time.RFC3339))
	for i := range d.Records {
		r := &d.Records[i]
		fmt.Fprintf(&b, "\n; %s (%s): %s\n", recordLabel(r.Key), recordNeed(r.Key), commentText(r.Purpose))
		status := string(r.Status)
		if status == "" {
			status = string(domain.CheckUnchecked)
		}
		fmt.Fprintf(&b, "; status: %s\n", status)
		for _, f := range r.Found {
			fmt.Fprintf(&b, "; DNS returned: %s\n", quoteText(f))
		}
		for _, p := range r.Problems {
			fmt.Fprintf(&b, "; %s: %s\n", commentText(p.Code), commentText(p.Message))
		}
		b.WriteString(zoneRR(r).String())
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// zoneRR returns the record as a dns.RR.
func zoneRR(r *domain.Record) dns.RR {
	hdr := dns.RR_Header{Name: dns.Fqdn(r.Name), Class: dns.ClassINET, Ttl: zoneTTL}
	if r.Type == "MX" {
		hdr.Rrtype = dns.TypeMX
		return &dns.MX{Hdr: hdr, Preference: r.Priority, Mx: dns.Fqdn(r.Value)}
	}
	hdr.Rrtype = dns.TypeTXT
	return &dns.TXT{Hdr: hdr, Txt: splitTXT(r.Value)}
}

// splitTXT cuts s into character-strings of at most 255 bytes.
func splitTXT(s string) []string {
	if s == "" {
		return []string{""}
	}
	var out []string
	for len(s) > maxTXTString {
		out = append(out, s[:maxTXTString])
		s = s[maxTXTString:]
	}
	return append(out, s)
}

// quoteText quotes s as a zone-file character-string: quotes and backslashes
// escaped, and every byte outside printable ASCII (line breaks above all) as \DDD.
func quoteText(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c > 0x7e:
			fmt.Fprintf(&b, "\\%03d", c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// commentText makes s safe inside a comment: the same escaping as quoteText,
// without the quotes.
func commentText(s string) string {
	q := quoteText(s)
	return q[1 : len(q)-1]
}

// renderCSV writes the records as CSV, one row each. Every cell goes through
// neutralizeCell, as values that DNS returned are written by whoever controls
// the zone.
func renderCSV(d *domain.Domain) ([]byte, error) {
	var b bytes.Buffer
	cw := csv.NewWriter(&b)
	// CRLF, as RFC 4180 and spreadsheets expect.
	cw.UseCRLF = true
	header := []string{"record", "need", "name", "type", "priority", "value", "purpose", "status", "verified", "dns_returned", "problems", "last_checked"}
	if err := cw.Write(header); err != nil {
		return nil, fmt.Errorf("dashboard: csv: %w", err)
	}
	for i := range d.Records {
		r := &d.Records[i]
		prio := ""
		if r.Type == "MX" {
			prio = strconv.Itoa(int(r.Priority))
		}
		// Each value and problem starts a line of its cell; each is neutralized
		// on its own too, for spreadsheets that split such cells.
		found := make([]string, len(r.Found))
		for j, f := range r.Found {
			found[j] = neutralizeCell(f)
		}
		problems := make([]string, len(r.Problems))
		for j, p := range r.Problems {
			problems[j] = p.Code + ": " + p.Message
		}
		checked := ""
		if !r.CheckedAt.IsZero() {
			checked = r.CheckedAt.UTC().Format(time.RFC3339)
		}
		status := string(r.Status)
		if status == "" {
			status = string(domain.CheckUnchecked)
		}
		row := []string{
			r.Key.Role(), recordNeed(r.Key), r.Name, r.Type, prio, r.Value, r.Purpose, status,
			strconv.FormatBool(r.Verified), strings.Join(found, "\n"), strings.Join(problems, "\n"), checked,
		}
		for j := range row {
			row[j] = neutralizeCell(row[j])
		}
		if err := cw.Write(row); err != nil {
			return nil, fmt.Errorf("dashboard: csv: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return nil, fmt.Errorf("dashboard: csv: %w", err)
	}
	return b.Bytes(), nil
}

// neutralizeCell keeps a spreadsheet from reading a cell as a formula (CSV
// injection, such as =cmd|' /C calc'!A0): a cell starting with = + - @, a tab or
// a carriage return gets a leading apostrophe, which spreadsheets take to mean
// "text".
func neutralizeCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
