package dnscheck_test

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/domaind/domaind/internal/dnscheck"
	"github.com/domaind/domaind/internal/dnstest"
	"github.com/domaind/domaind/internal/domain"
)

// spfFixRecord finds the full record a problem's message tells the customer to publish.
var spfFixRecord = regexp.MustCompile(`change (?:the record|it) to "([^"]+)"\.$`)

// TestSPFFixesVerify publishes SPF records receivers do not pass for the platform (or that
// pass everyone), takes the record each fix quotes, publishes exactly that, checks again over
// the wire and expects it to verify without a permissive warning.
func TestSPFFixesVerify(t *testing.T) {
	for _, tc := range []struct {
		name   string
		record string
		zone   []string
		status domain.CheckStatus
		code   domain.ProblemCode
		fix    string // the record the fix must quote
	}{
		{name: "all before include", record: "v=spf1 -all include:amazonses.com",
			status: domain.CheckMismatch, code: dnscheck.CodeWrongValue, fix: "v=spf1 include:amazonses.com -all"},
		{name: "fail qualifier on include", record: "v=spf1 -include:amazonses.com ~all",
			status: domain.CheckMismatch, code: dnscheck.CodeWrongValue, fix: "v=spf1 include:amazonses.com ~all"},
		{name: "include missing", record: "v=spf1 include:_spf.other.example.com ~all", zone: []string{`_spf.other 300 IN TXT "v=spf1 ip4:192.0.2.0/24 -all"`},
			status: domain.CheckMismatch, code: dnscheck.CodeWrongValue, fix: "v=spf1 include:_spf.other.example.com include:amazonses.com ~all"},
		{name: "neutral record", record: "v=spf1 ?all", status: domain.CheckMismatch, code: dnscheck.CodeWrongValue, fix: "v=spf1 include:amazonses.com ?all"},
		{name: "three void lookups", record: "v=spf1 a:v1.example.com a:v2.example.com a:v3.example.com include:amazonses.com ~all",
			status: domain.CheckMismatch, code: dnscheck.CodeSPFVoidLookups, fix: "v=spf1 include:amazonses.com a:v1.example.com a:v2.example.com a:v3.example.com ~all"},
		{name: "address excluded before the include", record: "v=spf1 -ip4:199.255.192.0/22 include:amazonses.com ~all",
			status: domain.CheckMismatch, code: dnscheck.CodeWrongValue, fix: "v=spf1 include:amazonses.com -ip4:199.255.192.0/22 ~all"},
		{name: "redirect without the include", record: "v=spf1 redirect=_spf.example.com", zone: []string{`_spf 300 IN TXT "v=spf1 ip4:192.0.2.0/24 -all"`},
			status: domain.CheckMismatch, code: dnscheck.CodeWrongValue, fix: "v=spf1 include:amazonses.com redirect=_spf.example.com"},
		{name: "broken include before ours", record: "v=spf1 include:bad.example.com include:amazonses.com ~all", zone: []string{`bad 300 IN TXT "v=spf1 ip4:999.0.0.1 -all"`},
			status: domain.CheckMismatch, code: dnscheck.CodeSPFSyntax, fix: "v=spf1 include:amazonses.com include:bad.example.com ~all"},
		{name: "pass all", record: "v=spf1 +all", status: domain.CheckVerified, code: dnscheck.CodeSPFPermissive, fix: "v=spf1 include:amazonses.com ~all"},
		{name: "pass all after the include", record: "v=spf1 include:amazonses.com all", status: domain.CheckVerified, code: dnscheck.CodeSPFPermissive, fix: "v=spf1 include:amazonses.com ~all"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTree(t)
			for _, l := range tc.zone {
				tr.example.MustAdd(l)
			}
			if err := tr.example.AddTXT("mail.example.com.", tc.record); err != nil {
				t.Fatal(err)
			}
			check := func() domain.Observation {
				return tr.checker(t, dnscheck.ModeAuthoritative).Check(context.Background(), []dnscheck.Expectation{exp(domain.KeyMailFromSPF, "example.com")})[0]
			}
			o := check()
			if o.Status != tc.status || len(o.Problems) == 0 || o.Problems[0].Code != tc.code {
				t.Fatalf("%q: got %s %v, want %s with %s first: %+v", tc.record, o.Status, codes(o), tc.status, tc.code, o.Problems)
			}
			t.Log(o.Problems[0].Message)
			m := spfFixRecord.FindStringSubmatch(o.Problems[0].Message)
			if m == nil {
				t.Fatalf("message quotes no record to publish: %s", o.Problems[0].Message)
			}
			if m[1] != tc.fix {
				t.Errorf("fix %q, want %q", m[1], tc.fix)
			}
			if strings.Contains(m[1], "+all") || strings.HasSuffix(m[1], " all") {
				t.Errorf("fix %q keeps a record that passes every server", m[1])
			}
			tr.example.Remove("mail.example.com.", dns.TypeTXT)
			if err := tr.example.AddTXT("mail.example.com.", m[1]); err != nil {
				t.Fatal(err)
			}
			// Warnings about servers other than the platform's may stay (three void
			// lookups still fail other senders); a record that passes everyone may not.
			if o := check(); o.Status != domain.CheckVerified || slices.Contains(codes(o), dnscheck.CodeSPFPermissive) {
				t.Fatalf("the fix %q, published, gives %s %+v", m[1], o.Status, o.Problems)
			}
		})
	}
}

// TestSPFPlatformUnknownIsTemporary checks a record that names the platform's
// networks itself (a flattened include): while the platform's own record cannot be
// read, the verdict is a temporary failure, never a mismatch judged against a
// stand-in for the platform's servers; once it can, the record verifies.
func TestSPFPlatformUnknownIsTemporary(t *testing.T) {
	tr := newTree(t)
	if err := tr.example.AddTXT("mail.example.com.", "v=spf1 ip4:199.255.192.0/22 ip4:199.127.232.0/22 -all"); err != nil {
		t.Fatal(err)
	}
	check := func() domain.Observation {
		return tr.checker(t, dnscheck.ModeAuthoritative).Check(context.Background(), []dnscheck.Expectation{exp(domain.KeyMailFromSPF, "example.com")})[0]
	}
	tr.tld.SetFault("amazonses.com.", dns.TypeTXT, dnstest.ServFail)
	if o := check(); o.Status != domain.CheckTemporaryFailure {
		t.Errorf("platform record unreadable: status %s %v, want temporary_failure", o.Status, o.Problems)
	}
	tr.tld.ClearFaults()
	if o := check(); o.Status != domain.CheckVerified {
		t.Errorf("platform record readable: status %s %v, want verified", o.Status, o.Problems)
	}
}
