package main

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/domaind/domaind/internal/dnstest"
	"github.com/domaind/domaind/internal/domain"
)

const (
	checkToken = "autosend-verify-0123456789abcdef0123456789abcdef"
	checkMX    = "feedback-smtp.us-east-1.amazonses.com"
)

// dkimTestKey returns a fresh RSA public key as the base64 DER SubjectPublicKeyInfo
// domaind publishes.
func dkimTestKey(t *testing.T) string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(der)
}

// publishedZone starts a DNS server for example.com whose zone holds every record
// domaind check looks for, correctly; a test breaks what it checks through both.
func publishedZone(t *testing.T, key string) (*dnstest.Server, *dnstest.Zone) {
	t.Helper()
	z := dnstest.NewZone("example.com.")
	srv := dnstest.Start(t, z)
	z.MustAdd(`_autosend-verify.example.com. 300 IN TXT "` + checkToken + `"`)
	if err := z.AddTXT("autosend._domainkey.example.com.", "v=DKIM1; k=rsa; p="+key); err != nil {
		t.Fatal(err)
	}
	z.MustAdd("mail.example.com. 300 IN MX 10 " + checkMX + ".")
	z.MustAdd(`mail.example.com. 300 IN TXT "v=spf1 include:amazonses.com ~all"`)
	z.MustAdd(`_dmarc.example.com. 300 IN TXT "v=DMARC1; p=none;"`)
	return srv, z
}

// checkArgs returns a check of example.com against srv, the domain first so that
// every run also exercises flags after it, expecting the values publishedZone publishes.
func checkArgs(srv *dnstest.Server, key string, extra ...string) []string {
	return append([]string{"check", "example.com",
		"--resolvers", srv.Addr(), "--dns-mode", "recursive", "--dns-timeout", "300ms",
		"--ownership-token", checkToken, "--dkim-key", key,
		"--expect-mx", checkMX, "--expect-spf-include", "amazonses.com"}, extra...)
}

// exitOf returns the exit status run's error stands for.
func exitOf(t *testing.T, err error) int {
	t.Helper()
	var ec exitCode
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ec):
		return int(ec)
	}
	t.Fatalf("run returned %v, want nil or an exit code", err)
	return -1
}

// row matches the table row of a record with the given status.
func row(role, name, typ, status string) *regexp.Regexp {
	return regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(role) + `\s+` + regexp.QuoteMeta(name) + `\s+` + typ + `\s+` + status + `\s`)
}

var checkRows = []struct{ role, name, typ string }{
	{"ownership", "_autosend-verify.example.com", "TXT"},
	{"dkim", "autosend._domainkey.example.com", "TXT"},
	{"mail_from_mx", "mail.example.com", "MX"},
	{"mail_from_spf", "mail.example.com", "TXT"},
	{"dmarc", "_dmarc.example.com", "TXT"},
}

func TestCheckAllGood(t *testing.T) {
	key := dkimTestKey(t)
	srv, _ := publishedZone(t, key)

	out, errOut, err := runCmd(t, checkArgs(srv, key)...)
	if code := exitOf(t, err); code != 0 {
		t.Fatalf("exit %d, want 0\n%s%s", code, out, errOut)
	}
	if !strings.HasPrefix(out, "RECORD") {
		t.Errorf("output does not start with the table header:\n%s", out)
	}
	for _, r := range checkRows {
		if !row(r.role, r.name, r.typ, "verified").MatchString(out) {
			t.Errorf("no verified row for %s:\n%s", r.role, out)
		}
	}
	// The long DKIM value is shortened in its cell, and quoted.
	if strings.Contains(out, key) || !strings.Contains(out, `"v=DKIM1; k=rsa; p=`) || !strings.Contains(out, "…") {
		t.Errorf("the DKIM key is not shown shortened:\n%s", out)
	}
	if !strings.Contains(out, `"10 `+checkMX+`"`) {
		t.Errorf("the MX found is not shown:\n%s", out)
	}
	// With nothing wrong and the one server agreeing, there are no details.
	if strings.Contains(out, "resolver ") || strings.Contains(out, ": verified") {
		t.Errorf("details printed for verified records:\n%s", out)
	}
	if !strings.Contains(out, "all 5 records verified") {
		t.Errorf("no summary:\n%s", out)
	}
	if errOut != "" {
		t.Errorf("stderr not empty: %s", errOut)
	}
}

