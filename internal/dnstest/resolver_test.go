package dnstest

import (
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/domaind/domaind/internal/testenv"
	"github.com/miekg/dns"
)

// resolverSetup starts an authoritative server for example.com. with the
// SOA given as zone-file text and a CachingResolver in front of it, whose
// clock the returned clock drives.
func resolverSetup(t *testing.T, soa string) (*Server, *Zone, *CachingResolver, *testenv.Clock) {
	t.Helper()
	z := NewZone("example.com.")
	z.MustAdd(soa)
	z.MustAdd("@ NS ns1.example.com.\nns1 A 192.0.2.53")
	up := Start(t, z)
	r := StartCachingResolver(t, up.Addr())
	clock := testenv.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	r.setClock(clock.Now)
	return up, z, r, clock
}

// longSOA makes negative answers live for an hour, longer than any test.
const longSOA = "@ 3600 SOA ns1 hostmaster 1 3600 600 86400 3600"

// TestCachingResolverNegativeTrap reproduces the reason the checker avoids
// resolvers: a name asked before it was published stays NXDOMAIN.
func TestCachingResolverNegativeTrap(t *testing.T) {
	up, z, r, _ := resolverSetup(t, longSOA)
	const name = "_verify.example.com."

	for _, proto := range []string{"udp", "tcp"} {
		resp := ask(t, r.Addr(), proto, name, dns.TypeTXT, 0)
		if resp.Rcode != dns.RcodeNameError {
			t.Fatalf("%s before publishing: rcode %s, want NXDOMAIN", proto, dns.RcodeToString[resp.Rcode])
		}
		if !resp.RecursionAvailable || resp.Authoritative {
			t.Errorf("%s: RA=%v AA=%v, want RA set and AA clear", proto, resp.RecursionAvailable, resp.Authoritative)
		}
	}

	if err := z.AddTXT(name, "token-1"); err != nil {
		t.Fatal(err)
	}
	direct := ask(t, up.Addr(), "udp", name, dns.TypeTXT, 0)
	if got := TXTValues(direct); !slices.Equal(got, []string{"token-1"}) {
		t.Fatalf("upstream answers %q, want the new record", got)
	}

	for _, proto := range []string{"udp", "tcp"} {
		resp := ask(t, r.Addr(), proto, name, dns.TypeTXT, 0)
		if resp.Rcode != dns.RcodeNameError || len(resp.Answer) != 0 {
			t.Errorf("%s after publishing: rcode %s with %d answers, want the cached NXDOMAIN",
				proto, dns.RcodeToString[resp.Rcode], len(resp.Answer))
		}
	}
	// One query from the resolver itself, one from this test, none more.
	if n := up.Count(name, dns.TypeTXT, ""); n != 2 {
		t.Errorf("upstream saw %d queries for %s, want 2", n, name)
	}

	r.Flush()
	if r.Len() != 0 {
		t.Errorf("Len after Flush = %d, want 0", r.Len())
	}
	resp := ask(t, r.Addr(), "udp", name, dns.TypeTXT, 0)
	if got := TXTValues(resp); resp.Rcode != dns.RcodeSuccess || !slices.Equal(got, []string{"token-1"}) {
		t.Errorf("after Flush: rcode %s, TXT %q, want the new record", dns.RcodeToString[resp.Rcode], got)
	}
}

