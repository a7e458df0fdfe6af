package dnscheck_test

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/domaind/domaind/internal/dnscheck"
	"github.com/domaind/domaind/internal/dnstest"
	"github.com/domaind/domaind/internal/domain"
)

// cacheNet is a loopback DNS tree for the infrastructure cache: a root, "com."
// on a TLD server, and "example.com." and "amazonses.com." on another server,
// where the sending domains live (a.example.com, b.example.com, ...).
type cacheNet struct {
	net  *dnstest.Net
	tld  *dnstest.Server
	auth *dnstest.Server
	zone *dnstest.Zone
}

func newCacheNet(t testing.TB) *cacheNet {
	t.Helper()
	n := dnstest.StartNet(t, 2)
	s := n.Servers()
	cn := &cacheNet{net: n, tld: s[0], auth: s[1]}
	if _, err := n.AddZone("com.", cn.tld); err != nil {
		t.Fatal(err)
	}
	ses, err := n.AddZone("amazonses.com.", cn.auth)
	if err != nil {
		t.Fatal(err)
	}
	ses.MustAdd(`amazonses.com. 300 IN TXT "v=spf1 ip4:199.255.192.0/22 ip4:199.127.232.0/22 -all"`)
	if cn.zone, err = n.AddZone("example.com.", cn.auth); err != nil {
		t.Fatal(err)
	}
	return cn
}

// publish adds every record of the sending domain d to the zone, as a customer
// who published them all, and returns their expectations.
func (cn *cacheNet) publish(t testing.TB, d string) []dnscheck.Expectation {
	t.Helper()
	var exps []dnscheck.Expectation
	for _, key := range []domain.RecordKey{domain.KeyOwnership, domain.KeyDKIM, domain.KeyMailFromMX, domain.KeyMailFromSPF, domain.KeyDMARC} {
		e := exp(key, d)
		switch e.Type {
		case "TXT":
			if err := cn.zone.AddTXT(e.Name+".", e.Value); err != nil {
				t.Fatal(err)
			}
		case "MX":
			cn.zone.MustAdd(fmt.Sprintf("%s. 300 IN MX %d %s.", e.Name, e.Priority, e.Value))
		}
		exps = append(exps, e)
	}
	return exps
}