// TestCheckAnyValue checks that without expected values any valid record of each
// kind verifies, and that without a token the ownership record is not checked.
func TestCheckAnyValue(t *testing.T) {
	z := dnstest.NewZone("example.com.")
	srv := dnstest.Start(t, z)
	if err := z.AddTXT("autosend._domainkey.example.com.", "v=DKIM1; k=rsa; p="+dkimTestKey(t)); err != nil {
		t.Fatal(err)
	}
	z.MustAdd(`mail.example.com. 300 IN MX 5 mx.other.example.`)
	z.MustAdd(`mail.example.com. 300 IN TXT "v=spf1 include:_spf.other.example -all"`)
	z.MustAdd(`_dmarc.example.com. 300 IN TXT "v=DMARC1; p=reject"`)

	out, errOut, err := runCmd(t, "check", "--resolvers", srv.Addr(), "--dns-mode", "recursive", "example.com")
	if code := exitOf(t, err); code != 0 {
		t.Fatalf("exit %d, want 0\n%s%s", code, out, errOut)
	}
	for _, r := range checkRows[1:] {
		if !row(r.role, r.name, r.typ, "verified").MatchString(out) {
			t.Errorf("no verified row for %s:\n%s", r.role, out)
		}
	}
	if regexp.MustCompile(`(?m)^ownership\s`).MatchString(out) || !strings.Contains(out, "--ownership-token") {
		t.Errorf("ownership checked without a token, or the skip not explained:\n%s", out)
	}
	if n := srv.Count("_autosend-verify.example.com.", dns.TypeTXT, ""); n != 0 {
		t.Errorf("ownership name asked %d times without a token", n)
	}
}

// TestCheckExitStatus breaks the published records in one way each and checks the
// exit status, the failing row and the fix printed.
func TestCheckExitStatus(t *testing.T) {
	key := dkimTestKey(t)
	for _, tc := range []struct {
		name   string
		breaks func(srv *dnstest.Server, z *dnstest.Zone)
		exit   int
		rows   []string // regexps that must match the output
	}{
		{
			name:   "missing DMARC",
			breaks: func(_ *dnstest.Server, z *dnstest.Zone) { z.Remove("_dmarc.example.com.", dns.TypeTXT) },
			exit:   1,
			rows: []string{
				row("dmarc", "_dmarc.example.com", "TXT", "missing").String(),
				row("dkim", "autosend._domainkey.example.com", "TXT", "verified").String(),
				`(?m)^  NOT_FOUND: No TXT record was found at _dmarc\.example\.com`,
				`(?m)^  resolver 127\.0\.0\.1:\d+: missing$`,
				`1 of 5 records missing or wrong`,
			},
		},
		{
			name: "wrong MX host",
			breaks: func(_ *dnstest.Server, z *dnstest.Zone) {
				z.Remove("mail.example.com.", dns.TypeMX)
				z.MustAdd("mail.example.com. 300 IN MX 10 mx.other.example.")
			},
			exit: 1,
			rows: []string{
				row("mail_from_mx", "mail.example.com", "MX", "mismatch").String(),
				`"10 mx\.other\.example"`,
				`(?m)^  WRONG_VALUE: .*mail\.example\.com`,
			},
		},
		{
			name:   "SERVFAIL everywhere",
			breaks: func(srv *dnstest.Server, _ *dnstest.Zone) { srv.SetFault("", 0, dnstest.ServFail) },
			exit:   2,
			rows: []string{
				row("dkim", "autosend._domainkey.example.com", "TXT", "temporary_failure").String(),
				row("dmarc", "_dmarc.example.com", "TXT", "temporary_failure").String(),
				`(?m)^  SERVFAIL: `,
				`5 of 5 records could not be checked`,
			},
		},
		{
			name: "SERVFAIL for one record",
			breaks: func(srv *dnstest.Server, _ *dnstest.Zone) {
				srv.SetFault("_dmarc.example.com.", dns.TypeTXT, dnstest.ServFail)
			},
			exit: 2,
			rows: []string{
				row("dmarc", "_dmarc.example.com", "TXT", "temporary_failure").String(),
				row("ownership", "_autosend-verify.example.com", "TXT", "verified").String(),
			},
		},
		{
			name: "missing outranks SERVFAIL",
			breaks: func(srv *dnstest.Server, z *dnstest.Zone) {
				srv.SetFault("_dmarc.example.com.", dns.TypeTXT, dnstest.ServFail)
				z.Remove("_autosend-verify.example.com.", dns.TypeTXT)
			},
			exit: 1,
			rows: []string{
				row("ownership", "_autosend-verify.example.com", "TXT", "missing").String(),
				row("dmarc", "_dmarc.example.com", "TXT", "temporary_failure").String(),
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, z := publishedZone(t, key)
			tc.breaks(srv, z)
			out, errOut, err := runCmd(t, checkArgs(srv, key)...)
			if code := exitOf(t, err); code != tc.exit {
				t.Fatalf("exit %d, want %d\n%s%s", code, tc.exit, out, errOut)
			}
			for _, re := range tc.rows {
				if !regexp.MustCompile(re).MatchString(out) {
					t.Errorf("output does not match %s:\n%s", re, out)
				}
			}
		})
	}
}

