package dnscheck

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"

	"github.com/miekg/dns"
	"golang.org/x/sync/singleflight"

	"github.com/domaind/domaind/internal/domain"
)

// Bounds that keep a walk finite whatever hostile or broken zones say.
const (
	maxReferrals = 16 // delegations followed for one name
	maxCNAMEs    = 8  // CNAMEs followed for one record
	maxNSDepth   = 3  // nested walks to find the address of a name server without glue
	maxNSHosts   = 6  // name servers of one zone whose addresses are looked up
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
	sf    singleflight.Group
	mu    sync.Mutex
	zones map[string][]string // zone (canonical, fully qualified) → server addresses
}

func newSession(c *Checker) *session {
	return &session{c: c, zones: make(map[string][]string)}
}

// chase reduces an answer section to the records of qtype at the end of the CNAME
// chain starting at name, and the chain itself.
func chase(msg *dns.Msg, name string, qtype uint16) (rrs []dns.RR, cnames []string) {
	cur := dns.CanonicalName(name)
	seen := map[string]bool{cur: true}
	for {
		next := ""
		for _, rr := range msg.Answer {
			if c, ok := rr.(*dns.CNAME); ok && qtype != dns.TypeCNAME && dns.CanonicalName(c.Hdr.Name) == cur {
				next = dns.CanonicalName(c.Target)
				break
			}
		}
		if next == "" || seen[next] || len(cnames) >= maxCNAMEs {
			break
		}
		seen[next] = true
		cnames = append(cnames, next)
		cur = next
	}
	for _, rr := range msg.Answer {
		if rr.Header().Rrtype == qtype && dns.CanonicalName(rr.Header().Name) == cur {
			rrs = append(rrs, rr)
		}
	}
	return rrs, cnames
}

// askResolvers asks every configured resolver at once; each answer is returned in
// the configured order.
func (s *session) askResolvers(ctx context.Context, name string, qtype uint16) []response {
	out := make([]response, len(s.c.cfg.Resolvers))
	var wg sync.WaitGroup
	for i, server := range s.c.cfg.Resolvers {
		wg.Go(func() {
			r := response{server: server, role: domain.RoleResolver}
			msg, err := s.c.client.Exchange(ctx, server, name, qtype, true)
			if err != nil {
				r.err = err
			} else {
				r.rcode = msg.Rcode
				r.rrs, r.cnames = chase(msg, name, qtype)
			}
			out[i] = r
		})
	}
	wg.Wait()
	return out
}

