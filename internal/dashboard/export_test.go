package dashboard

import (
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/domaind/domaind/internal/domain"
)

func TestNeutralizeCell(t *testing.T) {
	cases := []struct{ in, want string }{
		{"=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"},
		{"+1+1", "'+1+1"},
		{"-2+3", "'-2+3"},
		{"@SUM(A1)", "'@SUM(A1)"},
		{"\t=1", "'\t=1"},
		{"\r=1", "'\r=1"},
		{"", ""},
		{"v=spf1 include:amazonses.com ~all", "v=spf1 include:amazonses.com ~all"},
		{"a=1", "a=1"},
		{"'=already", "'=already"},
		{"10", "10"},
	}
	for _, tc := range cases {
		if got := neutralizeCell(tc.in); got != tc.want {
			t.Errorf("neutralizeCell(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestQuoteText(t *testing.T) {
	cases := []struct{ in, want string }{
		{"plain", `"plain"`},
		{`say "hi"`, `"say \"hi\""`},
		{`back\slash`, `"back\\slash"`},
		{"line\nbreak", `"line\010break"`},
		{"cr\rhere", `"cr\013here"`},
		{"é", `"\195\169"`},
		{"\x00\x7f", `"\000\127"`},
	}
	for _, tc := range cases {
		got := quoteText(tc.in)
		if got != tc.want {
			t.Errorf("quoteText(%q) = %s, want %s", tc.in, got, tc.want)
		}
		// miekg/dns reads it back as the same bytes on the wire.
		rr, err := dns.NewRR("x. 300 IN TXT " + got)
		if err != nil {
			t.Fatalf("%s does not parse: %v", got, err)
		}
		if back := wireTXT(t, rr); back != tc.in {
			t.Errorf("%s parses back as %q, want %q", got, back, tc.in)
		}
	}
}

// wireTXT returns the bytes of the one character-string of rr, a TXT record
// owned by "x.", as they go on the wire.
func wireTXT(t *testing.T, rr dns.RR) string {
	t.Helper()
	buf := make([]byte, 512)
	n, err := dns.PackRR(rr, buf, 0, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	// "x." is 3 bytes, then type, class, TTL and rdlength: 10 more.
	rdata := buf[13:n]
	if len(rdata) == 0 || int(rdata[0]) != len(rdata)-1 {
		t.Fatalf("rdata %q is not one character-string", rdata)
	}
	return string(rdata[1:])
}

func TestSplitTXT(t *testing.T) {
	long := strings.Repeat("a", 600)
	cases := []struct {
		in   string
		want []int
	}{
		{"", []int{0}},
		{"short", []int{5}},
		{long[:255], []int{255}},
		{long[:256], []int{255, 1}},
		{long, []int{255, 255, 90}},
	}
	for _, tc := range cases {
		got := splitTXT(tc.in)
		var lens []int
		for _, s := range got {
			lens = append(lens, len(s))
		}
		if strings.Join(got, "") != tc.in || !equalInts(lens, tc.want) {
			t.Errorf("splitTXT(%d bytes) = lengths %v, want %v", len(tc.in), lens, tc.want)
		}
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestZoneCommentsStayComments renders a record whose purpose, problem and found
// values carry line breaks, and checks that the zone still holds just the one
// record.
func TestZoneCommentsStayComments(t *testing.T) {
	d := &domain.Domain{Name: "example.com", Records: []domain.Record{{
		Key: domain.KeyOwnership, Type: "TXT", Name: "_v.example.com", Value: "token",
		Purpose:  "purpose\nevil.example.com. IN A 192.0.2.1",
		Status:   domain.CheckMismatch,
		Found:    []string{"a\r\nevil.example.com. IN A 192.0.2.2", `"quoted"`},
		Problems: []domain.Problem{{Code: "WRONG_VALUE", Message: "msg\n$INCLUDE /etc/passwd"}},
	}}}
	text := string(renderZone(d, time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)))
	zp := dns.NewZoneParser(strings.NewReader(text), "", "")
	var rrs []dns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		rrs = append(rrs, rr)
	}
	if err := zp.Err(); err != nil {
		t.Fatalf("does not parse: %v\n%s", err, text)
	}
	if len(rrs) != 1 || rrs[0].String() != "_v.example.com.\t300\tIN\tTXT\t\"token\"" {
		t.Fatalf("records = %v\n%s", rrs, text)
	}
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		if line != "" && !strings.HasPrefix(line, ";") && !strings.HasPrefix(line, "_v.example.com.") {
			t.Errorf("line %q escaped its comment", line)
		}
	}
}

func TestBadgesHaveWords(t *testing.T) {
	states := []string{"verified", "pending", "pending_configuration", "degrading", "failed",
		"missing", "mismatch", "temporary_failure", "unchecked", "", "something new"}
	for _, s := range states {
		b := badgeFor(s)
		if b.Label == "" || b.Icon == "" || b.State == "" {
			t.Errorf("badgeFor(%q) = %+v: a badge needs a word and a symbol", s, b)
		}
	}
}
