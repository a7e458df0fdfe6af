package dnscheck

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestIsDMARC(t *testing.T) {
	tests := []struct {
		txt  string
		want bool
	}{
		{"v=DMARC1; p=none;", true},
		{"v=DMARC1;p=reject", true},
		{"v = DMARC1 ; p=none", true},
		{"V=DMARC1; p=none", true},
		{"v=DMARC1", true},
		{"v=DMARC1\tp=none", true}, // recognised, so that ParseDMARC can explain the missing ';'
		{"v=dmarc1; p=none", false},
		{"v=DMARC10; p=none", false},
		{"v=DMARC1x", false},
		{" v=DMARC1; p=none", false},
		{`"v=DMARC1; p=none"`, false},
		{"p=none; v=DMARC1", false},
		{"v=spf1 -all", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := IsDMARC(tt.txt); got != tt.want {
			t.Errorf("IsDMARC(%q) = %v, want %v", tt.txt, got, tt.want)
		}
	}
}

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
	tests := []struct {
		txt    string
		reason string
	}{
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
	for _, tt := range tests {
		_, err := ParseDMARC(tt.txt)
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("ParseDMARC(%q) = %v, want a *SyntaxError", tt.txt, err)
			continue
		}
		if se.Kind != "DMARC" || se.Record != tt.txt {
			t.Errorf("ParseDMARC(%q): Kind %q, Record %q", tt.txt, se.Kind, se.Record)
		}
		if !strings.Contains(se.Reason, tt.reason) {
			t.Errorf("ParseDMARC(%q) reason %q, want it to mention %q", tt.txt, se.Reason, tt.reason)
		}
		if !strings.HasPrefix(se.Reason, "The ") || !strings.HasSuffix(se.Reason, ".") {
			t.Errorf("ParseDMARC(%q) reason %q is not a sentence", tt.txt, se.Reason)
		}
	}
}

func FuzzParseDMARC(f *testing.F) {
	f.Add("v=DMARC1; p=none;")
	f.Add("v=DMARC1;p=reject;sp=none;pct=50;rua=mailto:a@b.c!10m;fo=1:d;rf=afrf;ri=60;adkim=s")
	f.Fuzz(func(t *testing.T, txt string) {
		rec, err := ParseDMARC(txt)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || se.Kind != "DMARC" || se.Record != txt || se.Reason == "" {
				t.Fatalf("ParseDMARC(%q) error %#v is not a complete *SyntaxError", txt, err)
			}
			return
		}
		if !IsDMARC(txt) {
			t.Fatalf("ParseDMARC(%q) succeeded but IsDMARC is false", txt)
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