// askAuthoritative finds the zone that holds name and asks every one of its
// authoritative servers, following a CNAME chain into other zones when the
// servers' answers end in a CNAME they are not authoritative for.
func (s *session) askAuthoritative(ctx context.Context, name string, qtype uint16) ([]response, error) {
	cur := dns.CanonicalName(name)
	var chain []string
	for hop := 0; ; hop++ {
		zone, servers, walked, err := s.zoneOf(ctx, cur, qtype, 0)
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
		if len(first.rrs) == 0 && len(first.cnames) > 0 && hop < maxCNAMEs {
			chain = append(chain, first.cnames...)
			cur = first.cnames[len(first.cnames)-1]
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
	var wg sync.WaitGroup
	for i, server := range servers {
		wg.Go(func() {
			r := response{server: server, role: domain.RoleAuthoritative, zone: strings.TrimSuffix(zone, ".")}
			msg, err := known.msg, error(nil)
			if server != known.server {
				msg, err = s.c.exchangeAuth(ctx, server, name, qtype)
			}
			switch {
			case err != nil:
				r.err = err
			case !msg.Authoritative && msg.Rcode == dns.RcodeSuccess && len(msg.Answer) == 0:
				// A referral or an empty non-authoritative answer from a server of
				// the zone: it is lame for this name.
				r.err = fmt.Errorf("%w: %s is not authoritative for %s", ErrServFail, server, name)
			default:
				r.rcode = msg.Rcode
				r.rrs, r.cnames = chase(msg, name, qtype)
			}
			out[i] = r
		})
	}
	wg.Wait()
	return out
}

// closest returns the deepest zone already known that holds name, or the root.
func (s *session) closest(name string) (string, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for z := name; ; {
		if servers, ok := s.zones[z]; ok {
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
// the answer the walk's last step already got from one of them.
func (s *session) zoneOf(ctx context.Context, name string, qtype uint16, depth int) (string, []string, answered, error) {
	zone, servers := s.closest(name)
	for range maxReferrals {
		msg, server, err := s.askFirst(ctx, zone, servers, name, qtype)
		if err != nil {
			return "", nil, answered{}, err
		}
		child, hosts, glue := referral(msg, zone, name)
		if child == "" {
			return zone, servers, answered{server: server, msg: msg}, nil
		}
		addrs, err := s.delegate(ctx, child, hosts, glue, depth)
		if err != nil {
			return "", nil, answered{}, err
		}
		zone, servers = child, addrs
	}
	return "", nil, answered{}, fmt.Errorf("%w: more than %d delegations for %s", ErrServFail, maxReferrals, name)
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
	var errs []error
	for start := 0; start < len(servers); start += batch {
		group := servers[start:min(start+batch, len(servers))]
		type result struct {
			msg    *dns.Msg
			server string
			err    error
		}
		results := make(chan result, len(group))
		gctx, cancel := context.WithCancel(ctx)
		for _, server := range group {
			go func() {
				msg, err := s.c.exchangeAuth(gctx, server, name, qtype)
				if err == nil && !usable(msg, zone, name) {
					err = fmt.Errorf("%w: %s gave no usable answer for %s in %s", ErrServFail, server, name, zone)
				}
				results <- result{msg, server, err}
			}()
		}
		for range group {
			r := <-results
			if r.err == nil {
				cancel()
				return r.msg, r.server, nil
			}
			errs = append(errs, r.err)
		}
		cancel()
		if ctx.Err() != nil {
			break
		}
	}
	if zone == "." && allTimeouts(errs) {
		return nil, "", fmt.Errorf("%w for %s: %w", errRootUnreachable, name, errors.Join(errs...))
	}
	return nil, "", fmt.Errorf("%w for %s in zone %s: %w", errNoAuthority, name, zone, errors.Join(errs...))
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

// referral returns the child zone, its name server host names and any glue
// addresses when msg delegates name from zone to a zone below it.
func referral(msg *dns.Msg, zone, name string) (child string, hosts []string, glue map[string][]string) {
	if msg.Authoritative || msg.Rcode != dns.RcodeSuccess || len(msg.Answer) > 0 {
		return "", nil, nil
	}
	for _, rr := range msg.Ns {
		ns, ok := rr.(*dns.NS)
		if !ok {
			continue
		}
		owner := dns.CanonicalName(ns.Hdr.Name)
		// Only a zone strictly below the current one and above or at the name: a
		// referral upwards or sideways would loop.
		if owner == zone || !dns.IsSubDomain(zone, owner) || !dns.IsSubDomain(owner, name) {
			continue
		}
		if child == "" {
			child = owner
		}
		if owner == child {
			hosts = append(hosts, dns.CanonicalName(ns.Ns))
		}
	}
	glue = make(map[string][]string)
	for _, rr := range msg.Extra {
		if a, ok := rr.(*dns.A); ok {
			host := dns.CanonicalName(a.Hdr.Name)
			glue[host] = append(glue[host], a.A.String())
		}
	}
	return child, hosts, glue
}

// delegate resolves the addresses of a child zone's name servers, from glue where
// given and by walks of their own otherwise, and remembers them for this check.
func (s *session) delegate(ctx context.Context, child string, hosts []string, glue map[string][]string, depth int) ([]string, error) {
	v, err, _ := s.sf.Do(child, func() (any, error) {
		s.mu.Lock()
		known, ok := s.zones[child]
		s.mu.Unlock()
		if ok {
			return known, nil
		}
		port := strconv.Itoa(s.c.cfg.AuthoritativePort)
		var addrs []string
		var missing []string
		for _, h := range hosts {
			if ips, ok := glue[h]; ok {
				for _, ip := range ips {
					addrs = append(addrs, net.JoinHostPort(ip, port))
				}
			} else {
				missing = append(missing, h)
			}
		}
		var errs []error
		// Name servers without glue live in other zones: look their addresses
		// up, bounded, since each lookup is a walk of its own.
		if len(addrs) == 0 && depth < maxNSDepth {
			for _, h := range missing[:min(len(missing), maxNSHosts)] {
				ips, err := s.addresses(ctx, h, depth+1)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				for _, ip := range ips {
					addrs = append(addrs, net.JoinHostPort(ip, port))
				}
			}
		}
		if len(addrs) == 0 {
			return nil, fmt.Errorf("%w: no address for any name server of %s: %w", errNoAuthority, child, errors.Join(errs...))
		}
		s.mu.Lock()
		s.zones[child] = addrs
		s.mu.Unlock()
		return addrs, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]string), nil
}

// addresses looks up the IPv4 addresses of a name server host by a walk.
func (s *session) addresses(ctx context.Context, host string, depth int) ([]string, error) {
	_, _, first, err := s.zoneOf(ctx, host, dns.TypeA, depth)
	if err != nil {
		return nil, err
	}
	rrs, _ := chase(first.msg, host, dns.TypeA)
	var ips []string
	for _, rr := range rrs {
		ips = append(ips, rr.(*dns.A).A.String())
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("%w: name server %s has no address", errNoAuthority, host)
	}
	return ips, nil
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
