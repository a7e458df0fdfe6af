package dnscheck

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/domaind/domaind/internal/domain"
)

// dmarcDefaults returns a record with the RFC's defaults and policy p.
func dmarcDefaults(p string) DMARCRecord {
	return DMARCRecord{Policy: p, SubdomainPolicy: p, Percent: 100, ADKIM: "r", ASPF: "r",
		ReportInterval: 86400, FailureOptions: []string{"0"}, ReportFormats: []string{"afrf"}}
}

func TestParseDMARCValid(t *testing.T) {
	tests := []struct {
		txt  string
		want func(r *DMARCRecord)
	}{
		{"v=DMARC1; p=none;", nil},
		{"v=DMARC1; p=none", nil},
		{"v=DMARC1;p=reject;sp=none;pct=50;rua=mailto:a@b.c", func(r *DMARCRecord) {
			r.Policy, r.SubdomainPolicy, r.Percent, r.RUA = "reject", "none", 50, []string{"mailto:a@b.c"}
		}},
		{"v=DMARC1; p=quarantine; rua=mailto:dmarc@example.com, mailto:x@rua.example.net!10m ; ruf=mailto:f@example.com!512; fo=1:d : s; adkim=s; aspf=s; ri=3600; rf=afrf:iodef; pct=0", func(r *DMARCRecord) {
			r.Policy, r.SubdomainPolicy, r.Percent = "quarantine", "quarantine", 0
			r.RUA = []string{"mailto:dmarc@example.com", "mailto:x@rua.example.net!10m"}
			r.RUF = []string{"mailto:f@example.com!512"}
			r.FailureOptions = []string{"1", "d", "s"}
			r.ADKIM, r.ASPF, r.ReportInterval = "s", "s", 3600
			r.ReportFormats = []string{"afrf", "iodef"}
		}},
		// Tag names and keywords are case-insensitive; keywords come back lowercased.
		{"V = DMARC1 ; P = Reject ; SP=Quarantine; ADKIM=S", func(r *DMARCRecord) {
			r.Policy, r.SubdomainPolicy, r.ADKIM = "reject", "quarantine", "s"
		}},
		// Unknown tags are ignored; an https report URI and pct with leading zeros are allowed.
		{"v=DMARC1; p=none; np=reject; psd=n; t=y; rua=https://reports.example.com/dmarc; pct=007", func(r *DMARCRecord) {
			r.RUA, r.Percent = []string{"https://reports.example.com/dmarc"}, 7
		}},
		{"v=DMARC1; p=reject; pct=100; ri=4294967295", func(r *DMARCRecord) {
			r.Policy, r.SubdomainPolicy, r.ReportInterval = "reject", "reject", 4294967295
		}},
	}
	for _, tt := range tests {
		got, err := ParseDMARC(tt.txt)
		if err != nil {
			t.Errorf("ParseDMARC(%q) error: %v", tt.txt, err)
			continue
		}
		want := dmarcDefaults("none")
		if tt.want != nil {
			tt.want(&want)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("ParseDMARC(%q):\n got %+v\nwant %+v", tt.txt, got, want)
		}
	}
}

