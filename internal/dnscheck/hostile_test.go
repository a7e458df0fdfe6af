package dnscheck

import (
	"context"
	"encoding/json"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/domaind/domaind/internal/dnstest"
	"github.com/domaind/domaind/internal/domain"
)

// hostileNet is a loopback DNS tree with a well-behaved zone, good.example., on
// one server, and whatever hostile zones a test adds under example.
type hostileNet struct {
	net  *dnstest.Net
	srv  *dnstest.Server
	good *dnstest.Zone
}

func newHostileNet(t *testing.T) *hostileNet {
	t.Helper()
	n := dnstest.StartNet(t, 1)
	srv := n.Servers()[0]
	if _, err := n.AddZone("example.", srv); err != nil {
		t.Fatal(err)
	}
	good, err := n.AddZone("good.example.", srv)
	if err != nil {
		t.Fatal(err)
	}
	good.MustAdd(`_autosend-verify.good.example. 300 IN TXT "autosend-verify-good"`)
	return &hostileNet{net: n, srv: srv, good: good}
}

func (h *hostileNet) hostile(t *testing.T, zone string) *dnstest.Hostile {
	t.Helper()
	hs, err := h.net.AddHostile(t.Context(), zone)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hs.Close() })
	return hs
}

func (h *hostileNet) checker(t *testing.T, cfg Config) *Checker {
	t.Helper()
	cfg.Mode = ModeAuthoritative
	cfg.RootHints = h.net.RootIPs()
	cfg.AuthoritativePort = h.net.Port()
	if cfg.Timeout == 0 {
		cfg.Timeout = 300 * time.Millisecond
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// records returns the expectations of a sending domain d, one of each kind.
func records(d string) []Expectation {
	return []Expectation{
		{Key: domain.KeyOwnership, Domain: d, Name: "_autosend-verify." + d, Type: "TXT", Value: "autosend-verify-" + strings.Split(d, ".")[0]},
		{Key: domain.KeyDKIM, Domain: d, Name: "autosend._domainkey." + d, Type: "TXT"},
		{Key: domain.KeyMailFromMX, Domain: d, Name: "mail." + d, Type: "MX", Value: "feedback-smtp.us-east-1.amazonses.com", Priority: 10},
		{Key: domain.KeyMailFromSPF, Domain: d, Name: "mail." + d, Type: "TXT", Value: "v=spf1 include:amazonses.com ~all"},
		{Key: domain.KeyDMARC, Domain: d, Name: "_dmarc." + d, Type: "TXT", Value: "v=DMARC1; p=none;"},
	}
}

// localAddr matches the text Go's net package gives a failed exchange, which
// names the local address: "read udp 127.0.0.1:46770->127.0.0.77:53".
var localAddr = regexp.MustCompile(`(?:read|write|dial) (?:udp|tcp)|\d+\.\d+\.\d+\.\d+:\d+->`)

// assertResult checks what every check result must be whatever the servers said:
// small, and naming no address of domaind's own.
func assertResult(t *testing.T, obs []domain.Observation) {
	t.Helper()
	b, err := json.Marshal(obs)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 64<<10 {
		t.Errorf("result is %d bytes of JSON, want at most 64 KiB", len(b))
	}
	for _, o := range obs {
		if len(o.Propagation) > maxSightings {
			t.Errorf("%s: %d propagation entries, want at most %d", o.Key, len(o.Propagation), maxSightings)
		}
		for _, sg := range o.Propagation {
			if localAddr.MatchString(sg.Error) {
				t.Errorf("%s: propagation error names a local address: %q", o.Key, sg.Error)
			}
		}
		for _, p := range o.Problems {
			if localAddr.MatchString(p.Message) {
				t.Errorf("%s: problem names a local address: %q", o.Key, p.Message)
			}
		}
	}
}

func hasCode(o domain.Observation, code domain.ProblemCode) bool {
	return slices.ContainsFunc(o.Problems, func(p domain.Problem) bool { return p.Code == code })
}

// checkMemoryBound is the bound on the memory of one check that the README
// states: maxCheckInFlight answers of at most 64 KiB read and maxMsgRRs records
// parsed (about 1 MiB each at worst), maxCheckKept bytes of records kept, and the
// result. The heap is sampled, so garbage not yet collected counts too; the
// bound holds with that.
const checkMemoryBound = 32 << 20

// peakHeap runs f while sampling the heap in use and returns how far above its
// starting point the heap went.
func peakHeap(f func()) uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > base && ms.HeapInuse-base > peak.Load() {
				peak.Store(ms.HeapInuse - base)
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	})
	f()
	close(done)
	wg.Wait()
	return peak.Load()
}