// TestCheckJSON checks the --json shape and that it agrees with DNS.
func TestCheckJSON(t *testing.T) {
	key := dkimTestKey(t)
	srv, z := publishedZone(t, key)
	z.Remove("_dmarc.example.com.", dns.TypeTXT)

	out, errOut, err := runCmd(t, checkArgs(srv, key, "--json")...)
	if code := exitOf(t, err); code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", code, out, errOut)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("--json output is not a JSON object: %v\n%s", err, out)
	}
	if got := slices.Sorted(maps.Keys(m)); !slices.Equal(got, []string{"domain", "records"}) || m["domain"] != "example.com" {
		t.Fatalf("top-level keys %v domain %v", got, m["domain"])
	}
	recs := m["records"].([]any)
	if len(recs) != len(checkRows) {
		t.Fatalf("%d records, want %d", len(recs), len(checkRows))
	}
	wantKeys := []string{"expected", "found", "key", "name", "problems", "propagation", "status", "type"}
	wantStatus := map[string]string{"ownership": "verified", "dkim": "verified", "mail_from_mx": "verified", "mail_from_spf": "verified", "dmarc": "missing"}
	wantExpected := map[string]any{
		"ownership": checkToken, "dkim": "v=DKIM1; k=rsa; p=" + key, "mail_from_mx": checkMX,
		"mail_from_spf": "v=spf1 include:amazonses.com ~all", "dmarc": nil,
	}
	for i, r := range recs {
		rm := r.(map[string]any)
		if got := slices.Sorted(maps.Keys(rm)); !slices.Equal(got, wantKeys) {
			t.Fatalf("record %d keys %v, want %v", i, got, wantKeys)
		}
		k := rm["key"].(string)
		if rm["key"] != checkRows[i].role || rm["name"] != checkRows[i].name || rm["type"] != checkRows[i].typ {
			t.Errorf("record %d: %v %v %v, want %+v", i, rm["key"], rm["name"], rm["type"], checkRows[i])
		}
		if rm["status"] != wantStatus[k] || rm["expected"] != wantExpected[k] {
			t.Errorf("%s: status %v expected %v, want %s %v", k, rm["status"], rm["expected"], wantStatus[k], wantExpected[k])
		}
		for _, f := range []string{"found", "problems", "propagation"} {
			if _, ok := rm[f].([]any); !ok {
				t.Errorf("%s: %s is %v, want an array", k, f, rm[f])
			}
		}
	}
	dmarc := recs[4].(map[string]any)
	probs := dmarc["problems"].([]any)
	if len(probs) == 0 || len(dmarc["found"].([]any)) != 0 {
		t.Fatalf("dmarc: %v", dmarc)
	}
	p := probs[0].(map[string]any)
	if got := slices.Sorted(maps.Keys(p)); !slices.Equal(got, []string{"code", "message"}) || p["code"] != "NOT_FOUND" {
		t.Errorf("dmarc problem %v", p)
	}
	if own := recs[0].(map[string]any)["found"].([]any); !slices.Equal(own, []any{checkToken}) {
		t.Errorf("ownership found %v", own)
	}
}

