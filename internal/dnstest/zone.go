// Package dnstest runs real DNS servers on loopback for tests.
//
// A [Server] listens on UDP and TCP on one loopback address and port and
// answers authoritatively from the [Zone] values it holds. Tests edit zones
// while the server runs; the next query sees the edit. Faults (SERVFAIL,
// dropped queries, forced truncation) can be switched on and off at run time,
// and every query is logged so tests can assert how a client behaved.
//
// A [Net] builds a small DNS tree for delegation walks: a root server holding
// "." and authoritative servers on 127.0.0.2, 127.0.0.3, ..., all on one
// shared port, with delegations and glue kept in the parents automatically.
//
// Only Linux routes all of 127.0.0.0/8 to the loopback interface without
// configuration; [Net] needs that, a plain [Server] on 127.0.0.1 does not.
//
// Programs use this package too (cmd/devdns, cmd/domaind-bench), so it does
// not import testing: [Start] and the other Start functions take a [TB]. The
// harnesses for real DNS software, Knot DNS and Unbound, are in package
// realdns, and what tests need from the machine in package testenv.
package dnstest

import (
	"fmt"
	"strings"
	"sync"

	"github.com/miekg/dns"
)

// DefaultTTL is the TTL given to records whose zone-file text names none,
// and to the records this package creates itself.
const DefaultTTL = 300

// Zone is the authoritative data for one origin, such as "example.com.".
// A Zone is safe for concurrent use: tests may edit it while servers answer
// from it. The same Zone may be served by several servers.
//
// Names given to Zone methods may be absolute ("www.example.com."), relative
// to the origin ("www"), or "@" for the origin itself, as in a zone file.
// Wildcards are not supported: "*" is an ordinary label here.
type Zone struct {
	origin string // canonical: lower case, fully qualified

	mu  sync.RWMutex
	rrs map[string][]dns.RR // canonical owner name -> records, in insertion order
}

// NewZone returns a zone for origin holding only a default SOA record at the
// apex, so that negative answers carry an SOA in the authority section.
// Apex NS records are not added; add them with [Zone.Add] when a test needs
// them ([Net.AddZone] does so itself).
func NewZone(origin string) *Zone {
	z := &Zone{origin: dns.CanonicalName(origin), rrs: make(map[string][]dns.RR)}
	soa := &dns.SOA{
		Hdr:     dns.RR_Header{Name: z.origin, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: DefaultTTL},
		Ns:      joinName("ns1", z.origin),
		Mbox:    joinName("hostmaster", z.origin),
		Serial:  1,
		Refresh: 3600,
		Retry:   600,
		Expire:  86400,
		Minttl:  60,
	}
	z.rrs[z.origin] = []dns.RR{soa}
	return z
}

// Origin returns the zone's origin in canonical form (lower case, with the
// trailing dot).
func (z *Zone) Origin() string { return z.origin }

// Add parses text as zone-file lines and adds the records to the zone.
// Each line is trimmed first, so every line must name its owner (which makes
// indented Go raw strings work); a missing TTL means [DefaultTTL] and a
// missing class means IN. Adding a record that is already present changes
// nothing, since an RRset is a set; adding an SOA replaces the old one.
// Records outside the zone are an error, and then nothing is added.
func (z *Zone) Add(text string) error {
	rrs, err := z.parse(text)
	if err != nil {
		return err
	}
	return z.AddRR(rrs...)
}

// MustAdd is like [Zone.Add] but panics on error. It is meant for the
// constant zone text of tests, where an error is a mistake in the test.
func (z *Zone) MustAdd(text string) {
	if err := z.Add(text); err != nil {
		panic(err)
	}
}

// AddRR adds records to the zone; see [Zone.Add].
func (z *Zone) AddRR(rrs ...dns.RR) error {
	return z.put(rrs, false)
}

// AddTXT adds one TXT record at name whose value is split into
// character-strings of at most 255 bytes by [SplitTXT], as a long DKIM key
// must be published.
func (z *Zone) AddTXT(name, value string) error {
	return z.AddRR(NewTXT(z.absName(name), DefaultTTL, value))
}

