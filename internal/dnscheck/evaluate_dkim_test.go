package dnscheck_test

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/domaind/domaind/internal/dnscheck"
	"github.com/domaind/domaind/internal/dnstest"
	"github.com/domaind/domaind/internal/domain"
)

// dkimKeys are the fixture keys of testdata/dkim in the forms the DKIM cases publish.
type dkimKeys struct {
	spki, pkcs1, other, ed string
	record                 string // the record domaind generates for spki
}

func loadDKIMKeys(t *testing.T) dkimKeys {
	t.Helper()
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join("testdata", "dkim", name+".b64"))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	k := dkimKeys{spki: read("rsa2048.spki"), other: otherKey, ed: read("ed25519.raw")}
	der, err := base64.StdEncoding.DecodeString(k.spki)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		t.Fatal(err)
	}
	k.pkcs1 = base64.StdEncoding.EncodeToString(x509.MarshalPKCS1PublicKey(pub.(*rsa.PublicKey)))
	k.record = "v=DKIM1; k=rsa; p=" + k.spki
	return k
}

// dkimCase is one published selector and the verdict a receiver reaches on it for a
// signature made with the expected key (a=rsa-sha256).
type dkimCase struct {
	name   string
	zone   []string // zone-file lines of example.com (and provider.net)
	status domain.CheckStatus
	codes  []domain.ProblemCode // the problems' codes, in order
}

func dkimCases(k dkimKeys) []dkimCase {
	const at = `autosend._domainkey 300 IN TXT `
	q := func(v string) string { return at + `"` + v + `"` }
	V, M, X := domain.CheckVerified, domain.CheckMismatch, domain.CheckMissing
	wrong := func(code domain.ProblemCode) []domain.ProblemCode {
		return []domain.ProblemCode{dnscheck.CodeWrongValue, code}
	}
	return []dkimCase{
		{"generated record", []string{q(k.record)}, V, nil},
		// RFC 6376 section 3.6.2.2: the strings of one TXT record are concatenated.
		{"split strings", []string{at + `"v=DKIM1; k=rsa; p=` + k.spki[:200] + `" "` + k.spki[200:] + `"`}, V, nil},
		// RFC 6376 section 3.6.1: whitespace in p= is ignored.
		{"spaces in p", []string{q("v=DKIM1; k=rsa; p=" + k.spki[:64] + " " + k.spki[64:128] + "\t" + k.spki[128:])}, V, nil},
		{"p only", []string{q("p=" + k.spki)}, V, nil},
		{"v not first", []string{q("k=rsa; v=DKIM1; p=" + k.spki)}, V, []domain.ProblemCode{dnscheck.CodeDKIMNotStandard}},
		// RFC 6376 section 3.2: tag names are case-sensitive, so V= is an unknown tag.
		{"uppercase V", []string{q("V=DKIM1; k=rsa; p=" + k.spki)}, V, nil},
		{"h lists sha256", []string{q("v=DKIM1; h=sha1:sha256; k=rsa; p=" + k.spki)}, V, nil},
		{"s email list", []string{q("v=DKIM1; s=email:tlsrpt; p=" + k.spki)}, V, nil},
		{"s star", []string{q("v=DKIM1; s=*; p=" + k.spki)}, V, nil},
		{"t=s", []string{q("v=DKIM1; t=s; p=" + k.spki)}, V, nil},
		{"testing", []string{q("v=DKIM1; t=y; p=" + k.spki)}, V, []domain.ProblemCode{dnscheck.CodeDKIMTesting}},
		{"tag name with a hyphen", []string{q("v=DKIM1; k=rsa; p=" + k.spki + "; x-future=1")}, V, []domain.ProblemCode{dnscheck.CodeDKIMNotStandard}},
		{"cname to the key", []string{`autosend._domainkey 300 IN CNAME key1.dkim.provider.net.`, `key1.dkim.provider.net. 300 IN TXT "` + k.record + `"`}, V, nil},

		{"missing", nil, X, []domain.ProblemCode{dnscheck.CodeNotFound}},
		{"bare key", []string{q(k.spki)}, M, wrong(dnscheck.CodeDKIMSyntax)},
		{"uppercase P", []string{q("v=DKIM1; k=rsa; P=" + k.spki)}, M, wrong(dnscheck.CodeDKIMSyntax)},
		{"uppercase rsa", []string{q("v=DKIM1; k=RSA; p=" + k.spki)}, M, wrong(dnscheck.CodeDKIMSyntax)},
		{"version 2", []string{q("v=DKIM2; k=rsa; p=" + k.spki)}, M, wrong(dnscheck.CodeDKIMSyntax)},
		{"revoked", []string{q("v=DKIM1; k=rsa; p=")}, M, wrong(dnscheck.CodeDKIMKeyMismatch)},
		{"other key", []string{q("v=DKIM1; k=rsa; p=" + k.other)}, M, wrong(dnscheck.CodeDKIMKeyMismatch)},
		{"h sha1 only", []string{q("v=DKIM1; h=sha1; k=rsa; p=" + k.spki)}, M, wrong(dnscheck.CodeDKIMRestricted)},
		{"s tlsrpt only", []string{q("v=DKIM1; s=tlsrpt; p=" + k.spki)}, M, wrong(dnscheck.CodeDKIMRestricted)},
		{"ed25519 key", []string{q("v=DKIM1; k=ed25519; p=" + k.ed)}, M, wrong(dnscheck.CodeDKIMRestricted)},
		{"quoted", []string{at + `"\"` + k.record[:200] + `" "` + k.record[200:] + `\""`}, M, []domain.ProblemCode{dnscheck.CodeQuotedValue}},
		// RFC 6376 section 3.3.1 names the PKCS#1 RSAPublicKey form, but OpenDKIM cannot read it.
		{"pkcs1 key", []string{q("v=DKIM1; k=rsa; p=" + k.pkcs1)}, M, wrong(dnscheck.CodeDKIMKeyFormat)},
		// OpenDKIM fails a selector with two records even when both publish the key.
		{"two records of the same key", []string{q(k.record), q("v=DKIM1; p=" + k.spki)}, M, []domain.ProblemCode{dnscheck.CodeDKIMMultiple}},
		{"ours and another key", []string{q(k.record), q("v=DKIM1; k=rsa; p=" + k.other)}, M,
			[]domain.ProblemCode{dnscheck.CodeDKIMMultiple, dnscheck.CodeDKIMKeyMismatch}},
		{"ours and a bare key", []string{q(k.record), q(k.spki)}, M, []domain.ProblemCode{dnscheck.CodeDKIMMultiple, dnscheck.CodeDKIMSyntax}},
		{"two wrong records", []string{q("v=DKIM1; k=rsa; p="), q("v=DKIM1; k=rsa; p=" + k.other)}, M,
			[]domain.ProblemCode{dnscheck.CodeDKIMMultiple, dnscheck.CodeDKIMKeyMismatch, dnscheck.CodeDKIMKeyMismatch}},
		{"cname to another key", []string{`autosend._domainkey 300 IN CNAME key1.dkim.provider.net.`, `key1.dkim.provider.net. 300 IN TXT "v=DKIM1; p=` + k.other + `"`}, M,
			[]domain.ProblemCode{dnscheck.CodeCNAMEConflict, dnscheck.CodeWrongValue, dnscheck.CodeDKIMKeyMismatch}},
	}
}