// TestCachingResolverKeys checks which queries share a cache entry: the
// key is name, type and class, and names compare case-insensitively.
func TestCachingResolverKeys(t *testing.T) {
	up, z, r, _ := resolverSetup(t, longSOA)
	z.MustAdd("www A 192.0.2.1\nwww TXT \"one\"")

	tests := []struct {
		name     string
		qname    string
		qtype    uint16
		upstream bool // whether the query must go upstream
	}{
		{"first A", "www.example.com.", dns.TypeA, true},
		{"same A again", "www.example.com.", dns.TypeA, false},
		{"same A, other case", "WWW.Example.COM.", dns.TypeA, false},
		{"other type", "www.example.com.", dns.TypeTXT, true},
		{"other type again", "www.example.com.", dns.TypeTXT, false},
		{"NODATA", "www.example.com.", dns.TypeMX, true},
		{"NODATA again", "www.example.com.", dns.TypeMX, false},
		{"other name", "ns1.example.com.", dns.TypeA, true},
	}
	for _, tt := range tests {
		before := len(up.Queries())
		ask(t, r.Addr(), "udp", tt.qname, tt.qtype, 0)
		went := len(up.Queries()) > before
		if went != tt.upstream {
			t.Errorf("%s: went upstream = %v, want %v", tt.name, went, tt.upstream)
		}
	}
	if r.Len() != 4 {
		t.Errorf("Len = %d, want 4 (www A, www TXT, www MX, ns1 A)", r.Len())
	}
}

// TestCachingResolverChangedRecordStays checks that a positive answer is
// served from the cache after the record changes upstream.
func TestCachingResolverChangedRecordStays(t *testing.T) {
	_, z, r, _ := resolverSetup(t, longSOA)
	z.MustAdd("_dmarc 3600 TXT \"v=DMARC1; p=none\"")
	ask(t, r.Addr(), "udp", "_dmarc.example.com.", dns.TypeTXT, 0)
	if err := z.Replace("_dmarc 3600 TXT \"v=DMARC1; p=reject\""); err != nil {
		t.Fatal(err)
	}
	resp := ask(t, r.Addr(), "udp", "_dmarc.example.com.", dns.TypeTXT, 0)
	if got := TXTValues(resp); !slices.Equal(got, []string{"v=DMARC1; p=none"}) {
		t.Errorf("TXT = %q, want the old value from the cache", got)
	}
}

// TestCachingResolverExpiry checks how long answers are cached: positive
// ones for the smallest TTL in the answer, negative ones for the smaller of
// the SOA's TTL and minimum, and that served TTLs count down.
func TestCachingResolverExpiry(t *testing.T) {
	tests := []struct {
		name  string
		soa   string
		data  string // records in example.com., zone-file text
		qname string
		qtype uint16
		rcode int
		life  time.Duration // how long the answer is cached
	}{
		{
			name:  "positive, smallest TTL of the RRset",
			soa:   longSOA,
			data:  "www 60 A 192.0.2.1\nwww 30 A 192.0.2.2",
			qname: "www.example.com.", qtype: dns.TypeA, rcode: dns.RcodeSuccess,
			life: 30 * time.Second,
		},
		{
			name:  "NXDOMAIN, SOA minimum below SOA TTL",
			soa:   "@ 600 SOA ns1 hostmaster 1 3600 600 86400 120",
			qname: "missing.example.com.", qtype: dns.TypeTXT, rcode: dns.RcodeNameError,
			life: 120 * time.Second,
		},
		{
			name:  "NXDOMAIN, SOA TTL below SOA minimum",
			soa:   "@ 100 SOA ns1 hostmaster 1 3600 600 86400 3600",
			qname: "missing.example.com.", qtype: dns.TypeTXT, rcode: dns.RcodeNameError,
			life: 100 * time.Second,
		},
		{
			name:  "NODATA",
			soa:   "@ 3600 SOA ns1 hostmaster 1 3600 600 86400 90",
			data:  "www 300 A 192.0.2.1",
			qname: "www.example.com.", qtype: dns.TypeTXT, rcode: dns.RcodeSuccess,
			life: 90 * time.Second,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up, z, r, clock := resolverSetup(t, tt.soa)
			if tt.data != "" {
				z.MustAdd(tt.data)
			}
			first := ask(t, r.Addr(), "udp", tt.qname, tt.qtype, 0)
			if first.Rcode != tt.rcode {
				t.Fatalf("rcode %s, want %s", dns.RcodeToString[first.Rcode], dns.RcodeToString[tt.rcode])
			}

			clock.Advance(tt.life - time.Second)
			aged := ask(t, r.Addr(), "udp", tt.qname, tt.qtype, 0)
			if n := up.Count(tt.qname, tt.qtype, ""); n != 1 {
				t.Fatalf("1s before expiry: upstream saw %d queries, want 1", n)
			}
			// Every served TTL has counted down by the time that passed.
			elapsed := uint32((tt.life - time.Second) / time.Second)
			want := append(slices.Clone(first.Answer), first.Ns...)
			got := append(slices.Clone(aged.Answer), aged.Ns...)
			if len(got) != len(want) {
				t.Fatalf("aged answer has %d records, want %d", len(got), len(want))
			}
			for i := range want {
				if w := want[i].Header().Ttl - min(elapsed, want[i].Header().Ttl); got[i].Header().Ttl != w {
					t.Errorf("record %d TTL = %d, want %d", i, got[i].Header().Ttl, w)
				}
			}

			clock.Advance(time.Second)
			ask(t, r.Addr(), "udp", tt.qname, tt.qtype, 0)
			if n := up.Count(tt.qname, tt.qtype, ""); n != 2 {
				t.Errorf("at expiry: upstream saw %d queries, want 2", n)
			}
		})
	}
}

