// Package dnscheck checks published DNS records against what is expected and says,
// for each record, what it found and what is wrong. It knows DNS and nothing of HTTP
// or storage, so the API, the background verifier and the `domaind check` command
// all use it unchanged.
package dnscheck

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/domaind/domaind/internal/domain"
)

// Mode says which servers a Checker trusts for its verdict.
type Mode string

// The checking modes.
const (
	// ModeAuto asks the authoritative servers and falls back to the resolvers
	// when none of them answers (for instance where outbound DNS is blocked).
	ModeAuto Mode = "auto"
	// ModeAuthoritative asks only the authoritative servers.
	ModeAuthoritative Mode = "authoritative"
	// ModeRecursive asks only the configured resolvers, as most peers do.
	ModeRecursive Mode = "recursive"
)

// ParseMode parses a --dns-mode value.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case ModeAuto, ModeAuthoritative, ModeRecursive:
		return m, nil
	}
	return "", fmt.Errorf("dnscheck: mode %q must be auto, authoritative or recursive", s)
}

// RootServers returns the IPv4 addresses of the IANA root servers, a.root-servers.net
// to m.root-servers.net, where delegation walks start by default.
func RootServers() []string {
	return []string{
		"198.41.0.4", "170.247.170.2", "192.33.4.12", "199.7.91.13", "192.203.230.10", "192.5.5.241",
		"192.112.36.4", "198.97.190.53", "192.36.148.17", "192.58.128.30", "193.0.14.129", "199.7.83.42", "202.12.27.33",
	}
}

// Config configures a Checker.
type Config struct {
	// Resolvers are recursive resolvers as host:port, asked in order. Required
	// unless Mode is ModeAuthoritative.
	Resolvers []string
	// Mode is ModeAuto when empty.
	Mode Mode
	// RootHints are the IP addresses delegation walks start from; RootServers()
	// when empty.
	RootHints []string
	// AuthoritativePort is the port of every authoritative server, root included;
	// 53 when zero. Tests and private DNS set another.
	AuthoritativePort int
	// Timeout bounds each query attempt.
	Timeout time.Duration
	// Retries is how many times a timed-out query to a resolver is repeated.
	Retries int
}

// Checker checks records against DNS. It is safe for concurrent use.
type Checker struct {
	cfg    Config
	client *Client
}

// New returns a Checker for cfg.
func New(cfg Config) (*Checker, error) {
	if cfg.Mode == "" {
		cfg.Mode = ModeAuto
	}
	if _, err := ParseMode(string(cfg.Mode)); err != nil {
		return nil, err
	}
	if len(cfg.Resolvers) == 0 && cfg.Mode != ModeAuthoritative {
		return nil, errors.New("dnscheck: no resolvers configured")
	}
	if len(cfg.RootHints) == 0 {
		cfg.RootHints = RootServers()
	}
	if cfg.AuthoritativePort == 0 {
		cfg.AuthoritativePort = 53
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Second
	}
	return &Checker{cfg: cfg, client: &Client{Timeout: cfg.Timeout, Retries: cfg.Retries}}, nil
}

// Expectation is one record that should be published.
type Expectation struct {
	Key domain.RecordKey
	// Domain is the sending domain the record belongs to; checks use it to look
	// for records a DNS panel doubled and for an inherited DMARC policy.
	Domain string
	Name   string // no trailing dot
	Type   string // "TXT" or "MX"
	// Value is the expected value. Empty means any valid record of the key's kind
	// verifies, as `domaind check` uses it for a domain domaind did not generate.
	Value    string
	Priority uint16
}

// ExpectationsOf returns what the domain's records expect.
func ExpectationsOf(d *domain.Domain) []Expectation {
	out := make([]Expectation, 0, len(d.Records))
	for _, r := range d.Records {
		out = append(out, Expectation{Key: r.Key, Domain: d.Name, Name: r.Name, Type: r.Type, Value: r.Value, Priority: r.Priority})
	}
	return out
}

// Check looks up every expectation concurrently and returns one observation per
// expectation, in the same order. It never fails as a whole: a record DNS could not
// answer for is reported as a temporary failure with the reason.
func (c *Checker) Check(ctx context.Context, exps []Expectation) []domain.Observation {
	out := make([]domain.Observation, len(exps))
	var wg sync.WaitGroup
	for i, e := range exps {
		wg.Go(func() { out[i] = c.checkOne(ctx, e) })
	}
	wg.Wait()
	return out
}