func (cn *cacheNet) checker(t testing.TB, cache *dnscheck.Cache) *dnscheck.Checker {
	t.Helper()
	c, err := dnscheck.New(dnscheck.Config{
		Mode: dnscheck.ModeAuthoritative, RootHints: cn.net.RootIPs(), AuthoritativePort: cn.net.Port(),
		Timeout: 2 * time.Second, AllowPrivate: true, Cache: cache, ServerConcurrency: 1 << 16,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (cn *cacheNet) reset() {
	cn.net.Root().ResetQueries()
	cn.tld.ResetQueries()
	cn.auth.ResetQueries()
}

// upper returns how many queries the root and the TLD server received.
func (cn *cacheNet) upper() int { return len(cn.net.Root().Queries()) + len(cn.tld.Queries()) }

func assertVerified(t testing.TB, obs []domain.Observation) {
	t.Helper()
	for _, o := range obs {
		if o.Status != domain.CheckVerified {
			t.Fatalf("%s: %s %+v, want verified", o.Key, o.Status, o.Problems)
		}
	}
}

// clock is a settable clock for the cache.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// TestCacheSharesDelegations checks a domain, then another domain of the same
// zone with another Checker sharing the cache: the second check asks the root
// and the TLD nothing, and the zone's server once per question, the record
// names and the SPF include; the records are still asked afresh, so one
// changed between the checks is seen.
func TestCacheSharesDelegations(t *testing.T) {
	cn := newCacheNet(t)
	a, b := cn.publish(t, "a.example.com"), cn.publish(t, "b.example.com")
	cache := dnscheck.NewCache(dnscheck.CacheOptions{})

	assertVerified(t, cn.checker(t, cache).Check(t.Context(), a))
	if cn.upper() == 0 {
		t.Fatal("the first check asked neither the root nor the TLD: the cache cannot have been empty")
	}
	cn.reset()
	assertVerified(t, cn.checker(t, cache).Check(t.Context(), b))
	if n := cn.upper(); n != 0 {
		t.Errorf("the second check asked the root and the TLD %d times, want none: %v %v", n, cn.net.Root().Queries(), cn.tld.Queries())
	}
	// Five records at four names, two types at one of them, and the include.
	if n := len(cn.auth.Queries()); n != 6 {
		t.Errorf("the second check asked the zone's server %d times, want 6: %+v", n, cn.auth.Queries())
	}

	// Record data is never cached: a record removed since is missing.
	cn.zone.Remove("_dmarc.b.example.com.", dns.TypeTXT)
	obs := cn.checker(t, cache).Check(t.Context(), b)
	if got := obs[len(obs)-1]; got.Key != domain.KeyDMARC || got.Status != domain.CheckMissing {
		t.Errorf("DMARC after its removal: %s %s, want missing", got.Key, got.Status)
	}
}

// TestCacheExpiry advances the cache's clock: within the delegation's TTL the
// root is not asked again, past it it is; a TTL of years is cut to MaxTTL.
func TestCacheExpiry(t *testing.T) {
	for _, tc := range []struct {
		name string
		ttl  uint32 // of the delegation's NS and glue records in the parent
		keep time.Duration
	}{
		{"TTL honoured", 120, 120 * time.Second},
		{"huge TTL clamped", 1 << 30, 10 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cn := newCacheNet(t)
			ttl := func(text string) string { return strings.ReplaceAll(text, "TTL", strconv.Itoa(int(tc.ttl))) }
			if err := cn.net.Zone("com.").Replace(ttl("example.com. TTL IN NS ns1.example.com.\nns1.example.com. TTL IN A " + cn.auth.IP())); err != nil {
				t.Fatal(err)
			}
			if err := cn.net.Zone(".").Replace(ttl("com. TTL IN NS ns1.com.\nns1.com. TTL IN A " + cn.tld.IP())); err != nil {
				t.Fatal(err)
			}
			exps := cn.publish(t, "a.example.com")[:1]
			clk := &clock{now: time.Unix(1_800_000_000, 0)}
			cache := dnscheck.NewCache(dnscheck.CacheOptions{Now: clk.Now, MaxTTL: 10 * time.Minute})
			c := cn.checker(t, cache)

			assertVerified(t, c.Check(t.Context(), exps))
			clk.add(tc.keep - time.Second)
			cn.reset()
			assertVerified(t, c.Check(t.Context(), exps))
			if n := cn.upper(); n != 0 {
				t.Errorf("%s after the first check: root and TLD asked %d times, want none", tc.keep-time.Second, n)
			}
			clk.add(time.Second)
			cn.reset()
			assertVerified(t, c.Check(t.Context(), exps))
			if cn.net.Root().Count("_autosend-verify.a.example.com.", dns.TypeTXT, "") != 1 ||
				cn.tld.Count("_autosend-verify.a.example.com.", dns.TypeTXT, "") != 1 {
				t.Errorf("%s after the first check: root %v, TLD %v, want one walk from the root", tc.keep, cn.net.Root().Queries(), cn.tld.Queries())
			}
		})
	}
}

// TestCacheSizeBound checks more zones than the cache holds: it never holds more
// entries than its bound, and the zone evicted first is walked to again.
func TestCacheSizeBound(t *testing.T) {
	cn := newCacheNet(t)
	const zones = 6
	var exps [][]dnscheck.Expectation
	for i := range zones {
		origin := fmt.Sprintf("z%d.com.", i)
		z, err := cn.net.AddZone(origin, cn.auth)
		if err != nil {
			t.Fatal(err)
		}
		e := exp(domain.KeyOwnership, strings.TrimSuffix(origin, "."))
		if err := z.AddTXT(e.Name+".", e.Value); err != nil {
			t.Fatal(err)
		}
		exps = append(exps, []dnscheck.Expectation{e})
	}
	const bound = 3
	cache := dnscheck.NewCache(dnscheck.CacheOptions{MaxEntries: bound})
	c := cn.checker(t, cache)
	for _, e := range exps {
		assertVerified(t, c.Check(t.Context(), e))
		if n := cache.Len(); n > bound {
			t.Fatalf("the cache holds %d entries, want at most %d", n, bound)
		}
	}
	cn.reset()
	assertVerified(t, c.Check(t.Context(), exps[zones-1]))
	if n := cn.tld.Count("", 0, ""); n != 0 {
		t.Errorf("the last zone checked was asked of the TLD %d times, want none (cached)", n)
	}
	cn.reset()
	assertVerified(t, c.Check(t.Context(), exps[0]))
	if n := cn.tld.Count(exps[0][0].Name+".", dns.TypeTXT, ""); n != 1 {
		t.Errorf("the first zone checked, evicted since, was asked of the TLD %d times, want 1", n)
	}
}

// TestCacheBailiwick has the server of evil.com. delegate a child zone with glue
// for a name server outside evil.com.: the glue is used for the check, but the
// delegation is not cached, so the next check asks evil.com.'s server again.
// A child delegated with glue inside evil.com. is cached.
func TestCacheBailiwick(t *testing.T) {
	for i, tc := range []struct {
		host   string
		cached bool
	}{
		{"ns.example.com.", false},
		{"ns.d.evil.com.", true},
	} {
		t.Run(tc.host, func(t *testing.T) {
			cn := newCacheNet(t)
			child := dnstest.NewZone("d.evil.com.")
			e := exp(domain.KeyOwnership, "d.evil.com")
			if err := child.AddTXT(e.Name+".", e.Value); err != nil {
				t.Fatal(err)
			}
			cn.auth.AddZone(child)
			ip := fmt.Sprintf("127.0.0.%d", 60+i)
			asked := startReferrer(t, ip, cn.net.Port(), "d.evil.com.", tc.host, cn.auth.IP())
			cn.net.Zone("com.").MustAdd("evil.com. 300 IN NS ns1.evil.com.\nns1.evil.com. 300 IN A " + ip)

			c := cn.checker(t, dnscheck.NewCache(dnscheck.CacheOptions{}))
			assertVerified(t, c.Check(t.Context(), []dnscheck.Expectation{e}))
			if asked.Load() != 1 {
				t.Fatalf("the first check asked evil.com.'s server %d times, want 1", asked.Load())
			}
			assertVerified(t, c.Check(t.Context(), []dnscheck.Expectation{e}))
			if n := asked.Load() - 1; tc.cached && n != 0 {
				t.Errorf("the second check asked for the in-bailiwick delegation again (%d queries), want it cached", n)
			} else if !tc.cached && n != 1 {
				t.Errorf("the second check asked evil.com.'s server %d times, want 1: glue from outside its zone is not cached", n)
			}
		})
	}
}

// startReferrer serves, on ip and port over UDP, a referral of child to host with
// an A record for host at glue, for every question, and counts the questions.
func startReferrer(t *testing.T, ip string, port int, child, host, glue string) *atomic.Int64 {
	t.Helper()
	pc, err := net.ListenPacket("udp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		t.Skipf("cannot listen on %s: %v", ip, err)
	}
	var asked atomic.Int64
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		asked.Add(1)
		m := new(dns.Msg)
		m.SetReply(q)
		m.Ns = []dns.RR{&dns.NS{Hdr: dns.RR_Header{Name: child, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: 300}, Ns: host}}
		m.Extra = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: host, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300}, A: net.ParseIP(glue)}}
		w.WriteMsg(m)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })
	return &asked
}

