package dnscheck

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// spfMech builds an expected mechanism term without prefix lengths.
func spfMech(q byte, name, value string) SPFTerm {
	return SPFTerm{Qualifier: q, Name: name, Value: value, CIDR4: -1, CIDR6: -1}
}

// spfModifier builds an expected modifier term.
func spfModifier(name, value string) SPFTerm {
	return SPFTerm{Name: name, Value: value, Modifier: true, CIDR4: -1, CIDR6: -1}
}

// spfWithCIDR returns term with its prefix lengths set.
func spfWithCIDR(term SPFTerm, c4, c6 int) SPFTerm {
	term.CIDR4, term.CIDR6 = c4, c6
	return term
}

func TestParseSPFValid(t *testing.T) {
	tests := []struct {
		txt  string
		want []SPFTerm
	}{
		{"v=spf1", nil},
		{"v=spf1 include:amazonses.com ~all", []SPFTerm{
			spfMech('+', "include", "amazonses.com"), spfMech('~', "all", ""),
		}},
		{"v=spf1 include:_spf.google.com include:amazonses.com -all", []SPFTerm{
			spfMech('+', "include", "_spf.google.com"), spfMech('+', "include", "amazonses.com"), spfMech('-', "all", ""),
		}},
		{"v=spf1 ip4:192.0.2.0/24 ip4:198.51.100.7 ip6:2001:db8::/32 ip6:::ffff:192.0.2.1 ?all", []SPFTerm{
			spfWithCIDR(spfMech('+', "ip4", "192.0.2.0"), 24, -1),
			spfMech('+', "ip4", "198.51.100.7"),
			spfWithCIDR(spfMech('+', "ip6", "2001:db8::"), -1, 32),
			spfMech('+', "ip6", "::ffff:192.0.2.1"),
			spfMech('?', "all", ""),
		}},
		{"v=spf1 ip4:0.0.0.0/0 ip6:::/0 ip4:255.255.255.255/32 ip6:::1/128", []SPFTerm{
			spfWithCIDR(spfMech('+', "ip4", "0.0.0.0"), 0, -1),
			spfWithCIDR(spfMech('+', "ip6", "::"), -1, 0),
			spfWithCIDR(spfMech('+', "ip4", "255.255.255.255"), 32, -1),
			spfWithCIDR(spfMech('+', "ip6", "::1"), -1, 128),
		}},
		// Names are case-insensitive, qualifiers explicit, spaces repeated and trailing.
		{"V=SPF1  +MX  A:Mail.Example.COM/24//64   ~All  ", []SPFTerm{
			spfMech('+', "mx", ""),
			spfWithCIDR(spfMech('+', "a", "Mail.Example.COM"), 24, 64),
			spfMech('~', "all", ""),
		}},
		{"v=spf1 a/24 mx//64 a:example.com. ptr ptr:example.org -all", []SPFTerm{
			spfWithCIDR(spfMech('+', "a", ""), 24, -1),
			spfWithCIDR(spfMech('+', "mx", ""), -1, 64),
			spfMech('+', "a", "example.com."),
			spfMech('+', "ptr", ""),
			spfMech('+', "ptr", "example.org"),
			spfMech('-', "all", ""),
		}},
		{"v=spf1 redirect=_spf.example.com", []SPFTerm{spfModifier("redirect", "_spf.example.com")}},
		{"v=spf1 -all exp=explain._spf.%{d}", []SPFTerm{
			spfMech('-', "all", ""), spfModifier("exp", "explain._spf.%{d}"),
		}},
		// Macros (RFC 7208 section 7.4 examples) and an unknown modifier, which is ignored.
		{"v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d} include:%{d2}.example.net include:%{IR}.%{v}._spf.%{d2} -all foo-bar=%{c}x%%", nil},
		{"v=spf1 include:example.com moo=", []SPFTerm{
			spfMech('+', "include", "example.com"), spfModifier("moo", ""),
		}},
		// A modifier named like a mechanism is ignored by receivers but allowed by the ABNF
		// only for names that are not mechanisms; a name with a dot is a valid modifier.
		{"v=spf1 a.b=c -all", []SPFTerm{spfModifier("a.b", "c"), spfMech('-', "all", "")}},
		{"v=spf1 include:x.1-2 ~all", nil}, // "1-2" is a valid toplabel: it has a hyphen.
	}
	for _, tt := range tests {
		rec, err := ParseSPF(tt.txt)
		if err != nil {
			t.Errorf("ParseSPF(%q) error: %v", tt.txt, err)
			continue
		}
		if tt.want != nil && !reflect.DeepEqual(rec.Terms, tt.want) {
			t.Errorf("ParseSPF(%q) terms:\n got %+v\nwant %+v", tt.txt, rec.Terms, tt.want)
		}
	}
}