func (c *Checker) checkOne(ctx context.Context, e Expectation) domain.Observation {
	qtype, ok := dns.StringToType[e.Type]
	if !ok || (qtype != dns.TypeTXT && qtype != dns.TypeMX) {
		return domain.Observation{Key: e.Key, Status: domain.CheckTemporaryFailure,
			Problems: []domain.Problem{{Code: CodeInternal, Message: fmt.Sprintf("domaind cannot check records of type %q.", e.Type)}}}
	}
	ans := c.lookup(ctx, e.Name, qtype)
	if ans.err != nil {
		return temporary(e, ans.err)
	}
	switch e.Key {
	case domain.KeyOwnership:
		return checkOwnership(e, ans)
	case domain.KeyDKIM:
		return checkDKIM(e, ans)
	case domain.KeyMailFromMX, domain.KeyInboundMX:
		return checkMX(e, ans)
	case domain.KeyMailFromSPF:
		return checkSPF(e, ans)
	case domain.KeyDMARC:
		return checkDMARC(e, ans)
	}
	return checkExactTXT(e, ans)
}

// answer is what DNS said of one name and type: the records of that type (at the
// name or at the end of its CNAME chain), or a temporary error.
type answer struct {
	rcode int
	txt   []string // each TXT RR's strings, concatenated
	mx    []*dns.MX
	err   error
}

// lookup asks the resolvers in order and returns the first definite answer.
func (c *Checker) lookup(ctx context.Context, name string, qtype uint16) answer {
	var errs []error
	for _, server := range c.cfg.Resolvers {
		resp, err := c.client.Exchange(ctx, server, name, qtype, true)
		if err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		a := answer{rcode: resp.Rcode}
		if resp.Rcode != dns.RcodeSuccess && resp.Rcode != dns.RcodeNameError {
			errs = append(errs, fmt.Errorf("%w: %s answered %s", ErrServFail, server, dns.RcodeToString[resp.Rcode]))
			continue
		}
		for _, rr := range resp.Answer {
			switch rr := rr.(type) {
			case *dns.TXT:
				if qtype == dns.TypeTXT {
					a.txt = append(a.txt, strings.Join(rr.Txt, ""))
				}
			case *dns.MX:
				if qtype == dns.TypeMX {
					a.mx = append(a.mx, rr)
				}
			}
		}
		return a
	}
	if len(errs) == 0 {
		errs = append(errs, ctx.Err())
	}
	return answer{err: errors.Join(errs...)}
}

func temporary(e Expectation, err error) domain.Observation {
	p := domain.Problem{Code: CodeServFail, Message: fmt.Sprintf(
		"The DNS servers for %s could not answer (SERVFAIL); this is a fault at the DNS provider, often a DNSSEC error, and domaind will check again.", e.Name)}
	if errors.Is(err, ErrTimeout) && !errors.Is(err, ErrServFail) {
		p = domain.Problem{Code: CodeTimeout, Message: fmt.Sprintf(
			"No DNS server answered for %s in time; domaind will check again.", e.Name)}
	}
	return domain.Observation{Key: e.Key, Status: domain.CheckTemporaryFailure, Problems: []domain.Problem{p}}
}

func notFound(e Expectation) domain.Observation {
	return domain.Observation{Key: e.Key, Status: domain.CheckMissing, Problems: []domain.Problem{{
		Code:    CodeNotFound,
		Message: fmt.Sprintf("No %s record was found at %s; add a %s record there with the value %q.", e.Type, e.Name, e.Type, displayValue(e)),
	}}}
}

func wrongValue(e Expectation, found []string) domain.Observation {
	return domain.Observation{Key: e.Key, Status: domain.CheckMismatch, Found: found, Problems: []domain.Problem{{
		Code: CodeWrongValue,
		Message: fmt.Sprintf("The %s record at %s has the value %s but should be %q; change it to the expected value.",
			e.Type, e.Name, quoteList(found), displayValue(e)),
	}}}
}

func displayValue(e Expectation) string {
	if e.Type == "MX" {
		return fmt.Sprintf("%d %s", e.Priority, e.Value)
	}
	return e.Value
}

func quoteList(vs []string) string {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = fmt.Sprintf("%q", truncate(v, 120))
	}
	return strings.Join(q, ", ")
}

// truncate shortens s for a message; found values come from whoever controls a zone
// and may be long.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func verified(e Expectation, found []string) domain.Observation {
	return domain.Observation{Key: e.Key, Status: domain.CheckVerified, Found: found}
}

// checkExactTXT verifies a TXT record whose concatenated strings equal the value.
func checkExactTXT(e Expectation, a answer) domain.Observation {
	if len(a.txt) == 0 {
		return notFound(e)
	}
	for _, t := range a.txt {
		if t == e.Value {
			return verified(e, a.txt)
		}
	}
	return wrongValue(e, a.txt)
}

func checkOwnership(e Expectation, a answer) domain.Observation { return checkExactTXT(e, a) }

