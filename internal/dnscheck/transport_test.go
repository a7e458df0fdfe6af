package dnscheck_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/domaind/domaind/internal/dnscheck"
)

// packetServer answers DNS queries on a UDP socket of its own on loopback with
// whatever answer returns, sending each reply from the same socket, and records
// the source address of every query.
type packetServer struct {
	pc      *net.UDPConn
	mu      sync.Mutex
	sources map[netip.AddrPort]int
	queries int
}

// startPacketServer serves until the test ends. answer returns the replies to
// send for one query, in order; they may be anything, right or wrong.
func startPacketServer(t *testing.T, answer func(q *dns.Msg, from netip.AddrPort) []*dns.Msg) *packetServer {
	t.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	s := &packetServer{pc: pc, sources: make(map[netip.AddrPort]int)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			q := new(dns.Msg)
			if q.Unpack(buf[:n]) != nil || len(q.Question) != 1 {
				continue
			}
			s.mu.Lock()
			s.sources[from]++
			s.queries++
			s.mu.Unlock()
			for _, m := range answer(q, from) {
				b, err := m.Pack()
				if err != nil {
					panic(err)
				}
				pc.WriteToUDPAddrPort(b, from)
			}
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
	return s
}

func (s *packetServer) addr() string { return s.pc.LocalAddr().String() }

func (s *packetServer) counts() (queries, sources int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queries, len(s.sources)
}

// txtAnswer is the right answer to q: one TXT record "right".
func txtAnswer(q *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(q)
	m.Authoritative = true
	m.Answer = []dns.RR{&dns.TXT{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60}, Txt: []string{"right"}}}
	return m
}

func txtOf(t *testing.T, m *dns.Msg) string {
	t.Helper()
	if m == nil || len(m.Answer) != 1 {
		t.Fatalf("answer %v, want one record", m)
	}
	return strings.Join(m.Answer[0].(*dns.TXT).Txt, "")
}

// queryRight sends n TXT queries for name to srv through a Transport of its
// own and fails the test unless each ends with the server's own ("right")
// answer: whatever else reached the socket was dropped.
func queryRight(t *testing.T, srv *packetServer, name string, n int) {
	t.Helper()
	tr := dnscheck.NewTransport(dnscheck.TransportOptions{})
	t.Cleanup(func() { tr.Close() })
	c := &dnscheck.Client{Timeout: 2 * time.Second, Transport: tr}
	for i := range n {
		m, err := c.Exchange(t.Context(), srv.addr(), name, dns.TypeTXT, false)
		if err != nil {
			t.Fatalf("query %d: %v", i, err)
		}
		if got := txtOf(t, m); got != "right" {
			t.Fatalf("query %d: took the answer %q, want the server's own", i, got)
		}
	}
}

