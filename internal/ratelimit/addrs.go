package ratelimit

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// DefaultMaxAddrs is how many client addresses Addrs tracks at most when
// NewAddrs is given no bound. Each costs a few hundred bytes, so the table stays
// within a few megabytes whatever a flood of source addresses does.
const DefaultMaxAddrs = 16384

// Addrs is the allowance of each client address for requests that carry no
// valid credential: no API key or a wrong one, no session or an ended one, and
// every sign-in attempt. IPv4 addresses are counted one by one and IPv6 ones by
// their /64, the block a single subscriber usually holds.
//
// A request that proves a key is never charged here: a good key spends its own
// budget (Keys), so many customers behind one NAT do not starve each other.
type Addrs struct {
	t *table[netip.Prefix]
	// trusted are the reverse proxies whose X-Forwarded-For is believed.
	trusted []netip.Prefix
}

// NewAddrs returns the per-address limiter for l, tracking at most maxTracked
// addresses (0: DefaultMaxAddrs). Requests from an address in trustedProxies
// are counted against the client their X-Forwarded-For names; from any other
// address, that header is ignored, since anyone can send it. It panics on a
// limit ParseLimit would refuse.
func NewAddrs(l Limit, maxTracked int, trustedProxies []netip.Prefix) *Addrs {
	if maxTracked <= 0 {
		maxTracked = DefaultMaxAddrs
	}
	return &Addrs{t: newTable[netip.Prefix](l, maxTracked), trusted: trustedProxies}
}

// Limit returns the allowance of each address.
func (a *Addrs) Limit() Limit { return a.t.limit }

// Allow spends one request of r's client address, if it has one left.
func (a *Addrs) Allow(r *http.Request, now time.Time) Verdict {
	return a.t.allow(a.clientKey(r), now)
}

// Check reports whether r's client address has a request left, without
// spending it: a request that may yet prove a key asks first, so that a spent
// address cannot make the server look keys up, and spends only if the key
// turns out wrong.
func (a *Addrs) Check(r *http.Request, now time.Time) Verdict {
	return a.t.peek(a.clientKey(r), now)
}

// Tracked returns how many addresses have a bucket now.
func (a *Addrs) Tracked() int { return a.t.len() }

// clientKey returns the bucket key of r's client: its address as a /32 or, for
// IPv6, its /64. A RemoteAddr that does not parse (no real listener gives one)
// shares a single bucket rather than escaping the limit.
func (a *Addrs) clientKey(r *http.Request) netip.Prefix {
	addr := a.ClientAddr(r).WithZone("")
	bits := 32
	if addr.Is6() {
		bits = 64
	}
	p, err := addr.Prefix(bits)
	if err != nil {
		return netip.Prefix{}
	}
	return p
}

// ClientAddr returns the address a request is counted against: the peer's
// address, or, when the peer is a trusted proxy, the nearest address in
// X-Forwarded-For that is not itself a trusted proxy. It is read right to left
// because each proxy appends the address it saw; everything to the left of the
// first untrusted hop was written by the client and proves nothing.
func (a *Addrs) ClientAddr(r *http.Request) netip.Addr {
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	addr := peer.Addr().Unmap()
	if !a.isTrusted(addr) {
		return addr
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			// A hop the proxy did not write cleanly: stop trusting the header
			// and count the last proxy seen, which at least is not forged.
			return addr
		}
		hop = hop.Unmap().WithZone("")
		if !a.isTrusted(hop) {
			return hop
		}
		addr = hop
	}
	return addr
}

func (a *Addrs) isTrusted(addr netip.Addr) bool {
	for _, p := range a.trusted {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// ParseProxies parses a comma-separated list of addresses and CIDR blocks, such
// as "10.0.0.0/8, ::1", naming the reverse proxies whose X-Forwarded-For is
// believed. An empty list trusts no one.
func ParseProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if addr, err := netip.ParseAddr(f); err == nil && addr.Zone() == "" {
			addr = addr.Unmap()
			out = append(out, netip.PrefixFrom(addr, addr.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not an IP address or a CIDR block such as 10.0.0.0/8", f)
		}
		if p.Addr().Is4In6() {
			return nil, fmt.Errorf("%q: write an IPv4-mapped block as plain IPv4", f)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
