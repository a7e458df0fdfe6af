package dnscheck

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
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

// Client sends DNS queries over the wire. miekg/dns's Exchange neither retries nor
// falls back to TCP on a truncated answer, so Client does both.
type Client struct {
	// Timeout bounds each attempt of each query.
	Timeout time.Duration
	// Retries is how many times a timed-out query is sent again to the same server.
	Retries int
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
	resp, err := c.send(ctx, "udp", q, server)
	if err == nil && resp.Truncated {
		resp, err = c.send(ctx, "tcp", q, server)
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

func (c *Client) send(ctx context.Context, network string, q *dns.Msg, server string) (*dns.Msg, error) {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	dc := &dns.Client{Net: network, UDPSize: UDPSize, Timeout: timeout}
	resp, _, err := dc.ExchangeContext(ctx, q, server)
	if err != nil {
		if isTimeout(err) {
			return nil, fmt.Errorf("%w: %s over %s for %s", ErrTimeout, server, network, q.Question[0].Name)
		}
		// A connection refused, a reset or a garbled packet: the server could not
		// answer, which is as temporary as a SERVFAIL.
		return nil, fmt.Errorf("%w: %s over %s: %v", ErrServFail, server, network, err)
	}
	// miekg/dns matches the id; a hostile or broken server may still answer another
	// question, and such an answer must not count for this one.
	if len(resp.Question) != 1 || !strings.EqualFold(resp.Question[0].Name, q.Question[0].Name) ||
		resp.Question[0].Qtype != q.Question[0].Qtype || !resp.Response {
		return nil, fmt.Errorf("%w: %s answered a different question than %s", ErrServFail, server, q.Question[0].Name)
	}
	return resp, nil
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
