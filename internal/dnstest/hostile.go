package dnstest

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

// Misbehaviour is what a [Hostile] server does with every query it receives.
type Misbehaviour int

// The misbehaviours of a [Hostile] server.
const (
	// Behave answers from the server's zones, like a [Server].
	Behave Misbehaviour = iota
	// Amplify answers every query with the referral [Hostile.SetReferral]
	// describes: many NS records and many glue records, over TCP when they do
	// not fit a UDP answer.
	Amplify
	// Slow answers from the zones after [Hostile.SetDelay].
	Slow
	// Silent never answers.
	Silent
	// CNAMELoop answers every name with a CNAME to a second name, and that
	// name with a CNAME back, both in one authoritative answer.
	CNAMELoop
	// ReferBack answers every query with a referral to the zone the server was
	// made for ([NewHostile]'s zone), which sends a walk back where it came from.
	ReferBack
	// Oversized sets the TC bit over UDP and answers over TCP with a message
	// of nearly 64 KiB holding thousands of records.
	Oversized
	// Garbage answers with random bytes.
	Garbage
	// WrongID answers correctly but with another message id.
	WrongID
	// WrongQuestion answers authoritatively for another name.
	WrongQuestion
	// Cut answers with the first half of a correct answer's bytes.
	Cut
)

// Referral describes the answer of the [Amplify] misbehaviour.
type Referral struct {
	// Child is the zone delegated; a name below the asked name's zone.
	Child string
	// NS is the number of NS records, and Glue the number of A records.
	NS, Glue int
	// DistinctNames gives every NS record its own host name (ns1, ns2, ... under
	// Child); otherwise they are copies of one ns.Child.
	DistinctNames bool
	// GlueIPs are the addresses the glue records point at, in turn; empty
	// means the Hostile server's own.
	GlueIPs []string
}

// Hostile is a DNS server on loopback that misbehaves on purpose, for tests of
// what a client does with answers from servers it cannot trust. It listens on UDP
// and TCP on one loopback address and port, and counts the queries it receives
// and those it is working on at once. All methods are safe for concurrent use.
type Hostile struct {
	endpoint
	inner *Server // answers Behave and Slow from its zones
	zone  string

	closing chan struct{}

	mu       sync.Mutex
	mode     Misbehaviour
	delay    time.Duration
	referral Referral

	received atomic.Int64
	inFlight atomic.Int64
	peak     atomic.Int64
}

// NewHostile starts a hostile server on the loopback address ip and port (0
// picks a free one), made to serve zone (which [ReferBack] refers back to and
// [CNAMELoop] writes its names in). The caller must call [Hostile.Close].
func NewHostile(ctx context.Context, ip string, port int, zone string) (*Hostile, error) {
	h := &Hostile{
		inner:   &Server{zones: make(map[string]*Zone), faults: make(map[faultKey]Fault)},
		zone:    dns.CanonicalName(zone),
		closing: make(chan struct{}),
	}
	if err := h.start(ctx, ip, port, h); err != nil {
		return nil, err
	}
	return h, nil
}

// AddHostile starts a [Hostile] server for zone on the next free 127.0.0.x of the
// Net, on the Net's port, and delegates zone to it from the closest enclosing
// zone of the Net with one NS record, ns1.<zone>, and its glue. The caller must
// call [Hostile.Close]; [Net.Close] does not.
func (n *Net) AddHostile(ctx context.Context, zone string) (*Hostile, error) {
	zone = dns.CanonicalName(zone)
	n.mu.Lock()
	var h *Hostile
	var lastErr error
	for tries := 0; tries < 16 && n.nextIP <= 254; tries++ {
		ip := "127.0.0." + strconv.Itoa(n.nextIP)
		n.nextIP++
		var err error
		if h, err = NewHostile(ctx, ip, n.port, zone); err == nil {
			break
		}
		lastErr = err
		if !errors.Is(err, syscall.EADDRINUSE) {
			break
		}
	}
	if h == nil {
		n.mu.Unlock()
		if lastErr == nil {
			lastErr = errors.New("dnstest: no loopback address left")
		}
		return nil, lastErr
	}
	parent := n.zones[n.parentOf(zone)].zone
	n.mu.Unlock()
	host := joinName("ns1", zone)
	if err := parent.ReplaceRR(newNS(zone, host), newA(host, h.IP())); err != nil {
		h.Close()
		return nil, err
	}
	return h, nil
}