// TestReferralAmplification answers every query of a tenant's zone with a
// referral of hundreds of NS and glue records, the attack that once took one
// check to 700 MB. The check must stay within its budget and its memory bound,
// end before its deadline, and keep a small result.
func TestReferralAmplification(t *testing.T) {
	for _, tc := range []struct {
		name string
		ref  dnstest.Referral
	}{
		{"300 copies of one NS and 300 glue", dnstest.Referral{NS: 300, Glue: 300}},
		{"500 copies of one NS and 500 glue", dnstest.Referral{NS: 500, Glue: 500}},
		{"300 names and 300 addresses", dnstest.Referral{NS: 300, Glue: 300, DistinctNames: true,
			GlueIPs: func() (ips []string) {
				for i := range 300 {
					ips = append(ips, "127.0.1."+strconv.Itoa(i%250+1))
				}
				return ips
			}()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hn := newHostileNet(t)
			hs := hn.hostile(t, "evil.example.")
			ref := tc.ref
			ref.Child = "d.evil.example."
			hs.SetReferral(ref)
			hs.Set(dnstest.Amplify)
			c := hn.checker(t, Config{AllowPrivate: true})

			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			var obs []domain.Observation
			var s *session
			peak := peakHeap(func() { obs, s = c.check(ctx, records("d.evil.example")) })
			if ctx.Err() != nil {
				t.Fatalf("the check ran into its deadline: %v", ctx.Err())
			}
			t.Logf("peak heap %d KiB, %d queries, %d referrals, %d at once, %d received by the hostile server",
				peak>>10, s.b.queries.Load(), s.b.referrals.Load(), s.b.peakInFlight.Load(), hs.Received())
			if peak > checkMemoryBound {
				t.Errorf("peak heap of one check %d MiB, want under %d MiB", peak>>20, checkMemoryBound>>20)
			}
			if q := s.b.queries.Load(); q > maxCheckQueries+maxCheckInFlight {
				t.Errorf("the check sent %d queries, want at most %d", q, maxCheckQueries)
			}
			if p := s.b.peakInFlight.Load(); p > maxCheckInFlight {
				t.Errorf("%d queries in flight at once, want at most %d", p, maxCheckInFlight)
			}
			if n := hs.Received(); n > 200 {
				t.Errorf("the hostile server received %d queries, want a few dozen at most", n)
			}
			s.mu.Lock()
			for z, servers := range s.zones {
				if len(servers) > maxZoneServers {
					t.Errorf("zone %s has %d servers, want at most %d", z, len(servers), maxZoneServers)
				}
			}
			s.mu.Unlock()
			for _, o := range obs {
				if o.Status != domain.CheckTemporaryFailure {
					t.Errorf("%s: status %s, want a temporary failure", o.Key, o.Status)
				}
				if len(o.Problems) == 0 {
					t.Errorf("%s: no problem named", o.Key)
				}
			}
			assertResult(t, obs)
		})
	}
}