// TestPrintedValuesAreSafe checks that values from DNS reach a terminal shortened
// and with control characters escaped or replaced, whatever the DNS library did.
func TestPrintedValuesAreSafe(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{nil, "-"},
		{[]string{"v=DMARC1; p=none;"}, `"v=DMARC1; p=none;"`},
		{[]string{"10 a.example", "20 b.example"}, `"10 a.example", "20 b.example"`},
		{[]string{"\x1b[2Jv=spf1 -all"}, `"\x1b[2Jv=spf1 -all"`},
		{[]string{strings.Repeat("é", 45)}, `"` + strings.Repeat("é", 40) + `…"`},
	} {
		if got := foundList(tc.in); got != tc.want {
			t.Errorf("foundList(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
	// Problems and servers go through the display rule the dashboard uses.
	if got := domain.Printable("bad\x1b[2J\r\nline ünïcode\u202e"); got != `bad\x1b[2J\x0d\x0aline ünïcode\u202e` {
		t.Errorf("Printable = %q", got)
	}
}

// TestCheckCleansOutput publishes a value holding a terminal escape sequence and
// checks that it reaches neither output raw.
func TestCheckCleansOutput(t *testing.T) {
	key := dkimTestKey(t)
	srv, z := publishedZone(t, key)
	z.Remove("mail.example.com.", dns.TypeTXT)
	z.MustAdd(`mail.example.com. 300 IN TXT "v=spf1 \027[2J include:amazonses.com ~all"`)
	for _, extra := range [][]string{nil, {"--json"}} {
		out, errOut, err := runCmd(t, checkArgs(srv, key, extra...)...)
		if code := exitOf(t, err); code != 1 {
			t.Fatalf("%v: exit %d, want 1 for the broken SPF record\n%s%s", extra, code, out, errOut)
		}
		if strings.Contains(out+errOut, "\x1b") {
			t.Errorf("%v: an escape character from DNS reached the output:\n%q", extra, out)
		}
	}
}

func TestCheckUsage(t *testing.T) {
	z := dnstest.NewZone("example.com.")
	srv := dnstest.Start(t, z)
	dnsArgs := []string{"--resolvers", srv.Addr(), "--dns-mode", "recursive"}
	for _, tc := range []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"scheme", []string{"https://example.com"}, "must not include a scheme"},
		{"public suffix", []string{"co.uk"}, "public_suffix"},
		{"IP address", []string{"192.0.2.1"}, "not an IP address"},
		{"no domain", nil, "exactly one DOMAIN"},
		{"two domains", []string{"example.com", "example.org"}, "exactly one DOMAIN"},
		{"unknown flag", []string{"example.com", "--nope"}, "not defined: -nope"},
		{"DKIM record with a broken key", []string{"example.com", "--dkim-key", "v=DKIM1; k=rsa; p=MIIB"}, "--dkim-key"},
		{"broken bare key", []string{"example.com", "--dkim-key", "MIIBnotakey"}, "--dkim-key"},
		{"revoked DKIM record", []string{"example.com", "--dkim-key", "v=DKIM1; k=rsa; p="}, "--dkim-key"},
		{"bad selector", []string{"example.com", "--dkim-selector", "a b"}, "--dkim-selector"},
		{"bad MX", []string{"example.com", "--expect-mx", "not a host"}, "--expect-mx"},
		{"bad SPF include", []string{"example.com", "--expect-spf-include", "amazonses"}, "--expect-spf-include"},
		{"bad mode", []string{"example.com", "--dns-mode", "sideways"}, "--dns-mode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The case's own arguments come last, so that its flags win.
			args := append(append([]string{"check"}, dnsArgs...), tc.args...)
			out, errOut, err := runCmd(t, args...)
			if code := exitOf(t, err); code != 2 {
				t.Fatalf("exit %d, want 2\n%s%s", code, out, errOut)
			}
			if !strings.Contains(errOut, tc.want) {
				t.Errorf("stderr does not say %q:\n%s", tc.want, errOut)
			}
			if out != "" {
				t.Errorf("stdout not empty on a usage error: %s", out)
			}
		})
	}
	if q := srv.Queries(); len(q) != 0 {
		t.Errorf("usage errors asked DNS %d times", len(q))
	}
	if _, _, err := runCmd(t, "check", "-h"); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("check -h returned %v, want flag.ErrHelp", err)
	}
}

