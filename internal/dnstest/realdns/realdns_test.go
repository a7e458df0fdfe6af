package realdns

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/domaind/domaind/internal/dnstest"
	"github.com/domaind/domaind/internal/testenv"
	"github.com/miekg/dns"
)

// The end-to-end tests below run knotd and unbound (Debian packages knot and
// unbound) on 127.0.0.20 and up. They skip when the programs are missing,
// unless CI=true.

// exampleZone returns zone-file text for example.com. served from nsIP, with
// serial and extra records appended. Negative answers are cached for an
// hour, longer than any test.
func exampleZone(nsIP string, serial int, extra string) string {
	return fmt.Sprintf(`$TTL 300
@    3600 IN SOA ns1 hostmaster %d 3600 600 86400 3600
@         IN NS  ns1
ns1       IN A   %s
www       IN A   192.0.2.1
%s
`, serial, nsIP, extra)
}

// rootZone returns zone-file text for the root zone served from rootIP,
// delegating example.com. to a server at childIP.
func rootZone(rootIP, childIP string) string {
	return fmt.Sprintf(`$TTL 3600
.                 IN SOA a.root-servers.net. hostmaster.root-servers.net. 1 3600 600 86400 3600
.                 IN NS  a.root-servers.net.
a.root-servers.net. IN A %s
example.com.      IN NS  ns1.example.com.
ns1.example.com.  IN A   %s
`, rootIP, childIP)
}

func TestKnotServesZone(t *testing.T) {
	long := []string{strings.Repeat("a", 255), strings.Repeat("b", 255), strings.Repeat("c", 100)}
	quoted := `"` + strings.Join(long, `" "`) + `"`
	k := StartKnot(t, "127.0.0.20", 0, map[string]string{
		"example.com": exampleZone("127.0.0.20", 1, "sel._domainkey IN TXT "+quoted),
	})

	tests := []struct {
		proto string
		qname string
		qtype uint16
		rcode int
		txt   []string // strings of the one TXT record expected, if any
	}{
		{"udp", "sel._domainkey.example.com.", dns.TypeTXT, dns.RcodeSuccess, long},
		{"tcp", "sel._domainkey.example.com.", dns.TypeTXT, dns.RcodeSuccess, long},
		{"udp", "missing.example.com.", dns.TypeTXT, dns.RcodeNameError, nil},
		{"tcp", "www.example.com.", dns.TypeTXT, dns.RcodeSuccess, nil},
	}
	for _, tt := range tests {
		t.Run(tt.proto+" "+tt.qname, func(t *testing.T) {
			resp := ask(t, k.Addr(), tt.proto, tt.qname, tt.qtype, 1232)
			if !resp.Authoritative {
				t.Error("AA clear in knotd's answer")
			}
			if resp.Rcode != tt.rcode {
				t.Fatalf("rcode %s, want %s", dns.RcodeToString[resp.Rcode], dns.RcodeToString[tt.rcode])
			}
			if tt.txt == nil {
				if len(resp.Answer) != 0 {
					t.Errorf("answer %v, want none", resp.Answer)
				}
				if len(resp.Ns) == 0 || resp.Ns[0].Header().Rrtype != dns.TypeSOA {
					t.Errorf("authority %v, want the SOA", resp.Ns)
				}
				return
			}
			if len(resp.Answer) != 1 {
				t.Fatalf("answer %v, want one TXT", resp.Answer)
			}
			txt, ok := resp.Answer[0].(*dns.TXT)
			if !ok || !slices.Equal(txt.Txt, tt.txt) {
				t.Errorf("answer %v, want the three strings as published", resp.Answer[0])
			}
		})
	}
}

func TestKnotSetZone(t *testing.T) {
	k := StartKnot(t, "127.0.0.20", 0, map[string]string{
		"example.com.": exampleZone("127.0.0.20", 1, ""),
	})
	const name = "_verify.example.com."
	if resp := ask(t, k.Addr(), "udp", name, dns.TypeTXT, 0); resp.Rcode != dns.RcodeNameError {
		t.Fatalf("before SetZone: rcode %s, want NXDOMAIN", dns.RcodeToString[resp.Rcode])
	}

	if err := k.SetZone(t.Context(), "example.com", exampleZone("127.0.0.20", 2, `_verify IN TXT "token-2"`)); err != nil {
		t.Fatal(err)
	}
	resp := ask(t, k.Addr(), "udp", name, dns.TypeTXT, 0)
	if got := dnstest.TXTValues(resp); resp.Rcode != dns.RcodeSuccess || !slices.Equal(got, []string{"token-2"}) {
		t.Errorf("after SetZone: rcode %s, TXT %q, want token-2", dns.RcodeToString[resp.Rcode], got)
	}

	// A zone knotd did not serve at start is added to its configuration.
	if err := k.SetZone(t.Context(), "example.net.", `@ 3600 IN SOA ns1 hostmaster 7 3600 600 86400 3600
@ 3600 IN NS ns1
ns1 3600 IN A 127.0.0.20
www 300 IN A 192.0.2.7
`); err != nil {
		t.Fatal(err)
	}
	resp = ask(t, k.Addr(), "tcp", "www.example.net.", dns.TypeA, 0)
	if !resp.Authoritative || len(resp.Answer) != 1 || resp.Answer[0].(*dns.A).A.String() != "192.0.2.7" {
		t.Errorf("new zone: AA %v, answer %v, want 192.0.2.7", resp.Authoritative, resp.Answer)
	}
	// The first zone is still served.
	if got := dnstest.TXTValues(ask(t, k.Addr(), "udp", name, dns.TypeTXT, 0)); !slices.Equal(got, []string{"token-2"}) {
		t.Errorf("example.com after adding a zone: TXT %q", got)
	}

	if err := k.SetZone(t.Context(), "example.com", "www IN A 192.0.2.1\n"); err == nil {
		t.Error("SetZone accepted a zone without an SOA")
	}
}