// publishDKIMCase serves the case's zone lines in a fresh tree and returns the tree
// and the checker's verdict on the generated record's expectation.
func publishDKIMCase(t *testing.T, k dkimKeys, tc dkimCase) (*tree, *dnstest.Zone, dnscheck.Expectation) {
	t.Helper()
	tr := newTree(t)
	prov := tr.addZone(t, "provider.net.", tr.spare)
	for _, l := range tc.zone {
		if strings.HasPrefix(l, "key1.dkim.provider.net.") {
			prov.MustAdd(l)
		} else {
			tr.example.MustAdd(l)
		}
	}
	e := exp(domain.KeyDKIM, "example.com")
	e.Value = k.record
	return tr, prov, e
}

// TestDKIMVerdicts checks the DKIM verdict of each published selector over the wire.
func TestDKIMVerdicts(t *testing.T) {
	k := loadDKIMKeys(t)
	for _, tc := range dkimCases(k) {
		t.Run(tc.name, func(t *testing.T) {
			tr, _, e := publishDKIMCase(t, k, tc)
			o := tr.checker(t, dnscheck.ModeAuthoritative).Check(context.Background(), []dnscheck.Expectation{e})[0]
			if o.Status != tc.status || !slices.Equal(codes(o), tc.codes) {
				t.Fatalf("got %s %v, want %s %v\n%+v", o.Status, codes(o), tc.status, tc.codes, o.Problems)
			}
			for _, p := range o.Problems {
				if strings.Contains(p.Message, "p="+k.spki) && !strings.Contains(p.Message, k.record) && !strings.Contains(p.Message, "keep only") {
					t.Errorf("%s quotes the key but not the whole record: %s", p.Code, p.Message)
				}
			}
		})
	}
}

