package dnscheck_test

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/domaind/domaind/internal/dnscheck"
	"github.com/domaind/domaind/internal/domain"
)

// dmarcFixRecord finds the record a DMARC problem's message tells the customer to publish.
var dmarcFixRecord = regexp.MustCompile(`publish "([^"]+)"`)

// TestDMARCVerdicts checks DMARC records receivers apply although RFC 7489 frowns on them
// (verified, with a warning whose record, published literally, verifies without one), and
// records receivers discard, over the wire from the test root.
func TestDMARCVerdicts(t *testing.T) {
	for _, tc := range []struct {
		name   string
		record string
		status domain.CheckStatus
		codes  []domain.ProblemCode
	}{
		{"rua without p", "v=DMARC1; rua=mailto:d@example.com", domain.CheckVerified, []domain.ProblemCode{dnscheck.CodeDMARCNoPolicy}},
		{"invalid p with rua", "v=DMARC1; p=maybe; rua=mailto:d@example.com", domain.CheckVerified, []domain.ProblemCode{dnscheck.CodeDMARCTagIgnored, dnscheck.CodeDMARCNoPolicy}},
		{"p after other tags", "v=DMARC1; rua=mailto:d@example.com; p=reject", domain.CheckVerified, []domain.ProblemCode{dnscheck.CodeDMARCTagOrder}},
		{"bad tag after p", "v=DMARC1; p=quarantine; pct=200", domain.CheckVerified, []domain.ProblemCode{dnscheck.CodeDMARCTagIgnored}},
		{"invalid p without rua", "v=DMARC1; p=maybe", domain.CheckMismatch, []domain.ProblemCode{dnscheck.CodeDMARCSyntax}},
		{"v not first", "p=none; v=DMARC1", domain.CheckMissing, []domain.ProblemCode{dnscheck.CodeNotFound}},
		{"version in lower case", "v=dmarc1; p=none", domain.CheckMismatch, []domain.ProblemCode{dnscheck.CodeDMARCSyntax}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTree(t)
			if err := tr.example.AddTXT("_dmarc.example.com.", tc.record); err != nil {
				t.Fatal(err)
			}
			check := func() domain.Observation {
				return tr.checker(t, dnscheck.ModeAuthoritative).Check(context.Background(), []dnscheck.Expectation{exp(domain.KeyDMARC, "example.com")})[0]
			}
			o := check()
			if o.Status != tc.status || !slices.Equal(codes(o), tc.codes) {
				t.Fatalf("%q: %s %v, want %s %v: %+v", tc.record, o.Status, codes(o), tc.status, tc.codes, o.Problems)
			}
			if o.Status != domain.CheckVerified {
				return
			}
			for _, p := range o.Problems {
				t.Log(p.Message)
				if !strings.Contains(p.Message, "RFC 7489 section 6.") {
					t.Errorf("warning quotes no RFC: %s", p.Message)
				}
			}
			m := dmarcFixRecord.FindStringSubmatch(o.Problems[0].Message)
			if m == nil {
				t.Fatalf("no record to publish in %q", o.Problems[0].Message)
			}
			tr.example.Remove("_dmarc.example.com.", dns.TypeTXT)
			if err := tr.example.AddTXT("_dmarc.example.com.", m[1]); err != nil {
				t.Fatal(err)
			}
			if o := check(); o.Status != domain.CheckVerified || len(o.Problems) != 0 {
				t.Fatalf("the fix %q, published, gives %s %+v", m[1], o.Status, o.Problems)
			}
		})
	}
}

// TestDMARCInheritedAdviceKeepsStrength checks that the advice for a subdomain that inherits
// its organizational domain's policy never proposes a weaker one.
func TestDMARCInheritedAdviceKeepsStrength(t *testing.T) {
	for _, tc := range []struct {
		org    string
		advice string
	}{
		{"v=DMARC1; p=none", `"v=DMARC1; p=none;"`},
		{"v=DMARC1; p=quarantine", `"v=DMARC1; p=quarantine;"`},
		{"v=DMARC1; p=reject; sp=quarantine", `"v=DMARC1; p=quarantine;"`},
		{"v=DMARC1; p=none; sp=reject", `"v=DMARC1; p=reject;"`},
		// RFC 7489 section 6.6.3: a record without p= but with reports applies as p=none.
		{"v=DMARC1; rua=mailto:d@example.com", `"v=DMARC1; p=none;"`},
	} {
		tr := newTree(t)
		if err := tr.example.AddTXT("_dmarc.example.com.", tc.org); err != nil {
			t.Fatal(err)
		}
		o := tr.checker(t, dnscheck.ModeAuthoritative).Check(context.Background(), []dnscheck.Expectation{exp(domain.KeyDMARC, "news.example.com")})[0]
		if o.Status != domain.CheckVerified || len(o.Problems) != 1 || o.Problems[0].Code != dnscheck.CodeDMARCInherited {
			t.Fatalf("%q: %s %+v", tc.org, o.Status, o.Problems)
		}
		if !strings.Contains(o.Problems[0].Message, "publish "+tc.advice) || !strings.Contains(o.Problems[0].Message, "no action is needed") {
			t.Errorf("%q: advice %q, want it to propose %s", tc.org, o.Problems[0].Message, tc.advice)
		}
	}
}
