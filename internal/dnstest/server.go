package dnstest

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Fault is a misbehaviour a [Server] can be told to show for some queries.
type Fault int

const (
	// NoFault answers normally. Setting it removes an earlier fault.
	NoFault Fault = iota
	// ServFail answers SERVFAIL over both protocols.
	ServFail
	// Drop sends no answer at all, so the client times out.
	Drop
	// Truncate answers over UDP with the TC bit set and no records, so the
	// client must retry over TCP; TCP queries are answered normally.
	Truncate
)

// maxChase bounds how many CNAMEs one answer follows, so that a CNAME loop
// in a test's zones ends.
const maxChase = 8

// ednsSize is the UDP payload size the server advertises in its OPT record.
const ednsSize = 1232

// Query is one query a [Server] received, as its query log records it.
type Query struct {
	Name      string // question name, canonical (lower case, fully qualified)
	Type      uint16 // question type
	Proto     string // "udp" or "tcp"
	Rcode     int    // response code sent; meaningless when Dropped
	Truncated bool   // the answer had the TC bit set
	Dropped   bool   // no answer was sent (the Drop fault)
}

type faultKey struct {
	name  string
	qtype uint16
}

// Server is an authoritative DNS server listening on UDP and TCP on the same
// loopback address and port. It serves any number of zones, choosing the most
// specific zone for each name, and refuses names outside all of them.
// All methods are safe for concurrent use.
type Server struct {
	endpoint

	mu      sync.Mutex
	zones   map[string]*Zone // by canonical origin
	faults  map[faultKey]Fault
	queries []Query
}

// Start starts a server on 127.0.0.1 on a free port serving zones, stops it
// when the test ends, and fails the test if it cannot start.
func Start(t TB, zones ...*Zone) *Server {
	t.Helper()
	s, err := NewServer(t.Context(), "127.0.0.1", 0)
	s = started(t, s, err)
	s.AddZone(zones...)
	return s
}

// NewServer starts a server listening on UDP and TCP on ip and port. The ip
// must be a loopback address, so that tests never listen beyond the machine;
// "" means 127.0.0.1. When port is 0 it picks a port free for both
// protocols, trying a few times. ctx bounds only the start; the caller must
// call [Server.Close].
func NewServer(ctx context.Context, ip string, port int) (*Server, error) {
	if ip == "" {
		ip = "127.0.0.1"
	}
	s := &Server{zones: make(map[string]*Zone), faults: make(map[faultKey]Fault)}
	if err := s.start(ctx, ip, port, s); err != nil {
		return nil, err
	}
	return s, nil
}

// endpoint is where a server of this package listens: UDP and TCP on one
// loopback address and port.
type endpoint struct {
	ip   string
	port int
	udp  *dns.Server
	tcp  *dns.Server

	closeOnce sync.Once
	closeErr  error
}

// start listens on ip and port as listen does and serves h there.
func (e *endpoint) start(ctx context.Context, ip string, port int, h dns.Handler) error {
	pc, l, err := listen(ctx, ip, port)
	if err != nil {
		return err
	}
	e.ip, e.port = ip, l.Addr().(*net.TCPAddr).Port
	if e.udp, e.tcp, err = serve(pc, l, h); err != nil {
		return fmt.Errorf("dnstest: serve on %s: %w", e.Addr(), err)
	}
	return nil
}

// Addr returns the address the server listens on, as "ip:port".
func (e *endpoint) Addr() string { return net.JoinHostPort(e.ip, strconv.Itoa(e.port)) }

// IP returns the IP address the server listens on.
func (e *endpoint) IP() string { return e.ip }

// Port returns the port the server listens on, for both UDP and TCP.
func (e *endpoint) Port() int { return e.port }

// close stops the server the first time it is called, after calling before
// (if not nil), and waits briefly for queries in progress; it returns the
// error of that first time.
func (e *endpoint) close(before func()) error {
	e.closeOnce.Do(func() {
		if before != nil {
			before()
		}
		e.closeErr = shutdown(e.udp, e.tcp, e.Addr())
	})
	return e.closeErr
}