func TestParseInterspersed(t *testing.T) {
	for _, tc := range []struct {
		args      []string
		pos       []string
		json      bool
		resolvers string
	}{
		{[]string{"example.com"}, []string{"example.com"}, false, ""},
		{[]string{"--json", "example.com"}, []string{"example.com"}, true, ""},
		{[]string{"example.com", "--json"}, []string{"example.com"}, true, ""},
		{[]string{"a", "--resolvers", "127.0.0.1:53", "b", "-json"}, []string{"a", "b"}, true, "127.0.0.1:53"},
		{[]string{"a", "--", "--json"}, []string{"a", "--json"}, false, ""},
		{[]string{"--resolvers", "--", "a"}, []string{"a"}, false, "--"},
		{nil, nil, false, ""},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(new(bytes.Buffer))
		j := fs.Bool("json", false, "")
		r := fs.String("resolvers", "", "")
		pos, err := parseInterspersed(fs, tc.args)
		if err != nil || !slices.Equal(pos, tc.pos) || *j != tc.json || *r != tc.resolvers {
			t.Errorf("%q: pos %q json %v resolvers %q err %v, want %q %v %q", tc.args, pos, *j, *r, err, tc.pos, tc.json, tc.resolvers)
		}
	}
}

func TestCheckExit(t *testing.T) {
	for _, tc := range []struct {
		statuses []string
		want     int
	}{
		{[]string{"verified", "verified"}, 0},
		{[]string{"verified", "missing"}, 1},
		{[]string{"mismatch", "verified"}, 1},
		{[]string{"temporary_failure", "verified"}, 2},
		{[]string{"temporary_failure", "missing"}, 1},
		{[]string{"missing", "temporary_failure"}, 1},
		{[]string{"unchecked"}, 2},
	} {
		var recs []checkRecord
		for _, s := range tc.statuses {
			recs = append(recs, checkRecord{CheckView: domain.CheckView{Status: s}})
		}
		if got := checkExit(recs); got != tc.want {
			t.Errorf("checkExit(%v) = %d, want %d", tc.statuses, got, tc.want)
		}
	}
}

