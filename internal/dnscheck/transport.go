package dnscheck

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// Defaults of a Transport.
const (
	// DefaultMaxSockets bounds the sockets a Transport keeps open for reuse, one
	// per server it talks to; queries to further servers each get a socket of
	// their own, closed after their answer, as every query did before sockets
	// were reused.
	DefaultMaxSockets = 1024
	// DefaultSocketQueries is how many queries one socket sends before a fresh
	// socket, on a fresh random port, takes its place (RFC 5452 §10: the port is
	// part of what an off-path attacker must guess).
	DefaultSocketQueries = 1000
	// DefaultSocketLifetime is how long one socket takes new queries; an idle
	// socket is closed after it too.
	DefaultSocketLifetime = 10 * time.Second
	// DefaultMaxOutstanding bounds the queries of a Transport waiting for an
	// answer at once, whatever the servers do.
	DefaultMaxOutstanding = 8192
)

// maxPerSocket bounds the queries waiting on one socket. It keeps the ids in use
// on a socket sparse among the 65,536 (RFC 5452 §9.3: every outstanding id is one
// more a forged answer may hit); a socket that reaches it is replaced early.
const maxPerSocket = 512

// TransportOptions tunes a Transport; zero values take the defaults.
type TransportOptions struct {
	MaxSockets     int
	SocketQueries  int
	SocketLifetime time.Duration
	MaxOutstanding int
	// Now is the clock of socket rotation; nil means time.Now.
	Now func() time.Time
}

// Transport sends DNS queries over UDP on sockets it reuses, instead of opening
// and closing one per query.
//
// Each socket is connected to one server: the kernel then delivers only that
// server's datagrams (RFC 5452 §9.1, the source address is checked once by the
// kernel and again here), an ICMP port unreachable is reported as a refused
// connection as before, and every server sees a source port of its own, so an
// attacker forging one server's answers learns nothing of another's port.
// Sockets are bound to a port the kernel picks at random, and rotate after
// SocketQueries queries or SocketLifetime, so the port keeps changing (RFC 5452
// §10). Message ids are random (RFC 5452 §9.2) and unique among the queries
// waiting on a socket. A reader goroutine per socket hands each datagram to the
// query whose id it carries; the query checks that the answer is a response to
// its own question (name, type and class; RFC 5452 §9.1) and otherwise drops it
// and keeps waiting, so a forged or stray answer cannot fail it. A datagram
// whose id no query waits for is dropped unparsed.
//
// Everything is bounded: MaxSockets sockets kept, maxPerSocket queries per
// socket, MaxOutstanding queries in all, and an idle socket closes itself after
// SocketLifetime, so a Transport nobody closes ends its goroutines by itself.
// It is safe for concurrent use.
type Transport struct {
	opts  TransportOptions
	slots chan struct{} // a place per outstanding query

	mu     sync.Mutex
	socks  map[string]*udpSock // the socket taking new queries, by server
	closed bool

	// opened counts the sockets opened, open those whose reader still runs;
	// peak is the most queries outstanding at once.
	opened, open, peak atomic.Int64
}

// TransportStats are counters of a Transport.
type TransportStats struct {
	SocketsOpened   int64 // sockets opened so far
	SocketsOpen     int64 // sockets open now
	PeakOutstanding int64 // most queries waiting for an answer at once
}

// Stats returns the Transport's counters.
func (t *Transport) Stats() TransportStats {
	return TransportStats{SocketsOpened: t.opened.Load(), SocketsOpen: t.open.Load(), PeakOutstanding: t.peak.Load()}
}

