// Package milter signs outgoing mail with domaind's DKIM keys. It is a milter
// server (the Sendmail mail filter protocol, which Postfix speaks too): the MTA
// hands it every message, and it adds a DKIM-Signature when the RFC 5322 From
// domain, or its closest parent domain in domaind, has a DKIM record that verified
// at its last check. Other mail passes unsigned, and every message's result is
// counted.
//
// The protocol is github.com/emersion/go-milter's; the signature is
// github.com/emersion/go-msgauth/dkim's streaming signer, fed the body as the MTA
// sends it, so that a message of any size costs the same memory.
package milter

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/emersion/go-milter"

	"github.com/domaind/domaind/internal/signing"
)

// Result is what became of one message; it is the label of the message counter.
type Result string

// The results. Every unsigned message passes on (the MTA delivers it) except
// ResultTempFail, which the MTA answers with a temporary failure and retries.
const (
	ResultSigned = Result("signed")
	// ResultNoKey: neither the From domain nor any parent of it has a DKIM
	// record that verified at its last check.
	ResultNoKey = Result("unsigned_no_key")
	// ResultNoFrom: the message has no From field.
	ResultNoFrom = Result("unsigned_no_from")
	// ResultMultipleFrom: the message has several From fields, or one that
	// names authors in several domains.
	ResultMultipleFrom = Result("unsigned_multiple_from")
	// ResultBadFrom: the From field does not parse, or names no domain.
	ResultBadFrom = Result("unsigned_bad_from")
	// ResultTooLarge: the header section, or a run of blank lines in the body,
	// is beyond what domaind holds in memory to sign.
	ResultTooLarge = Result("unsigned_too_large")
	// ResultTempFail: domaind could not find or use the key (the database is
	// unreachable, say).
	ResultTempFail = Result("tempfail")
)

// Results lists every Result, for metrics that show each from zero.
var Results = []Result{ResultSigned, ResultNoKey, ResultNoFrom, ResultMultipleFrom, ResultBadFrom, ResultTooLarge, ResultTempFail}

// KeySource finds the key that signs mail from a domain; *signing.Keys is one.
// It returns signing.ErrNoKey when the domain has none.
type KeySource interface {
	For(ctx context.Context, fromDomain string) (signing.Key, error)
}

// Observer counts results; *metrics.Metrics is one.
type Observer interface {
	MilterMessage(result string)
	MilterSessions(open int)
}

// Defaults of Config.
const (
	DefaultMaxConns = 256
	// DefaultIdleTimeout is longer than Postfix's smtpd_timeout (300s): Postfix
	// holds a milter connection for a whole SMTP session, idle while its client
	// is, and a milter that hangs up first makes Postfix defer the session's
	// next message.
	DefaultIdleTimeout   = 10 * time.Minute
	DefaultLookupTimeout = 10 * time.Second
)

// Config configures a Server.
type Config struct {
	Keys     KeySource
	Observer Observer // optional
	Log      *slog.Logger
	// MaxConns bounds the connections served at once. Further connections
	// wait in the listen queue; Postfix gives up on one after
	// milter_connect_timeout and applies milter_default_action.
	MaxConns int
	// IdleTimeout closes a connection that sends nothing for this long.
	IdleTimeout time.Duration
	// LookupTimeout bounds finding a message's key.
	LookupTimeout time.Duration
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("milter: server closed")

// Server is a milter server that signs mail. Create it with New.
type Server struct {
	cfg           Config
	log           *slog.Logger
	lookupTimeout time.Duration
	// ctx ends key lookups once Shutdown gives up waiting for them.
	ctx    context.Context
	cancel context.CancelFunc
	// quit is closed when Shutdown starts: no connection is accepted after.
	quit  chan struct{}
	slots chan struct{}

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]*session
	shutdown  bool
	wg        sync.WaitGroup // one per served connection
}

// New returns a server that signs with cfg.Keys.
func New(cfg Config) *Server {
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.LookupTimeout <= 0 {
		cfg.LookupTimeout = DefaultLookupTimeout
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		cfg: cfg, log: log, lookupTimeout: cfg.LookupTimeout, ctx: ctx, cancel: cancel,
		quit:      make(chan struct{}),
		slots:     make(chan struct{}, cfg.MaxConns),
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[*conn]*session),
	}
}