// checkDKIM verifies a TXT record publishing the expected public key, either bare
// (as the contract's value is) or as a v=DKIM1 key record.
func checkDKIM(e Expectation, a answer) domain.Observation {
	if len(a.txt) == 0 {
		return notFound(e)
	}
	want := removeSpace(e.Value)
	var problems []domain.Problem
	for _, t := range a.txt {
		if removeSpace(t) == want {
			return verified(e, a.txt)
		}
		if isBareBase64(removeSpace(t)) {
			// A bare key, as the contract lets customers publish: it is another key.
			problems = append(problems, keyMismatch(e))
			continue
		}
		key, err := ParseDKIMKey(t)
		if err != nil {
			var se *SyntaxError
			if errors.As(err, &se) {
				problems = append(problems, domain.Problem{Code: CodeDKIMSyntax, Message: fmt.Sprintf(
					"The DKIM record at %s does not parse: %s", e.Name, se.Reason)})
			}
			continue
		}
		if key.PublicKey == want && key.KeyType == "rsa" {
			return verified(e, a.txt)
		}
		problems = append(problems, keyMismatch(e))
	}
	o := wrongValue(e, a.txt)
	o.Problems = append(o.Problems, problems...)
	return o
}

func keyMismatch(e Expectation) domain.Problem {
	return domain.Problem{Code: CodeDKIMKeyMismatch, Message: fmt.Sprintf(
		"The DKIM record at %s publishes a different public key; replace its value with the one domaind generated.", e.Name)}
}

// isBareBase64 reports whether s is only base64 text, with no DKIM tags.
func isBareBase64(s string) bool {
	if len(s) < 16 || strings.Contains(s, ";") {
		return false
	}
	_, err := base64.StdEncoding.DecodeString(s)
	return err == nil
}

// checkMX verifies that the expected host is among the MX records at the name.
func checkMX(e Expectation, a answer) domain.Observation {
	if len(a.mx) == 0 {
		return notFound(e)
	}
	found := make([]string, len(a.mx))
	ok := false
	for i, mx := range a.mx {
		host := strings.TrimSuffix(strings.ToLower(mx.Mx), ".")
		found[i] = fmt.Sprintf("%d %s", mx.Preference, host)
		if host == strings.ToLower(e.Value) {
			ok = true
		}
	}
	if ok {
		return verified(e, found)
	}
	return wrongValue(e, found)
}

// checkSPF verifies that the name has exactly one SPF record and that it includes
// the expected domain.
func checkSPF(e Expectation, a answer) domain.Observation {
	var spf []string
	for _, t := range a.txt {
		if IsSPF(t) {
			spf = append(spf, t)
		}
	}
	switch len(spf) {
	case 0:
		return notFound(e)
	case 1:
	default:
		return domain.Observation{Key: e.Key, Status: domain.CheckMismatch, Found: spf, Problems: []domain.Problem{{
			Code: CodeMultipleSPF,
			Message: fmt.Sprintf("%s has %d SPF records, which makes SPF fail for every message (permerror); merge them into one record %q.",
				e.Name, len(spf), e.Value),
		}}}
	}
	rec, err := ParseSPF(spf[0])
	if err != nil {
		o := wrongValue(e, spf)
		var se *SyntaxError
		if errors.As(err, &se) {
			o.Problems = append(o.Problems, domain.Problem{Code: CodeSPFSyntax, Message: fmt.Sprintf(
				"The SPF record at %s does not parse: %s", e.Name, se.Reason)})
		}
		return o
	}
	want := spfIncludeOf(e.Value)
	for _, inc := range rec.Includes() {
		if strings.EqualFold(strings.TrimSuffix(inc, "."), want) {
			return verified(e, spf)
		}
	}
	o := wrongValue(e, spf)
	o.Problems[0] = domain.Problem{Code: CodeWrongValue, Message: fmt.Sprintf(
		"The SPF record at %s does not include %s; add include:%s before its all mechanism.", e.Name, want, want)}
	return o
}

// spfIncludeOf returns the domain the expected SPF value includes.
func spfIncludeOf(value string) string {
	for _, f := range strings.Fields(value) {
		if rest, ok := strings.CutPrefix(strings.ToLower(f), "include:"); ok {
			return strings.TrimSuffix(rest, ".")
		}
	}
	return ""
}

// checkDMARC verifies that one valid DMARC record is published at the name.
func checkDMARC(e Expectation, a answer) domain.Observation {
	var recs []string
	for _, t := range a.txt {
		if IsDMARC(t) {
			recs = append(recs, t)
		}
	}
	switch len(recs) {
	case 0:
		return notFound(e)
	case 1:
	default:
		return domain.Observation{Key: e.Key, Status: domain.CheckMismatch, Found: recs, Problems: []domain.Problem{{
			Code:    CodeDMARCMultiple,
			Message: fmt.Sprintf("%s has %d DMARC records, so receivers ignore them all; keep only one.", e.Name, len(recs)),
		}}}
	}
	if _, err := ParseDMARC(recs[0]); err != nil {
		reason := err.Error()
		var se *SyntaxError
		if errors.As(err, &se) {
			reason = se.Reason
		}
		return domain.Observation{Key: e.Key, Status: domain.CheckMismatch, Found: recs, Problems: []domain.Problem{{
			Code: CodeDMARCSyntax, Message: fmt.Sprintf("The DMARC record at %s is not valid: %s", e.Name, reason),
		}}}
	}
	return verified(e, recs)
}

func removeSpace(s string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, s)
}
