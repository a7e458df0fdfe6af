package dnscheck

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

// UDPSize is the EDNS0 buffer size domaind advertises: the DNS Flag Day 2020 value,
// which avoids IP fragmentation on every common path.
const UDPSize = 1232

// Errors of a DNS exchange, checked with errors.Is. Both are temporary: they say
// nothing about whether a record exists.
var (
	// ErrTimeout means no server answered within the per-query timeout.
	ErrTimeout = errors.New("dns: timed out")
	// ErrServFail means the server answered SERVFAIL (or REFUSED, or a malformed
	// answer): it could not or would not say.
	ErrServFail = errors.New("dns: server failure")
)

// Client sends DNS queries over the wire: over UDP on the sockets of its
// Transport, again after a timeout, and over TCP when the UDP answer is
// truncated. miekg/dns packs and parses every message.
type Client struct {
	// Timeout bounds each attempt of each query.
	Timeout time.Duration
	// Retries is how many times a timed-out query is sent again to the same
	// server, each time with a new id.
	Retries int
	// Transport carries the UDP queries; nil means one of the Client's own,
	// made on first use, whose sockets close themselves when idle.
	Transport *Transport

	once sync.Once
	own  *Transport
}

func (c *Client) transport() *Transport {
	if c.Transport != nil {
		return c.Transport
	}
	c.once.Do(func() { c.own = NewTransport(TransportOptions{}) })
	return c.own
}

// Exchange asks server (host:port) for name and qtype. recursive sets the RD bit:
// on for a recursive resolver, off for an authoritative server. It returns the
// response only if it answers the question asked; a SERVFAIL or REFUSED response is
// returned together with ErrServFail.
func (c *Client) Exchange(ctx context.Context, server, name string, qtype uint16, recursive bool) (*dns.Msg, error) {
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), qtype)
	q.RecursionDesired = recursive
	q.SetEdns0(UDPSize, false)

	var resp *dns.Msg
	var err error
	for attempt := 0; attempt <= c.Retries; attempt++ {
		resp, err = c.exchangeOnce(ctx, q, server)
		if !errors.Is(err, ErrTimeout) || ctx.Err() != nil {
			break
		}
	}
	return resp, err
}

func (c *Client) exchangeOnce(ctx context.Context, q *dns.Msg, server string) (*dns.Msg, error) {
	resp, err := c.transport().exchange(ctx, q, server, c.timeout())
	if err == nil && resp.Truncated {
		resp, err = c.sendTCP(ctx, q, server)
	}
	if err != nil {
		return nil, err
	}
	if resp.Rcode == dns.RcodeServerFailure || resp.Rcode == dns.RcodeRefused {
		return resp, fmt.Errorf("%w: %s answered %s for %s %s", ErrServFail, server,
			dns.RcodeToString[resp.Rcode], q.Question[0].Name, dns.TypeToString[q.Question[0].Qtype])
	}
	return resp, nil
}

// maxMsgRRs bounds the records one answer may carry. A message is at most 64 KiB on
// the wire, but compression lets each record of a dozen bytes name owners of up to
// 255 bytes, which unpacked take a string of their own: without a bound one
// answer could cost tens of megabytes once parsed. No answer a check needs comes
// near it: the largest referral (13 NS names, each with A and AAAA glue) has 39
// records. The header's counts are checked before the body is parsed.
const maxMsgRRs = 256

func (c *Client) timeout() time.Duration {
	if c.Timeout <= 0 {
		return 2 * time.Second
	}
	return c.Timeout
}

// sendTCP asks server once over TCP, on a connection of its own, as after a
// truncated UDP answer (RFC 7766). It reads one message, at most 64 KiB (the
// length prefix is 16 bits), and keeps none but the answer it returns.
func (c *Client) sendTCP(ctx context.Context, q *dns.Msg, server string) (*dns.Msg, error) {
	const network = "tcp"
	ctx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()
	name := q.Question[0].Name
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, server)
	if err != nil {
		return nil, netError(err, server, network, name)
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	conn.SetDeadline(deadline)
	// A cancelled check must not wait for the deadline of a query it no longer needs.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()

	co := &dns.Conn{Conn: conn, UDPSize: UDPSize}
	if err := co.WriteMsg(q); err != nil {
		return nil, netError(err, server, network, name)
	}
	for {
		var h dns.Header
		p, err := co.ReadMsgHeader(&h)
		if err != nil {
			return nil, netError(err, server, network, name)
		}
		if h.Id != q.Id {
			// The stream is ours alone, so another id means a broken server.
			return nil, fmt.Errorf("%w: %s answered with another query id over tcp", ErrServFail, server)
		}
		if n := int(h.Ancount) + int(h.Nscount) + int(h.Arcount); n > maxMsgRRs {
			return nil, fmt.Errorf("%w: %s answered %s with %d records, more than the %d domaind reads", ErrServFail, server, name, n, maxMsgRRs)
		}
		return matchAnswer(p, q, server)
	}
}

// netError turns an error of the network into one that names the server but none
// of domaind's own addresses: the text reaches tenants in the propagation view,
// and the Go error ("read udp 10.0.0.5:46770->203.0.113.9:53: connection refused")
// would tell them where domaind runs.
func netError(err error, server, network, name string) error {
	if isTimeout(err) {
		return fmt.Errorf("%w: %s over %s for %s", ErrTimeout, server, network, name)
	}
	// A connection refused, a reset or a garbled packet: the server could not
	// answer, which is as temporary as a SERVFAIL.
	return fmt.Errorf("%w: %s over %s: no answer (%s)", ErrServFail, server, network, netReason(err))
}

// netReason names what went wrong on the network in a few words.
func netReason(err error) string {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "connection reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed before a whole answer"
	case errors.Is(err, syscall.ENETUNREACH):
		return "network unreachable"
	case errors.Is(err, syscall.EHOSTUNREACH):
		return "host unreachable"
	case errors.Is(err, dns.ErrShortRead):
		return "answer too short"
	case errors.Is(err, context.Canceled):
		return "check cancelled"
	}
	return "network error"
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout())
}

// SystemResolvers returns the nameservers of /etc/resolv.conf as host:port, or an
// error if it names none.
func SystemResolvers(path string) ([]string, error) {
	cfg, err := dns.ClientConfigFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("dnscheck: read %s: %w", path, err)
	}
	var out []string
	for _, s := range cfg.Servers {
		out = append(out, net.JoinHostPort(s, cfg.Port))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("dnscheck: %s names no nameserver", path)
	}
	return out, nil
}