// protocol is what the server asks of the MTA: no envelope events (the From
// field is in the header), and the right to add a header field. go-milter speaks
// milter protocol version 2, which Postfix and Sendmail accept.
const (
	actions  = milter.OptAddHeader
	protocol = milter.OptNoConnect | milter.OptNoHelo | milter.OptNoMailFrom | milter.OptNoRcptTo
)

// Serve accepts connections on ln until Shutdown, and returns ErrServerClosed
// then. Each connection is served by a go-milter server of its own, so that the
// messages of a connection share one session whose end is known: go-milter does
// not tell a handler that its connection is gone.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.shutdown {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
		ln.Close()
	}()
	var delay time.Duration
	for {
		select {
		case s.slots <- struct{}{}:
		case <-s.quit:
			return ErrServerClosed
		}
		nc, err := ln.Accept()
		if err != nil {
			<-s.slots
			select {
			case <-s.quit:
				return ErrServerClosed
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// A transient failure (out of file descriptors, say): back
				// off as net/http does rather than spin.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.log.Warn("milter: accept failed; retrying", "err", err, "after", delay)
				select {
				case <-time.After(delay):
				case <-s.quit:
					return ErrServerClosed
				}
				continue
			}
			return err
		}
		delay = 0
		c := &conn{Conn: nc, idle: s.cfg.IdleTimeout, gone: make(chan struct{})}
		sess := &session{srv: s}
		s.mu.Lock()
		if s.shutdown {
			s.mu.Unlock()
			nc.Close()
			<-s.slots
			return ErrServerClosed
		}
		s.conns[c] = sess
		s.observeSessions()
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveConn(c, sess)
	}
}

// serveConn serves one connection until it closes.
func (s *Server) serveConn(c *conn, sess *session) {
	defer s.wg.Done()
	ms := &milter.Server{
		NewMilter: func() milter.Milter { return sess },
		Actions:   actions,
		Protocol:  protocol,
	}
	// Serve returns once the connection is closed: by go-milter at the end of
	// the session or on a protocol error, by the idle deadline, or by Shutdown.
	_ = ms.Serve(&oneConn{c: c})
	c.Close()
	sess.close()
	s.mu.Lock()
	delete(s.conns, c)
	s.observeSessions()
	s.mu.Unlock()
	<-s.slots
}

// observeSessions reports the number of open connections; s.mu is held, so that
// reports arrive in order.
func (s *Server) observeSessions() {
	if s.cfg.Observer != nil {
		s.cfg.Observer.MilterSessions(len(s.conns))
	}
}

// Shutdown stops accepting connections, closes those between messages, waits
// for the others to finish their message, and when ctx ends closes what is left.
// A connection closed mid-message makes the MTA apply its milter_default_action
// (tempfail: the message is retried, not lost).
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.shutdown {
		s.shutdown = true
		close(s.quit)
	}
	for ln := range s.listeners {
		ln.Close()
	}
	s.mu.Unlock()
	defer s.cancel()

	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		s.mu.Lock()
		for c, sess := range s.conns {
			if sess.idle() {
				c.Close()
			}
		}
		s.mu.Unlock()
		select {
		case <-done:
			return nil
		case <-tick.C:
		case <-ctx.Done():
			s.cancel()
			s.mu.Lock()
			for c := range s.conns {
				c.Close()
			}
			s.mu.Unlock()
			<-done
			return ctx.Err()
		}
	}
}

// count records a message's result.
func (s *Server) count(r Result) {
	if s.cfg.Observer != nil {
		s.cfg.Observer.MilterMessage(string(r))
	}
}

// conn is a connection whose every read and write must complete within idle, so
// that a client that stops talking does not hold a goroutine and a slot forever.
type conn struct {
	net.Conn
	idle time.Duration
	once sync.Once
	gone chan struct{} // closed by Close
}

func (c *conn) Read(p []byte) (int, error) {
	if err := c.Conn.SetReadDeadline(time.Now().Add(c.idle)); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

func (c *conn) Write(p []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(c.idle)); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

func (c *conn) Close() error {
	err := net.ErrClosed
	c.once.Do(func() {
		err = c.Conn.Close()
		close(c.gone)
	})
	return err
}

// oneConn is a listener that yields one connection, then blocks until it closes.
type oneConn struct {
	c    *conn
	used bool
}

func (l *oneConn) Accept() (net.Conn, error) {
	if !l.used {
		l.used = true
		return l.c, nil
	}
	<-l.c.gone
	return nil, net.ErrClosed
}

func (l *oneConn) Close() error   { return nil }
func (l *oneConn) Addr() net.Addr { return l.c.LocalAddr() }
