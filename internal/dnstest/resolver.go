package dnstest

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// upstreamTimeout bounds each query a [CachingResolver] sends upstream.
const upstreamTimeout = 2 * time.Second

// cacheKey identifies one cached answer, as resolvers key their caches.
type cacheKey struct {
	name   string // canonical
	qtype  uint16
	qclass uint16
}

// cacheEntry is one cached response and when it stops being served.
type cacheEntry struct {
	msg    *dns.Msg // the upstream response, with its original TTLs
	stored time.Time
	ttl    uint32
}

// CachingResolver is an in-process stand-in for a recursive resolver: it
// listens on UDP and TCP on 127.0.0.1, forwards each query it cannot answer
// from its cache to one upstream server, and caches what it gets back, as
// the resolvers a checker usually asks do. Positive answers are cached for
// the smallest TTL in the answer section and negative ones (NXDOMAIN and
// NODATA) for the smaller of the SOA record's TTL and its minimum field, as
// RFC 2308 says; negative answers without an SOA, and any other response
// code, are not cached. Answers carry the RA bit and not the AA bit.
//
// Its purpose is to reproduce the trap a resolver sets for a DNS checker:
// once a resolver has said a name does not exist, it keeps saying so after
// the record is published, until the negative answer expires.
// All methods are safe for concurrent use.
type CachingResolver struct {
	endpoint
	upstream string

	mu      sync.Mutex
	now     func() time.Time // replaced by tests of expiry
	timeout time.Duration    // per upstream query; shortened by tests
	cache   map[cacheKey]cacheEntry
}

// StartCachingResolver starts a [CachingResolver] in front of upstream
// (host:port), stops it when the test ends, and fails the test if it cannot
// start.
func StartCachingResolver(t TB, upstream string) *CachingResolver {
	t.Helper()
	r, err := NewCachingResolver(t.Context(), upstream)
	return started(t, r, err)
}

// NewCachingResolver starts a [CachingResolver] on 127.0.0.1 on a port free
// for both UDP and TCP, forwarding to upstream, given as host:port. The
// upstream must be on a loopback address, so that tests never send queries
// off the machine. ctx bounds only the start; the caller must call
// [CachingResolver.Close].
func NewCachingResolver(ctx context.Context, upstream string) (*CachingResolver, error) {
	host, _, err := net.SplitHostPort(upstream)
	if err != nil {
		return nil, fmt.Errorf("dnstest: upstream %q: %w", upstream, err)
	}
	if addr, err := netip.ParseAddr(host); err != nil || !addr.IsLoopback() {
		return nil, fmt.Errorf("dnstest: upstream %q is not on a loopback address", upstream)
	}
	r := &CachingResolver{
		upstream: upstream,
		now:      time.Now,
		timeout:  upstreamTimeout,
		cache:    make(map[cacheKey]cacheEntry),
	}
	if err := r.start(ctx, "127.0.0.1", 0, r); err != nil {
		return nil, err
	}
	return r, nil
}

// Upstream returns the address of the server the resolver forwards to.
func (r *CachingResolver) Upstream() string { return r.upstream }

// Flush empties the cache, as an operator flushes a real resolver's cache,
// so that the next query for every name goes upstream again.
func (r *CachingResolver) Flush() {
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.cache)
}

// Len returns how many answers the cache holds, expired ones included until
// a query for them replaces or drops them.
func (r *CachingResolver) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.cache)
}

// Close stops the resolver, waiting briefly for queries in progress. Calling
// it again does nothing.
func (r *CachingResolver) Close() error { return r.close(nil) }

// setTimeout changes how long each upstream query may take.
func (r *CachingResolver) setTimeout(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.timeout = d
}

// setClock replaces the clock the cache ages entries by.
func (r *CachingResolver) setClock(now func() time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.now = now
}

// ServeDNS answers one query from the cache or from upstream. It implements
// dns.Handler.
func (r *CachingResolver) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	resp := r.resolve(req)
	resp.Compress = true
	limit := dns.MinMsgSize
	if opt := req.IsEdns0(); opt != nil {
		limit = max(limit, int(opt.UDPSize()))
		resp.SetEdns0(ednsSize, false)
	}
	if _, ok := w.RemoteAddr().(*net.UDPAddr); ok {
		// Truncate sets TC when the answer does not fit the client's buffer,
		// so the client retries over TCP as it would with a real resolver.
		resp.Truncate(limit)
	}
	w.WriteMsg(resp)
}

