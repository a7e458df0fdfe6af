// Package dnscheck checks published DNS records against what is expected and says,
// for each record, what it found and what is wrong. It knows DNS and nothing of HTTP
// or storage, so the API, the background verifier and the `domaind check` command
// all use it unchanged.
package dnscheck

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/publicsuffix"
	"golang.org/x/time/rate"

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
	// ServerQPS bounds the queries per second sent to any one authoritative
	// server, so that many domains hosted by one DNS provider do not hammer it.
	// Zero means no bound.
	ServerQPS float64
	// ServerConcurrency bounds the queries in flight to any one authoritative
	// server address across the Checker, so that one tenant's slow or silent name
	// server cannot hold every check; a query that finds its server full waits at
	// most one Timeout for a place and then fails as a temporary problem
	// (CodeServerBusy). DefaultServerConcurrency when zero.
	ServerConcurrency int
	// AllowPrivate lets checks query authoritative servers whose addresses were
	// learned from DNS (glue, name server lookups) although they are loopback,
	// private, link-local or otherwise not public (publicaddr.Reason). Off, such
	// servers are never asked. The root hints and the resolvers, which the
	// operator configures, are asked whatever their address. Tests and private
	// deployments set it.
	AllowPrivate bool
	// Cache is the infrastructure cache the Checker's checks share with every
	// other Checker given it: zone cuts, name server addresses and lame servers,
	// never the records checked. nil means each check walks from the root
	// servers again, as `domaind check` does for its single check.
	Cache *Cache
	// Transport carries the UDP queries; nil means one of the Checker's own,
	// closed by Close.
	Transport *Transport
}

// Checker checks records against DNS. It is safe for concurrent use.
type Checker struct {
	cfg        Config
	client     *Client // to resolvers: retries
	authClient *Client // to authoritative servers: no retries, the next server is the retry
	// authDownUntil (Unix nanoseconds) is set in auto mode when no root server
	// answered: outbound DNS is likely blocked, so checks go straight to the
	// resolvers for a while instead of waiting for the roots each time.
	authDownUntil atomic.Int64

	limitMu  sync.Mutex
	limiters map[string]*rate.Limiter // by authoritative server address

	slots   serverSlots
	trusted map[string]bool // root hint addresses, which the operator chose

	cache        *Cache     // nil: none
	transport    *Transport // the sockets of client and authClient
	ownTransport bool
	workers      *workers // the goroutines of a check's concurrent lookups
}

// Close closes the Checker's own Transport; checks still running end normally.
func (c *Checker) Close() error {
	if c.ownTransport {
		return c.transport.Close()
	}
	return nil
}

// maxLimiters bounds the per-server limiters kept; past it they start afresh,
// which at worst lets one burst through per server.
const maxLimiters = 10000

// exchangeAuth asks an authoritative server, waiting for a place among its
// queries in flight and for its rate limit first.
func (c *Checker) exchangeAuth(ctx context.Context, server, name string, qtype uint16) (*dns.Msg, error) {
	release, err := c.slots.acquire(ctx, server, c.cfg.Timeout)
	if err != nil {
		return nil, err
	}
	defer release()
	if c.cfg.ServerQPS > 0 {
		c.limitMu.Lock()
		if c.limiters == nil || len(c.limiters) >= maxLimiters {
			c.limiters = make(map[string]*rate.Limiter)
		}
		lim := c.limiters[server]
		if lim == nil {
			lim = rate.NewLimiter(rate.Limit(c.cfg.ServerQPS), max(1, int(c.cfg.ServerQPS)))
			c.limiters[server] = lim
		}
		c.limitMu.Unlock()
		if err := lim.Wait(ctx); err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("%w: rate limit for %s: %w", ErrTimeout, server, err)
			}
			// The wait would outlast the query's time: domaind holds itself back,
			// and the server has done nothing to be marked lame for.
			return nil, fmt.Errorf("%w: %s already had %g queries a second of domaind's: %w", errBusy, server, c.cfg.ServerQPS, err)
		}
	}
	return c.authClient.Exchange(ctx, server, name, qtype, false)
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
	if cfg.ServerConcurrency <= 0 {
		cfg.ServerConcurrency = DefaultServerConcurrency
	}
	trusted := make(map[string]bool, len(cfg.RootHints))
	for _, ip := range cfg.RootHints {
		trusted[ip] = true
	}
	tr, own := cfg.Transport, false
	if tr == nil {
		tr, own = NewTransport(TransportOptions{}), true
	}
	return &Checker{
		cfg:          cfg,
		slots:        serverSlots{limit: cfg.ServerConcurrency},
		trusted:      trusted,
		client:       &Client{Timeout: cfg.Timeout, Retries: cfg.Retries, Transport: tr},
		authClient:   &Client{Timeout: cfg.Timeout, Transport: tr},
		cache:        cfg.Cache,
		transport:    tr,
		ownTransport: own,
		workers:      newWorkers(),
	}, nil
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
	out, _ := c.check(ctx, exps)
	return out
}

