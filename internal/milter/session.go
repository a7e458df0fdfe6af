package milter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strings"
	"sync"

	"github.com/emersion/go-milter"
	"github.com/emersion/go-msgauth/dkim"

	"github.com/domaind/domaind/internal/signing"
)

// Limits on one message's header section. Postfix hands a milter at most
// header_size_limit (100 KiB) per field; these bounds are far above real mail and
// keep a hostile client from growing a session without end. A message beyond them
// passes unsigned as ResultTooLarge.
const (
	maxHeaderBytes  = 1 << 20
	maxHeaderFields = 1000
)

// maxNewlineRun bounds a run of consecutive CR and LF bytes in a body being
// signed. go-msgauth's relaxed body canonicalization holds such a run in memory
// until a byte of another kind follows it (trailing empty lines are not hashed),
// so without the bound a body of blank lines would be held whole. Real mail has
// no megabyte of blank lines; a body that does passes unsigned as ResultTooLarge.
const maxNewlineRun = 1 << 20

// errTooLarge is returned by the body writer when a message crosses a bound.
var errTooLarge = errors.New("milter: message exceeds what domaind signs")

// field is one header field as the MTA passed it.
type field struct{ name, value string }

// session handles the messages of one milter connection, one after another. The
// go-milter server calls it from one goroutine; mu guards it against close, which
// the server calls from another when the connection ends.
type session struct {
	srv *Server

	mu     sync.Mutex
	closed bool
	// inMessage is true from a message's first header until its result is sent;
	// graceful shutdown closes only connections that are not in a message.
	inMessage bool
	// done is true once the current message has its result; the next header
	// starts a new message.
	done    bool
	headers []field
	size    int
	signer  *dkim.Signer
	body    *runGuard
}

var _ milter.Milter = (*session)(nil)

// start begins a new message if the previous one is finished. Once Shutdown has
// begun it refuses to begin one: the connection is then closed, and the MTA
// applies its milter_default_action (tempfail) and sends the message again later,
// rather than Shutdown waiting for messages that started after it.
func (s *session) start() error {
	if s.done || !s.inMessage {
		select {
		case <-s.srv.quit:
			return errShuttingDown
		default:
		}
		s.reset()
		s.inMessage = true
	}
	return nil
}

// errShuttingDown ends a connection that tries to begin a message during Shutdown.
var errShuttingDown = errors.New("milter: shutting down")

// reset drops the current message's state, stopping its signer.
func (s *session) reset() {
	if s.signer != nil {
		// Close lets the signer's goroutine end; its error and signature are of
		// no use for a message that is not finished.
		_ = s.signer.Close()
	}
	s.headers, s.size, s.signer, s.body = nil, 0, nil, nil
	s.inMessage, s.done = false, false
}

// finish records a message's result and answers the MTA with resp.
func (s *session) finish(r Result, resp milter.Response) (milter.Response, error) {
	if s.signer != nil && r != ResultSigned {
		_ = s.signer.Close()
	}
	s.signer, s.body, s.headers = nil, nil, nil
	s.done, s.inMessage = true, false
	s.srv.count(r)
	return resp, nil
}

// close ends the session when its connection is gone.
func (s *session) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reset()
	s.closed = true
}

// idle reports whether the connection is between messages.
func (s *session) idle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.inMessage
}

// errClosed ends a callback that runs after the connection was closed.
var errClosed = errors.New("milter: session closed")

// The envelope callbacks are switched off at negotiation (see Server.Serve); a
// client that sends them anyway is answered "continue".

func (s *session) Connect(string, string, uint16, net.IP, *milter.Modifier) (milter.Response, error) {
	return milter.RespContinue, nil
}

func (s *session) Helo(string, *milter.Modifier) (milter.Response, error) {
	return milter.RespContinue, nil
}

func (s *session) MailFrom(string, *milter.Modifier) (milter.Response, error) {
	return milter.RespContinue, nil
}

func (s *session) RcptTo(string, *milter.Modifier) (milter.Response, error) {
	return milter.RespContinue, nil
}

// Header collects one header field, in the order the MTA passes them, which is
// the order in the message.
func (s *session) Header(name, value string, _ *milter.Modifier) (milter.Response, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errClosed
	}
	if err := s.start(); err != nil {
		return nil, err
	}
	if s.signer != nil {
		// A header after the end of the header section comes from a client
		// that does not follow the protocol; the message is signed as it was
		// at the end of its header.
		return milter.RespContinue, nil
	}
	s.size += len(name) + len(value) + 4
	if s.size > maxHeaderBytes || len(s.headers) >= maxHeaderFields {
		return s.finish(ResultTooLarge, milter.RespAccept)
	}
	s.headers = append(s.headers, field{name, value})
	return milter.RespContinue, nil
}

// Headers is the end of the header section: it decides whether the message is
// signed, and with which key.
func (s *session) Headers(h textproto.MIMEHeader, _ *milter.Modifier) (milter.Response, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errClosed
	}
	// go-milter keeps its own copy of every header of the connection until an
	// abort; empty it so that a long connection does not accumulate them.
	clear(h)
	if err := s.start(); err != nil {
		return nil, err
	}
	return s.decide()
}

