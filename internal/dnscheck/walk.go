package dnscheck

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sync/singleflight"

	"github.com/domaind/domaind/internal/domain"
)

// Bounds that keep one walk finite whatever hostile or broken zones say; budget.go
// holds the bounds of a whole check.
const (
	maxReferrals = 16 // delegations followed for one name
	maxCNAMEs    = 8  // CNAMEs followed for one record, as Unbound's MAX_RESTART_COUNT
	maxNSDepth   = 3  // nested walks to find the address of a name server without glue
	rootRace     = 3  // root servers asked at once, so a blocked network fails fast
)

// errNoAuthority means no authoritative server of a zone gave a usable answer;
// errRootUnreachable that not even a root server did.
var (
	errNoAuthority     = errors.New("dns: no authoritative server answered")
	errRootUnreachable = errors.New("dns: no root server answered")
)

// response is one server's answer to one question, reduced to what checks need.
type response struct {
	server string
	role   domain.Role
	zone   string   // for an authoritative server: the zone it was asked as a server of
	rcode  int      // meaningful when err is nil
	rrs    []dns.RR // records of the asked type at the end of the CNAME chain
	cnames []string // CNAME targets followed from the asked name, in order
	err    error
}

// definite reports whether the server gave a definite answer.
func (r response) definite() bool {
	return r.err == nil && (r.rcode == dns.RcodeSuccess || r.rcode == dns.RcodeNameError)
}

// session is one Check call. Its records share the delegations one of them found,
// so a check asks the root and the TLD servers once, not once per record.
type session struct {
	c     *Checker
	b     *budget
	sf    singleflight.Group
	mu    sync.Mutex
	zones map[string][]string // zone (canonical, fully qualified) → server addresses
	// cached marks the zones of zones taken from the Checker's cache.
	cached map[string]bool
}

func newSession(c *Checker) *session {
	return &session{c: c, b: newBudget(), zones: make(map[string][]string), cached: make(map[string]bool)}
}