// serve starts DNS servers for h on pc (UDP) and l (TCP), and returns once both
// serve loops run, so that a Close never meets a server that has not started.
// On failure it closes pc and l.
func serve(pc net.PacketConn, l net.Listener, h dns.Handler) (udp, tcp *dns.Server, err error) {
	started := make(chan struct{}, 2)
	notify := func() { started <- struct{}{} }
	udp = &dns.Server{PacketConn: pc, Handler: h, NotifyStartedFunc: notify}
	tcp = &dns.Server{Listener: l, Handler: h, NotifyStartedFunc: notify}
	failed := make(chan error, 2)
	for _, srv := range []*dns.Server{udp, tcp} {
		go func() {
			if err := srv.ActivateAndServe(); err != nil {
				failed <- err
			}
		}()
	}
	for range 2 {
		select {
		case <-started:
		case err := <-failed:
			pc.Close()
			l.Close()
			return nil, nil, err
		}
	}
	return udp, tcp, nil
}

// listen binds UDP and TCP on the same port of ip, which must be a loopback
// address so that tests never listen beyond the machine. With port 0 the
// kernel picks a UDP port, which may be taken for TCP; then it tries again.
func listen(ctx context.Context, ip string, port int) (net.PacketConn, net.Listener, error) {
	if addr, err := netip.ParseAddr(ip); err != nil || !addr.IsLoopback() {
		return nil, nil, fmt.Errorf("dnstest: %q is not a loopback address", ip)
	}
	var lc net.ListenConfig
	var lastErr error
	for range 10 {
		pc, err := lc.ListenPacket(ctx, "udp", net.JoinHostPort(ip, strconv.Itoa(port)))
		if err != nil {
			return nil, nil, fmt.Errorf("dnstest: listen: %w", err)
		}
		bound := pc.LocalAddr().(*net.UDPAddr).Port
		l, err := lc.Listen(ctx, "tcp", net.JoinHostPort(ip, strconv.Itoa(bound)))
		if err == nil {
			return pc, l, nil
		}
		pc.Close()
		lastErr = fmt.Errorf("dnstest: listen: %w", err)
		if port != 0 {
			break
		}
	}
	return nil, nil, lastErr
}

// Close stops the server, waiting briefly for queries in progress. Calling
// it again does nothing.
func (s *Server) Close() error { return s.close(nil) }

// shutdown stops the UDP and TCP servers that serve started, waiting briefly for
// queries in progress.
func shutdown(udp, tcp *dns.Server, addr string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	errU := udp.ShutdownContext(ctx)
	errT := tcp.ShutdownContext(ctx)
	if errU != nil || errT != nil {
		return fmt.Errorf("dnstest: close %s: udp: %v, tcp: %v", addr, errU, errT)
	}
	return nil
}

// AddZone makes the server authoritative for zones. A zone with the same
// origin as one already served replaces it.
func (s *Server) AddZone(zones ...*Zone) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, z := range zones {
		s.zones[z.Origin()] = z
	}
}

// RemoveZone stops serving the zone for origin; its names are then refused.
func (s *Server) RemoveZone(origin string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.zones, dns.CanonicalName(origin))
}

// Zone returns the zone served for origin, or nil.
func (s *Server) Zone(origin string) *Zone {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.zones[dns.CanonicalName(origin)]
}

// SetFault makes queries for name and qtype show fault f, until another
// SetFault for the same name and qtype. An empty name means every name and
// qtype 0 means every type, so SetFault("", 0, Drop) makes the whole server
// silent. For a query, the most specific setting wins: name and type, then
// name, then type, then server-wide.
func (s *Server) SetFault(name string, qtype uint16, f Fault) {
	key := faultKey{qtype: qtype}
	if name != "" {
		key.name = dns.CanonicalName(name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if f == NoFault {
		delete(s.faults, key)
		return
	}
	s.faults[key] = f
}

// ClearFaults removes every fault set with [Server.SetFault].
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.faults)
}

// Queries returns a copy of the query log, oldest first. A query is logged
// before its answer is sent, so a client that has its answer will find its
// query here.
func (s *Server) Queries() []Query {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Query(nil), s.queries...)
}