// AddZone makes the server answer from zones when it behaves ([Behave], [Slow]).
func (h *Hostile) AddZone(zones ...*Zone) { h.inner.AddZone(zones...) }

// Set chooses what the server does with the queries it receives from now on.
func (h *Hostile) Set(m Misbehaviour) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.mode = m
}

// SetDelay sets how long [Slow] waits before it answers.
func (h *Hostile) SetDelay(d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.delay = d
}

// SetReferral sets the answer of [Amplify].
func (h *Hostile) SetReferral(r Referral) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r.Child = dns.CanonicalName(r.Child)
	r.GlueIPs = append([]string(nil), r.GlueIPs...)
	h.referral = r
}

// Received returns how many queries the server has received.
func (h *Hostile) Received() int { return int(h.received.Load()) }

// PeakInFlight returns the most queries the server was working on at once
// (waiting to answer, in [Slow] and [Silent]).
func (h *Hostile) PeakInFlight() int { return int(h.peak.Load()) }

// Close stops the server; queries it is holding are dropped.
func (h *Hostile) Close() error { return h.close(func() { close(h.closing) }) }

// ServeDNS answers one query as the current misbehaviour says. It implements
// dns.Handler.
func (h *Hostile) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	h.received.Add(1)
	n := h.inFlight.Add(1)
	// A query stops counting as in flight before its answer is written, so that a
	// client that got the answer and sends the next query never sees it counted
	// twice.
	finish := sync.OnceFunc(func() { h.inFlight.Add(-1) })
	defer finish()
	for {
		p := h.peak.Load()
		if n <= p || h.peak.CompareAndSwap(p, n) {
			break
		}
	}
	h.mu.Lock()
	mode, delay, ref := h.mode, h.delay, h.referral
	h.mu.Unlock()
	_, tcp := w.RemoteAddr().(*net.TCPAddr)
	if len(req.Question) != 1 {
		return
	}
	q := req.Question[0]

	var resp *dns.Msg
	switch mode {
	case Silent:
		<-h.closing
		return
	case Slow:
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-h.closing:
			return
		}
		resp = h.inner.answer(req)
	case Amplify:
		resp = h.amplified(req, ref)
	case CNAMELoop:
		resp = new(dns.Msg)
		resp.SetReply(req)
		resp.Authoritative = true
		other := joinName("loop", h.zone)
		if dns.CanonicalName(q.Name) == other {
			other = joinName("loop2", h.zone)
		}
		resp.Answer = []dns.RR{
			&dns.CNAME{Hdr: hdr(q.Name, dns.TypeCNAME), Target: other},
			&dns.CNAME{Hdr: hdr(other, dns.TypeCNAME), Target: q.Name},
		}
	case ReferBack:
		resp = new(dns.Msg)
		resp.SetReply(req)
		resp.Ns = []dns.RR{&dns.NS{Hdr: hdr(h.zone, dns.TypeNS), Ns: joinName("ns1", h.zone)}}
		resp.Extra = []dns.RR{&dns.A{Hdr: hdr(joinName("ns1", h.zone), dns.TypeA), A: net.ParseIP(h.ip)}}
	case Oversized:
		resp = new(dns.Msg)
		resp.SetReply(req)
		resp.Authoritative = true
		if !tcp {
			resp.Truncated = true
			break
		}
		// Compressed TXT records of one byte each: 14 bytes apiece on the wire, so
		// over 4,000 of them fit in one message.
		resp.Compress = true
		for range (dns.MaxMsgSize - 512) / 14 {
			resp.Answer = append(resp.Answer, &dns.TXT{Hdr: hdr(q.Name, dns.TypeTXT), Txt: []string{"x"}})
		}
	case Garbage:
		// The query's id and a header claiming one question and one answer, so
		// that the client reads on, then bytes that are no DNS message.
		b := make([]byte, 200)
		for i := range b {
			b[i] = byte(i*131 + 7)
		}
		copy(b, []byte{byte(req.Id >> 8), byte(req.Id), 0x84, 0, 0, 1, 0, 1, 0, 0, 0, 0})
		finish()
		w.Write(b)
		return
	case WrongID:
		resp = h.inner.answer(req)
		resp.Id++
	case WrongQuestion:
		resp = new(dns.Msg)
		resp.SetQuestion(joinName("other", h.zone), q.Qtype)
		resp.Response, resp.Authoritative, resp.Id = true, true, req.Id
	case Cut:
		b, err := h.inner.answer(req).Pack()
		if err == nil {
			finish()
			w.Write(b[:len(b)/2])
		}
		return
	default:
		resp = h.inner.answer(req)
	}
	resp.Compress = true
	if !tcp && resp.Len() > ednsSize {
		resp = truncated(resp)
	}
	finish()
	w.WriteMsg(resp)
}

