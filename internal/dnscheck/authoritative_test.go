package dnscheck_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/domaind/domaind/internal/dnscheck"
	"github.com/domaind/domaind/internal/dnstest"
	"github.com/domaind/domaind/internal/domain"
)

// tree is a small DNS hierarchy on loopback: a root, "com." and "net." on one
// server, "example.com." on another, "amazonses.com." on the first, and a spare
// server for sub-zones.
type tree struct {
	net     *dnstest.Net
	tld     *dnstest.Server
	main    *dnstest.Server
	spare   *dnstest.Server
	example *dnstest.Zone
}

func newTree(t *testing.T) *tree {
	t.Helper()
	n := dnstest.StartNet(t, 3)
	s := n.Servers()
	tr := &tree{net: n, tld: s[0], main: s[1], spare: s[2]}
	tr.addZone(t, "com.", tr.tld)
	tr.addZone(t, "net.", tr.tld)
	ses := tr.addZone(t, "amazonses.com.", tr.tld)
	ses.MustAdd(`amazonses.com. 300 IN TXT "v=spf1 ip4:199.255.192.0/22 ip4:199.127.232.0/22 -all"`)
	tr.example = tr.addZone(t, "example.com.", tr.main)
	return tr
}

// addZone adds a zone of origin, served by server and delegated from the closest
// enclosing zone.
func (tr *tree) addZone(t *testing.T, origin string, server *dnstest.Server) *dnstest.Zone {
	t.Helper()
	z, err := tr.net.AddZone(origin, server)
	if err != nil {
		t.Fatal(err)
	}
	return z
}

