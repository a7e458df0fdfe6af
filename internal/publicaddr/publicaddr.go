// Package publicaddr tells whether an IP address belongs to the public internet.
// domaind connects to addresses its tenants choose (webhook hosts, and name
// servers learned from DNS answers); those must never reach the network domaind
// runs in, so every such connection asks this one rule.
package publicaddr

import "net/netip"

// Ranges that are not public beyond those netip classifies itself (RFC 6890's
// special-purpose registries).
var (
	thisNetwork = netip.MustParsePrefix("0.0.0.0/8")     // "this host on this network"; 0.0.0.0 reaches the local host
	sharedSpace = netip.MustParsePrefix("100.64.0.0/10") // carrier-grade NAT (RFC 6598)
	ietf        = netip.MustParsePrefix("192.0.0.0/24")  // IETF protocol assignments (RFC 6890)
	benchmark   = netip.MustParsePrefix("198.18.0.0/15") // benchmarking (RFC 2544)
	reserved4   = netip.MustParsePrefix("240.0.0.0/4")   // reserved, and the broadcast address
	doc4        = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("203.0.113.0/24")}
	nat64       = netip.MustParsePrefix("64:ff9b::/96")   // NAT64 (RFC 6052): the last 32 bits are an IPv4 address
	nat64Local  = netip.MustParsePrefix("64:ff9b:1::/48") // local-use NAT64 (RFC 8215)
	compat4     = netip.MustParsePrefix("::/96")          // IPv4-compatible (RFC 4291 section 2.5.5.1, deprecated): ::a.b.c.d
	sixToFour   = netip.MustParsePrefix("2002::/16")      // 6to4 (RFC 3056): bits 16-47 are an IPv4 address
	teredo      = netip.MustParsePrefix("2001::/32")      // Teredo (RFC 4380): the client's IPv4 address, inverted, in the last 32 bits
	discard6    = netip.MustParsePrefix("100::/64")       // discard-only (RFC 6666)
	doc6        = netip.MustParsePrefix("2001:db8::/32")  // documentation (RFC 3849)
	siteLocal   = netip.MustParsePrefix("fec0::/10")      // site-local (RFC 3879, deprecated but still routed inside some networks)
	orchid      = netip.MustParsePrefix("2001:10::/28")   // ORCHID (RFC 4843), not routable
	benchmark6  = netip.MustParsePrefix("2001:2::/48")    // benchmarking (RFC 5180)
)

// Reason returns what kind of address a is when it is not a public internet
// address ("a loopback address"), or "" when it is. IPv4 addresses carried inside
// IPv6 (IPv4-mapped, IPv4-compatible, NAT64, 6to4 and Teredo) are judged by the
// IPv4 address they lead to, since a host or gateway that honours those forms
// delivers to it.
func Reason(a netip.Addr) string {
	a = a.WithZone("").Unmap()
	if !a.IsValid() {
		return "not a valid address"
	}
	if a.Is6() {
		b := a.As16()
		switch {
		case a.IsUnspecified(), a.IsLoopback():
			// ::, ::1 are inside compat4; judge them as themselves.
		case compat4.Contains(a), nat64.Contains(a), nat64Local.Contains(a):
			a = netip.AddrFrom4([4]byte(b[12:]))
		case sixToFour.Contains(a):
			a = netip.AddrFrom4([4]byte(b[2:6]))
		case teredo.Contains(a):
			a = netip.AddrFrom4([4]byte{^b[12], ^b[13], ^b[14], ^b[15]})
		}
	}
	switch {
	case a.IsLoopback():
		return "a loopback address"
	case a.IsUnspecified(), thisNetwork.Contains(a):
		return "an unspecified address"
	case a.IsPrivate(), siteLocal.Contains(a):
		return "a private address"
	case a.IsLinkLocalUnicast():
		return "a link-local address"
	case a.IsMulticast():
		return "a multicast address"
	case sharedSpace.Contains(a):
		return "a carrier-grade NAT address"
	case reserved4.Contains(a), ietf.Contains(a), benchmark.Contains(a), discard6.Contains(a),
		orchid.Contains(a), benchmark6.Contains(a):
		return "a reserved address"
	case doc6.Contains(a), doc4[0].Contains(a), doc4[1].Contains(a), doc4[2].Contains(a):
		return "a documentation address"
	}
	return ""
}

// Public reports whether a is a public internet address.
func Public(a netip.Addr) bool { return Reason(a) == "" }