// ask sends one query of the check, to a resolver (recursive) or to an
// authoritative server, within the check's budget. An authoritative server whose
// address was learned from DNS and is not public is not asked at all: a tenant
// must not be able to point domaind at its own network (glue of 127.0.0.1 or
// 10.0.0.1 would make it a port scanner with a view of the answers).
func (s *session) ask(ctx context.Context, server, name string, qtype uint16, recursive bool) (*dns.Msg, error) {
	if !recursive {
		if reason := s.c.privateReason(server); reason != "" {
			return nil, fmt.Errorf("%w: refused to ask %s, %s learned from DNS; domaind asks only public addresses", errPrivate, server, reason)
		}
	}
	release, err := s.b.send(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	if recursive {
		return s.c.client.Exchange(ctx, server, name, qtype, true)
	}
	return s.c.exchangeAuth(ctx, server, name, qtype)
}

// reduce keeps of msg what checks need, the records of qtype at the end of the
// CNAME chain from name, charging them to the check's budget; msg itself is not
// kept.
func (s *session) reduce(r *response, msg *dns.Msg, name string, qtype uint16) {
	rrs, cnames, err := chase(msg, name, qtype)
	if err == nil {
		err = s.b.keep(rrs)
	}
	if err != nil {
		r.err = err
		return
	}
	r.rcode, r.rrs, r.cnames = msg.Rcode, rrs, cnames
}

// chase reduces an answer section to the records of qtype at the end of the CNAME
// chain starting at name, and the chain itself. A chain that returns to a name or
// is longer than maxCNAMEs is a loop, and an answer with more than maxAnswerRRs
// records at its end is more than a check reads: both are errors.
func chase(msg *dns.Msg, name string, qtype uint16) (rrs []dns.RR, cnames []string, err error) {
	start := canonical(name)
	cur := start
	for {
		next := ""
		for _, rr := range msg.Answer {
			if c, ok := rr.(*dns.CNAME); ok && qtype != dns.TypeCNAME && canonical(c.Hdr.Name) == cur {
				next = canonical(c.Target)
				break
			}
		}
		if next == "" {
			break
		}
		if next == start || slices.Contains(cnames, next) {
			return nil, nil, fmt.Errorf("%w: the CNAME chain from %s returns to %s", errLoop, start, next)
		}
		if len(cnames) >= maxCNAMEs {
			return nil, nil, fmt.Errorf("%w: the CNAME chain from %s is longer than %d", errLoop, start, maxCNAMEs)
		}
		cnames = append(cnames, next)
		cur = next
	}
	for _, rr := range msg.Answer {
		if rr.Header().Rrtype == qtype && canonical(rr.Header().Name) == cur {
			if len(rrs) == maxAnswerRRs {
				return nil, nil, fmt.Errorf("%w: more than %d %s records at %s", errBudget, maxAnswerRRs, dns.TypeToString[qtype], cur)
			}
			rrs = append(rrs, rr)
		}
	}
	return rrs, cnames, nil
}

// askResolvers asks every configured resolver at once; each answer is returned in
// the configured order.
func (s *session) askResolvers(ctx context.Context, name string, qtype uint16) []response {
	out := make([]response, len(s.c.cfg.Resolvers))
	s.c.workers.each(len(out), func(i int) {
		server := s.c.cfg.Resolvers[i]
		r := response{server: server, role: domain.RoleResolver}
		msg, err := s.ask(ctx, server, name, qtype, true)
		if err != nil {
			r.err = err
		} else {
			s.reduce(&r, msg, name, qtype)
		}
		out[i] = r
	})
	return out
}

// canonical is dns.CanonicalName(name): lower case, with the final dot. It
// gives back name itself where that is already so, as the names of a check
// (and of the answers to it) usually are, instead of copying it twice per
// query, once to add the dot and once to lower its case. A name with a
// backslash or a byte past ASCII goes to dns.CanonicalName, which reads an
// escaped dot and turns bytes that are not UTF-8 into U+FFFD.
func canonical(name string) string {
	for i := 0; i < len(name); i++ {
		if c := name[i]; 'A' <= c && c <= 'Z' || c == '\\' || c >= 0x80 {
			return dns.CanonicalName(name)
		}
	}
	if strings.HasSuffix(name, ".") {
		return name
	}
	return name + "."
}

// askAuthoritative finds the zone that holds name and asks every one of its
// authoritative servers, following a CNAME chain into other zones when the
// servers' answers end in a CNAME they are not authoritative for.
func (s *session) askAuthoritative(ctx context.Context, name string, qtype uint16) ([]response, error) {
	start := canonical(name)
	cur := start
	var chain []string
	for hop := 0; ; hop++ {
		zone, servers, walked, err := s.zoneOf(ctx, cur, qtype, nil)
		if err != nil {
			return nil, err
		}
		resps := s.askAll(ctx, zone, servers, cur, qtype, walked)
		var first *response
		for i := range resps {
			if resps[i].definite() {
				first = &resps[i]
				break
			}
		}
		if first == nil {
			return resps, nil
		}
		// An answer that ends in a CNAME whose target the server does not hold:
		// ask the target's own servers.
		if len(first.rrs) == 0 && len(first.cnames) > 0 {
			next := first.cnames[len(first.cnames)-1]
			switch {
			case next == start || slices.Contains(chain, next) || slices.Contains(first.cnames[:len(first.cnames)-1], next):
				return nil, fmt.Errorf("%w: the CNAME chain from %s returns to %s", errLoop, start, next)
			case hop >= maxCNAMEs || len(chain)+len(first.cnames) > maxCNAMEs:
				return nil, fmt.Errorf("%w: the CNAME chain from %s is longer than %d", errLoop, start, maxCNAMEs)
			}
			if err := spend(&s.b.cnames, int64(len(first.cnames)), maxCheckCNAMEs, "CNAMEs followed for one check"); err != nil {
				return nil, err
			}
			chain = append(chain, first.cnames...)
			cur = next
			continue
		}
		for i := range resps {
			resps[i].cnames = append(append([]string(nil), chain...), resps[i].cnames...)
		}
		return resps, nil
	}
}

// askAll asks every server of zone for name, concurrently, without recursion;
// the walk's own answer, known, is used for its server rather than asked again.
func (s *session) askAll(ctx context.Context, zone string, servers []string, name string, qtype uint16, known answered) []response {
	out := make([]response, len(servers))
	s.c.workers.each(len(servers), func(i int) {
		server := servers[i]
		r := response{server: server, role: domain.RoleAuthoritative, zone: strings.TrimSuffix(zone, ".")}
		msg, err := known.msg, error(nil)
		if server != known.server {
			msg, err = s.ask(ctx, server, name, qtype, false)
		}
		switch {
		case err != nil:
			r.err = err
		case !msg.Authoritative && msg.Rcode == dns.RcodeSuccess && len(msg.Answer) == 0:
			// A referral or an empty non-authoritative answer from a server of
			// the zone: it is lame for this name.
			r.err = fmt.Errorf("%w: %s is not authoritative for %s", ErrServFail, server, name)
		default:
			s.reduce(&r, msg, name, qtype)
		}
		out[i] = r
	})
	return out
}

// closest returns the deepest zone already known that holds name, from this
// check's walks or the Checker's cache, or the root. A zone taken from the cache
// is copied into the check, so that all of its records see the same servers.
func (s *session) closest(name string) (string, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for z := name; z != "."; {
		if servers, ok := s.zones[z]; ok {
			return z, servers
		}
		if servers, ok := s.c.cache.zone(z); ok {
			s.zones[z] = servers
			s.cached[z] = true
			return z, servers
		}
		i, end := dns.NextLabel(z, 0)
		if end {
			break
		}
		z = z[i:]
	}
	port := strconv.Itoa(s.c.cfg.AuthoritativePort)
	roots := make([]string, len(s.c.cfg.RootHints))
	for i, ip := range s.c.cfg.RootHints {
		roots[i] = net.JoinHostPort(ip, port)
	}
	return ".", roots
}

// answered is one server's answer to the question a walk asked.
type answered struct {
	server string
	msg    *dns.Msg
}

// zoneOf walks the delegations from the closest known zone down to the zone whose
// servers answer name authoritatively, and returns that zone, its servers, and
// the answer the walk's last step already got from one of them. path lists the
// zones whose name servers' addresses the walk is looking up, outermost first.
func (s *session) zoneOf(ctx context.Context, name string, qtype uint16, path []string) (string, []string, answered, error) {
	zone, servers := s.closest(name)
	for range maxReferrals {
		msg, server, err := s.askFirst(ctx, zone, servers, name, qtype)
		if err != nil {
			if ctx.Err() == nil {
				s.forgetCached(zone, err)
			}
			return "", nil, answered{}, err
		}
		child, hosts, glue := referral(msg, zone, name)
		if child == "" {
			return zone, servers, answered{server: server, msg: msg}, nil
		}
		if err := spend(&s.b.referrals, 1, maxCheckReferrals, "delegations followed for one check"); err != nil {
			return "", nil, answered{}, err
		}
		addrs, err := s.delegate(ctx, zone, child, hosts, glue, delegationTTL(msg, child, hosts), path)
		if err != nil {
			return "", nil, answered{}, err
		}
		zone, servers = child, addrs
	}
	return "", nil, answered{}, fmt.Errorf("%w: more than %d delegations for %s", errBudget, maxReferrals, name)
}

// askFirst asks the servers of zone in turn until one gives a usable answer (an
// authoritative answer, a negative answer or a referral). The root servers are
// asked a few at a time, so that where outbound DNS is blocked the walk fails
// after one timeout, not thirteen.
func (s *session) askFirst(ctx context.Context, zone string, servers []string, name string, qtype uint16) (*dns.Msg, string, error) {
	batch := 1
	if zone == "." {
		batch = rootRace
	}
	// Servers that failed for the zone lately are asked last, so that a check
	// does not wait for the timeout of a server an earlier check found silent.
	if s.c.cache != nil && len(servers) > 1 {
		var good, lame []string
		for _, server := range servers {
			if s.c.cache.lame(zone, server) {
				lame = append(lame, server)
			} else {
				good = append(good, server)
			}
		}
		servers = append(good, lame...)
	}
	var errs []error
	for start := 0; start < len(servers); start += batch {
		group := servers[start:min(start+batch, len(servers))]
		msg, server, groupErrs := s.askGroup(ctx, zone, group, name, qtype)
		if msg != nil {
			return msg, server, nil
		}
		errs = append(errs, groupErrs...)
		if ctx.Err() != nil || errors.Is(errors.Join(errs...), errBudget) {
			break
		}
	}
	if zone == "." && allTimeouts(errs) {
		return nil, "", fmt.Errorf("%w for %s: %w", errRootUnreachable, name, errors.Join(errs...))
	}
	return nil, "", fmt.Errorf("%w for %s in zone %s: %w", errNoAuthority, name, zone, errors.Join(errs...))
}

// askGroup asks the servers of group, all of zone's, at once, and returns the
// first usable answer and its server, or every server's error. A group of
// one, as for every zone but the root, is asked on this goroutine, which
// spares a goroutine (and the growth of its stack) per query.
func (s *session) askGroup(ctx context.Context, zone string, group []string, name string, qtype uint16) (*dns.Msg, string, []error) {
	if len(group) == 1 {
		msg, err := s.askUsable(ctx, zone, group[0], name, qtype)
		if err != nil {
			return nil, "", []error{err}
		}
		return msg, group[0], nil
	}
	type result struct {
		msg    *dns.Msg
		server string
		err    error
	}
	results := make(chan result, len(group))
	gctx, cancel := context.WithCancel(ctx)
	defer cancel() // the winner ends the race's other queries
	for _, server := range group {
		go func() {
			msg, err := s.askUsable(gctx, zone, server, name, qtype)
			results <- result{msg, server, err}
		}()
	}
	var errs []error
	for range group {
		r := <-results
		if r.err == nil {
			return r.msg, r.server, nil
		}
		errs = append(errs, r.err)
	}
	return nil, "", errs
}

// askUsable asks server, one of zone's, for name and returns its answer if
// usable. A server that fails while ctx lasts is marked lame for the zone.
func (s *session) askUsable(ctx context.Context, zone, server, name string, qtype uint16) (*dns.Msg, error) {
	msg, err := s.ask(ctx, server, name, qtype, false)
	switch {
	case err != nil:
	case refersBack(msg, zone):
		err = fmt.Errorf("%w: %s, a server of %s, refers %s back to %s or above", errLoop, server, zone, name, zone)
	case !usable(msg, zone, name):
		err = fmt.Errorf("%w: %s gave no usable answer for %s in %s", ErrServFail, server, name, zone)
	}
	if err != nil {
		// A query the race's winner cancelled says nothing of its server.
		if lameError(err) && ctx.Err() == nil {
			s.c.cache.markLame(zone, server)
		}
		return nil, err
	}
	return msg, nil
}

// usable reports whether msg, from a server of zone, answers name or refers to a
// zone below.
func usable(msg *dns.Msg, zone, name string) bool {
	if msg.Rcode != dns.RcodeSuccess && msg.Rcode != dns.RcodeNameError {
		return false
	}
	if msg.Authoritative {
		return true
	}
	child, _, _ := referral(msg, zone, name)
	return child != ""
}

// refersBack reports whether msg, from a server of zone, is a referral that
// delegates only zone itself or a zone above it: followed, it would lead back to
// where the walk already is.
func refersBack(msg *dns.Msg, zone string) bool {
	if msg.Authoritative || msg.Rcode != dns.RcodeSuccess || len(msg.Answer) > 0 {
		return false
	}
	found := false
	for _, rr := range msg.Ns {
		ns, ok := rr.(*dns.NS)
		if !ok {
			continue
		}
		owner := canonical(ns.Hdr.Name)
		if owner != zone && dns.IsSubDomain(zone, owner) {
			return false
		}
		found = true
	}
	return found
}

// referral returns the child zone, its name server host names and their glue
// addresses when msg delegates name from zone to a zone below it. Host names are
// de-duplicated and at most maxNSNames; glue is kept only for those names, at
// most maxAddrsPerNS distinct IPv4 addresses each, however many records the
// answer repeats.
func referral(msg *dns.Msg, zone, name string) (child string, hosts []string, glue map[string][]string) {
	if msg.Authoritative || msg.Rcode != dns.RcodeSuccess || len(msg.Answer) > 0 {
		return "", nil, nil
	}
	for _, rr := range msg.Ns {
		ns, ok := rr.(*dns.NS)
		if !ok {
			continue
		}
		owner := canonical(ns.Hdr.Name)
		// Only a zone strictly below the current one and above or at the name: a
		// referral upwards or sideways would loop.
		if owner == zone || !dns.IsSubDomain(zone, owner) || !dns.IsSubDomain(owner, name) {
			continue
		}
		if child == "" {
			child = owner
		}
		host := canonical(ns.Ns)
		if owner == child && len(hosts) < maxNSNames && !slices.Contains(hosts, host) {
			hosts = append(hosts, host)
		}
	}
	if child == "" {
		return "", nil, nil
	}
	glue = make(map[string][]string)
	for _, rr := range msg.Extra {
		a, ok := rr.(*dns.A)
		if !ok {
			continue
		}
		host := canonical(a.Hdr.Name)
		ip, ok := netip.AddrFromSlice(a.A.To4())
		if !ok || !slices.Contains(hosts, host) {
			continue
		}
		if ips := glue[host]; len(ips) < maxAddrsPerNS && !slices.Contains(ips, ip.String()) {
			glue[host] = append(ips, ip.String())
		}
	}
	return child, hosts, glue
}

// delegate resolves the addresses of a child zone's name servers, from glue where
// given and by walks of their own otherwise, and remembers them for this check
// and, when every address kept is one the parent zone may speak for, in the
// Checker's cache for ttl. path lists the zones whose name servers are being
// looked up around this call: a child among them is a delegation loop (the name
// servers of a.example are in b.example, whose name servers are in a.example).
func (s *session) delegate(ctx context.Context, parent, child string, hosts []string, glue map[string][]string, ttl time.Duration, path []string) ([]string, error) {
	if slices.Contains(path, child) {
		return nil, fmt.Errorf("%w: the name servers of %s can only be found through %s itself (%s)",
			errLoop, child, child, strings.Join(append(slices.Clone(path), child), " → "))
	}
	resolve := func() (any, error) {
		s.mu.Lock()
		known, ok := s.zones[child]
		s.mu.Unlock()
		if ok {
			return known, nil
		}
		port := strconv.Itoa(s.c.cfg.AuthoritativePort)
		var addrs []string
		// Addresses from glue for a host outside the parent zone: the parent's
		// servers cannot speak for them, so they are used for this check but
		// never cached (bailiwick, RFC 2181 §5.4.1).
		outside := make(map[string]bool)
		add := func(ip string, trusted bool) {
			a := net.JoinHostPort(ip, port)
			if !slices.Contains(addrs, a) {
				addrs = append(addrs, a)
			}
			if !trusted {
				outside[a] = true
			}
		}
		// One address of each name server first, then the second of each, so that
		// the bound on a zone's servers keeps as many name servers as it can.
		var missing []string
		for round := range maxAddrsPerNS {
			for _, h := range hosts {
				ips, ok := glue[h]
				if !ok && round == 0 {
					missing = append(missing, h)
				}
				if round < len(ips) {
					add(ips[round], dns.IsSubDomain(parent, h))
				}
			}
		}
		var errs []error
		// Name servers without glue live in other zones: look their addresses
		// up, a few, since each lookup is a walk of its own (NXNSAttack), unless
		// an earlier check looked them up already.
		if len(addrs) == 0 && len(path) < maxNSDepth {
			inner := append(slices.Clone(path), child)
			for _, h := range missing[:min(len(missing), maxNSLookups)] {
				if ips, ok := s.c.cache.host(h); ok {
					for _, ip := range ips {
						add(ip, true)
					}
					continue
				}
				if err := spend(&s.b.nsLookups, 1, maxCheckNSLookups, "name server lookups for one check"); err != nil {
					errs = append(errs, err)
					break
				}
				ips, hostTTL, err := s.addresses(ctx, h, inner)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				s.c.cache.putHost(h, ips, hostTTL)
				ttl = min(ttl, hostTTL)
				for _, ip := range ips {
					add(ip, true)
				}
			}
		}
		if len(addrs) == 0 {
			return nil, fmt.Errorf("%w: no address for any name server of %s: %w", errNoAuthority, child, errors.Join(errs...))
		}
		// Public addresses first, so that the bound never drops a server domaind
		// may ask for one it may not; those kept that it may not ask are shown in
		// the propagation view as refused.
		slices.SortStableFunc(addrs, func(a, b string) int {
			return cmpBool(s.c.privateReason(a) != "", s.c.privateReason(b) != "")
		})
		addrs = slices.Clip(addrs[:min(len(addrs), maxZoneServers)])
		s.mu.Lock()
		s.zones[child] = addrs
		s.mu.Unlock()
		if !slices.ContainsFunc(addrs, func(a string) bool { return outside[a] }) {
			s.c.cache.putZone(child, addrs, ttl)
		}
		return addrs, nil
	}
	// Walks at the top share one lookup of a zone's servers. Nested ones (for a
	// name server without glue) do not: a nested walk waiting for a top-level one
	// that waits for it would never end.
	var v any
	var err error
	if len(path) == 0 {
		v, err, _ = s.sf.Do(child, resolve)
	} else {
		v, err = resolve()
	}
	if err != nil {
		return nil, err
	}
	return v.([]string), nil
}

// delegationTTL returns the lowest TTL of the records a referral to child gives
// for its name servers: the NS records and the glue of hosts.
func delegationTTL(msg *dns.Msg, child string, hosts []string) time.Duration {
	ttl := uint32(math.MaxUint32)
	for _, rr := range msg.Ns {
		if ns, ok := rr.(*dns.NS); ok && canonical(ns.Hdr.Name) == child {
			ttl = min(ttl, ns.Hdr.Ttl)
		}
	}
	for _, rr := range msg.Extra {
		if a, ok := rr.(*dns.A); ok && slices.Contains(hosts, canonical(a.Hdr.Name)) {
			ttl = min(ttl, a.Hdr.Ttl)
		}
	}
	return time.Duration(ttl) * time.Second
}

// forgetCached drops zone from the Checker's cache when it came from there and
// none of its servers gave a usable answer: the delegation may have changed,
// and the next check learns it afresh from the parent.
func (s *session) forgetCached(zone string, err error) {
	s.mu.Lock()
	cached := s.cached[zone]
	s.mu.Unlock()
	// Only when the servers failed: a bound of domaind's own (a busy server, the
	// check's budget, an address it may not ask) says nothing of the delegation.
	if cached && errors.Is(err, errNoAuthority) && !errors.Is(err, errBusy) && !errors.Is(err, errBudget) && !errors.Is(err, errPrivate) {
		s.c.cache.forgetZone(zone)
	}
}

// lameError reports whether err says the server failed for the zone (silent,
// failing, or not authoritative), as opposed to a bound of domaind's own.
func lameError(err error) bool {
	return (errors.Is(err, ErrTimeout) || errors.Is(err, ErrServFail)) &&
		!errors.Is(err, errBudget) && !errors.Is(err, errBusy) && !errors.Is(err, errPrivate) && !errors.Is(err, context.Canceled)
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// addresses looks up the IPv4 addresses of a name server host by a walk, and
// returns them with the lowest TTL of their records.
func (s *session) addresses(ctx context.Context, host string, path []string) ([]string, time.Duration, error) {
	_, _, first, err := s.zoneOf(ctx, host, dns.TypeA, path)
	if err != nil {
		return nil, 0, err
	}
	rrs, _, err := chase(first.msg, host, dns.TypeA)
	if err != nil {
		return nil, 0, fmt.Errorf("name server %s: %w", host, err)
	}
	var ips []string
	ttl := uint32(math.MaxUint32)
	for _, rr := range rrs {
		ttl = min(ttl, rr.Header().Ttl)
		if ip := rr.(*dns.A).A.String(); len(ips) < maxAddrsPerNS && !slices.Contains(ips, ip) {
			ips = append(ips, ip)
		}
	}
	if len(ips) == 0 {
		return nil, 0, fmt.Errorf("%w: name server %s has no address", errNoAuthority, host)
	}
	return ips, time.Duration(ttl) * time.Second, nil
}

// allTimeouts reports whether every error is a timeout: silence, as a network that
// drops outbound DNS gives, rather than an answer of any kind.
func allTimeouts(errs []error) bool {
	for _, err := range errs {
		if !errors.Is(err, ErrTimeout) || errors.Is(err, ErrServFail) {
			return false
		}
	}
	return len(errs) > 0
}