// NewTransport returns a Transport with opts.
func NewTransport(opts TransportOptions) *Transport {
	if opts.MaxSockets <= 0 {
		opts.MaxSockets = DefaultMaxSockets
	}
	if opts.SocketQueries <= 0 {
		opts.SocketQueries = DefaultSocketQueries
	}
	if opts.SocketLifetime <= 0 {
		opts.SocketLifetime = DefaultSocketLifetime
	}
	if opts.MaxOutstanding <= 0 {
		opts.MaxOutstanding = DefaultMaxOutstanding
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Transport{opts: opts, slots: make(chan struct{}, opts.MaxOutstanding), socks: make(map[string]*udpSock)}
}

// Close retires every socket: each closes once the queries waiting on it end.
// Queries sent after Close still work, each on a socket of its own.
func (t *Transport) Close() error {
	t.mu.Lock()
	t.closed = true
	socks := t.socks
	t.socks = make(map[string]*udpSock)
	t.mu.Unlock()
	for _, s := range socks {
		s.retire()
	}
	return nil
}

// udpSock is one UDP socket connected to one server.
type udpSock struct {
	conn   *net.UDPConn
	remote netip.AddrPort
	born   time.Time

	mu      sync.Mutex
	waiters map[uint16]*waiter
	sent    int
	retired bool // takes no new queries; closes when the last one ends
	closed  bool
}

// exchange sends q to server over UDP and waits at most timeout (and ctx) for
// the answer to it. It sets q.Id.
func (t *Transport) exchange(ctx context.Context, q *dns.Msg, server string, timeout time.Duration) (*dns.Msg, error) {
	name := q.Question[0].Name
	// A timer rather than a context with a timeout: the query's wait ends with
	// either, and a child context costs an allocation and a registration with
	// its parent on every query.
	deadline := time.Now().Add(timeout)
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case t.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %s over udp for %s: too many queries waiting", ErrTimeout, server, name)
	case <-timer.C:
		return nil, fmt.Errorf("%w: %s over udp for %s: too many queries waiting", ErrTimeout, server, name)
	}
	defer func() { <-t.slots }()
	for n := int64(len(t.slots)); ; {
		p := t.peak.Load()
		if n <= p || t.peak.CompareAndSwap(p, n) {
			break
		}
	}

	s, w, err := t.register(ctx, server, q, deadline)
	if err != nil {
		return nil, netError(err, server, "udp", name)
	}
	defer s.unregister(q.Id)
	buf, err := q.Pack()
	if err != nil {
		return nil, fmt.Errorf("dnscheck: pack query for %s: %w", name, err)
	}
	if _, err := s.conn.Write(buf); err != nil {
		return nil, netError(err, server, "udp", name)
	}
	select {
	case r := <-w.done:
		if r.err != nil {
			return nil, netError(r.err, server, "udp", name)
		}
		return r.msg, nil
	case <-ctx.Done():
	case <-timer.C:
	}
	// A server that only ever answered another question is broken, not
	// silent: say so.
	if err := w.rejection(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("%w: %s over udp for %s", ErrTimeout, server, name)
}

// result ends a waiter: its answer, or an error of its socket.
type result struct {
	msg *dns.Msg
	err error
}

// waiter is a query waiting on a socket for its answer.
type waiter struct {
	q      *dns.Msg
	server string
	done   chan result // the answer or an error of the socket, once

	mu       sync.Mutex
	rejected error // the first reason a datagram with the query's id was not its answer
}

func (w *waiter) reject(err error) {
	w.mu.Lock()
	if w.rejected == nil {
		w.rejected = err
	}
	w.mu.Unlock()
}

func (w *waiter) rejection() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.rejected
}

// matchAnswer parses a datagram that carries q's id and returns it if it is a
// response to q's question (RFC 5452 §9.1: id, question and source address;
// the socket checked the address). A UDP answer is at most UDPSize bytes, which
// cannot hold more than about a hundred records, so maxMsgRRs needs no check
// before parsing here.
func matchAnswer(b []byte, q *dns.Msg, server string) (*dns.Msg, error) {
	qq := q.Question[0]
	resp := new(dns.Msg)
	if err := resp.Unpack(b); err != nil {
		return nil, fmt.Errorf("%w: %s sent a malformed answer for %s", ErrServFail, server, qq.Name)
	}
	if !resp.Response || len(resp.Question) != 1 || !strings.EqualFold(resp.Question[0].Name, qq.Name) ||
		resp.Question[0].Qtype != qq.Qtype || resp.Question[0].Qclass != qq.Qclass {
		// A hostile or broken server may answer another question, and such an
		// answer must not count for this one.
		return nil, fmt.Errorf("%w: %s answered a different question than %s", ErrServFail, server, qq.Name)
	}
	return resp, nil
}

// register finds the socket for server, draws q's id and registers q on it.
func (t *Transport) register(ctx context.Context, server string, q *dns.Msg, deadline time.Time) (*udpSock, *waiter, error) {
	ap, err := netip.ParseAddrPort(server)
	if err != nil {
		// A server named by host name: a socket of its own, dialled as before,
		// within the query's time.
		ctx, cancel := context.WithDeadline(ctx, deadline)
		defer cancel()
		var d net.Dialer
		conn, err := d.DialContext(ctx, "udp", server)
		if err != nil {
			return nil, nil, err
		}
		s := t.start(conn.(*net.UDPConn))
		ch, _ := s.add(q, server)
		s.retire()
		return s, ch, nil
	}
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	for range 2 {
		t.mu.Lock()
		s := t.socks[server]
		now := t.opts.Now()
		if s != nil && (s.sent >= t.opts.SocketQueries || now.Sub(s.born) >= t.opts.SocketLifetime) {
			// RFC 5452 §10: a new socket, on a new random port.
			delete(t.socks, server)
			t.mu.Unlock()
			s.retire()
			t.mu.Lock()
			s = t.socks[server]
		}
		if s == nil {
			conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(ap))
			if err != nil {
				t.mu.Unlock()
				return nil, nil, err
			}
			s = t.start(conn)
			if t.closed || len(t.socks) >= t.opts.MaxSockets {
				// Past the bound, a socket for this query alone.
				ch, _ := s.add(q, server)
				t.mu.Unlock()
				s.retire()
				return s, ch, nil
			}
			t.socks[server] = s
		}
		// sent is read under t.mu for rotation and written under s.mu; both are
		// held here.
		ch, ok := s.add(q, server)
		t.mu.Unlock()
		if ok {
			return s, ch, nil
		}
		// The socket has as many queries waiting as it may: replace it.
		t.mu.Lock()
		if t.socks[server] == s {
			delete(t.socks, server)
		}
		t.mu.Unlock()
		s.retire()
	}
	return nil, nil, fmt.Errorf("dnscheck: no socket for %s", server)
}