// TestTransportReusesSockets sends many queries, one after another and many at
// once, through one Transport: the server sees them come from far fewer source
// ports than queries, and from more than one, since sockets rotate after
// SocketQueries queries and after SocketLifetime.
func TestTransportReusesSockets(t *testing.T) {
	srv := startPacketServer(t, func(q *dns.Msg, _ netip.AddrPort) []*dns.Msg { return []*dns.Msg{txtAnswer(q)} })
	var now atomic.Int64
	now.Store(time.Unix(1_800_000_000, 0).UnixNano())
	tr := dnscheck.NewTransport(dnscheck.TransportOptions{
		SocketQueries: 50, SocketLifetime: time.Minute,
		Now: func() time.Time { return time.Unix(0, now.Load()) },
	})
	t.Cleanup(func() { tr.Close() })
	c := &dnscheck.Client{Timeout: 2 * time.Second, Transport: tr}

	const sequential = 200
	for i := range sequential {
		m, err := c.Exchange(t.Context(), srv.addr(), "q.example", dns.TypeTXT, false)
		if err != nil {
			t.Fatalf("query %d: %v", i, err)
		}
		txtOf(t, m)
	}
	queries, ports := srv.counts()
	if queries != sequential || ports < 2 || ports > sequential/50 {
		t.Errorf("%d queries came from %d source ports, want %d from 2 to %d (a new socket every 50 queries)", queries, ports, sequential, sequential/50)
	}

	// Many at once share the socket too.
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for range 40 {
		wg.Go(func() {
			if _, err := c.Exchange(t.Context(), srv.addr(), "q.example", dns.TypeTXT, false); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	queries, ports2 := srv.counts()
	if queries != sequential+40 || ports2 > ports+2 {
		t.Errorf("40 concurrent queries came from %d new ports, want at most 2", ports2-ports)
	}

	// Past its lifetime a socket takes no more queries: the next comes from a
	// new port.
	now.Add(int64(time.Minute))
	if _, err := c.Exchange(t.Context(), srv.addr(), "q.example", dns.TypeTXT, false); err != nil {
		t.Fatal(err)
	}
	if _, ports3 := srv.counts(); ports3 != ports2+1 {
		t.Errorf("after the socket's lifetime the query came from an old port (%d ports, want %d)", ports3, ports2+1)
	}
}

// TestTransportMatching has a server send, before its right answer, answers
// that must not be taken for it: another id, another name, another type,
// another class, a query rather than a response, garbage, and the right answer
// from another address. The right answer wins, whatever case its name is in.
func TestTransportMatching(t *testing.T) {
	srv := startPacketServer(t, func(q *dns.Msg, _ netip.AddrPort) []*dns.Msg {
		wrong := func(f func(m *dns.Msg)) *dns.Msg {
			m := txtAnswer(q)
			m.Answer[0].(*dns.TXT).Txt = []string{"wrong"}
			f(m)
			return m
		}
		return []*dns.Msg{
			wrong(func(m *dns.Msg) { m.Id ^= 1 }),
			wrong(func(m *dns.Msg) { m.Question[0].Name = "attacker.example." }),
			wrong(func(m *dns.Msg) { m.Question[0].Qtype = dns.TypeA }),
			wrong(func(m *dns.Msg) { m.Question[0].Qclass = dns.ClassCHAOS }),
			wrong(func(m *dns.Msg) { m.Response = false }),
			wrong(func(m *dns.Msg) { m.Question = nil }),
			func() *dns.Msg {
				m := txtAnswer(q)
				m.Question[0].Name = strings.ToUpper(m.Question[0].Name)
				return m
			}(),
		}
	})
	queryRight(t, srv, "Name.Example", 20)
}

// TestTransportForgedFromElsewhere sends, for every query, a perfect answer but
// from another port than the server's, before the server's own: the kernel and
// the client drop it (RFC 5452 §9.1, the source address).
func TestTransportForgedFromElsewhere(t *testing.T) {
	spoofer, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { spoofer.Close() })
	var forged atomic.Int64
	srv := startPacketServer(t, func(q *dns.Msg, from netip.AddrPort) []*dns.Msg {
		m := txtAnswer(q)
		m.Answer[0].(*dns.TXT).Txt = []string{"forged"}
		b, _ := m.Pack()
		if _, err := spoofer.WriteToUDPAddrPort(b, from); err == nil {
			forged.Add(1)
		}
		return []*dns.Msg{txtAnswer(q)}
	})
	queryRight(t, srv, "name.example", 10)
	if forged.Load() == 0 {
		t.Fatal("no forged answer was sent; the test tested nothing")
	}
}

// TestTransportOnlyWrongAnswers: a server that only ever answers another
// question is reported as failing (ErrServFail, "different question") once the
// query times out, not as silent.
func TestTransportOnlyWrongAnswers(t *testing.T) {
	srv := startPacketServer(t, func(q *dns.Msg, _ netip.AddrPort) []*dns.Msg {
		m := txtAnswer(q)
		m.Question[0].Name = "attacker.example."
		return []*dns.Msg{m}
	})
	c := &dnscheck.Client{Timeout: 200 * time.Millisecond}
	_, err := c.Exchange(t.Context(), srv.addr(), "name.example", dns.TypeTXT, false)
	if !errors.Is(err, dnscheck.ErrServFail) || !strings.Contains(err.Error(), "different question") {
		t.Fatalf("err = %v, want ErrServFail saying it answered a different question", err)
	}
}

// TestTransportBoundsOutstanding points many queries at once at a silent
// server through a Transport that allows 4 outstanding: no more than 4 are
// ever outstanding, and every query ends with a timeout.
func TestTransportBoundsOutstanding(t *testing.T) {
	srv := startPacketServer(t, func(*dns.Msg, netip.AddrPort) []*dns.Msg { return nil })
	tr := dnscheck.NewTransport(dnscheck.TransportOptions{MaxOutstanding: 4})
	t.Cleanup(func() { tr.Close() })
	c := &dnscheck.Client{Timeout: 300 * time.Millisecond, Transport: tr}
	var wg sync.WaitGroup
	var timeouts atomic.Int64
	for range 32 {
		wg.Go(func() {
			_, err := c.Exchange(context.Background(), srv.addr(), "name.example", dns.TypeTXT, false)
			if errors.Is(err, dnscheck.ErrTimeout) {
				timeouts.Add(1)
			}
		})
	}
	wg.Wait()
	if p := tr.Stats().PeakOutstanding; p != 4 {
		t.Errorf("%d queries outstanding at once, want 4", p)
	}
	if timeouts.Load() != 32 {
		t.Errorf("%d of 32 queries timed out, want all", timeouts.Load())
	}
}

// TestTransportFlood has a server answer every query with a hundred datagrams
// carrying random ids before the right answer: the right answer still wins.
func TestTransportFlood(t *testing.T) {
	srv := startPacketServer(t, func(q *dns.Msg, _ netip.AddrPort) []*dns.Msg {
		out := make([]*dns.Msg, 0, 101)
		for range 100 {
			m := txtAnswer(q)
			m.Id = dns.Id()
			if m.Id == q.Id {
				m.Id++
			}
			m.Answer[0].(*dns.TXT).Txt = []string{"wrong"}
			out = append(out, m)
		}
		return append(out, txtAnswer(q))
	})
	c := &dnscheck.Client{Timeout: 5 * time.Second, Retries: 2}
	m, err := c.Exchange(t.Context(), srv.addr(), "name.example", dns.TypeTXT, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := txtOf(t, m); got != "right" {
		t.Fatalf("took %q, want the right answer", got)
	}
}

// TestTransportIdleSocketsClose checks that a Transport nobody closes ends its
// sockets and their readers by itself once they are idle for SocketLifetime,
// and that Close ends them at once.
func TestTransportIdleSocketsClose(t *testing.T) {
	srv := startPacketServer(t, func(q *dns.Msg, _ netip.AddrPort) []*dns.Msg { return []*dns.Msg{txtAnswer(q)} })
	for _, closeIt := range []bool{false, true} {
		tr := dnscheck.NewTransport(dnscheck.TransportOptions{SocketLifetime: 100 * time.Millisecond})
		c := &dnscheck.Client{Timeout: 2 * time.Second, Transport: tr}
		if _, err := c.Exchange(t.Context(), srv.addr(), "name.example", dns.TypeTXT, false); err != nil {
			t.Fatal(err)
		}
		if closeIt {
			tr.Close()
		}
		deadline := time.Now().Add(10 * time.Second)
		for tr.Stats().SocketsOpen != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("close=%v: %d sockets still open", closeIt, tr.Stats().SocketsOpen)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