// TestDKIMVerdictWithLegacyBareExpectation checks that a domain whose stored value is the
// bare key (as before records carried tags) is judged and fixed by the whole record.
func TestDKIMVerdictWithLegacyBareExpectation(t *testing.T) {
	k := loadDKIMKeys(t)
	tr, _, e := publishDKIMCase(t, k, dkimCase{zone: []string{`autosend._domainkey 300 IN TXT "p=` + k.spki + `"`}})
	e.Value = k.spki
	o := tr.checker(t, dnscheck.ModeAuthoritative).Check(context.Background(), []dnscheck.Expectation{e})[0]
	if o.Status != domain.CheckVerified {
		t.Fatalf("a record against a bare expectation: %+v", o)
	}
	tr.example.Remove("autosend._domainkey.example.com.", dns.TypeTXT)
	o = tr.checker(t, dnscheck.ModeAuthoritative).Check(context.Background(), []dnscheck.Expectation{e})[0]
	if o.Status != domain.CheckMissing || !strings.Contains(o.Problems[0].Message, strconv.Quote(k.record)) {
		t.Fatalf("missing record: %+v, want the fix to quote %q", o, k.record)
	}
}

// quotedValue finds the value a fix sentence tells the customer to publish: the Go-quoted
// string after "with the value", "should be" or "value with".
var quotedValue = regexp.MustCompile(`(?:with the value|should be|value with) ("(?:[^"\\]|\\.)*")`)

// TestDKIMFixesVerify takes every failing DKIM case, does what each of its problems says
// (publish the quoted value as the only TXT record, delete the other records, remove the
// CNAME, remove the quotes), checks again over the wire and expects a verified record:
// a fix that does not lead to a verified record would send the customer in circles.
func TestDKIMFixesVerify(t *testing.T) {
	k := loadDKIMKeys(t)
	const name = "autosend._domainkey.example.com."
	for _, tc := range dkimCases(k) {
		if tc.status == domain.CheckVerified {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			tr, _, e := publishDKIMCase(t, k, tc)
			c := tr.checker(t, dnscheck.ModeAuthoritative)
			o := c.Check(context.Background(), []dnscheck.Expectation{e})[0]
			if o.Status == domain.CheckVerified {
				t.Fatalf("the case verifies before any fix: %+v", o)
			}
			// The CNAME_CONFLICT and QUOTED_VALUE fixes are actions without a value;
			// every other problem quotes the value to publish.
			var removeCNAME, unquote bool
			var values []string
			for _, p := range o.Problems {
				switch p.Code {
				case dnscheck.CodeCNAMEConflict:
					removeCNAME = strings.Contains(p.Message, "remove the CNAME")
					continue
				case dnscheck.CodeQuotedValue:
					unquote = strings.Contains(p.Message, "remove them")
					continue
				}
				m := quotedValue.FindStringSubmatch(p.Message)
				if m == nil {
					t.Errorf("%s gives no value to publish: %s", p.Code, p.Message)
					continue
				}
				v, err := strconv.Unquote(m[1])
				if err != nil {
					t.Fatalf("%s: %v", p.Code, err)
				}
				values = append(values, v)
			}
			if len(values) == 0 && !unquote {
				t.Fatalf("no problem says what to publish: %+v", o.Problems)
			}
			apply := []func(){}
			for _, v := range values {
				apply = append(apply, func() {
					tr.example.Remove(name, dns.TypeTXT)
					if err := tr.example.AddRR(dnstest.NewTXT(name, 300, v)); err != nil {
						t.Fatal(err)
					}
				})
			}
			if unquote {
				apply = append(apply, func() {
					old := tr.example.Records(name, dns.TypeTXT)
					tr.example.Remove(name, dns.TypeTXT)
					for _, rr := range old {
						v := strings.Join(rr.(*dns.TXT).Txt, "")
						v = strings.TrimSuffix(strings.TrimPrefix(v, `\"`), `\"`)
						if err := tr.example.AddRR(dnstest.NewTXT(name, 300, v)); err != nil {
							t.Fatal(err)
						}
					}
				})
			}
			for i, fix := range apply {
				if removeCNAME {
					tr.example.Remove(name, dns.TypeCNAME)
				}
				fix()
				got := c.Check(context.Background(), []dnscheck.Expectation{e})[0]
				if got.Status != domain.CheckVerified {
					t.Errorf("after fix %d of %v the record is %s: %+v", i+1, codes(o), got.Status, got.Problems)
				}
			}
		})
	}
}