// resolve returns the response to req, without an OPT record.
func (r *CachingResolver) resolve(req *dns.Msg) *dns.Msg {
	resp, ok := newReply(req)
	resp.RecursionAvailable = true
	if !ok {
		return resp
	}
	q := req.Question[0]
	key := cacheKey{name: dns.CanonicalName(q.Name), qtype: q.Qtype, qclass: q.Qclass}

	if cached, ok := r.lookup(key); ok {
		return reply(req, cached)
	}
	up, err := r.forward(q)
	if err != nil {
		resp.Rcode = dns.RcodeServerFailure
		return resp
	}
	r.store(key, up)
	return reply(req, up)
}

// reply makes up, an upstream or cached response, the answer to req.
func reply(req, up *dns.Msg) *dns.Msg {
	resp := new(dns.Msg)
	resp.SetReply(req)
	resp.RecursionAvailable = true
	resp.Rcode = up.Rcode
	resp.Answer = up.Answer
	resp.Ns = up.Ns
	for _, rr := range up.Extra {
		if rr.Header().Rrtype != dns.TypeOPT {
			resp.Extra = append(resp.Extra, rr)
		}
	}
	return resp
}

// lookup returns a copy of the cached response for key with its TTLs aged,
// or false when there is none or it has expired.
func (r *CachingResolver) lookup(key cacheKey) (*dns.Msg, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.cache[key]
	if !ok {
		return nil, false
	}
	age := r.now().Sub(e.stored)
	if age < 0 {
		age = 0
	}
	if age >= time.Duration(e.ttl)*time.Second {
		delete(r.cache, key)
		return nil, false
	}
	elapsed := uint32(age / time.Second)
	m := e.msg.Copy()
	for _, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range sec {
			h := rr.Header()
			if h.Rrtype == dns.TypeOPT {
				continue
			}
			if h.Ttl > elapsed {
				h.Ttl -= elapsed
			} else {
				h.Ttl = 0
			}
		}
	}
	return m, true
}

// store caches up under key for as long as RFC 2308 and the answer's TTLs
// allow; responses that must not be cached are left out.
func (r *CachingResolver) store(key cacheKey, up *dns.Msg) {
	ttl, ok := cacheTTL(up)
	if !ok || ttl == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cache[key] = cacheEntry{msg: up.Copy(), stored: r.now(), ttl: ttl}
}

// cacheTTL returns how long up may be cached: the smallest TTL of its answer
// for a positive response, and for a negative one (NXDOMAIN, or NOERROR with
// an empty answer) the smaller of the SOA's TTL and minimum field. It
// reports false for responses that are not cached at all.
func cacheTTL(up *dns.Msg) (uint32, bool) {
	if up.Truncated {
		return 0, false
	}
	switch {
	case up.Rcode == dns.RcodeSuccess && len(up.Answer) > 0:
		ttl := up.Answer[0].Header().Ttl
		for _, rr := range up.Answer[1:] {
			ttl = min(ttl, rr.Header().Ttl)
		}
		return ttl, true
	case up.Rcode == dns.RcodeSuccess || up.Rcode == dns.RcodeNameError:
		// RFC 2308 section 5: a negative answer without an SOA is not cached.
		for _, rr := range up.Ns {
			if soa, ok := rr.(*dns.SOA); ok {
				return min(soa.Hdr.Ttl, soa.Minttl), true
			}
		}
	}
	return 0, false
}

// forward asks the upstream server q with RD clear, over UDP first and over
// TCP when the UDP answer is truncated, as a resolver asks an authoritative
// server.
func (r *CachingResolver) forward(q dns.Question) (*dns.Msg, error) {
	r.mu.Lock()
	timeout := r.timeout
	r.mu.Unlock()
	m := new(dns.Msg)
	m.SetQuestion(q.Name, q.Qtype)
	m.Question[0].Qclass = q.Qclass
	m.RecursionDesired = false
	m.SetEdns0(ednsSize, false)
	c := &dns.Client{Net: "udp", Timeout: timeout}
	resp, _, err := c.Exchange(m, r.upstream)
	if err == nil && resp.Truncated {
		c.Net = "tcp"
		resp, _, err = c.Exchange(m, r.upstream)
	}
	if err != nil {
		return nil, fmt.Errorf("dnstest: forward %s to %s: %w", q.Name, r.upstream, err)
	}
	return resp, nil
}
