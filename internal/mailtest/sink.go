package mailtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Message is one message an SMTP sink received.
type Message struct {
	From string   // MAIL FROM, without the angle brackets
	To   []string // RCPT TO
	Data []byte   // the message as sent, dot-unstuffed, with CRLF line ends
	File string   // where the sink wrote Data
}

// Sink is an SMTP server on loopback that accepts every message and keeps it, in
// memory and in a file of its own folder, for a test to look at.
type Sink struct {
	ln  net.Listener
	dir string
	wg  sync.WaitGroup

	mu      sync.Mutex
	msgs    []Message
	changed chan struct{} // closed and replaced when a message arrives
	conns   map[net.Conn]struct{}
	closed  bool
}

// Limits that keep a misbehaving client from costing the test run unbounded
// memory or time.
const (
	sinkMaxMessage = 64 << 20
	sinkMaxLine    = 1 << 20
	sinkIdle       = 30 * time.Second
)

// StartSink starts a sink on 127.0.0.1 on a free port and stops it when the test
// ends.
func StartSink(t testing.TB) *Sink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("sink: %v", err)
	}
	s := &Sink{ln: ln, dir: t.TempDir(), changed: make(chan struct{}), conns: make(map[net.Conn]struct{})}
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(s.Close)
	return s
}

// Addr returns the sink's host:port.
func (s *Sink) Addr() string { return s.ln.Addr().String() }

// Port returns the sink's port.
func (s *Sink) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// Close stops the sink and waits for its connections to end.
func (s *Sink) Close() {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.ln.Close()
	s.wg.Wait()
}

// Messages returns the messages received so far, oldest first.
func (s *Sink) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// Wait returns the first message received (now or until ctx ends) for which match
// is true.
func (s *Sink) Wait(ctx context.Context, match func(Message) bool) (Message, error) {
	for {
		s.mu.Lock()
		changed := s.changed
		for _, m := range s.msgs {
			if match(m) {
				s.mu.Unlock()
				return m, nil
			}
		}
		s.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return Message{}, fmt.Errorf("sink: no matching message among %d received: %w", len(s.Messages()), ctx.Err())
		}
	}
}

func (s *Sink) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				c.Close()
			}()
			s.session(c)
		}()
	}
}

// session speaks just enough SMTP (RFC 5321) for an MTA relaying to it.
func (s *Sink) session(c net.Conn) {
	r := textproto.NewReader(bufio.NewReaderSize(&deadlineReader{c}, 4096))
	w := bufio.NewWriter(c)
	reply := func(line string) bool {
		_ = c.SetWriteDeadline(time.Now().Add(sinkIdle))
		w.WriteString(line + "\r\n")
		return w.Flush() == nil
	}
	if !reply("220 sink.test ESMTP mailtest sink") {
		return
	}
	var msg Message
	for {
		line, err := readLine(r)
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO":
			if !reply("250-sink.test\r\n250-8BITMIME\r\n250 SIZE " + fmt.Sprint(sinkMaxMessage)) {
				return
			}
		case "HELO":
			reply("250 sink.test")
		case "MAIL":
			msg = Message{From: addrArg(arg, "FROM:")}
			reply("250 ok")
		case "RCPT":
			msg.To = append(msg.To, addrArg(arg, "TO:"))
			reply("250 ok")
		case "DATA":
			if !reply("354 go ahead") {
				return
			}
			data, err := readData(r)
			if err != nil {
				reply("552 " + err.Error())
				return
			}
			msg.Data = data
			if err := s.keep(&msg); err != nil {
				reply("451 " + err.Error())
				continue
			}
			reply("250 kept")
			msg = Message{}
		case "RSET":
			msg = Message{}
			reply("250 ok")
		case "NOOP":
			reply("250 ok")
		case "QUIT":
			reply("221 bye")
			return
		default:
			reply("502 not implemented")
		}
	}
}

func (s *Sink) keep(m *Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m.File = filepath.Join(s.dir, fmt.Sprintf("%04d.eml", len(s.msgs)+1))
	if err := os.WriteFile(m.File, m.Data, 0o600); err != nil {
		return err
	}
	s.msgs = append(s.msgs, *m)
	close(s.changed)
	s.changed = make(chan struct{})
	return nil
}

// addrArg returns the address of "FROM:<a@b> SIZE=1" and the like.
func addrArg(arg, prefix string) string {
	if len(arg) >= len(prefix) && strings.EqualFold(arg[:len(prefix)], prefix) {
		arg = arg[len(prefix):]
	}
	arg, _, _ = strings.Cut(strings.TrimSpace(arg), " ")
	return strings.Trim(arg, "<>")
}

var errLineTooLong = errors.New("line too long")

func readLine(r *textproto.Reader) (string, error) {
	line, err := r.ReadLine()
	if err != nil {
		return "", err
	}
	if len(line) > sinkMaxLine {
		return "", errLineTooLong
	}
	return line, nil
}

// readData reads a DATA section up to the lone dot, undoing dot-stuffing.
func readData(r *textproto.Reader) ([]byte, error) {
	var b bytes.Buffer
	for {
		line, err := readLine(r)
		if err != nil {
			return nil, err
		}
		if line == "." {
			return b.Bytes(), nil
		}
		line = strings.TrimPrefix(line, ".")
		if b.Len()+len(line) > sinkMaxMessage {
			return nil, errors.New("message too large")
		}
		b.WriteString(line)
		b.WriteString("\r\n")
	}
}

// deadlineReader gives every read of a connection a deadline, so that a client
// that stops talking does not keep the sink from closing.
type deadlineReader struct{ c net.Conn }

func (d *deadlineReader) Read(p []byte) (int, error) {
	_ = d.c.SetReadDeadline(time.Now().Add(sinkIdle))
	return d.c.Read(p)
}