// TestCachingResolverNotCached checks the responses that must not be
// cached: failures, and negative answers without an SOA.
func TestCachingResolverNotCached(t *testing.T) {
	t.Run("SERVFAIL", func(t *testing.T) {
		up, _, r, _ := resolverSetup(t, longSOA)
		up.SetFault("www.example.com.", dns.TypeA, ServFail)
		for range 2 {
			resp := ask(t, r.Addr(), "udp", "www.example.com.", dns.TypeA, 0)
			if resp.Rcode != dns.RcodeServerFailure {
				t.Errorf("rcode %s, want SERVFAIL", dns.RcodeToString[resp.Rcode])
			}
		}
		if n := up.Count("www.example.com.", dns.TypeA, ""); n != 2 {
			t.Errorf("upstream saw %d queries, want 2: SERVFAIL must not be cached", n)
		}
	})
	t.Run("negative without SOA", func(t *testing.T) {
		up := startHandler(t, func(w dns.ResponseWriter, req *dns.Msg) {
			m := new(dns.Msg)
			m.SetRcode(req, dns.RcodeNameError)
			w.WriteMsg(m)
		})
		r := StartCachingResolver(t, up.addr)
		for range 2 {
			if resp := ask(t, r.Addr(), "udp", "x.example.", dns.TypeA, 0); resp.Rcode != dns.RcodeNameError {
				t.Errorf("rcode %s, want NXDOMAIN passed through", dns.RcodeToString[resp.Rcode])
			}
		}
		if n := len(up.requests()); n != 2 {
			t.Errorf("upstream saw %d queries, want 2", n)
		}
	})
	t.Run("upstream silent", func(t *testing.T) {
		up, _, r, _ := resolverSetup(t, longSOA)
		r.setTimeout(100 * time.Millisecond)
		up.SetFault("", 0, Drop)
		resp, err := exchange(r.Addr(), "udp", "www.example.com.", dns.TypeA, 0, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Rcode != dns.RcodeServerFailure {
			t.Errorf("rcode %s, want SERVFAIL", dns.RcodeToString[resp.Rcode])
		}
		if r.Len() != 0 {
			t.Errorf("Len = %d, want 0", r.Len())
		}
	})
}

// TestCachingResolverForwarding checks what goes upstream: the question
// with RD clear, and a retry over TCP when the UDP answer is truncated.
func TestCachingResolverForwarding(t *testing.T) {
	up := startHandler(t, func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		m.Authoritative = true
		if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
			m.Truncated = true
		} else {
			m.Answer = append(m.Answer, NewTXT(req.Question[0].Name, 300, "over tcp"))
		}
		w.WriteMsg(m)
	})
	r := StartCachingResolver(t, up.addr)
	q := new(dns.Msg)
	q.SetQuestion("Mixed.Example.", dns.TypeTXT)
	q.RecursionDesired = true
	resp, err := dns.Exchange(q, r.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if got := TXTValues(resp); !slices.Equal(got, []string{"over tcp"}) {
		t.Errorf("TXT = %q, want the answer fetched over TCP", got)
	}
	reqs := up.requests()
	if len(reqs) != 2 || reqs[0].proto != "udp" || reqs[1].proto != "tcp" {
		t.Fatalf("upstream requests %+v, want one over UDP then one over TCP", reqs)
	}
	for _, req := range reqs {
		if req.msg.RecursionDesired {
			t.Errorf("upstream %s query has RD set", req.proto)
		}
		if q := req.msg.Question[0]; q.Name != "Mixed.Example." || q.Qtype != dns.TypeTXT || q.Qclass != dns.ClassINET {
			t.Errorf("upstream question %v, want the client's", q)
		}
	}
}