// TestPrivateGlue points a tenant's glue at another loopback address where a
// listener counts what reaches it. Without AllowPrivate nothing may reach it, and
// the record says why; with it, queries do. The Net's own servers are loopback
// too, so the test trusts the one that serves example. as the operator trusts
// root hints.
func TestPrivateGlue(t *testing.T) {
	for _, allow := range []bool{false, true} {
		t.Run("AllowPrivate="+map[bool]string{false: "false", true: "true"}[allow], func(t *testing.T) {
			hn := newHostileNet(t)
			ex := hn.net.Zone("example.")
			ex.MustAdd("evil.example. 300 IN NS ns1.evil.example.")
			ex.MustAdd("ns1.evil.example. 300 IN A 127.0.0.77")
			counter, err := dnstest.NewCounter(t.Context(), "127.0.0.77", hn.net.Port())
			if err != nil {
				t.Skipf("cannot listen on 127.0.0.77: %v", err)
			}
			defer counter.Close()
			c := hn.checker(t, Config{AllowPrivate: allow})
			c.trusted[hn.srv.IP()] = true

			exps := append(records("evil.example"), Expectation{Key: domain.KeyOwnership, Domain: "good.example",
				Name: "_autosend-verify.good.example", Type: "TXT", Value: "autosend-verify-good"})
			obs := c.Check(t.Context(), exps)
			assertResult(t, obs)
			if got := obs[len(obs)-1].Status; got != domain.CheckVerified {
				t.Errorf("good.example: status %s, want verified: %+v", got, obs[len(obs)-1])
			}
			reached := counter.Packets() + counter.Conns()
			if !allow {
				if reached != 0 {
					t.Errorf("%d packets reached 127.0.0.77, want none", reached)
				}
				for _, o := range obs[:len(obs)-1] {
					if o.Status != domain.CheckTemporaryFailure || !hasCode(o, CodePrivateAddress) {
						t.Errorf("%s: %s %v, want a temporary failure with %s", o.Key, o.Status, o.Problems, CodePrivateAddress)
					}
					if len(o.Propagation) == 0 || !strings.Contains(o.Propagation[0].Error, "127.0.0.77:") ||
						!strings.Contains(o.Propagation[0].Error, "a loopback address") {
						t.Errorf("%s: propagation %+v, want the refused server and why", o.Key, o.Propagation)
					}
				}
				return
			}
			if reached == 0 {
				t.Error("no packet reached 127.0.0.77 with AllowPrivate")
			}
		})
	}
}

// TestRefusedConnectionText makes a zone's only server refuse connections and
// checks that the error shown says so without the local address Go's error
// carries.
func TestRefusedConnectionText(t *testing.T) {
	hn := newHostileNet(t)
	hn.net.Zone("example.").MustAdd("gone.example. 300 IN NS ns1.gone.example.")
	hn.net.Zone("example.").MustAdd("ns1.gone.example. 300 IN A 127.0.0.78")
	c := hn.checker(t, Config{AllowPrivate: true})
	obs := c.Check(t.Context(), records("gone.example")[:1])
	assertResult(t, obs)
	if len(obs[0].Propagation) != 1 || !strings.Contains(obs[0].Propagation[0].Error, "no answer (connection refused)") {
		t.Errorf("propagation %+v, want one entry saying the connection was refused", obs[0].Propagation)
	}
}