func TestParseDMARCInvalid(t *testing.T) {
	tests := []syntaxCase{
		{"", "empty"},
		{" v=DMARC1; p=none", "starts with whitespace"},
		{`"v=DMARC1; p=none;"`, "quotation mark"},
		{"p=none; v=DMARC1", "must come first"},
		{"rua=mailto:a@b.c", "must start with v=DMARC1"},
		{"v=dmarc1; p=none", "capital letters"},
		{"v=DMARC2; p=none", `not "DMARC2"`},
		{"v=DMARC1 p=none", "missing a semicolon after v=DMARC1;"},
		{"v=DMARC1", "no p= tag"},
		{"v=DMARC1; rua=mailto:a@b.c", "no p= tag"},
		{"v=DMARC1; rua=mailto:a@b.c; p=none", "right after v=DMARC1"},
		{"v=DMARC1\n; p=none", "no line breaks"},
		{"v=DMARC1; p=monitor", `not "monitor"`},
		{`v=DMARC1; p="none"`, "remove the quotation marks"},
		{"v=DMARC1; p=", "not an empty value"},
		{"v=DMARC1; p=none rua=mailto:a@b.c", "missing a semicolon after p=none;"},
		{"v=DMARC1; p=none; sp=block", "sp= tag"},
		{"v=DMARC1; p=none; p=reject", "p= tag appears more than once"},
		{"v=DMARC1; p=none; PCT=5; pct=10", "pct= tag appears more than once"},
		{"v=DMARC1; p=none;; rua=mailto:a@b.c", "empty entry"},
		{"v=DMARC1; p=none; pct=101", "0 to 100"},
		{"v=DMARC1; p=none; pct=-1", "0 to 100"},
		{"v=DMARC1; p=none; pct=0100", "0 to 100"},
		{"v=DMARC1; p=none; pct=50%", "0 to 100"},
		{"v=DMARC1; p=none; adkim=strict", "adkim= tag"},
		{"v=DMARC1; p=none; aspf=", "aspf= tag"},
		{"v=DMARC1; p=none; ri=4294967296", "ri= tag"},
		{"v=DMARC1; p=none; ri=1h", "ri= tag"},
		{"v=DMARC1; p=none; fo=2", "fo= tag"},
		{"v=DMARC1; p=none; fo=1,d", "fo= tag"},
		{"v=DMARC1; p=none; rf=afrf,iodef", "rf= tag"},
		{"v=DMARC1; p=none; rua=dmarc@example.com", "write mailto:dmarc@example.com"},
		{"v=DMARC1; p=none; rua=", "rua= tag is empty"},
		{"v=DMARC1; p=none; rua=mailto:a@b.c,", "empty entry"},
		{"v=DMARC1; p=none; rua=mailto:a@b.c mailto:d@e.f", "separate addresses with commas"},
		{"v=DMARC1; p=none; ruf=mailto:postmaster", "email address"},
		{"v=DMARC1; p=none; rua=mailto:a@b.c!10x", "size limit"},
		{"v=DMARC1; p=none; rua=example.com/reports", "not a URI"},
		{"v=DMARC1; p=none; rua=mailto:a@b.c; 1x=y", "tag name"},
	}
	checkSyntaxErrors(t, "DMARC", ParseDMARC, tests)
}

func FuzzParseDMARC(f *testing.F) {
	f.Add("v=DMARC1; p=none;")
	f.Add("v=DMARC1;p=reject;sp=none;pct=50;rua=mailto:a@b.c!10m;fo=1:d;rf=afrf;ri=60;adkim=s")
	f.Fuzz(func(t *testing.T, txt string) {
		rec, err := ParseDMARC(txt)
		if !fuzzAccepted(t, "DMARC", txt, err, IsDMARC) {
			return
		}
		policies := map[string]bool{"none": true, "quarantine": true, "reject": true}
		if !policies[rec.Policy] || !policies[rec.SubdomainPolicy] {
			t.Fatalf("ParseDMARC(%q): policies %q, %q", txt, rec.Policy, rec.SubdomainPolicy)
		}
		if rec.Percent < 0 || rec.Percent > 100 {
			t.Fatalf("ParseDMARC(%q): pct %d", txt, rec.Percent)
		}
		if (rec.ADKIM != "r" && rec.ADKIM != "s") || (rec.ASPF != "r" && rec.ASPF != "s") {
			t.Fatalf("ParseDMARC(%q): alignment %q, %q", txt, rec.ADKIM, rec.ASPF)
		}
		for _, u := range append(rec.RUA, rec.RUF...) {
			if u == "" || strings.ContainsAny(u, " \t,;") {
				t.Fatalf("ParseDMARC(%q): report URI %q", txt, u)
			}
		}
	})
}