// TestCacheForgetsDeadZone makes the cached zone's only server stop serving the
// zone: the check that finds it so fails as before, and the next one learns the
// delegation from the parent again.
func TestCacheForgetsDeadZone(t *testing.T) {
	cn := newCacheNet(t)
	exps := cn.publish(t, "a.example.com")[:1]
	cache := dnscheck.NewCache(dnscheck.CacheOptions{})
	c := cn.checker(t, cache)
	assertVerified(t, c.Check(t.Context(), exps))
	cn.auth.SetFault("", 0, dnstest.ServFail)
	if o := c.Check(t.Context(), exps)[0]; o.Status != domain.CheckTemporaryFailure {
		t.Fatalf("with the server failing: %s, want a temporary failure", o.Status)
	}
	cn.auth.ClearFaults()
	cn.reset()
	assertVerified(t, c.Check(t.Context(), exps))
	if cn.tld.Count("", 0, "") == 0 {
		t.Error("after the cached zone's servers failed, the next check did not ask the parent again")
	}
}

// TestCacheKeepsBudgets checks that loops are still found with a warm cache.
func TestCacheKeepsBudgets(t *testing.T) {
	cn := newCacheNet(t)
	cn.zone.MustAdd("_autosend-verify.loop.example.com. 300 IN CNAME x.loop.example.com.")
	cn.zone.MustAdd("x.loop.example.com. 300 IN CNAME _autosend-verify.loop.example.com.")
	cache := dnscheck.NewCache(dnscheck.CacheOptions{})
	c := cn.checker(t, cache)
	e := exp(domain.KeyOwnership, "loop.example.com")
	for i := range 2 {
		o := c.Check(context.Background(), []dnscheck.Expectation{e})[0]
		if o.Status != domain.CheckTemporaryFailure || len(o.Problems) == 0 || o.Problems[0].Code != dnscheck.CodeLoop {
			t.Errorf("check %d: %s %+v, want %s", i, o.Status, o.Problems, dnscheck.CodeLoop)
		}
	}
}

// TestCacheLameServer gives a zone two servers, the first silent. A check asks
// the silent one twice for the record (its walk tries it first, then every
// server is asked for the propagation view); a later check sharing the cache
// walks to the other first, so asks the silent one only once.
func TestCacheLameServer(t *testing.T) {
	n := dnstest.StartNet(t, 2)
	s := n.Servers()
	silent, good := s[0], s[1]
	zone, err := n.AddZone("example.com.", silent, good)
	if err != nil {
		t.Fatal(err)
	}
	e := exp(domain.KeyOwnership, "example.com")
	if err := zone.AddTXT(e.Name+".", e.Value); err != nil {
		t.Fatal(err)
	}
	silent.SetFault("", 0, dnstest.Drop)
	c, err := dnscheck.New(dnscheck.Config{
		Mode: dnscheck.ModeAuthoritative, RootHints: n.RootIPs(), AuthoritativePort: n.Port(),
		Timeout: 200 * time.Millisecond, AllowPrivate: true, Cache: dnscheck.NewCache(dnscheck.CacheOptions{}),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i, want := range []int{2, 1} {
		silent.ResetQueries()
		assertVerified(t, c.Check(t.Context(), []dnscheck.Expectation{e}))
		if got := silent.Count(e.Name+".", dns.TypeTXT, ""); got != want {
			t.Errorf("check %d asked the silent server %d times, want %d", i+1, got, want)
		}
	}
}
