package records

import (
	"bytes"
	"encoding/csv"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/domaind/domaind/internal/domain"
)

func TestTXTStrings(t *testing.T) {
	a255 := strings.Repeat("a", 255)
	cases := []struct {
		name, in, want string
	}{
		{"empty", "", `""`},
		{"plain", "v=spf1 ~all", `"v=spf1 ~all"`},
		{"exactly 255 bytes", a255, `"` + a255 + `"`},
		{"256 bytes", a255 + "b", `"` + a255 + `" "b"`},
		{"quote and backslash", `a"b\c`, `"a\"b\\c"`},
		{"semicolon stays", "p=none;", `"p=none;"`},
		{"control bytes", "a\nb\tc\x7f", `"a\010b\009c\127"`},
		{"non-ASCII", "é", `"\195\169"`},
		// The split counts bytes before escaping, so an escape is never cut.
		{"quote at the split", strings.Repeat("a", 254) + `"` + "b", `"` + strings.Repeat("a", 254) + `\""` + ` "b"`},
		{"quote after the split", a255 + `"`, `"` + a255 + `" "\""`},
		{"character across the split", strings.Repeat("a", 254) + "é", `"` + strings.Repeat("a", 254) + `\195" "\169"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := txtStrings(c.in); got != c.want {
				t.Errorf("txtStrings(%q)\n got %s\nwant %s", c.in, got, c.want)
			}
		})
	}
}

func TestZoneName(t *testing.T) {
	cases := []struct{ in, want string }{
		{"example.com", "example.com."},
		{"example.com.", "example.com."},
		{"_dmarc.example.com", "_dmarc.example.com."},
		{"a b;c", `a\032b\059c.`},
		{"x\ny", `x\010y.`},
	}
	for _, c := range cases {
		if got := zoneName(c.in); got != c.want {
			t.Errorf("zoneName(%q) = %s, want %s", c.in, got, c.want)
		}
	}
}

func TestCSVSafe(t *testing.T) {
	cases := []struct{ in, want string }{
		{"=1+1", "'=1+1"},
		{"+1", "'+1"},
		{"-1", "'-1"},
		{"@SUM(A1)", "'@SUM(A1)"},
		{"\t=1", "'\t=1"},
		{"\r=1", "'\r=1"},
		{"v=spf1 -all", "v=spf1 -all"},
		{"", ""},
		{"'already", "'already"},
	}
	for _, c := range cases {
		if got := csvSafe(c.in); got != c.want {
			t.Errorf("csvSafe(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestCommentText(t *testing.T) {
	if got := commentText("a\nexample.com. IN A 1.2.3.4\r"); strings.ContainsAny(got, "\r\n") {
		t.Errorf("commentText kept a line break: %q", got)
	}
}

// TestZoneCommentsStayComments renders a record whose purpose carries a line
// break and a record of its own, and checks the zone still holds just the one.
func TestZoneCommentsStayComments(t *testing.T) {
	d := &domain.Domain{Name: "example.com", Records: []domain.Record{{
		Key: domain.KeyOwnership, Type: "TXT", Name: "_v.example.com", Value: "token",
		Purpose: "purpose\nevil.example.com. IN A 192.0.2.1\r\n$INCLUDE /etc/passwd",
	}}}
	text, err := ZoneFile(d)
	if err != nil {
		t.Fatal(err)
	}
	zp := dns.NewZoneParser(strings.NewReader(string(text)), "", "")
	var rrs []dns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		rrs = append(rrs, rr)
	}
	if err := zp.Err(); err != nil {
		t.Fatalf("does not parse: %v\n%s", err, text)
	}
	if len(rrs) != 1 || rrs[0].Header().Name != "_v.example.com." || rrs[0].(*dns.TXT).Txt[0] != "token" {
		t.Fatalf("records = %v\n%s", rrs, text)
	}
}

// TestCSVDefusesReturnedValues checks the values DNS returned, written by whoever
// controls the zone, reach a spreadsheet as text, each on its own line of the cell.
func TestCSVDefusesReturnedValues(t *testing.T) {
	d := &domain.Domain{Name: "example.com", Records: []domain.Record{{
		Key: domain.KeyOwnership, Type: "TXT", Name: "_v.example.com", Value: "token", Status: domain.CheckMismatch,
		Found: []string{"=cmd|' /C calc'!A0", "<script>alert(1)</script>", "@SUM(1+1)", "a\r\n=1+1,\x1b[2J\u202ecod.exe"},
	}}}
	b, err := CSV(d)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil || len(rows) != 2 {
		t.Fatalf("rows %q, %v", rows, err)
	}
	if got, want := rows[1][6], "'=cmd|' /C calc'!A0\n<script>alert(1)</script>\n'@SUM(1+1)\n"+`a\x0d\x0a=1+1,\x1b[2J\u202ecod.exe`; got != want {
		t.Errorf("dns_returned = %q, want %q", got, want)
	}
	if rows[1][4] != "ownership" || rows[1][5] != "mismatch" {
		t.Errorf("record, status = %q, %q", rows[1][4], rows[1][5])
	}
}

// TestZoneFileSaysNeed: the comment above each record says what domain.NeedOf
// says of it, for every key there is (the export once called the records of a
// rotation required while the v2 API did not), and a revoked key is no longer
// to keep.
func TestZoneFileSaysNeed(t *testing.T) {
	d := &domain.Domain{Name: "example.com"}
	for _, k := range domain.AllKeys() {
		d.Records = append(d.Records, domain.Record{Key: k, Type: "TXT", Name: string(k) + ".example.com", Value: "v=DKIM1; p=MIIB"})
	}
	d.Records = append(d.Records, domain.Record{Key: domain.KeyDKIMPrevious, Type: "TXT", Name: "revoked.example.com", Value: domain.RevokedDKIMValue})
	text, err := ZoneFile(d)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(text), "\n")
	for i, r := range d.Records {
		// A title line, then two lines a record: its comment and itself.
		comment := lines[1+2*i]
		want := "; " + r.Key.Role() + ", " + string(domain.NeedOf(r.Key, r.Value)) + ":"
		if !strings.HasPrefix(comment, want) {
			t.Errorf("%s %q: comment %q, want it to start %q", r.Key, r.Value, comment, want)
		}
	}
	if !strings.Contains(string(text), "; dkim_next, required for the next key:") || !strings.Contains(string(text), "; dkim_previous, recommended:") {
		t.Errorf("zone file:\n%s", text)
	}
}
