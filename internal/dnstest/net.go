package dnstest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"

	"github.com/miekg/dns"
)

// rootNS is the name of the root zone's name server in a [Net].
const rootNS = "a.root-servers.net."

// Net is a small DNS tree on loopback for tests of delegation walks: a root
// server on 127.0.0.1 holding the zone ".", and authoritative servers on
// 127.0.0.2, 127.0.0.3, and so on, all listening on one shared port, as real
// name servers all listen on port 53.
//
// Zones are added with [Net.AddZone], which also writes the delegation (NS
// records and A glue) into the closest enclosing zone of the Net, be it the
// root, a top-level domain or a parent such as "example.com." for
// "_domainkey.example.com.". Delegations are ordinary records, so tests may
// edit them afterwards (through [Net.Zone]) to make them lame or wrong.
// All methods are safe for concurrent use.
type Net struct {
	root *Server
	port int

	mu      sync.Mutex
	servers []*Server
	nextIP  int                 // last octet of the next 127.0.0.x to try
	zones   map[string]*netZone // by canonical origin, "." included
}

// netZone is a zone of a Net and the servers that serve it.
type netZone struct {
	zone    *Zone
	servers []*Server
}

// StartNet starts a [Net] with the given number of authoritative servers,
// stops it when the test ends, and fails the test if it cannot start.
func StartNet(t TB, servers int) *Net {
	t.Helper()
	n, err := NewNet(t.Context(), servers)
	return started(t, n, err)
}

// NewNet starts a root server on 127.0.0.1 and the given number of
// authoritative servers on 127.0.0.2 onwards, all on one port free on every
// one of those addresses: if any address has the port taken, it closes
// everything and tries another port, a bounded number of times. ctx bounds
// only the start; the caller must call [Net.Close].
func NewNet(ctx context.Context, servers int) (*Net, error) {
	if servers < 0 || servers > 253 {
		return nil, fmt.Errorf("dnstest: %d servers do not fit in 127.0.0.2-254", servers)
	}
	var lastErr error
	for range 10 {
		n, err := tryNet(ctx, servers)
		if err == nil {
			return n, nil
		}
		lastErr = err
		if !errors.Is(err, syscall.EADDRINUSE) {
			break
		}
	}
	return nil, lastErr
}

// tryNet makes one attempt of NewNet on a port the kernel picks for the root.
func tryNet(ctx context.Context, servers int) (*Net, error) {
	root, err := NewServer(ctx, "127.0.0.1", 0)
	if err != nil {
		return nil, err
	}
	n := &Net{root: root, port: root.Port(), nextIP: 2, zones: make(map[string]*netZone)}
	rz := NewZone(".")
	if err := rz.AddRR(newNS(".", rootNS), newA(rootNS, root.IP())); err != nil {
		root.Close()
		return nil, err
	}
	root.AddZone(rz)
	n.zones["."] = &netZone{zone: rz, servers: []*Server{root}}
	for i := range servers {
		s, err := NewServer(ctx, fmt.Sprintf("127.0.0.%d", i+2), n.port)
		if err != nil {
			n.Close()
			return nil, err
		}
		n.servers = append(n.servers, s)
	}
	n.nextIP = servers + 2
	return n, nil
}

// Root returns the root server.
func (n *Net) Root() *Server { return n.root }

// RootIPs returns the IP addresses to start a delegation walk from.
func (n *Net) RootIPs() []string { return []string{n.root.IP()} }

// Port returns the port every server of the Net listens on.
func (n *Net) Port() int { return n.port }

// Servers returns the authoritative servers (not the root), in order of
// their addresses.
func (n *Net) Servers() []*Server {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]*Server(nil), n.servers...)
}

// AddServer starts another authoritative server on the next free 127.0.0.x
// address and the Net's port. Addresses where the port is taken by someone
// else are skipped, a bounded number of times.
func (n *Net) AddServer(ctx context.Context) (*Server, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var lastErr error
	for tries := 0; tries < 16 && n.nextIP <= 254; tries++ {
		ip := fmt.Sprintf("127.0.0.%d", n.nextIP)
		n.nextIP++
		s, err := NewServer(ctx, ip, n.port)
		if err == nil {
			n.servers = append(n.servers, s)
			return s, nil
		}
		lastErr = err
		if !errors.Is(err, syscall.EADDRINUSE) {
			break
		}
	}
	if lastErr == nil {
		lastErr = errors.New("dnstest: no loopback address left")
	}
	return nil, lastErr
}

// AddZone creates a zone for origin served by servers (which should belong
// to this Net, so that they listen on its port) and delegates it from the
// closest enclosing zone of the Net. The zone gets apex NS records ns1, ns2,
// ... under origin, one per server, with their A records; the parent gets the
// same NS RRset and A glue. Zones already added below origin are delegated
// from the new zone too, so zones may be added in any order.
func (n *Net) AddZone(origin string, servers ...*Server) (*Zone, error) {
	origin = dns.CanonicalName(origin)
	if len(servers) == 0 {
		return nil, fmt.Errorf("dnstest: zone %s needs at least one server", origin)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.zones[origin]; ok {
		return nil, fmt.Errorf("dnstest: zone %s already exists", origin)
	}
	child := &netZone{zone: NewZone(origin), servers: servers}
	if err := child.zone.AddRR(child.delegation(origin)...); err != nil {
		return nil, err
	}
	for _, s := range servers {
		s.AddZone(child.zone)
	}
	n.zones[origin] = child
	if err := n.zones[n.parentOf(origin)].zone.ReplaceRR(child.delegation(origin)...); err != nil {
		return nil, err
	}
	for o, z := range n.zones {
		if o != origin && n.parentOf(o) == origin {
			if err := child.zone.ReplaceRR(z.delegation(o)...); err != nil {
				return nil, err
			}
		}
	}
	return child.zone, nil
}

// Zone returns the zone for origin ("." for the root zone), or nil.
func (n *Net) Zone(origin string) *Zone {
	n.mu.Lock()
	defer n.mu.Unlock()
	if z, ok := n.zones[dns.CanonicalName(origin)]; ok {
		return z.zone
	}
	return nil
}

// Close stops every server of the Net, the root included.
func (n *Net) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	errs := []error{n.root.Close()}
	for _, s := range n.servers {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}

// parentOf returns the origin of the closest zone of the Net strictly above
// the canonical origin; the root zone always exists, and has no parent ("").
func (n *Net) parentOf(origin string) string {
	if origin == "." {
		return ""
	}
	for _, off := range dns.Split(origin)[1:] {
		if _, ok := n.zones[origin[off:]]; ok {
			return origin[off:]
		}
	}
	return "."
}

// delegation returns the NS records for origin naming nsK.origin, one per
// server, and the A records of those names.
func (z *netZone) delegation(origin string) []dns.RR {
	var rrs []dns.RR
	for i, s := range z.servers {
		host := joinName(fmt.Sprintf("ns%d", i+1), origin)
		rrs = append(rrs, newNS(origin, host), newA(host, s.IP()))
	}
	return rrs
}

func newNS(name, host string) *dns.NS {
	return &dns.NS{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: DefaultTTL}, Ns: host}
}

func newA(name, ip string) *dns.A {
	return &dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: DefaultTTL}, A: net.ParseIP(ip)}
}