// syntaxCase is a record a parser must refuse, and a part of the reason it must
// give that names the actual problem.
type syntaxCase struct {
	txt    string
	reason string
}

// checkSyntaxErrors checks that parse refuses every case's record with a
// *SyntaxError of kind, holding the record and a reason that is a sentence
// (starting with one of starts, "The " if none is given) and mentions the case's
// reason.
func checkSyntaxErrors[T any](t *testing.T, kind string, parse func(string) (T, error), cases []syntaxCase, starts ...string) {
	t.Helper()
	if len(starts) == 0 {
		starts = []string{"The "}
	}
	for _, tt := range cases {
		_, err := parse(tt.txt)
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("parse %s %.60q = %v, want a *SyntaxError", kind, tt.txt, err)
			continue
		}
		if se.Kind != kind || se.Record != tt.txt {
			t.Errorf("parse %s %.60q: Kind %q, Record %.60q", kind, tt.txt, se.Kind, se.Record)
		}
		if !strings.Contains(se.Reason, tt.reason) {
			t.Errorf("parse %s %.60q: reason %q, want it to mention %q", kind, tt.txt, se.Reason, tt.reason)
		}
		sentence := strings.HasSuffix(se.Reason, ".") && slices.ContainsFunc(starts, func(p string) bool { return strings.HasPrefix(se.Reason, p) })
		if !sentence {
			t.Errorf("parse %s %.60q: reason %q is not a sentence", kind, tt.txt, se.Reason)
		}
	}
}

// fuzzAccepted checks what a parser of kind made of the fuzzed txt, err being
// its error, and reports whether it accepted txt. A refusal must be a complete
// *SyntaxError; an acceptance must be of a record that recognize, if not nil,
// takes for one of kind.
func fuzzAccepted(t *testing.T, kind, txt string, err error, recognize func(string) bool) bool {
	t.Helper()
	if err != nil {
		var se *SyntaxError
		if !errors.As(err, &se) || se.Kind != kind || se.Record != txt || se.Reason == "" {
			t.Fatalf("parse %s %q: error %#v is not a complete *SyntaxError", kind, txt, err)
		}
		return false
	}
	if recognize != nil && !recognize(txt) {
		t.Fatalf("parse %s %q succeeded, but the record is not recognized as %s", kind, txt, kind)
	}
	return true
}

func TestParseSPFInvalid(t *testing.T) {
	tests := []syntaxCase{
		{"v=spf10 -all", "followed by a space"},
		{"v=spf1x", "followed by a space"},
		{"spf1 -all", "must start with v=spf1"},
		{`"v=spf1 include:amazonses.com ~all"`, "starts with a quotation mark"},
		{`v=spf1 include:amazonses.com ~all"`, "quotation mark"},
		{"v=spf1 include:amazonses.com\t~all", "tab or line break"},
		{"v=spf1\u00a0include:amazonses.com ~all", "non-breaking space"},
		{"v=spf1 inlcude:amazonses.com ~all", `unknown mechanism "inlcude:amazonses.com"`},
		{"v=spf1 include=amazonses.com ~all", "write include:amazonses.com"},
		{"v=spf1 redirect:example.com", "redirect is a modifier"},
		{"v=spf1 include: ~all", "needs a domain"},
		{"v=spf1 include ~all", "needs a domain"},
		{"v=spf1 include:localhost ~all", "not a full domain name"},
		{"v=spf1 include:example.123 ~all", "valid top-level domain"},
		{"v=spf1 include:2001:db8::1 ~all", "use ip4: or ip6:"},
		{"v=spf1 include:example..com ~all", "empty label"},
		{"v=spf1 include:" + strings.Repeat("a", 64) + ".com ~all", "longer than 63"},
		{"v=spf1 a:1.2.3.4 -all", "use ip4: or ip6:"},
		{"v=spf1 ip4:192.0.2.0/33 -all", "/33"},
		{"v=spf1 ip4:192.0.2.0/024 -all", "without leading zeros"},
		{"v=spf1 ip4:192.0.2/24 -all", "valid IPv4"},
		{"v=spf1 ip4:192.0.2.01 -all", "valid IPv4"},
		{"v=spf1 ip4:256.0.0.1 -all", "valid IPv4"},
		{"v=spf1 ip4:2001:db8::1 -all", "use ip6:"},
		{"v=spf1 ip4 -all", "needs an address"},
		{"v=spf1 ip6:192.0.2.1 -all", "use ip4:"},
		{"v=spf1 ip6:2001:db8::/129 -all", "/129"},
		{"v=spf1 ip6:fe80::1%eth0 -all", "valid IPv6"},
		{"v=spf1 ip6:2001:db8:::1 -all", "valid IPv6"},
		{"v=spf1 a/33 -all", "/33"},
		{"v=spf1 mx:example.com/24/ -all", "prefix length"},
		{"v=spf1 a:example.com//129 -all", "/129"},
		{"v=spf1 ptr/24 -all", "ptr takes"},
		{"v=spf1 all:example.com", "takes no value"},
		{"v=spf1 -all -", "stands alone"},
		{"v=spf1 -redirect=example.com", "qualifier before a modifier"},
		{"v=spf1 redirect=a.example redirect=b.example", "more than one redirect"},
		{"v=spf1 exp=a.example -all exp=b.example", "more than one exp"},
		{"v=spf1 exists:%{x}.example.com -all", "malformed"},
		{"v=spf1 exists:%{d0}.example.com -all", "at least 1"},
		{"v=spf1 exists:%{c}.example.com -all", "only allowed in explanation"},
		{"v=spf1 exists:%{d.example.com -all", "no closing"},
		{"v=spf1 include:50%.example.com -all", "literal percent"},
		{"v=spf1 include:%{d}com -all", "not a full domain name"}, // no "." toplabel after the macro
		{"v=spf1 foo=%x", "literal percent"},
	}
	checkSyntaxErrors(t, "SPF", ParseSPF, tests)
}