// check is Check, also returning the session for tests to read its budget.
func (c *Checker) check(ctx context.Context, exps []Expectation) ([]domain.Observation, *session) {
	s := newSession(c)
	out := make([]domain.Observation, len(exps))
	c.workers.each(len(exps), func(i int) { out[i] = s.check(ctx, exps[i]) })
	return out, s
}

func (s *session) check(ctx context.Context, e Expectation) domain.Observation {
	qtype, ok := dns.StringToType[e.Type]
	if !ok || (qtype != dns.TypeTXT && qtype != dns.TypeMX && qtype != dns.TypeCNAME) {
		return domain.Observation{Key: e.Key, Status: domain.CheckTemporaryFailure,
			Problems: []domain.Problem{problem(CodeInternal, "domaind cannot check records of type %q.", e.Type)}}
	}
	resps := s.lookup(ctx, e.Name, qtype)
	sightings := make([]domain.Sighting, 0, min(len(resps), maxSightings))
	evals := make([]domain.Observation, len(resps))
	for i, r := range resps {
		sg := domain.Sighting{Server: r.server, Role: r.role, Zone: r.zone, Values: []string{}}
		if r.definite() {
			evals[i] = evaluate(e, answerOf(r))
			sg.Status, sg.Values = evals[i].Status, compactValues(answerOf(r).values())
		} else {
			sg.Status, sg.Error = domain.CheckTemporaryFailure, errorText(r.err)
		}
		if len(sightings) < maxSightings {
			sightings = append(sightings, sg)
		}
	}
	v := verdict(resps, evals)
	if v < 0 {
		o := temporary(e, resps)
		o.Propagation = sightings
		return o
	}
	o := evals[v]
	o.Key = e.Key
	o = s.diagnose(ctx, e, answerOf(resps[v]), o)
	o.Propagation = sightings
	if p, ok := disagreement(resps, evals, v); ok {
		o.Problems = append(o.Problems, p)
	}
	return o
}

// verdict picks the response a record's status is judged on: an authoritative
// server's definite answer when there is one (a verified one first, since the
// record is then published and the others are catching up), else the first
// definite resolver answer in the configured order. It returns -1 when no server
// gave a definite answer.
func verdict(resps []response, evals []domain.Observation) int {
	for _, role := range []domain.Role{domain.RoleAuthoritative, domain.RoleResolver} {
		first := -1
		for i, r := range resps {
			if r.role != role || !r.definite() {
				continue
			}
			if evals[i].Status == domain.CheckVerified {
				return i
			}
			if first < 0 {
				first = i
			}
		}
		if first >= 0 {
			return first
		}
	}
	return -1
}

// disagreement warns when the authoritative servers of a zone give different
// answers: some receivers will see the old state until the others catch up.
func disagreement(resps []response, evals []domain.Observation, v int) (domain.Problem, bool) {
	if resps[v].role != domain.RoleAuthoritative {
		return domain.Problem{}, false
	}
	var lagging []string
	for i, r := range resps {
		if r.role == domain.RoleAuthoritative && r.definite() && evals[i].Status != evals[v].Status {
			lagging = append(lagging, r.server)
		}
	}
	if len(lagging) == 0 {
		return domain.Problem{}, false
	}
	return problem(CodeInconsistent, "Not every authoritative server of %s gives the same answer yet (%s differ); this usually settles within minutes as the change reaches them.",
		resps[v].zone, strings.Join(lagging, ", ")), true
}

