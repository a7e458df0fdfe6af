package dnscheck_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/domaind/domaind/internal/dnscheck"
	"github.com/domaind/domaind/internal/dnstest"
	"github.com/domaind/domaind/internal/dnstest/realdns"
	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/testenv"
)

// These addresses are this package's own; internal/dnstest/realdns's tests use
// 127.0.0.20-22, so the two packages can run at once.
const (
	knotRootIP = "127.0.0.30" // serves "." and "com."
	knotZoneIP = "127.0.0.31" // serves "example.com."
	unboundIP  = "127.0.0.32"
)

const rootZone = `
@        3600 IN SOA ns.root. hostmaster.root. 1 3600 600 86400 60
@        3600 IN NS  ns.root.
ns.root. 3600 IN A   127.0.0.30
com.     3600 IN NS  ns.com.
ns.com.  3600 IN A   127.0.0.30
`

const comZone = `
@               3600 IN SOA ns.com. hostmaster.com. 1 3600 600 86400 60
@               3600 IN NS  ns.com.
ns              3600 IN A   127.0.0.30
example         3600 IN NS  ns1.example.com.
ns1.example     3600 IN A   127.0.0.31
`

// exampleZone returns example.com's zone file with serial and extra lines. The
// negative TTL (the SOA minimum) is an hour, so a resolver keeps an NXDOMAIN.
func exampleZone(serial int, extra ...string) string {
	return `
@    3600 IN SOA ns1.example.com. hostmaster.example.com. ` + strconv.Itoa(serial) + ` 3600 600 86400 3600
@    3600 IN NS  ns1.example.com.
ns1  3600 IN A   127.0.0.31
` + strings.Join(extra, "\n") + "\n"
}

// TestKnotAndUnbound checks domains against real DNS software from Debian: Knot
// DNS serving a root, com. and example.com., and Unbound as the customer-facing
// resolver, which caches an NXDOMAIN the way resolvers in the field do.
func TestKnotAndUnbound(t *testing.T) {
	testenv.RequirePort(t, 53, knotRootIP, knotZoneIP)
	realdns.StartKnot(t, knotRootIP, 53, map[string]string{".": rootZone, "com.": comZone})
	zoneKnot := realdns.StartKnot(t, knotZoneIP, 53, map[string]string{"example.com.": exampleZone(1)})
	unbound := realdns.StartUnbound(t, unboundIP, 0, map[string]string{".": knotRootIP + "@53"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	ownership := exp(domain.KeyOwnership, "example.com")

	// The customer looks before publishing: the resolver caches the NXDOMAIN.
	ask := func() int {
		t.Helper()
		m := new(dns.Msg)
		m.SetQuestion(ownership.Name+".", dns.TypeTXT)
		resp, err := dns.ExchangeContext(ctx, m, unbound.Addr())
		if err != nil {
			t.Fatal(err)
		}
		return resp.Rcode
	}
	if rc := ask(); rc != dns.RcodeNameError {
		t.Fatalf("before publishing, Unbound answered %s, want NXDOMAIN", dns.RcodeToString[rc])
	}

	// A 2048-bit key, published as several strings of one TXT record.
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	key := base64.StdEncoding.EncodeToString(der)
	quoted := `"` + strings.Join(dnstest.SplitTXT("v=DKIM1; k=rsa; p="+key), `" "`) + `"`
	if err := zoneKnot.SetZone(ctx, "example.com.", exampleZone(2,
		`_autosend-verify 300 IN TXT "`+ownership.Value+`"`,
		`autosend._domainkey 300 IN TXT `+quoted,
	)); err != nil {
		t.Fatal(err)
	}
	if rc := ask(); rc != dns.RcodeNameError {
		t.Fatalf("after publishing, Unbound answered %s; the test needs its cached NXDOMAIN", dns.RcodeToString[rc])
	}

	dkim := exp(domain.KeyDKIM, "example.com")
	dkim.Value = key
	newChecker := func(mode dnscheck.Mode) *dnscheck.Checker {
		c, err := dnscheck.New(dnscheck.Config{
			Mode: mode, Resolvers: []string{unbound.Addr()},
			RootHints: []string{knotRootIP}, AuthoritativePort: 53,
			Timeout: time.Second, Retries: 1, AllowPrivate: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	obs := newChecker(dnscheck.ModeAuto).Check(ctx, []dnscheck.Expectation{ownership, dkim})
	for _, o := range obs {
		if o.Status != domain.CheckVerified {
			t.Fatalf("auto mode: %s is %s: %+v", o.Key, o.Status, o)
		}
	}
	var resolver, auth domain.CheckStatus
	for _, s := range obs[0].Propagation {
		switch s.Role {
		case domain.RoleResolver:
			resolver = s.Status
		case domain.RoleAuthoritative:
			auth = s.Status
			if s.Server != knotZoneIP+":53" || s.Zone != "example.com" {
				t.Errorf("authoritative sighting from %s zone %q, want Knot's example.com", s.Server, s.Zone)
			}
		}
	}
	if resolver != domain.CheckMissing || auth != domain.CheckVerified {
		t.Errorf("propagation: resolver %s, authoritative %s; want missing (cached) and verified", resolver, auth)
	}

	// A checker that trusts the resolver alone is still fooled by the cache.
	if o := newChecker(dnscheck.ModeRecursive).Check(ctx, []dnscheck.Expectation{ownership})[0]; o.Status != domain.CheckMissing {
		t.Errorf("recursive mode through Unbound: %s, want missing", o.Status)
	}
	// Once the cache is flushed, the resolver agrees.
	if err := unbound.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if o := newChecker(dnscheck.ModeRecursive).Check(ctx, []dnscheck.Expectation{ownership})[0]; o.Status != domain.CheckVerified {
		t.Errorf("recursive mode after a flush: %s, want verified", o.Status)
	}
}