// decide chooses the key for the message's From domain and starts its signer,
// or finishes the message unsigned. The MTA is told to accept an unsigned message
// at once, so that it does not send the body.
func (s *session) decide() (milter.Response, error) {
	if s.signer != nil {
		return milter.RespContinue, nil
	}
	var froms []string
	for _, f := range s.headers {
		if strings.EqualFold(f.name, "From") {
			froms = append(froms, f.value)
		}
	}
	switch {
	case len(froms) == 0:
		return s.finish(ResultNoFrom, milter.RespAccept)
	case len(froms) > 1:
		// RFC 5322 allows one From field; receivers that apply DMARC reject a
		// message with several, signed or not.
		return s.finish(ResultMultipleFrom, milter.RespAccept)
	}
	name, r := FromDomain(froms[0])
	if r != "" {
		return s.finish(r, milter.RespAccept)
	}
	ctx, cancel := context.WithTimeout(s.srv.ctx, s.srv.lookupTimeout)
	defer cancel()
	key, err := s.srv.cfg.Keys.For(ctx, name)
	if errors.Is(err, signing.ErrNoKey) {
		return s.finish(ResultNoKey, milter.RespAccept)
	}
	if err != nil {
		// The domain may well have a key: letting the message through unsigned
		// would fail DMARC for a verified domain, so the MTA keeps it and
		// tries again.
		s.srv.log.Error("milter: finding the signing key failed; the message is deferred", "from_domain", name, "err", err)
		return s.finish(ResultTempFail, milter.RespTempFail)
	}
	names := make([]string, len(s.headers))
	for i, f := range s.headers {
		names[i] = f.name
	}
	signer, err := dkim.NewSigner(signing.Options(key, names))
	if err != nil {
		s.srv.log.Error("milter: starting the signer failed; the message is deferred", "domain", key.Domain, "err", err)
		return s.finish(ResultTempFail, milter.RespTempFail)
	}
	s.signer = signer
	if err := writeHeader(signer, s.headers); err != nil {
		s.srv.log.Error("milter: signing the header failed; the message is deferred", "domain", key.Domain, "err", err)
		return s.finish(ResultTempFail, milter.RespTempFail)
	}
	s.headers = nil
	s.body = &runGuard{w: signer, max: maxNewlineRun}
	return milter.RespContinue, nil
}

// writeHeader writes the header section to w as it is in the message, with CRLF
// line ends. The MTA passes a folded field's line breaks as LF or CRLF and leaves
// out the space after the colon; relaxed header canonicalization (RFC 6376
// section 3.4.2) makes neither matter to the signature.
func writeHeader(w io.Writer, fields []field) error {
	var b strings.Builder
	for _, f := range fields {
		v := strings.ReplaceAll(f.value, "\r\n", "\n")
		v = strings.ReplaceAll(v, "\n", "\r\n")
		b.WriteString(f.name)
		b.WriteString(": ")
		b.WriteString(v)
		b.WriteString("\r\n")
	}
	b.WriteString("\r\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// BodyChunk streams a piece of the body into the signer, so that a message of
// any size costs the same memory.
func (s *session) BodyChunk(chunk []byte, _ *milter.Modifier) (milter.Response, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if resp, err := s.ready(); resp != nil || err != nil {
		return resp, err
	}
	if _, err := s.body.Write(chunk); err != nil {
		if errors.Is(err, errTooLarge) {
			return s.finish(ResultTooLarge, milter.RespAccept)
		}
		s.srv.log.Error("milter: signing the body failed; the message is deferred", "err", err)
		return s.finish(ResultTempFail, milter.RespTempFail)
	}
	return milter.RespContinue, nil
}

// ready is where the body callbacks begin: after the connection was closed
// they fail, after the message was answered they accept, and otherwise it
// makes sure a message is under way and its key chosen (a body that comes
// before the end of the header section is decided on then). It returns a
// response only when the callback ends here.
func (s *session) ready() (milter.Response, error) {
	if s.closed {
		return nil, errClosed
	}
	if s.done {
		// The message was answered already; a client that sends more of it
		// is not following the protocol.
		return milter.RespAccept, nil
	}
	if err := s.start(); err != nil {
		return nil, err
	}
	if s.signer == nil {
		if resp, err := s.decide(); err != nil || resp != milter.RespContinue {
			return resp, err
		}
	}
	return nil, nil
}

// Body is the end of the message: it adds the DKIM-Signature.
func (s *session) Body(m *milter.Modifier) (milter.Response, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if resp, err := s.ready(); resp != nil || err != nil {
		return resp, err
	}
	signer := s.signer
	if err := signer.Close(); err != nil {
		s.srv.log.Error("milter: signing failed; the message is deferred", "err", err)
		return s.finish(ResultTempFail, milter.RespTempFail)
	}
	name, value, _ := strings.Cut(strings.TrimRight(signer.Signature(), "\r\n"), ":")
	// Index 0 puts the signature above every other field, where a signature is
	// expected to be (RFC 6376 section 5.6); Postfix 3.7 puts it there too, below
	// only the Received field it adds itself.
	if err := m.InsertHeader(0, name, strings.TrimLeft(value, " ")); err != nil {
		// The connection failed; the MTA applies its milter_default_action.
		return nil, fmt.Errorf("milter: adding the signature: %w", err)
	}
	return s.finish(ResultSigned, milter.RespAccept)
}

// Abort ends the current message without a result: the MTA dropped it.
func (s *session) Abort(*milter.Modifier) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reset()
	return nil
}

// runGuard passes a body to w and fails once a run of CR and LF bytes exceeds
// max: see maxNewlineRun.
type runGuard struct {
	w   io.Writer
	max int
	run int
}

func (g *runGuard) Write(p []byte) (int, error) {
	i := len(p)
	for i > 0 && (p[i-1] == '\r' || p[i-1] == '\n') {
		i--
	}
	if i == 0 {
		g.run += len(p)
	} else {
		// A run inside p ends within it, and p is one milter packet (at most
		// 1 MiB, go-milter's bound), so only the trailing run can grow.
		g.run = len(p) - i
	}
	if g.run > g.max {
		return 0, errTooLarge
	}
	return g.w.Write(p)
}