// Replace parses text like [Zone.Add] and, in one step, replaces every
// RRset (owner name and type) that appears in text with the records in text.
// Other RRsets are left alone.
func (z *Zone) Replace(text string) error {
	rrs, err := z.parse(text)
	if err != nil {
		return err
	}
	return z.ReplaceRR(rrs...)
}

// ReplaceRR replaces the RRsets that rrs belong to with rrs; see
// [Zone.Replace].
func (z *Zone) ReplaceRR(rrs ...dns.RR) error {
	return z.put(rrs, true)
}

// put adds rrs to the zone in one step, first removing the RRsets they belong
// to if replace is set.
func (z *Zone) put(rrs []dns.RR, replace bool) error {
	if err := z.checkInZone(rrs); err != nil {
		return err
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	if replace {
		for _, rr := range rrs {
			z.removeLocked(dns.CanonicalName(rr.Header().Name), rr.Header().Rrtype)
		}
	}
	for _, rr := range rrs {
		z.addLocked(rr)
	}
	return nil
}

// Remove deletes all records of type rrtype at name.
func (z *Zone) Remove(name string, rrtype uint16) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.removeLocked(z.absName(name), rrtype)
}

// RemoveName deletes every record at name, so that the name no longer
// exists (unless names below it do).
func (z *Zone) RemoveName(name string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	delete(z.rrs, z.absName(name))
}

// Records returns copies of the records of type rrtype at name, or of all
// records at name when rrtype is dns.TypeANY.
func (z *Zone) Records(name string, rrtype uint16) []dns.RR {
	z.mu.RLock()
	defer z.mu.RUnlock()
	return ofType(z.rrs[z.absName(name)], rrtype)
}

// SplitTXT splits s into character-strings of at most 255 bytes, the most
// one TXT character-string can hold. An empty s gives one empty string.
func SplitTXT(s string) []string {
	parts := []string{}
	for len(s) > 255 {
		parts = append(parts, s[:255])
		s = s[255:]
	}
	return append(parts, s)
}