// TestLoops ends a CNAME loop and delegation loops with DNS_LOOP.
func TestLoops(t *testing.T) {
	t.Run("CNAME loop", func(t *testing.T) {
		hn := newHostileNet(t)
		hs := hn.hostile(t, "evil.example.")
		hs.Set(dnstest.CNAMELoop)
		obs := hn.checker(t, Config{AllowPrivate: true}).Check(t.Context(), records("evil.example")[:1])
		assertResult(t, obs)
		if o := obs[0]; o.Status != domain.CheckTemporaryFailure || !hasCode(o, CodeLoop) {
			t.Errorf("%s %+v, want a temporary failure with %s", o.Status, o.Problems, CodeLoop)
		}
	})
	t.Run("CNAME loop across zones", func(t *testing.T) {
		hn := newHostileNet(t)
		other, err := hn.net.AddZone("other.example.", hn.srv)
		if err != nil {
			t.Fatal(err)
		}
		hn.good.MustAdd("_autosend-verify.good.example. 300 IN CNAME a.other.example.")
		hn.good.Remove("_autosend-verify.good.example.", dns.TypeTXT)
		other.MustAdd("a.other.example. 300 IN CNAME _autosend-verify.good.example.")
		obs := hn.checker(t, Config{AllowPrivate: true}).Check(t.Context(), records("good.example")[:1])
		if o := obs[0]; o.Status != domain.CheckTemporaryFailure || !hasCode(o, CodeLoop) {
			t.Errorf("%s %+v, want a temporary failure with %s", o.Status, o.Problems, CodeLoop)
		}
	})
	t.Run("referral back to the zone", func(t *testing.T) {
		hn := newHostileNet(t)
		hs := hn.hostile(t, "evil.example.")
		hs.Set(dnstest.ReferBack)
		obs := hn.checker(t, Config{AllowPrivate: true}).Check(t.Context(), records("evil.example")[:1])
		if o := obs[0]; o.Status != domain.CheckTemporaryFailure || !hasCode(o, CodeLoop) {
			t.Errorf("%s %+v, want a temporary failure with %s", o.Status, o.Problems, CodeLoop)
		}
	})
	t.Run("name servers only found through each other", func(t *testing.T) {
		hn := newHostileNet(t)
		ex := hn.net.Zone("example.")
		ex.MustAdd("a.example. 300 IN NS ns.b.example.")
		ex.MustAdd("b.example. 300 IN NS ns.a.example.")
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		obs, s := hn.checker(t, Config{AllowPrivate: true}).check(ctx, records("a.example"))
		if ctx.Err() != nil {
			t.Fatal("the check ran into its deadline")
		}
		for _, o := range obs {
			if o.Status != domain.CheckTemporaryFailure || !hasCode(o, CodeLoop) {
				t.Errorf("%s: %s %+v, want a temporary failure with %s", o.Key, o.Status, o.Problems, CodeLoop)
			}
		}
		if n := s.b.nsLookups.Load(); n > maxCheckNSLookups+1 {
			t.Errorf("%d name server lookups, want at most %d", n, maxCheckNSLookups)
		}
	})
}

// TestMalformedAnswers makes a tenant's only server answer every way a broken or
// hostile server can; each check ends with a temporary failure, before its
// deadline, with an error that says what was wrong.
func TestMalformedAnswers(t *testing.T) {
	for _, tc := range []struct {
		mode dnstest.Misbehaviour
		want string // in the propagation error
	}{
		{dnstest.Garbage, "malformed"},
		{dnstest.WrongID, "timed out"},
		{dnstest.WrongQuestion, "different question"},
		{dnstest.Cut, "malformed"},
		{dnstest.Oversized, "more than the 256"},
		{dnstest.Silent, "timed out"},
	} {
		t.Run(strconv.Itoa(int(tc.mode)), func(t *testing.T) {
			hn := newHostileNet(t)
			hs := hn.hostile(t, "evil.example.")
			z := dnstest.NewZone("evil.example.")
			z.MustAdd(`_autosend-verify.evil.example. 300 IN TXT "autosend-verify-evil"`)
			hs.AddZone(z)
			hs.Set(tc.mode)
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			c := hn.checker(t, Config{AllowPrivate: true})
			obs := c.Check(ctx, records("evil.example")[:1])
			if ctx.Err() != nil {
				t.Fatal("the check ran into its deadline")
			}
			assertResult(t, obs)
			o := obs[0]
			if o.Status != domain.CheckTemporaryFailure {
				t.Fatalf("status %s, want a temporary failure", o.Status)
			}
			if len(o.Propagation) != 1 || !strings.Contains(o.Propagation[0].Error, tc.want) {
				t.Errorf("propagation %+v, want an error with %q", o.Propagation, tc.want)
			}
		})
	}
}