func (tr *tree) checker(t *testing.T, mode dnscheck.Mode, resolvers ...string) *dnscheck.Checker {
	t.Helper()
	c, err := dnscheck.New(dnscheck.Config{
		Mode: mode, Resolvers: resolvers,
		RootHints: tr.net.RootIPs(), AuthoritativePort: tr.net.Port(),
		Timeout: 300 * time.Millisecond, Retries: 1, AllowPrivate: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// exp returns the expectation for key on the sending domain d (the contract's
// names with the default templates).
func exp(key domain.RecordKey, d string) dnscheck.Expectation {
	e := expectations[key]
	e.Domain = d
	e.Name = strings.TrimSuffix(e.Name, "example.com") + d
	if key == domain.KeyInboundMX {
		e = dnscheck.Expectation{Key: key, Domain: d, Name: d, Type: "MX", Value: "inbound-smtp.us-east-1.amazonaws.com", Priority: 10}
	}
	return e
}

// otherKey is a valid RSA public key that is not testKey.
var otherKey = func() string {
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		panic(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		panic(err)
	}
	return base64.StdEncoding.EncodeToString(der)
}()

func codes(o domain.Observation) []domain.ProblemCode {
	var out []domain.ProblemCode
	for _, p := range o.Problems {
		out = append(out, p.Code)
	}
	return out
}

// TestProblemCodes produces every problem code from a real DNS setup on loopback,
// checked authoritatively by a delegation walk from the test root.
func TestProblemCodes(t *testing.T) {
	spfChain := []string{`mail 300 IN TXT "v=spf1 include:amazonses.com include:a.example.com include:b.example.com ~all"`}
	for _, n := range "ab" {
		// Each of a and b includes five more: 1 + 2 + 10 = 13 lookups.
		incs := ""
		for i := range 5 {
			incs += " include:" + string(n) + string(rune('0'+i)) + ".example.com"
			spfChain = append(spfChain, string(n)+string(rune('0'+i))+` 300 IN TXT "v=spf1 ip4:192.0.2.1 -all"`)
		}
		spfChain = append(spfChain, string(n)+` 300 IN TXT "v=spf1`+incs+` -all"`)
	}
	for _, tc := range []struct {
		name   string
		key    domain.RecordKey
		domain string // sending domain; example.com when empty
		zone   []string
		status domain.CheckStatus
		code   domain.ProblemCode   // the first problem's code
		also   []domain.ProblemCode // further codes that must be present
		inMsg  string               // text the first problem's message must contain
	}{
		{name: "not found", key: domain.KeyOwnership, status: domain.CheckMissing, code: dnscheck.CodeNotFound},
		{name: "wrong value", key: domain.KeyOwnership, zone: []string{`_autosend-verify 300 IN TXT "autosend-verify-ffff"`},
			status: domain.CheckMismatch, code: dnscheck.CodeWrongValue, inMsg: "autosend-verify-ffff"},
		{name: "doubled name", key: domain.KeyOwnership,
			zone:   []string{`_autosend-verify.example.com 300 IN TXT "autosend-verify-0123456789abcdef0123456789abcdef"`},
			status: domain.CheckMissing, code: dnscheck.CodeDoubledName, also: []domain.ProblemCode{dnscheck.CodeNotFound}, inMsg: `"_autosend-verify"`},
		{name: "doubled name of a subdomain", key: domain.KeyDMARC, domain: "news.example.com",
			zone:   []string{`_dmarc.news.example.com.example.com. 300 IN TXT "v=DMARC1; p=none;"`},
			status: domain.CheckMissing, code: dnscheck.CodeDoubledName, inMsg: `"_dmarc.news"`},
		{name: "cname conflict", key: domain.KeyMailFromMX, zone: []string{`mail 300 IN CNAME www.example.net.`},
			status: domain.CheckMismatch, code: dnscheck.CodeCNAMEConflict, inMsg: "www.example.net"},
		{name: "multiple spf", key: domain.KeyMailFromSPF,
			zone:   []string{`mail 300 IN TXT "v=spf1 include:amazonses.com ~all"`, `mail 300 IN TXT "v=spf1 include:_spf.google.com ~all"`},
			status: domain.CheckMismatch, code: dnscheck.CodeMultipleSPF},
		// Receivers stop at the first match (RFC 7208 section 4.6.2), so lookups after
		// the platform's include never count for its mail: verified, with a warning about
		// the other servers.
		{name: "spf too many lookups after the include", key: domain.KeyMailFromSPF, zone: spfChain,
			status: domain.CheckVerified, code: dnscheck.CodeSPFTooManyLookups, inMsg: "more than 10 DNS lookups"},
		{name: "spf too many lookups before the include", key: domain.KeyMailFromSPF,
			zone:   append(slices.Clone(spfChain[1:]), `mail 300 IN TXT "v=spf1 include:a.example.com include:b.example.com include:amazonses.com ~all"`),
			status: domain.CheckMismatch, code: dnscheck.CodeSPFTooManyLookups, inMsg: "more than 10 DNS lookups"},
		{name: "spf include loop after the include", key: domain.KeyMailFromSPF,
			zone:   []string{`mail 300 IN TXT "v=spf1 include:amazonses.com include:loop.example.com ~all"`, `loop 300 IN TXT "v=spf1 include:mail.example.com -all"`},
			status: domain.CheckVerified, code: dnscheck.CodeSPFTooManyLookups, inMsg: "loop"},
		{name: "spf include loop before the include", key: domain.KeyMailFromSPF,
			zone:   []string{`mail 300 IN TXT "v=spf1 include:loop.example.com include:amazonses.com ~all"`, `loop 300 IN TXT "v=spf1 include:mail.example.com -all"`},
			status: domain.CheckMismatch, code: dnscheck.CodeSPFTooManyLookups, inMsg: "loop"},
		{name: "spf syntax", key: domain.KeyMailFromSPF, zone: []string{`mail 300 IN TXT "v=spf1 include:amazonses.com ip4:999.1.1.1 ~all"`},
			status: domain.CheckMismatch, code: dnscheck.CodeSPFSyntax},
		{name: "dkim key mismatch", key: domain.KeyDKIM,
			zone:   []string{`autosend._domainkey 300 IN TXT "v=DKIM1; k=rsa; p=` + otherKey + `"`},
			status: domain.CheckMismatch, code: dnscheck.CodeWrongValue, also: []domain.ProblemCode{dnscheck.CodeDKIMKeyMismatch}},
		{name: "dkim syntax", key: domain.KeyDKIM, zone: []string{`autosend._domainkey 300 IN TXT "v=DKIM1; k=rsa; p=@@not-base64@@"`},
			status: domain.CheckMismatch, code: dnscheck.CodeWrongValue, also: []domain.ProblemCode{dnscheck.CodeDKIMSyntax}},
		{name: "dkim testing mode", key: domain.KeyDKIM, zone: []string{`autosend._domainkey 300 IN TXT "v=DKIM1; t=y; k=rsa; p=` + testKey + `"`},
			status: domain.CheckVerified, code: dnscheck.CodeDKIMTesting},
		{name: "mx priority", key: domain.KeyMailFromMX, zone: []string{`mail 300 IN MX 20 feedback-smtp.us-east-1.amazonses.com.`},
			status: domain.CheckVerified, code: dnscheck.CodeMXPriority, inMsg: "20"},
		{name: "extra mx preferred over ours", key: domain.KeyMailFromMX,
			zone:   []string{`mail 300 IN MX 10 feedback-smtp.us-east-1.amazonses.com.`, `mail 300 IN MX 5 mx.example.net.`},
			status: domain.CheckMismatch, code: dnscheck.CodeExtraMX, inMsg: "mx.example.net"},
		{name: "extra mx as backup", key: domain.KeyMailFromMX,
			zone:   []string{`mail 300 IN MX 10 feedback-smtp.us-east-1.amazonses.com.`, `mail 300 IN MX 50 mx.example.net.`},
			status: domain.CheckVerified, code: dnscheck.CodeExtraMX},
		{name: "trailing dot missing", key: domain.KeyMailFromMX,
			zone:   []string{`mail 300 IN MX 10 feedback-smtp.us-east-1.amazonses.com.example.com.`},
			status: domain.CheckMismatch, code: dnscheck.CodeTrailingDot, inMsg: "feedback-smtp.us-east-1.amazonses.com."},
		{name: "dmarc syntax", key: domain.KeyDMARC, zone: []string{`_dmarc 300 IN TXT "v=DMARC1; p=maybe"`},
			status: domain.CheckMismatch, code: dnscheck.CodeDMARCSyntax},
		{name: "dmarc lower case is explained", key: domain.KeyDMARC, zone: []string{`_dmarc 300 IN TXT "v=dmarc1; p=none"`},
			status: domain.CheckMismatch, code: dnscheck.CodeDMARCSyntax},
		{name: "dmarc multiple", key: domain.KeyDMARC, zone: []string{`_dmarc 300 IN TXT "v=DMARC1; p=none"`, `_dmarc 300 IN TXT "v=DMARC1; p=reject"`},
			status: domain.CheckMismatch, code: dnscheck.CodeDMARCMultiple},
		{name: "dmarc inherited with sp", key: domain.KeyDMARC, domain: "news.example.com",
			zone:   []string{`_dmarc 300 IN TXT "v=DMARC1; p=reject; sp=quarantine"`},
			status: domain.CheckVerified, code: dnscheck.CodeDMARCInherited, inMsg: "p=quarantine"},
		{name: "quoted spf", key: domain.KeyMailFromSPF, zone: []string{`mail 300 IN TXT "\"v=spf1 include:amazonses.com ~all\""`},
			status: domain.CheckMismatch, code: dnscheck.CodeQuotedValue},
		{name: "quoted token", key: domain.KeyOwnership, zone: []string{`_autosend-verify 300 IN TXT "\"autosend-verify-0123456789abcdef0123456789abcdef\""`},
			status: domain.CheckMismatch, code: dnscheck.CodeQuotedValue},
		{name: "null mx", key: domain.KeyInboundMX, zone: []string{`@ 300 IN MX 0 .`},
			status: domain.CheckMismatch, code: dnscheck.CodeNullMX},
		{name: "competing mx", key: domain.KeyInboundMX,
			zone:   []string{`@ 300 IN MX 10 inbound-smtp.us-east-1.amazonaws.com.`, `@ 300 IN MX 10 aspmx.l.google.com.`},
			status: domain.CheckMismatch, code: dnscheck.CodeCompetingMX, inMsg: "aspmx.l.google.com"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTree(t)
			for _, l := range tc.zone {
				tr.example.MustAdd(l)
			}
			d := tc.domain
			if d == "" {
				d = "example.com"
			}
			o := tr.checker(t, dnscheck.ModeAuthoritative).Check(context.Background(), []dnscheck.Expectation{exp(tc.key, d)})[0]
			if o.Status != tc.status {
				t.Fatalf("status %s, want %s: %+v", o.Status, tc.status, o)
			}
			got := codes(o)
			if len(got) == 0 || got[0] != tc.code {
				t.Fatalf("problems %v, want first %s: %+v", got, tc.code, o.Problems)
			}
			for _, c := range tc.also {
				if !slices.Contains(got, c) {
					t.Errorf("problems %v lack %s", got, c)
				}
			}
			msg := o.Problems[0].Message
			if tc.inMsg != "" && !strings.Contains(msg, tc.inMsg) {
				t.Errorf("message %q does not mention %q", msg, tc.inMsg)
			}
			if !strings.HasSuffix(msg, ".") || strings.Count(msg, " ") < 6 {
				t.Errorf("message %q is not a sentence with a fix", msg)
			}
			// The verdict came from the authoritative server of example.com (or,
			// through a CNAME, of the target's zone).
			if first := o.Propagation; tc.code != dnscheck.CodeCNAMEConflict &&
				(len(first) == 0 || first[0].Role != domain.RoleAuthoritative || first[0].Server != tr.main.Addr()) {
				t.Errorf("propagation %+v, want the example.com server first", o.Propagation)
			}
		})
	}
}

// TestTemporaryFailureCodes checks that an authoritative server that is silent or
// fails gives a temporary failure with its own code.
func TestTemporaryFailureCodes(t *testing.T) {
	for _, tc := range []struct {
		fault dnstest.Fault
		code  domain.ProblemCode
	}{{dnstest.Drop, dnscheck.CodeTimeout}, {dnstest.ServFail, dnscheck.CodeServFail}} {
		t.Run(string(tc.code), func(t *testing.T) {
			tr := newTree(t)
			tr.main.SetFault("", 0, tc.fault)
			o := tr.checker(t, dnscheck.ModeAuthoritative).Check(context.Background(), []dnscheck.Expectation{exp(domain.KeyOwnership, "example.com")})[0]
			if o.Status != domain.CheckTemporaryFailure || !slices.Equal(codes(o), []domain.ProblemCode{tc.code}) {
				t.Fatalf("got %s %v, want temporary_failure [%s]", o.Status, codes(o), tc.code)
			}
		})
	}
}

// TestDKIMInDelegatedSubzone delegates _domainkey.example.com to another server, as
// customers do when a provider runs their DKIM keys; a checker that asks only the
// domain's own servers would call the record missing.
func TestDKIMInDelegatedSubzone(t *testing.T) {
	tr := newTree(t)
	sub := tr.addZone(t, "_domainkey.example.com.", tr.spare)
	sub.MustAdd(`autosend._domainkey.example.com. 300 IN TXT "v=DKIM1; k=rsa; p=` + testKey + `"`)
	o := tr.checker(t, dnscheck.ModeAuthoritative).Check(context.Background(), []dnscheck.Expectation{exp(domain.KeyDKIM, "example.com")})[0]
	if o.Status != domain.CheckVerified {
		t.Fatalf("DKIM in a delegated sub-zone: %+v", o)
	}
	if o.Propagation[0].Server != tr.spare.Addr() || o.Propagation[0].Zone != "_domainkey.example.com" {
		t.Errorf("answered by %+v, want the sub-zone's server", o.Propagation[0])
	}
	if n := tr.main.Count("autosend._domainkey.example.com.", dns.TypeTXT, ""); n == 0 {
		t.Error("the walk did not pass through example.com's server (it should be referred from there)")
	}
}

// TestDKIMThroughCNAME follows a CNAME into another provider's zone, which is how
// many providers publish DKIM keys: verified, and no CNAME_CONFLICT.
func TestDKIMThroughCNAME(t *testing.T) {
	tr := newTree(t)
	prov := tr.addZone(t, "provider.net.", tr.spare)
	prov.MustAdd(`key1.dkim.provider.net. 300 IN TXT "v=DKIM1; k=rsa; p=` + testKey + `"`)
	tr.example.MustAdd(`autosend._domainkey 300 IN CNAME key1.dkim.provider.net.`)
	o := tr.checker(t, dnscheck.ModeAuthoritative).Check(context.Background(), []dnscheck.Expectation{exp(domain.KeyDKIM, "example.com")})[0]
	if o.Status != domain.CheckVerified || len(o.Problems) != 0 {
		t.Fatalf("DKIM through a CNAME: %+v", o)
	}
}

// TestLameAndUnreachableServers delegates example.com to three servers of which one
// refuses the zone and one does not exist; the working one decides.
func TestLameAndUnreachableServers(t *testing.T) {
	tr := newTree(t)
	tr.example.MustAdd(`_autosend-verify 300 IN TXT "autosend-verify-0123456789abcdef0123456789abcdef"`)
	com := tr.net.Zone("com.")
	// The spare server serves nothing for example.com (REFUSED: lame), and
	// 127.0.0.250 listens on nothing.
	com.MustAdd("example.com. 300 IN NS lame.example.com.\nexample.com. 300 IN NS gone.example.com.")
	com.MustAdd("lame.example.com. 300 IN A " + tr.spare.IP() + "\ngone.example.com. 300 IN A 127.0.0.250")
	o := tr.checker(t, dnscheck.ModeAuthoritative).Check(context.Background(), []dnscheck.Expectation{exp(domain.KeyOwnership, "example.com")})[0]
	if o.Status != domain.CheckVerified {
		t.Fatalf("with lame and unreachable servers: %+v", o)
	}
	var errs int
	for _, s := range o.Propagation {
		if s.Status == domain.CheckTemporaryFailure {
			errs++
		}
	}
	if errs != 2 {
		t.Errorf("propagation %+v, want the lame and the unreachable server reported", o.Propagation)
	}
}

// TestNameServersWithoutGlue delegates example.com to a name server in another zone,
// whose address must be found by a walk of its own.
func TestNameServersWithoutGlue(t *testing.T) {
	tr := newTree(t)
	tr.example.MustAdd(`_dmarc 300 IN TXT "v=DMARC1; p=none"`)
	hosting := tr.addZone(t, "hosting.net.", tr.tld)
	hosting.MustAdd("ns.hosting.net. 300 IN A " + tr.main.IP())
	com := tr.net.Zone("com.")
	com.RemoveName("ns1.example.com.")
	com.Remove("example.com.", dns.TypeNS)
	com.MustAdd("example.com. 300 IN NS ns.hosting.net.")
	o := tr.checker(t, dnscheck.ModeAuthoritative).Check(context.Background(), []dnscheck.Expectation{exp(domain.KeyDMARC, "example.com")})[0]
	if o.Status != domain.CheckVerified {
		t.Fatalf("with a glueless delegation: %+v", o)
	}
}

// TestAutoSeesPastCachedNXDOMAIN reproduces the trap that leaves customers waiting
// for hours: a resolver cached NXDOMAIN before the record was added. Auto mode asks
// the authoritative server and verifies at once; recursive mode sees the cache.
func TestAutoSeesPastCachedNXDOMAIN(t *testing.T) {
	tr := newTree(t)
	// The resolver stand-in: it answers from a snapshot taken before the record
	// existed, as a cache of the earlier NXDOMAIN would.
	stale := dnstest.Start(t, dnstest.NewZone("example.com."))
	tr.example.MustAdd(`_autosend-verify 300 IN TXT "autosend-verify-0123456789abcdef0123456789abcdef"`)
	e := exp(domain.KeyOwnership, "example.com")

	o := tr.checker(t, dnscheck.ModeAuto, stale.Addr()).Check(context.Background(), []dnscheck.Expectation{e})[0]
	if o.Status != domain.CheckVerified {
		t.Fatalf("auto mode behind a stale resolver: %+v", o)
	}
	var resolverSaw domain.CheckStatus
	for _, s := range o.Propagation {
		if s.Role == domain.RoleResolver {
			resolverSaw = s.Status
		}
	}
	if resolverSaw != domain.CheckMissing {
		t.Errorf("propagation should show the resolver still missing it: %+v", o.Propagation)
	}
	if o := tr.checker(t, dnscheck.ModeRecursive, stale.Addr()).Check(context.Background(), []dnscheck.Expectation{e})[0]; o.Status != domain.CheckMissing {
		t.Errorf("recursive mode through the stale resolver: %s, want missing", o.Status)
	}
}

// TestAutoFallsBackWhenRootsAreSilent checks that auto mode answers from the
// resolvers when outbound DNS to authoritative servers is dropped.
func TestAutoFallsBackWhenRootsAreSilent(t *testing.T) {
	tr := newTree(t)
	tr.net.Root().SetFault("", 0, dnstest.Drop)
	z := dnstest.NewZone("example.com.")
	z.MustAdd(`_dmarc 300 IN TXT "v=DMARC1; p=none"`)
	resolver := dnstest.Start(t, z)
	c := tr.checker(t, dnscheck.ModeAuto, resolver.Addr())
	e := exp(domain.KeyDMARC, "example.com")
	o := c.Check(context.Background(), []dnscheck.Expectation{e})[0]
	if o.Status != domain.CheckVerified {
		t.Fatalf("auto with silent roots: %+v", o)
	}
	// The next check does not wait for the roots again.
	before := len(tr.net.Root().Queries())
	if o := c.Check(context.Background(), []dnscheck.Expectation{e})[0]; o.Status != domain.CheckVerified {
		t.Fatalf("second check: %+v", o)
	}
	if after := len(tr.net.Root().Queries()); after != before {
		t.Errorf("the second check asked the silent roots again (%d queries)", after-before)
	}
}

// TestInconsistentServers serves two versions of example.com: the verdict follows
// the server that has the record, with a warning naming the lagging one.
func TestInconsistentServers(t *testing.T) {
	tr := newTree(t)
	tr.example.MustAdd(`_dmarc 300 IN TXT "v=DMARC1; p=none"`)
	// A second name server for example.com that still serves an old copy.
	tr.net.Zone("com.").MustAdd("example.com. 300 IN NS ns9.example.com.\nns9.example.com. 300 IN A " + tr.spare.IP())
	tr.spare.AddZone(dnstest.NewZone("example.com."))
	o := tr.checker(t, dnscheck.ModeAuthoritative).Check(context.Background(), []dnscheck.Expectation{exp(domain.KeyDMARC, "example.com")})[0]
	if o.Status != domain.CheckVerified || !slices.Contains(codes(o), dnscheck.CodeInconsistent) {
		t.Fatalf("got %s %v, want verified with %s", o.Status, codes(o), dnscheck.CodeInconsistent)
	}
	if !strings.Contains(o.Problems[len(o.Problems)-1].Message, tr.spare.Addr()) {
		t.Errorf("warning does not name the lagging server: %q", o.Problems[len(o.Problems)-1].Message)
	}
}

// TestOneWalkPerCheck checks that the records of one check share delegations: the
// root is asked about example.com once, not once per record.
func TestOneWalkPerCheck(t *testing.T) {
	tr := newTree(t)
	var exps []dnscheck.Expectation
	for _, k := range domain.SendingKeys {
		exps = append(exps, exp(k, "example.com"))
	}
	tr.checker(t, dnscheck.ModeAuthoritative).Check(context.Background(), exps)
	rootAsked := 0
	for _, q := range tr.net.Root().Queries() {
		if strings.HasSuffix(q.Name, "example.com.") {
			rootAsked++
		}
	}
	// Concurrent records may race to the root before the first referral is
	// cached, but never once per record and query type.
	if rootAsked == 0 || rootAsked > len(exps) {
		t.Errorf("root asked %d times about example.com for %d records", rootAsked, len(exps))
	}
	// The walk's last answer is the zone's server's answer: it is not asked twice.
	for _, e := range exps {
		qtype := dns.StringToType[e.Type]
		if n := tr.main.Count(e.Name+".", qtype, ""); n != 1 {
			t.Errorf("example.com's server asked %d times for %s %s, want once", n, e.Name, e.Type)
		}
	}
}

// TestServerRateLimit checks that queries to one authoritative server are paced:
// with a bound of 20 per second and a burst of 20, 30 queries cannot all arrive in
// the first 20 queries' time. The assertion counts queries, not seconds.
func TestServerRateLimit(t *testing.T) {
	tr := newTree(t)
	c, err := dnscheck.New(dnscheck.Config{
		Mode: dnscheck.ModeAuthoritative, RootHints: tr.net.RootIPs(), AuthoritativePort: tr.net.Port(),
		Timeout: time.Second, ServerQPS: 20, AllowPrivate: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	var exps []dnscheck.Expectation
	for i := range 30 {
		e := exp(domain.KeyOwnership, "example.com")
		e.Name = "n" + strconv.Itoa(i) + ".example.com"
		exps = append(exps, e)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	c.Check(ctx, exps)
	// Within 300ms the limiter lets through the burst of 20 and about 6 more; the
	// rest of the 30 records' queries wait and are cut off by the deadline.
	if n := len(tr.main.Queries()); n >= 30 {
		t.Fatalf("example.com's server got %d queries in 300ms at 20/s", n)
	}
}