// amplified builds the referral of [Amplify] for req, as many of the records ref
// asks for as fit in one message.
func (h *Hostile) amplified(req *dns.Msg, ref Referral) *dns.Msg {
	resp := new(dns.Msg)
	resp.SetReply(req)
	resp.Compress = true
	ips := ref.GlueIPs
	if len(ips) == 0 {
		ips = []string{h.ip}
	}
	host := func(i int) string {
		if ref.DistinctNames {
			return joinName("ns"+strconv.Itoa(i+1), ref.Child)
		}
		return joinName("ns", ref.Child)
	}
	for i := range ref.NS {
		resp.Ns = append(resp.Ns, &dns.NS{Hdr: hdr(ref.Child, dns.TypeNS), Ns: host(i)})
	}
	for i := range ref.Glue {
		resp.Extra = append(resp.Extra, &dns.A{Hdr: hdr(host(i%max(ref.NS, 1)), dns.TypeA), A: net.ParseIP(ips[i%len(ips)])})
	}
	for resp.Len() > dns.MaxMsgSize {
		if len(resp.Extra) > 0 {
			resp.Extra = resp.Extra[:len(resp.Extra)*9/10]
		} else {
			resp.Ns = resp.Ns[:len(resp.Ns)*9/10]
		}
	}
	return resp
}

func hdr(name string, t uint16) dns.RR_Header {
	return dns.RR_Header{Name: dns.Fqdn(name), Rrtype: t, Class: dns.ClassINET, Ttl: DefaultTTL}
}

// Counter listens on a loopback address and port, UDP and TCP, answers nothing,
// and counts what reaches it: a stand-in for a service inside domaind's network
// that a hostile zone's glue points at.
type Counter struct {
	pc      net.PacketConn
	l       net.Listener
	packets atomic.Int64
	conns   atomic.Int64
	wg      sync.WaitGroup
}

// NewCounter starts a Counter on the loopback address ip and port. The caller
// must call [Counter.Close].
func NewCounter(ctx context.Context, ip string, port int) (*Counter, error) {
	pc, l, err := listen(ctx, ip, port)
	if err != nil {
		return nil, err
	}
	c := &Counter{pc: pc, l: l}
	c.wg.Go(func() {
		buf := make([]byte, 512)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
			c.packets.Add(1)
		}
	})
	c.wg.Go(func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			c.conns.Add(1)
			conn.Close()
		}
	})
	return c, nil
}

// Addr returns the address the Counter listens on, as "ip:port".
func (c *Counter) Addr() string { return c.l.Addr().String() }

// Packets returns the UDP packets received and Conns the TCP connections
// accepted.
func (c *Counter) Packets() int { return int(c.packets.Load()) }

// Conns returns the TCP connections accepted.
func (c *Counter) Conns() int { return int(c.conns.Load()) }

// Close stops the Counter.
func (c *Counter) Close() error {
	err := errors.Join(c.pc.Close(), c.l.Close())
	c.wg.Wait()
	return err
}