// lookup asks the servers the mode trusts and returns every answer: the
// authoritative servers' first, then the resolvers'.
func (s *session) lookup(ctx context.Context, name string, qtype uint16) []response {
	switch s.c.cfg.Mode {
	case ModeRecursive:
		return s.askResolvers(ctx, name, qtype)
	case ModeAuthoritative:
		resps, err := s.askAuthoritative(ctx, name, qtype)
		if err != nil {
			return []response{{role: domain.RoleAuthoritative, err: err}}
		}
		return resps
	}
	// Auto: both at once, so the resolvers' view is there for the propagation view
	// and as the fallback. The authoritative walk gets a bounded time, so a
	// network that drops outbound DNS still answers within the verify budget.
	var auth []response
	var authErr error
	var wg sync.WaitGroup
	if time.Now().UnixNano() >= s.c.authDownUntil.Load() {
		wg.Go(func() {
			actx, cancel := context.WithTimeout(ctx, 3*s.c.cfg.Timeout)
			defer cancel()
			auth, authErr = s.askAuthoritative(actx, name, qtype)
		})
	}
	res := s.askResolvers(ctx, name, qtype)
	wg.Wait()
	if errors.Is(authErr, errRootUnreachable) {
		s.c.authDownUntil.Store(time.Now().Add(time.Minute).UnixNano())
	}
	if authErr != nil {
		auth = []response{{role: domain.RoleAuthoritative, err: authErr}}
	}
	return append(auth, res...)
}

// lookupVerdict is lookup reduced to the answer a verdict would use, for the extra
// lookups of diagnose. ok is false when no server gave a definite answer.
func (s *session) lookupVerdict(ctx context.Context, name string, qtype uint16) (answer, bool) {
	resps := s.lookup(ctx, name, qtype)
	for _, role := range []domain.Role{domain.RoleAuthoritative, domain.RoleResolver} {
		for _, r := range resps {
			if r.role == role && r.definite() {
				return answerOf(r), true
			}
		}
	}
	return answer{}, false
}

func errorText(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrTimeout) && !errors.Is(err, ErrServFail):
		return "timed out"
	}
	return domain.TruncateBytes(err.Error(), 300)
}

// Bounds on what one record's observation keeps of its servers' answers, so that
// what is stored and shown for a record is small whatever the servers said.
const (
	maxSightings     = 16   // propagation entries per record
	maxSightingVals  = 16   // values shown per entry
	maxSightingValue = 2048 // bytes of one value shown; a 8192-bit DKIM key fits
)