// TestCachingResolverTruncatesForClient checks that an answer too large for
// the client's UDP buffer comes back with TC set and whole over TCP.
func TestCachingResolverTruncatesForClient(t *testing.T) {
	_, z, r, _ := resolverSetup(t, longSOA)
	key := strings.Repeat("k", 700)
	if err := z.AddTXT("sel._domainkey", key); err != nil {
		t.Fatal(err)
	}
	udp := ask(t, r.Addr(), "udp", "sel._domainkey.example.com.", dns.TypeTXT, 0)
	if !udp.Truncated {
		t.Errorf("UDP without EDNS0: TC clear for a %d-byte answer", len(key))
	}
	tcp := ask(t, r.Addr(), "tcp", "sel._domainkey.example.com.", dns.TypeTXT, 0)
	if got := TXTValues(tcp); tcp.Truncated || !slices.Equal(got, []string{key}) {
		t.Errorf("TCP: TC=%v, TXT %d values, want the whole key", tcp.Truncated, len(got))
	}
	edns := ask(t, r.Addr(), "udp", "sel._domainkey.example.com.", dns.TypeTXT, 1232)
	if got := TXTValues(edns); edns.Truncated || !slices.Equal(got, []string{key}) {
		t.Errorf("UDP with EDNS0 1232: TC=%v, want the whole key", edns.Truncated)
	}
}

func TestNewCachingResolverRefusesNonLoopback(t *testing.T) {
	for _, upstream := range []string{"192.0.2.1:53", "example.com:53", "127.0.0.1"} {
		if r, err := NewCachingResolver(t.Context(), upstream); err == nil {
			r.Close()
			t.Errorf("NewCachingResolver(%q) succeeded", upstream)
		}
	}
}

// handlerServer is a bare upstream for tests that need to see or shape the
// raw messages, which a Server does not expose.
type handlerServer struct {
	addr string
	mu   sync.Mutex
	reqs []seenRequest
}

type seenRequest struct {
	proto string
	msg   *dns.Msg
}

func (h *handlerServer) requests() []seenRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.reqs)
}

// startHandler serves f on UDP and TCP on a free port of 127.0.0.1,
// recording every request.
func startHandler(t *testing.T, f dns.HandlerFunc) *handlerServer {
	t.Helper()
	pc, l, err := listen(t.Context(), "127.0.0.1", 0)
	if err != nil {
		t.Fatal(err)
	}
	h := &handlerServer{addr: l.Addr().String()}
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		proto := "udp"
		if _, ok := w.RemoteAddr().(*net.TCPAddr); ok {
			proto = "tcp"
		}
		h.mu.Lock()
		h.reqs = append(h.reqs, seenRequest{proto: proto, msg: req.Copy()})
		h.mu.Unlock()
		f(w, req)
	})
	started := make(chan struct{}, 2)
	for _, srv := range []*dns.Server{
		{PacketConn: pc, Handler: handler, NotifyStartedFunc: func() { started <- struct{}{} }},
		{Listener: l, Handler: handler, NotifyStartedFunc: func() { started <- struct{}{} }},
	} {
		go srv.ActivateAndServe()
		t.Cleanup(func() { srv.Shutdown() })
	}
	for range 2 {
		<-started
	}
	return h
}