// Count returns how many logged queries match name, qtype and proto, where
// an empty name, qtype 0 or an empty proto match anything.
func (s *Server) Count(name string, qtype uint16, proto string) int {
	if name != "" {
		name = dns.CanonicalName(name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, q := range s.queries {
		if (name == "" || q.Name == name) && (qtype == 0 || q.Type == qtype) && (proto == "" || q.Proto == proto) {
			n++
		}
	}
	return n
}

// ResetQueries empties the query log.
func (s *Server) ResetQueries() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queries = nil
}

// ServeDNS answers one query. It implements dns.Handler.
func (s *Server) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	entry := Query{Proto: "udp"}
	if _, ok := w.RemoteAddr().(*net.TCPAddr); ok {
		entry.Proto = "tcp"
	}
	if len(req.Question) > 0 {
		entry.Name = dns.CanonicalName(req.Question[0].Name)
		entry.Type = req.Question[0].Qtype
	}

	fault := s.faultFor(entry.Name, entry.Type)
	var resp *dns.Msg
	switch fault {
	case Drop:
		entry.Dropped = true
		s.log(entry)
		return
	case ServFail:
		resp = new(dns.Msg)
		resp.SetRcode(req, dns.RcodeServerFailure)
	default:
		resp = s.answer(req)
	}
	resp.Compress = true

	limit := dns.MinMsgSize
	if opt := req.IsEdns0(); opt != nil {
		limit = max(limit, int(opt.UDPSize()))
		resp.SetEdns0(ednsSize, false)
	}
	if entry.Proto == "udp" && (fault == Truncate || resp.Len() > limit) {
		resp = truncated(resp)
	}

	entry.Rcode = resp.Rcode
	entry.Truncated = resp.Truncated
	s.log(entry)
	w.WriteMsg(resp)
}

func (s *Server) log(q Query) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queries = append(s.queries, q)
}

func (s *Server) faultFor(name string, qtype uint16) Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range []faultKey{{name, qtype}, {name, 0}, {"", qtype}, {"", 0}} {
		if f, ok := s.faults[k]; ok {
			return f
		}
	}
	return NoFault
}

// zoneFor returns the most specific zone holding the canonical name, or nil.
func (s *Server) zoneFor(name string) *Zone {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, off := range dns.Split(name) {
		if z, ok := s.zones[name[off:]]; ok {
			return z
		}
	}
	return s.zones["."]
}

// newReply returns the skeleton of the response to req, and false if req is not
// a question the servers of this package answer, a standard query (else
// NOTIMP) of one question (else FORMERR), with the rcode that says so set.
func newReply(req *dns.Msg) (*dns.Msg, bool) {
	resp := new(dns.Msg)
	resp.SetReply(req)
	switch {
	case req.Opcode != dns.OpcodeQuery:
		resp.Rcode = dns.RcodeNotImplemented
		return resp, false
	case len(req.Question) != 1:
		resp.Rcode = dns.RcodeFormatError
		return resp, false
	}
	return resp, true
}

// answer builds the authoritative response to req from the server's zones.
func (s *Server) answer(req *dns.Msg) *dns.Msg {
	resp, ok := newReply(req)
	if !ok {
		return resp
	}
	qname, qtype := dns.CanonicalName(req.Question[0].Name), req.Question[0].Qtype
	z := s.zoneFor(qname)
	if z == nil {
		resp.Rcode = dns.RcodeRefused
		return resp
	}
	resp.Authoritative = true
	seen := map[string]bool{qname: true}
	for hop := 0; ; hop++ {
		res := z.lookup(qname, qtype)
		switch res.kind {
		case kindAnswer:
			resp.Answer = append(resp.Answer, res.answer...)
			return resp
		case kindNoData:
			resp.Ns = res.ns
			return resp
		case kindNXDomain:
			resp.Rcode = dns.RcodeNameError
			resp.Ns = res.ns
			return resp
		case kindReferral:
			// A CNAME chased into a delegation ends with the CNAME; the
			// client follows the target itself.
			if hop == 0 {
				resp.Authoritative = false
				resp.Ns = res.ns
				resp.Extra = res.extra
			}
			return resp
		case kindCNAME:
			resp.Answer = append(resp.Answer, res.answer...)
			target := dns.CanonicalName(res.answer[0].(*dns.CNAME).Target)
			next := s.zoneFor(target)
			if next == nil || seen[target] || hop >= maxChase {
				return resp
			}
			seen[target] = true
			z, qname = next, target
		}
	}
}

// truncated returns the header, question and OPT of resp with the TC bit
// set, telling a UDP client to ask again over TCP.
func truncated(resp *dns.Msg) *dns.Msg {
	tc := new(dns.Msg)
	tc.MsgHdr = resp.MsgHdr
	tc.Truncated = true
	tc.Question = resp.Question
	if opt := resp.IsEdns0(); opt != nil {
		tc.Extra = []dns.RR{opt}
	}
	return tc
}