// start wraps conn in a udpSock and starts its reader.
func (t *Transport) start(conn *net.UDPConn) *udpSock {
	t.opened.Add(1)
	// Room in the kernel for the answers of every query the socket may have
	// waiting (maxPerSocket, each taking up to about 2 KiB of buffer however
	// small), which arrive in bursts while the reader waits for a core; the
	// default (about 200 KiB) loses answers under load, and a lost answer is a
	// timeout. Linux caps it at net.core.rmem_max.
	conn.SetReadBuffer(maxPerSocket * 2048)
	s := &udpSock{conn: conn, born: t.opts.Now(), waiters: make(map[uint16]*waiter)}
	if ra, ok := conn.RemoteAddr().(*net.UDPAddr); ok {
		ap := ra.AddrPort()
		s.remote = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	t.open.Add(1)
	go func() {
		defer t.open.Add(-1)
		s.read(t.opts.SocketLifetime)
	}()
	return s
}

// add registers q under a random id not in use on the socket (RFC 5452 §9.2),
// which it sets in q. It fails when the socket has maxPerSocket queries waiting
// or is retired.
func (s *udpSock) add(q *dns.Msg, server string) (*waiter, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.waiters) >= maxPerSocket || s.retired {
		return nil, false
	}
	id := dns.Id()
	for s.waiters[id] != nil {
		id = dns.Id()
	}
	q.Id = id
	w := &waiter{q: q, server: server, done: make(chan result, 1)}
	s.waiters[id] = w
	s.sent++
	return w, true
}

// unregister ends the wait of the query with id, closing a retired socket whose
// last query it was.
func (s *udpSock) unregister(id uint16) {
	s.mu.Lock()
	delete(s.waiters, id)
	closeNow := s.retired && len(s.waiters) == 0 && !s.closed
	if closeNow {
		s.closed = true
	}
	s.mu.Unlock()
	if closeNow {
		s.conn.Close()
	}
}

// retire stops the socket taking queries, and closes it once none waits.
func (s *udpSock) retire() {
	s.mu.Lock()
	s.retired = true
	closeNow := len(s.waiters) == 0 && !s.closed
	if closeNow {
		s.closed = true
	}
	s.mu.Unlock()
	if closeNow {
		s.conn.Close()
	}
}

// read hands every datagram from the server to the query waiting for its id,
// until the socket is closed. Every lifetime without a datagram, it retires an
// idle socket, so that a Transport nobody uses holds no socket.
func (s *udpSock) read(lifetime time.Duration) {
	buf := make([]byte, UDPSize)
	s.conn.SetReadDeadline(time.Now().Add(lifetime))
	for {
		n, from, err := s.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if isTimeout(err) {
				s.mu.Lock()
				idle := len(s.waiters) == 0
				s.mu.Unlock()
				if idle {
					// The Transport finds it retired and opens another.
					s.retire()
				}
				s.conn.SetReadDeadline(time.Now().Add(lifetime))
				continue
			}
			// A refused port (ICMP) or another error of the socket concerns every
			// query waiting on it, all of them to this server.
			s.mu.Lock()
			for _, w := range s.waiters {
				select {
				case w.done <- result{err: err}:
				default:
				}
			}
			s.mu.Unlock()
			continue
		}
		if netip.AddrPortFrom(from.Addr().Unmap(), from.Port()) != s.remote || n < dnsHeaderSize {
			continue
		}
		// miekg/dns parses the header alone (the message ends after it) for the id.
		var h dns.Msg
		if h.Unpack(buf[:dnsHeaderSize]) != nil {
			continue
		}
		s.mu.Lock()
		w := s.waiters[h.Id]
		s.mu.Unlock()
		if w == nil {
			// A late answer to a query that gave up, or a forgery: dropped
			// (RFC 5452 §9.1).
			continue
		}
		// Parsed from a copy: buf is read into again, and nothing parsed may
		// share it.
		resp, err := matchAnswer(append([]byte(nil), buf[:n]...), w.q, w.server)
		if err != nil {
			// Not the answer, but the query goes on waiting for it.
			w.reject(err)
			continue
		}
		select {
		case w.done <- result{msg: resp}:
		default: // answered already: a duplicate
		}
	}
}

// dnsHeaderSize is the size of a DNS message header (RFC 1035 §4.1.1).
const dnsHeaderSize = 12