func TestSPFTermStringRoundTrip(t *testing.T) {
	txt := "v=spf1 +a -mx:example.com/24//64 ~ip4:192.0.2.0/24 ?ip6:2001:db8::/32 include:%{d}.example.com exists:x.example ptr redirect=example.net foo=bar"
	rec, err := ParseSPF(txt)
	if err != nil {
		t.Fatal(err)
	}
	want := "v=spf1 a -mx:example.com/24//64 ~ip4:192.0.2.0/24 ?ip6:2001:db8::/32 include:%{d}.example.com exists:x.example ptr redirect=example.net foo=bar"
	if got := rec.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestSPFIncludesRedirect(t *testing.T) {
	rec, err := ParseSPF("v=spf1 include:_spf.google.com a include:amazonses.com redirect=_spf.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := rec.Includes(), []string{"_spf.google.com", "amazonses.com"}; !slices.Equal(got, want) {
		t.Errorf("Includes() = %q, want %q", got, want)
	}
	if got := rec.Redirect(); got != "_spf.example.com" {
		t.Errorf("Redirect() = %q", got)
	}
	rec, _ = ParseSPF("v=spf1 -all")
	if rec.Includes() != nil || rec.Redirect() != "" {
		t.Errorf("record without includes: Includes %q, Redirect %q", rec.Includes(), rec.Redirect())
	}
}

func FuzzParseSPF(f *testing.F) {
	for _, s := range []string{
		"v=spf1 include:amazonses.com ~all",
		"v=spf1 a:%{d}/24//64 exists:%{ir}.%{l1r+-}._spf.%{d} redirect=x.example",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, txt string) {
		rec, err := ParseSPF(txt)
		if !fuzzAccepted(t, "SPF", txt, err, IsSPF) {
			return
		}
		redirects, exps := 0, 0
		for _, term := range rec.Terms {
			if term.Name == "" || term.Name != strings.ToLower(term.Name) {
				t.Fatalf("ParseSPF(%q): bad term name %q", txt, term.Name)
			}
			if term.Modifier != (term.Qualifier == 0) || (!term.Modifier && !strings.ContainsRune("+-~?", rune(term.Qualifier))) {
				t.Fatalf("ParseSPF(%q): term %+v has qualifier %q", txt, term, term.Qualifier)
			}
			if term.CIDR4 > 32 || term.CIDR6 > 128 {
				t.Fatalf("ParseSPF(%q): term %+v has a prefix out of range", txt, term)
			}
			if term.Modifier && term.Name == "redirect" {
				redirects++
			}
			if term.Modifier && term.Name == "exp" {
				exps++
			}
		}
		if redirects > 1 || exps > 1 {
			t.Fatalf("ParseSPF(%q) accepted %d redirects and %d exps", txt, redirects, exps)
		}
		// The canonical form parses to the same terms.
		again, err := ParseSPF(rec.String())
		if err != nil || !reflect.DeepEqual(again.Terms, rec.Terms) {
			t.Fatalf("ParseSPF(%q) = %+v, but its String %q parses to %+v, %v", txt, rec.Terms, rec.String(), again.Terms, err)
		}
	})
}