// NewTXT returns a TXT record at the absolute name whose value is s split
// by [SplitTXT]. Backslashes in s are escaped, because miekg/dns reads
// escapes when it packs a TXT string; the value on the wire is exactly s.
func NewTXT(name string, ttl uint32, s string) *dns.TXT {
	parts := SplitTXT(s)
	for i, p := range parts {
		parts[i] = strings.ReplaceAll(p, `\`, `\\`)
	}
	return &dns.TXT{
		Hdr: dns.RR_Header{Name: dns.Fqdn(name), Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: ttl},
		Txt: parts,
	}
}

// TXTValues returns the values of the TXT records in m's answer, each one's
// character-strings joined, for a test to compare with what it published.
func TXTValues(m *dns.Msg) []string {
	var vs []string
	for _, rr := range m.Answer {
		if txt, ok := rr.(*dns.TXT); ok {
			vs = append(vs, strings.Join(txt.Txt, ""))
		}
	}
	return vs
}

// parse reads zone-file text relative to the zone's origin.
func (z *Zone) parse(text string) ([]dns.RR, error) {
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSpace(l)
	}
	zp := dns.NewZoneParser(strings.NewReader(strings.Join(lines, "\n")), z.origin, "")
	zp.SetDefaultTTL(DefaultTTL)
	var rrs []dns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		rrs = append(rrs, rr)
	}
	if err := zp.Err(); err != nil {
		return nil, fmt.Errorf("dnstest: zone %s: %w", z.origin, err)
	}
	return rrs, nil
}

func (z *Zone) checkInZone(rrs []dns.RR) error {
	for _, rr := range rrs {
		if !dns.IsSubDomain(z.origin, rr.Header().Name) {
			return fmt.Errorf("dnstest: %s is outside zone %s", rr.Header().Name, z.origin)
		}
	}
	return nil
}

func (z *Zone) addLocked(rr dns.RR) {
	name := dns.CanonicalName(rr.Header().Name)
	if rr.Header().Rrtype == dns.TypeSOA {
		z.removeLocked(name, dns.TypeSOA)
	}
	for _, old := range z.rrs[name] {
		if dns.IsDuplicate(old, rr) {
			return
		}
	}
	z.rrs[name] = append(z.rrs[name], dns.Copy(rr))
}

func (z *Zone) removeLocked(name string, rrtype uint16) {
	var kept []dns.RR
	for _, rr := range z.rrs[name] {
		if rr.Header().Rrtype != rrtype {
			kept = append(kept, rr)
		}
	}
	if len(kept) == 0 {
		delete(z.rrs, name)
		return
	}
	z.rrs[name] = kept
}

// absName resolves a name given to a Zone method against the origin.
func (z *Zone) absName(name string) string {
	switch {
	case name == "" || name == "@":
		return z.origin
	case dns.IsFqdn(name):
		return dns.CanonicalName(name)
	default:
		return dns.CanonicalName(joinName(name, z.origin))
	}
}

// joinName prepends label(s) to an absolute domain name.
func joinName(label, origin string) string {
	if origin == "." {
		return label + "."
	}
	return label + "." + origin
}

// ofType returns copies of the records in rrs of type t (all of them for
// dns.TypeANY). Copies keep the stored records out of reach of message
// packing and of callers.
func ofType(rrs []dns.RR, t uint16) []dns.RR {
	var out []dns.RR
	for _, rr := range rrs {
		if t == dns.TypeANY || rr.Header().Rrtype == t {
			out = append(out, dns.Copy(rr))
		}
	}
	return out
}

// lookupKind says what kind of answer a zone gives for a name.
type lookupKind int

const (
	kindAnswer   lookupKind = iota // records of the asked type (or a CNAME asked for directly)
	kindCNAME                      // a CNAME at the name, to be chased
	kindNoData                     // the name exists, the type does not
	kindNXDomain                   // the name does not exist
	kindReferral                   // the name is at or below a delegation point
)

// lookupResult is one zone's answer for one name and type.
type lookupResult struct {
	kind   lookupKind
	answer []dns.RR // records, or the CNAME for kindCNAME
	ns     []dns.RR // SOA for negative answers, NS RRset for referrals
	extra  []dns.RR // glue for referrals
}

// lookup answers a query for the canonical name qname (which must be in the
// zone) following RFC 1034 section 4.3.2, without wildcards.
func (z *Zone) lookup(qname string, qtype uint16) lookupResult {
	z.mu.RLock()
	defer z.mu.RUnlock()

	// Look for a delegation from the top of the zone down to qname, so that
	// the highest cut wins, as it does in real DNS.
	offsets := dns.Split(qname)
	below := len(offsets) - dns.CountLabel(z.origin) // ancestors strictly below the apex
	for i := below - 1; i >= 0; i-- {
		cut := qname[offsets[i]:]
		if ns := ofType(z.rrs[cut], dns.TypeNS); len(ns) > 0 {
			return lookupResult{kind: kindReferral, ns: ns, extra: z.glueLocked(ns)}
		}
	}

	soa := ofType(z.rrs[z.origin], dns.TypeSOA)
	if rrs, ok := z.rrs[qname]; ok {
		if match := ofType(rrs, qtype); len(match) > 0 {
			return lookupResult{kind: kindAnswer, answer: match}
		}
		if cname := ofType(rrs, dns.TypeCNAME); len(cname) > 0 {
			return lookupResult{kind: kindCNAME, answer: cname}
		}
		return lookupResult{kind: kindNoData, ns: soa}
	}
	// A name with no records of its own but names below it (an "empty
	// non-terminal", such as _domainkey.example.com.) exists: NODATA.
	for name := range z.rrs {
		if dns.IsSubDomain(qname, name) {
			return lookupResult{kind: kindNoData, ns: soa}
		}
	}
	return lookupResult{kind: kindNXDomain, ns: soa}
}

// glueLocked returns the A and AAAA records this zone holds for the targets
// of the NS records ns.
func (z *Zone) glueLocked(ns []dns.RR) []dns.RR {
	var glue []dns.RR
	for _, rr := range ns {
		target := dns.CanonicalName(rr.(*dns.NS).Ns)
		glue = append(glue, ofType(z.rrs[target], dns.TypeA)...)
		glue = append(glue, ofType(z.rrs[target], dns.TypeAAAA)...)
	}
	return glue
}