// TestCheckInbound checks the receiving side with --inbound: a competing MX host
// fails it with COMPETING_MX, the platform's MX alone verifies it, and without
// --inbound the MX at the domain is not asked for.
func TestCheckInbound(t *testing.T) {
	z := dnstest.NewZone("example.com.")
	srv := dnstest.Start(t, z)
	if err := z.AddTXT("autosend._domainkey.example.com.", "v=DKIM1; k=rsa; p="+dkimTestKey(t)); err != nil {
		t.Fatal(err)
	}
	z.MustAdd(`mail.example.com. 300 IN MX 10 feedback-smtp.us-east-1.amazonses.com.`)
	z.MustAdd(`mail.example.com. 300 IN TXT "v=spf1 include:amazonses.com ~all"`)
	z.MustAdd(`_dmarc.example.com. 300 IN TXT "v=DMARC1; p=none"`)
	z.MustAdd("example.com. 300 IN MX 10 inbound-smtp.us-east-1.amazonaws.com.\nexample.com. 300 IN MX 20 mx.old.example.")
	args := []string{"check", "--resolvers", srv.Addr(), "--dns-mode", "recursive", "example.com"}

	if _, _, err := runCmd(t, args...); exitOf(t, err) != 0 {
		t.Fatalf("without --inbound the receiving side should not count: %v", err)
	}
	if n := srv.Count("example.com.", dns.TypeMX, ""); n != 0 {
		t.Errorf("the domain's MX was asked %d times without --inbound", n)
	}
	inbound := append(args, "--inbound", "--expect-inbound-mx", "inbound-smtp.us-east-1.amazonaws.com")
	out, _, err := runCmd(t, inbound...)
	if code := exitOf(t, err); code != 1 || !strings.Contains(out, "COMPETING_MX") || !strings.Contains(out, "mx.old.example") {
		t.Fatalf("competing MX: exit %d\n%s", code, out)
	}
	z.Remove("example.com.", dns.TypeMX)
	z.MustAdd("example.com. 300 IN MX 10 inbound-smtp.us-east-1.amazonaws.com.")
	out, _, err = runCmd(t, inbound...)
	if code := exitOf(t, err); code != 0 || !row("inbound_mx", "example.com", "MX", "verified").MatchString(out) {
		t.Fatalf("inbound MX alone: exit %d\n%s", code, out)
	}
}

// TestCheckDKIMKeyForms gives --dkim-key as the bare key, spaced out, as the whole
// record, and as a record holding the PKCS#1 form of the key; each expects the same key,
// so the published SubjectPublicKeyInfo record verifies, and a record of another key
// does not.
func TestCheckDKIMKeyForms(t *testing.T) {
	key := dkimTestKey(t)
	der, err := base64.StdEncoding.DecodeString(key)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1 := base64.StdEncoding.EncodeToString(x509.MarshalPKCS1PublicKey(pub.(*rsa.PublicKey)))
	srv, _ := publishedZone(t, key)
	for _, tc := range []struct {
		name, flag, expected string
		exit                 int
	}{
		{"bare key", key, "v=DKIM1; k=rsa; p=" + key, 0},
		{"spaced key", key[:60] + " " + key[60:], "v=DKIM1; k=rsa; p=" + key, 0},
		{"whole record", "v=DKIM1; k=rsa; p=" + key, "v=DKIM1; k=rsa; p=" + key, 0},
		// The PKCS#1 form names the same key; the record expected is the one every
		// verifier reads.
		{"record of the PKCS#1 form", "v=DKIM1; p=" + pkcs1, "v=DKIM1; k=rsa; p=" + key, 0},
		{"another key", dkimTestKey(t), "", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, err := runCmd(t, checkArgs(srv, tc.flag, "--json")...)
			if code := exitOf(t, err); code != tc.exit {
				t.Fatalf("exit %d, want %d\n%s%s", code, tc.exit, out, errOut)
			}
			var res checkOutput
			if err := json.Unmarshal([]byte(out), &res); err != nil {
				t.Fatal(err)
			}
			dkim := res.Records[1]
			if dkim.Key != "dkim" || (tc.exit == 0) != (dkim.Status == "verified") {
				t.Fatalf("dkim record %+v", dkim)
			}
			if tc.expected != "" && (dkim.Expected == nil || *dkim.Expected != tc.expected) {
				t.Errorf("expected %v, want %q", dkim.Expected, tc.expected)
			}
		})
	}
}