// realTree starts a root Knot on 127.0.0.20 delegating example.com. to a
// second Knot on 127.0.0.21, and an Unbound on 127.0.0.22 whose root is the
// first Knot. Both Knots listen on port 53, because Unbound asks the servers
// a delegation names on port 53 whatever the port of its stub.
func realTree(t *testing.T) (root, child *Knot, u *Unbound) {
	t.Helper()
	const port = 53
	testenv.RequirePort(t, port, "127.0.0.20", "127.0.0.21")
	root = StartKnot(t, "127.0.0.20", port, map[string]string{".": rootZone("127.0.0.20", "127.0.0.21")})
	child = StartKnot(t, "127.0.0.21", port, map[string]string{"example.com.": exampleZone("127.0.0.21", 1, "")})
	u = StartUnbound(t, "127.0.0.22", 0, map[string]string{".": fmt.Sprintf("127.0.0.20@%d", port)})
	return root, child, u
}

func TestUnboundResolvesThroughKnotRoot(t *testing.T) {
	root, _, u := realTree(t)

	// The root refers example.com. to the child, so only a resolver that
	// followed the delegation has the address.
	ref := ask(t, root.Addr(), "udp", "www.example.com.", dns.TypeA, 1232)
	if ref.Authoritative || len(ref.Answer) != 0 || len(ref.Ns) == 0 {
		t.Fatalf("root answer AA %v, answer %v, authority %v; want a referral", ref.Authoritative, ref.Answer, ref.Ns)
	}

	for _, proto := range []string{"udp", "tcp"} {
		q := new(dns.Msg)
		q.SetQuestion("www.example.com.", dns.TypeA)
		c := &dns.Client{Net: proto}
		resp, _, err := c.Exchange(q, u.Addr())
		if err != nil {
			t.Fatalf("%s: %v", proto, err)
		}
		if resp.Rcode != dns.RcodeSuccess || !resp.RecursionAvailable || resp.Authoritative {
			t.Errorf("%s: rcode %s RA %v AA %v, want NOERROR, RA, no AA", proto, dns.RcodeToString[resp.Rcode], resp.RecursionAvailable, resp.Authoritative)
		}
		if len(resp.Answer) != 1 || resp.Answer[0].(*dns.A).A.String() != "192.0.2.1" {
			t.Errorf("%s: answer %v, want www.example.com. A 192.0.2.1", proto, resp.Answer)
		}
	}
}

func TestUnboundCachesNXDOMAIN(t *testing.T) {
	_, child, u := realTree(t)
	const name = "_verify.example.com."
	recursive := func() *dns.Msg {
		t.Helper()
		q := new(dns.Msg)
		q.SetQuestion(name, dns.TypeTXT)
		resp, err := dns.Exchange(q, u.Addr())
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}

	if resp := recursive(); resp.Rcode != dns.RcodeNameError {
		t.Fatalf("before publishing: rcode %s, want NXDOMAIN", dns.RcodeToString[resp.Rcode])
	}
	if err := child.SetZone(t.Context(), "example.com", exampleZone("127.0.0.21", 2, `_verify IN TXT "token-3"`)); err != nil {
		t.Fatal(err)
	}
	direct := ask(t, child.Addr(), "udp", name, dns.TypeTXT, 0)
	if got := dnstest.TXTValues(direct); !direct.Authoritative || !slices.Equal(got, []string{"token-3"}) {
		t.Fatalf("knotd answers AA %v, TXT %q, want the new record", direct.Authoritative, got)
	}
	if resp := recursive(); resp.Rcode != dns.RcodeNameError || len(resp.Answer) != 0 {
		t.Errorf("after publishing: unbound says rcode %s, answer %v; want its cached NXDOMAIN",
			dns.RcodeToString[resp.Rcode], resp.Answer)
	}

	if err := u.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := dnstest.TXTValues(recursive()); !slices.Equal(got, []string{"token-3"}) {
		t.Errorf("after Flush: unbound answers TXT %q, want token-3", got)
	}
}

func TestStartUnboundRefusesNonLoopbackStub(t *testing.T) {
	for _, addr := range []string{"192.0.2.1@53", "127.0.0.1", "127.0.0.1@0", "localhost@53"} {
		if err := checkStub(addr); err == nil {
			t.Errorf("checkStub(%q) accepted it", addr)
		}
	}
	if err := checkStub("127.0.0.20@5353"); err != nil {
		t.Errorf("checkStub(127.0.0.20@5353): %v", err)
	}
}

// ask sends one query for name and qtype to addr over proto ("udp" or
// "tcp"), with an EDNS0 OPT advertising ednsSize when ednsSize > 0.
func ask(t *testing.T, addr, proto, name string, qtype uint16, ednsSize uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	if ednsSize > 0 {
		m.SetEdns0(ednsSize, false)
	}
	c := &dns.Client{Net: proto, Timeout: 2 * time.Second}
	resp, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s %s %s over %s: %v", addr, name, dns.TypeToString[qtype], proto, err)
	}
	return resp
}