// TestDMARCReceiverView checks what receivers apply for records the strict parser rejects,
// and that the canonical record proposed says the same and parses strictly.
func TestDMARCReceiverView(t *testing.T) {
	for _, tc := range []struct {
		txt    string
		policy string // "" when no policy applies
		sp     string
		codes  []domain.ProblemCode
		fix    string
	}{
		{txt: "v=DMARC1; p=reject", policy: "reject", sp: "reject"},
		// RFC 7489 section 6.6.3: no valid p= but a valid rua= acts as p=none.
		{txt: "v=DMARC1; rua=mailto:d@example.com", policy: "none", sp: "none", codes: []domain.ProblemCode{CodeDMARCNoPolicy},
			fix: "v=DMARC1; p=none; rua=mailto:d@example.com;"},
		{txt: "v=DMARC1; p=maybe; rua=mailto:d@example.com", policy: "none", sp: "none", codes: []domain.ProblemCode{CodeDMARCTagIgnored, CodeDMARCNoPolicy},
			fix: "v=DMARC1; p=none; rua=mailto:d@example.com;"},
		{txt: "v=DMARC1; p=reject; sp=bogus; rua=mailto:d@example.com", policy: "none", sp: "none", codes: []domain.ProblemCode{CodeDMARCTagIgnored, CodeDMARCNoPolicy},
			fix: "v=DMARC1; p=none; rua=mailto:d@example.com;"},
		{txt: "v=DMARC1; rua=d@example.com"},                // no valid URI: no policy
		{txt: "v=DMARC1; p=maybe"},                          // no rua: no policy
		{txt: "v=DMARC1; pct=50"},                           // no p, no rua
		{txt: "p=none; v=DMARC1; rua=mailto:d@example.com"}, // v= not first: not a DMARC record
		{txt: "v=dmarc1; p=none"},
		// RFC 7489 section 6.4 orders p= right after v=; receivers accept it later.
		{txt: "v=DMARC1; rua=mailto:d@example.com; p=quarantine", policy: "quarantine", sp: "quarantine", codes: []domain.ProblemCode{CodeDMARCTagOrder},
			fix: "v=DMARC1; p=quarantine; rua=mailto:d@example.com;"},
		// RFC 7489 section 6.3: invalid values of known tags are discarded.
		{txt: "v=DMARC1; p=reject; pct=150; adkim=x; sp=none", policy: "reject", sp: "none", codes: []domain.ProblemCode{CodeDMARCTagIgnored, CodeDMARCTagIgnored},
			fix: "v=DMARC1; p=reject; sp=none;"},
		{txt: "v=DMARC1; p=none; garbage; x=y", policy: "none", sp: "none", codes: []domain.ProblemCode{CodeDMARCTagIgnored}, fix: "v=DMARC1; p=none; x=y;"}, // unknown tags are kept: RFC 7489 section 6.3 ignores them
		{txt: "v=DMARC1; p=none; rua=mailto:d@example.com,bad", policy: "none", sp: "none", codes: []domain.ProblemCode{CodeDMARCTagIgnored},
			fix: "v=DMARC1; p=none; rua=mailto:d@example.com;"},
	} {
		rec, notes, fix, err := dmarcReceiverView(tc.txt)
		if tc.policy == "" {
			if err == nil {
				t.Errorf("%q: policy %q applies, want none", tc.txt, rec.Policy)
			}
			continue
		}
		if err != nil || rec.Policy != tc.policy || rec.SubdomainPolicy != tc.sp {
			t.Errorf("%q: policy %q, sp %q, %v; want %q, %q", tc.txt, rec.Policy, rec.SubdomainPolicy, err, tc.policy, tc.sp)
			continue
		}
		var codes []domain.ProblemCode
		for _, n := range notes {
			codes = append(codes, n.code)
			if n.reason == "" || n.reason[0] < 'a' || n.reason[0] > 'z' || strings.HasSuffix(n.reason, ".") {
				t.Errorf("%q: note %q is not a clause", tc.txt, n.reason)
			}
		}
		if !slices.Equal(codes, tc.codes) || fix != tc.fix {
			t.Errorf("%q: notes %q, fix %q; want %q, %q", tc.txt, codes, fix, tc.codes, tc.fix)
		}
		if fix != "" {
			again, err := ParseDMARC(fix)
			if err != nil || again.Policy != rec.Policy || again.SubdomainPolicy != rec.SubdomainPolicy {
				t.Errorf("%q: fix %q parses to %+v, %v", tc.txt, fix, again, err)
			}
		}
	}
}

func FuzzDMARCReceiverView(f *testing.F) {
	f.Add("v=DMARC1; rua=mailto:d@example.com; p=quarantine; pct=150")
	f.Add("v=DMARC1; p=maybe; rua=mailto:d@example.com,bad")
	f.Fuzz(func(t *testing.T, txt string) {
		strict, strictErr := ParseDMARC(txt)
		rec, notes, fix, err := dmarcReceiverView(txt)
		if strictErr == nil && (err != nil || len(notes) != 0 || !reflect.DeepEqual(rec, strict)) {
			t.Fatalf("%q parses strictly, but the receiver view is %+v, %v, %v", txt, rec, notes, err)
		}
		if err != nil {
			return
		}
		if !IsDMARC(txt) {
			t.Fatalf("%q applies but IsDMARC is false", txt)
		}
		if fix == "" && len(notes) > 0 {
			t.Fatalf("%q: notes %v without a fix", txt, notes)
		}
		if fix != "" {
			again, err := ParseDMARC(fix)
			if err != nil || again.Policy != rec.Policy || again.SubdomainPolicy != rec.SubdomainPolicy {
				t.Fatalf("%q: fix %q parses to %+v, %v; want policies %q, %q", txt, fix, again, err, rec.Policy, rec.SubdomainPolicy)
			}
		}
	})
}