// TestSlowServerShare holds many checks on a tenant's slow name server and checks
// that domaind never has more queries waiting on it than ServerConcurrency (as
// the server counts them), that queries give up on it rather than queue, and
// that a domain on another server verifies meanwhile.
func TestSlowServerShare(t *testing.T) {
	hn := newHostileNet(t)
	hs := hn.hostile(t, "evil.example.")
	// The server answers well within the timeout: a query that timed out gives
	// its place back while the server still counts it, which on a loaded
	// machine (the server's goroutines waiting for a core) would show as one
	// more at once than domaind ever had.
	hs.SetDelay(200 * time.Millisecond)
	hs.Set(dnstest.Slow)
	const limit = 4
	c := hn.checker(t, Config{AllowPrivate: true, ServerConcurrency: limit, Timeout: 400 * time.Millisecond})

	var wg sync.WaitGroup
	evil := make([][]domain.Observation, 12)
	for i := range evil {
		wg.Go(func() { evil[i] = c.Check(t.Context(), records("evil.example")) })
	}
	good := c.Check(t.Context(), []Expectation{{Key: domain.KeyOwnership, Domain: "good.example",
		Name: "_autosend-verify.good.example", Type: "TXT", Value: "autosend-verify-good"}})
	wg.Wait()
	if good[0].Status != domain.CheckVerified {
		t.Errorf("good.example: %s %+v, want verified", good[0].Status, good[0].Problems)
	}
	if p := hs.PeakInFlight(); p > limit || p == 0 {
		t.Errorf("the slow server had %d queries of domaind's at once, want 1 to %d", p, limit)
	}
	if p := c.slots.peak.Load(); p > limit {
		t.Errorf("%d queries in flight to one server, want at most %d", p, limit)
	}
	if c.slots.busy.Load() == 0 {
		t.Error("no query gave up on the full server; 60 queries cannot have fit 4 places in one timeout")
	}
	busy := 0
	for _, obs := range evil {
		for _, o := range obs {
			if o.Status != domain.CheckTemporaryFailure {
				t.Errorf("%s: %s, want a temporary failure", o.Key, o.Status)
			}
			if hasCode(o, CodeServerBusy) {
				busy++
			}
		}
	}
	if busy == 0 {
		t.Errorf("no record reported %s", CodeServerBusy)
	}
	c.slots.mu.Lock()
	if n := len(c.slots.m); n != 0 {
		t.Errorf("%d servers still hold places after every check ended", n)
	}
	c.slots.mu.Unlock()
}

// TestHostileWithCache runs hostile zones twice through one Checker with an
// infrastructure cache: the second check, with whatever the first one cached,
// ends as the first did, within its budget, and the cache holds no more than
// the few zones the walks found.
func TestHostileWithCache(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, hn *hostileNet)
		code  domain.ProblemCode
	}{
		{"amplified referral", func(t *testing.T, hn *hostileNet) {
			hs := hn.hostile(t, "evil.example.")
			hs.SetReferral(dnstest.Referral{Child: "d.evil.example.", NS: 300, Glue: 300, DistinctNames: true})
			hs.Set(dnstest.Amplify)
		}, ""},
		{"referral back", func(t *testing.T, hn *hostileNet) {
			hn.hostile(t, "evil.example.").Set(dnstest.ReferBack)
		}, CodeLoop},
		{"CNAME loop", func(t *testing.T, hn *hostileNet) {
			hn.hostile(t, "evil.example.").Set(dnstest.CNAMELoop)
		}, CodeLoop},
		{"name servers through each other", func(t *testing.T, hn *hostileNet) {
			ex := hn.net.Zone("example.")
			ex.MustAdd("evil.example. 300 IN NS ns.b.example.")
			ex.MustAdd("b.example. 300 IN NS ns.evil.example.")
		}, CodeLoop},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hn := newHostileNet(t)
			tc.setup(t, hn)
			cache := NewCache(CacheOptions{})
			c := hn.checker(t, Config{AllowPrivate: true, Cache: cache})
			d := "evil.example"
			if tc.name == "amplified referral" {
				d = "d.evil.example"
			}
			for i := range 2 {
				ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
				obs, s := c.check(ctx, records(d))
				if ctx.Err() != nil {
					t.Fatalf("check %d ran into its deadline", i+1)
				}
				cancel()
				assertResult(t, obs)
				if q := s.b.queries.Load(); q > maxCheckQueries+maxCheckInFlight {
					t.Errorf("check %d sent %d queries, want at most %d", i+1, q, maxCheckQueries)
				}
				for _, o := range obs {
					if o.Status != domain.CheckTemporaryFailure || (tc.code != "" && !hasCode(o, tc.code)) {
						t.Errorf("check %d: %s: %s %+v, want a temporary failure with %q", i+1, o.Key, o.Status, o.Problems, tc.code)
					}
				}
			}
			if n := cache.Len(); n > 16 {
				t.Errorf("the cache holds %d entries after two checks of one hostile zone, want a few", n)
			}
		})
	}
}