// compactValues de-duplicates values, keeps at most maxSightingVals and cuts each
// to maxSightingValue bytes.
func compactValues(vals []string) []string {
	out := make([]string, 0, min(len(vals), maxSightingVals))
	for _, v := range vals {
		v = domain.TruncateBytes(v, maxSightingValue)
		if len(out) == maxSightingVals {
			break
		}
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// temporary reports a record no server could answer for. The problem names the
// most specific reason any server gave: a budget, a loop, a refused private
// address or a busy server before a plain timeout or SERVFAIL.
func temporary(e Expectation, resps []response) domain.Observation {
	return domain.Observation{Key: e.Key, Status: domain.CheckTemporaryFailure, Problems: []domain.Problem{temporaryProblem(e, resps)}}
}

func temporaryProblem(e Expectation, resps []response) domain.Problem {
	// The causes a problem names, most specific first; each message takes the
	// record's name and the reason the server's error gives.
	causes := []struct {
		sentinel error
		code     domain.ProblemCode
		msg      string
	}{
		{errBudget, CodeBudget, "Checking %s needs more DNS work than domaind does for one check (%s); this happens when name servers give very large or very many answers, and domaind will check again."},
		{errLoop, CodeLoop, "Looking up %s goes round in a loop (%s); fix the CNAME or NS records so that the chain ends, and domaind will check again."},
		{errPrivate, CodePrivateAddress, "The name servers for %s have addresses that are not on the public internet (%s); give them public addresses, and domaind will check again."},
		{errBusy, CodeServerBusy, "A name server for %s was slow to answer the queries domaind already had waiting for it (%s); domaind will check again."},
	}
	for _, c := range causes {
		for _, r := range resps {
			if errors.Is(r.err, c.sentinel) {
				return problem(c.code, c.msg, e.Name, reasonOf(r.err, c.sentinel))
			}
		}
	}
	timeout := len(resps) > 0
	for _, r := range resps {
		if !(errors.Is(r.err, ErrTimeout) && !errors.Is(r.err, ErrServFail)) {
			timeout = false
		}
	}
	if timeout {
		return problem(CodeTimeout, "No DNS server answered for %s in time; domaind will check again.", e.Name)
	}
	return problem(CodeServFail, "The DNS servers for %s could not answer (SERVFAIL); this is a fault at the DNS provider, often a DNSSEC error, and domaind will check again.", e.Name)
}

// reasonOf returns the part of err's text that follows the text of its cause
// sentinel, which is where the errors of this package say what happened.
func reasonOf(err, sentinel error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, sentinel.Error()+": "); i >= 0 {
		msg = msg[i+len(sentinel.Error())+2:]
	}
	return domain.TruncateBytes(msg, 200)
}

// diagnose adds the problems that take more lookups than the record's own: a
// record published at a doubled name, a CNAME hiding the record, an inherited
// DMARC policy, and the SPF evaluation of the MAIL FROM record.
func (s *session) diagnose(ctx context.Context, e Expectation, a answer, o domain.Observation) domain.Observation {
	if o.Status != domain.CheckVerified && len(a.cnames) > 0 {
		o.Status = domain.CheckMismatch
		o.Problems = append([]domain.Problem{problem(CodeCNAMEConflict,
			"%s is a CNAME to %s, which hides any %s record at %s; remove the CNAME and publish the %s record itself.",
			e.Name, strings.TrimSuffix(a.cnames[0], "."), e.Type, e.Name, e.Type)}, o.Problems...)
		return o
	}
	switch {
	case o.Status == domain.CheckMissing && e.Key == domain.KeyDMARC:
		if inherited, ok := s.inheritedDMARC(ctx, e); ok {
			return inherited
		}
		fallthrough
	case o.Status == domain.CheckMissing:
		if p, ok := s.doubled(ctx, e); ok {
			o.Problems = append([]domain.Problem{p}, o.Problems...)
		}
	case o.Status == domain.CheckVerified && e.Key == domain.KeyMailFromSPF:
		// The record parses; whether receivers pass the platform's mail takes an SPF
		// evaluation with lookups of its own.
		o = s.spfVerdict(ctx, e, a, o)
		o.Key = e.Key
	}
	return o
}

// doubled looks for the record at name.<domain>, where DNS panels that append the
// zone to every name put it when the customer enters the full name.
func (s *session) doubled(ctx context.Context, e Expectation) (domain.Problem, bool) {
	qtype := dns.StringToType[e.Type]
	for _, suffix := range suffixes(e.Domain) {
		name := e.Name + "." + suffix
		a, ok := s.lookupVerdict(ctx, name, qtype)
		if !ok || evaluate(e, a).Status == domain.CheckMissing {
			continue
		}
		relative := strings.TrimSuffix(e.Name, "."+suffix)
		return problem(CodeDoubledName,
			"The record was published at %s: your DNS panel adds %s to every name, so enter only %q as the name.",
			name, suffix, relative), true
	}
	return domain.Problem{}, false
}

// suffixes returns the zones a DNS panel may have appended: the domain itself and,
// for a subdomain, its registrable domain.
func suffixes(d string) []string {
	if d == "" {
		return nil
	}
	out := []string{d}
	if org, err := publicsuffix.EffectiveTLDPlusOne(d); err == nil && org != d {
		out = append(out, org)
	}
	return out
}
