package dnscheck

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/miekg/dns"

	"github.com/domaind/domaind/internal/domain"
)

// This file is domaind's own implementation of SPF's check_host() function (RFC 7208
// section 4). A library such as blitiri.com.ar/go/spf evaluates records as well, and supports
// a custom resolver, the void-lookup limit and macros; domaind writes its own evaluator
// because it must also say *why* a record fails and how to fix it: which term in which record
// decided the result, which lookup went over which limit. The library reports only a result
// and a coarse error, and its trace output is documented as unstable and not for users.
// Writing it here also lets every lookup go through the session's own DNS path (the
// authoritative servers over the wire, with the temporary-failure rules of the rest of the
// package) with a per-evaluation cache and a hard bound on the queries a tenant's records can
// make domaind send.

// spfResult is a result of check_host() (RFC 7208 section 2.6).
type spfResult string

// The results of RFC 7208 section 2.6.
const (
	spfPass      spfResult = "pass"
	spfFail      spfResult = "fail"
	spfSoftFail  spfResult = "softfail"
	spfNeutral   spfResult = "neutral"
	spfNone      spfResult = "none"
	spfPermError spfResult = "permerror"
	spfTempError spfResult = "temperror"
)

// spfCause says how an evaluation reached its result, so that a message can explain it.
type spfCause int

const (
	// spfMatched: a mechanism matched; its qualifier gave the result.
	spfMatched spfCause = iota
	// spfDefault: no mechanism matched and there was no redirect (RFC 7208 section 4.7).
	spfDefault
	// spfNoRecord: the domain publishes no SPF record (section 4.5).
	spfNoRecord
	// spfSyntax: a record does not parse (section 4.6).
	spfSyntax
	// spfMultiple: a domain publishes more than one SPF record (section 4.5).
	spfMultiple
	// spfLimit: more than 10 DNS-querying terms (section 4.6.4).
	spfLimit
	// spfVoid: more than 2 lookups that found nothing (section 4.6.4).
	spfVoid
	// spfMXLimit: an mx mechanism names more than 10 hosts (section 4.6.4).
	spfMXLimit
	// spfLoop: an include or redirect leads back to a record being evaluated.
	spfLoop
	// spfTargetNone: an include or redirect target publishes no SPF record (sections 5.2, 6.1).
	spfTargetNone
	// spfDNSError: a lookup had no definite answer (section 2.6.6).
	spfDNSError
	// spfBudget: domaind's own bound on the queries of one verdict was reached.
	spfBudget
)

// spfOutcome is the result of one check_host() and what decided it.
type spfOutcome struct {
	result spfResult
	cause  spfCause
	// domain is the domain whose record holds the deciding term, or where the error was met.
	domain string
	// termOf is the deciding term, if hasTerm. It is kept as parsed and
	// written out (term) only for a message: evaluation passes terms by the
	// dozen per verdict, and most outcomes are never shown.
	termOf  SPFTerm
	hasTerm bool
	// detail is a syntax reason or a DNS error, for messages.
	detail string
	// err is the DNS error of a temperror.
	err error
	// top is the index of the term of the evaluated (top-level) record through which the
	// evaluation ended, -1 for its redirect and -2 when it ended in the record itself (no
	// record, syntax, default result).
	top int
}

// term is the deciding term as written in canonical form ("-all",
// "include:x.example"), or "" for none.
func (o spfOutcome) term() string {
	if !o.hasTerm {
		return ""
	}
	return o.termOf.String()
}

// spfSentinel is an address no mail server sends from and no SPF record names: one of
// MCAST-TEST-NET, the multicast block RFC 6676 sets aside for documentation (the unicast
// documentation blocks of RFC 5737 appear in real and test records). Evaluating a record for
// it shows what the record does for a server it does not name: a pass means the record lets
// any server send, and a permerror means every server not matched earlier gets an error.
var spfSentinel = netip.MustParseAddr("233.252.0.1")

// Bounds on the work one verdict may cause, whatever the tenant's records say.
const (
	// spfMaxQueries bounds the distinct DNS questions one SPF verdict asks, across every
	// address evaluated and every fix simulated. check_host() itself is bounded by RFC 7208
	// section 4.6.4 (10 lookups, 10 MX hosts each), but macros such as %{i} make the questions
	// differ per address.
	spfMaxQueries = 300
	// spfMaxExpansion bounds the length of one macro expansion before truncation.
	spfMaxExpansion = 4096
	// spfMaxMX is the number of MX hosts an mx mechanism may name (RFC 7208 section 4.6.4).
	spfMaxMX = 10
	// spfMaxVoid is the number of void lookups allowed (RFC 7208 section 4.6.4).
	spfMaxVoid = 2
)

// errSPFBudget means a verdict reached spfMaxQueries.
var errSPFBudget = errors.New("spf: too many DNS queries for one verdict")

// spfAnswer is what a lookup found: the values of the asked type at the end of any CNAME
// chain. No values and a nil err is a void lookup (NXDOMAIN or no records of the type).
type spfAnswer struct {
	txt   []string
	addrs []netip.Addr
	mx    []string
	err   error
}

type spfKey struct {
	name  string
	qtype uint16
}

// spfDNS answers the lookups of one verdict through the session's own DNS path, caching each
// answer for the verdict, so that evaluating many addresses and simulating fixes asks each
// question once.
type spfDNS struct {
	s       *session
	cache   map[spfKey]spfAnswer
	queries int
	// parsed holds the records parsed so far (see parse).
	parsed map[string]parsedSPF
}

// parsedSPF is what ParseSPF gave for a text.
type parsedSPF struct {
	rec SPFRecord
	err error
}

// parse is ParseSPF(txt), once per verdict for each text: check_host() is
// evaluated for each of the platform's addresses, and parses the same records
// again for every one. What it gives is only read, never changed. The texts
// are bounded by the verdict's queries.
func (d *spfDNS) parse(txt string) (SPFRecord, error) {
	if p, ok := d.parsed[txt]; ok {
		return p.rec, p.err
	}
	rec, err := ParseSPF(txt)
	if d.parsed == nil {
		d.parsed = make(map[string]parsedSPF)
	}
	d.parsed[txt] = parsedSPF{rec, err}
	return rec, err
}

func newSPFDNS(s *session) *spfDNS {
	return &spfDNS{s: s, cache: make(map[spfKey]spfAnswer)}
}

// query returns the answer a verdict would use for name and qtype: the first definite
// authoritative answer, else the first definite resolver answer (as lookupVerdict picks).
func (d *spfDNS) query(ctx context.Context, name string, qtype uint16) spfAnswer {
	k := spfKey{strings.ToLower(strings.TrimSuffix(name, ".")), qtype}
	if a, ok := d.cache[k]; ok {
		return a
	}
	if d.queries >= spfMaxQueries {
		return spfAnswer{err: errSPFBudget}
	}
	d.queries++
	a := d.ask(ctx, k.name, qtype)
	d.cache[k] = a
	return a
}

func (d *spfDNS) ask(ctx context.Context, name string, qtype uint16) spfAnswer {
	if _, ok := dns.IsDomainName(name); !ok || name == "" {
		// A name that cannot exist in DNS (an empty or over-long label, as a macro can
		// produce) is treated as one that does not exist.
		return spfAnswer{}
	}
	resps := d.s.lookup(ctx, name, qtype)
	var firstErr error
	for _, role := range []domain.Role{domain.RoleAuthoritative, domain.RoleResolver} {
		for _, r := range resps {
			if r.role != role {
				continue
			}
			if !r.definite() {
				if firstErr == nil {
					firstErr = r.err
				}
				continue
			}
			var a spfAnswer
			for _, rr := range r.rrs {
				switch rr := rr.(type) {
				case *dns.TXT:
					a.txt = append(a.txt, txtValue(rr.Txt))
				case *dns.A:
					if ip, ok := netip.AddrFromSlice(rr.A.To4()); ok {
						a.addrs = append(a.addrs, ip)
					}
				case *dns.AAAA:
					if ip, ok := netip.AddrFromSlice(rr.AAAA.To16()); ok {
						a.addrs = append(a.addrs, ip)
					}
				case *dns.MX:
					a.mx = append(a.mx, mxHost(rr))
				}
			}
			return a
		}
	}
	if firstErr == nil {
		firstErr = fmt.Errorf("%w: no server answered for %s", ErrServFail, name)
	}
	return spfAnswer{err: fmt.Errorf("looking up %s %s: %w", name, dns.TypeToString[qtype], firstErr)}
}

// spfEval is one check_host() evaluation for one client address.
type spfEval struct {
	dns *spfDNS
	ip  netip.Addr
	// sender is the MAIL FROM address, local "@" domain (RFC 7208 section 4.3).
	sender, local, senderDomain string
	helo                        string
	// assume, when set, is a domain whose check_host() result is taken to be pass without
	// looking it up: the platform's include domain when its own record cannot be read, so
	// that the customer's record is still judged on how it reaches the include.
	assume string
	// override replaces the published record of a domain, to simulate a proposed fix.
	override map[string]string

	lookups, voids int
	stack          []string
}

// checkHost evaluates the SPF record of domain (RFC 7208 section 4).
func (ev *spfEval) checkHost(ctx context.Context, name string) spfOutcome {
	name = spfNormalName(name)
	out := spfOutcome{domain: name, top: -2}
	var txts []string
	if rec, ok := ev.override[name]; ok {
		txts = []string{rec}
	} else {
		a := ev.dns.query(ctx, name, dns.TypeTXT)
		if a.err != nil {
			return ev.dnsError(out, a.err)
		}
		txts = a.txt
	}
	var spf []string
	for _, t := range txts {
		if IsSPF(t) {
			spf = append(spf, t)
		}
	}
	switch len(spf) {
	case 0:
		// RFC 7208 section 4.5: no SPF record means the result is none.
		out.result, out.cause = spfNone, spfNoRecord
		return out
	case 1:
	default:
		// RFC 7208 section 4.5: more than one SPF record is a permerror.
		out.result, out.cause, out.detail = spfPermError, spfMultiple, strconv.Itoa(len(spf))
		return out
	}
	rec, err := ev.dns.parse(spf[0])
	if err != nil {
		// RFC 7208 section 4.6: a record that does not parse is a permerror, whichever
		// term is at fault, before any term is evaluated.
		out.result, out.cause, out.detail = spfPermError, spfSyntax, syntaxReason(err)
		return out
	}
	ev.stack = append(ev.stack, name)
	defer func() { ev.stack = ev.stack[:len(ev.stack)-1] }()
	top := len(ev.stack) == 1

	hasAll := false
	for i, t := range rec.Terms {
		if t.Modifier {
			continue
		}
		hasAll = hasAll || t.Name == "all"
		matched, o, done := ev.mechanism(ctx, name, t)
		if top {
			o.top = i
		}
		if done {
			return o
		}
		if matched {
			// RFC 7208 section 4.6.2: the first mechanism that matches gives its
			// qualifier's result, and evaluation ends.
			return spfOutcome{result: spfQualifierResult(t.Qualifier), cause: spfMatched, domain: name, termOf: t, hasTerm: true, top: o.top}
		}
	}
	// RFC 7208 section 6.1: redirect applies only when no mechanism matched, and is ignored
	// when the record has an all mechanism anywhere.
	if target := rec.Redirect(); target != "" && !hasAll {
		t := SPFTerm{Modifier: true, Name: "redirect", Value: target}
		o := ev.follow(ctx, name, t)
		if top {
			o.top = -1
		}
		return o
	}
	// RFC 7208 section 4.7: no match and no redirect gives neutral.
	out.result, out.cause = spfNeutral, spfDefault
	return out
}

// mechanism evaluates one mechanism. done means the evaluation ends with o whether or not the
// mechanism matched (an error); otherwise matched says whether it matched.
func (ev *spfEval) mechanism(ctx context.Context, name string, t SPFTerm) (matched bool, o spfOutcome, done bool) {
	o = spfOutcome{domain: name, termOf: t, hasTerm: true}
	switch t.Name {
	case "all":
		return true, o, false
	case "ip4", "ip6":
		return spfInNetwork(ev.ip, t), o, false
	case "include":
		inner := ev.follow(ctx, name, t)
		switch inner.result {
		case spfPass:
			// RFC 7208 section 5.2: include matches only when the included record passes.
			return true, o, false
		case spfFail, spfSoftFail, spfNeutral:
			return false, o, false
		}
		return false, inner, true
	}
	// a, mx, ptr and exists query DNS and count towards the limit (RFC 7208 section 4.6.4).
	if o, ok := ev.countLookup(name, t); !ok {
		return false, o, true
	}
	target := name
	if t.Value != "" {
		var err error
		if target, err = ev.expand(t.Value, name); err != nil {
			o.result, o.cause, o.detail = spfPermError, spfSyntax, err.Error()
			return false, o, true
		}
	}
	switch t.Name {
	case "a":
		a, o, ok := ev.lookup(ctx, o, target, ev.addrType())
		if !ok {
			return false, o, true
		}
		return spfAnyInCIDR(ev.ip, a.addrs, t), o, false
	case "mx":
		a, o, ok := ev.lookup(ctx, o, target, dns.TypeMX)
		if !ok {
			return false, o, true
		}
		if len(a.mx) > spfMaxMX {
			// RFC 7208 section 4.6.4: an mx mechanism that would look up more than 10
			// address records is a permerror.
			o.result, o.cause, o.detail = spfPermError, spfMXLimit, strconv.Itoa(len(a.mx))
			return false, o, true
		}
		for _, host := range a.mx {
			if host == "" || host == "." {
				continue // RFC 7505's null MX names no host.
			}
			h := ev.dns.query(ctx, host, ev.addrType())
			if h.err != nil {
				return false, ev.dnsError(o, h.err), true
			}
			if spfAnyInCIDR(ev.ip, h.addrs, t) {
				return true, o, false
			}
		}
		return false, o, false
	case "ptr":
		// RFC 7208 section 5.5 discourages ptr, and validating the client's host names
		// needs reverse DNS of the platform's addresses, which domaind does not ask: ptr is
		// counted as a lookup and taken not to match.
		return false, o, false
	case "exists":
		// RFC 7208 section 5.7: exists always asks for A records, whatever the client's
		// address family.
		a, o, ok := ev.lookup(ctx, o, target, dns.TypeA)
		if !ok {
			return false, o, true
		}
		return len(a.addrs) > 0, o, false
	}
	// ParseSPF admits no other mechanism.
	o.result, o.cause, o.detail = spfPermError, spfSyntax, "unknown mechanism "+t.Name
	return false, o, true
}

// follow evaluates the target of an include or a redirect.
func (ev *spfEval) follow(ctx context.Context, name string, t SPFTerm) spfOutcome {
	o := spfOutcome{domain: name, termOf: t, hasTerm: true}
	if o, ok := ev.countLookup(name, t); !ok {
		return o
	}
	target, err := ev.expand(t.Value, name)
	if err != nil {
		o.result, o.cause, o.detail = spfPermError, spfSyntax, err.Error()
		return o
	}
	if ev.assume != "" && target == ev.assume {
		return spfOutcome{result: spfPass, cause: spfMatched, domain: target, termOf: t, hasTerm: true}
	}
	if slices.Contains(ev.stack, target) {
		// A loop would go on until the lookup limit; say what it is instead.
		o.result, o.cause, o.detail = spfPermError, spfLoop, target
		return o
	}
	inner := ev.checkHost(ctx, target)
	if inner.result == spfNone {
		// RFC 7208 sections 5.2 and 6.1: an include or redirect target without an SPF
		// record is a permerror.
		o.result, o.cause, o.detail = spfPermError, spfTargetNone, target
		return o
	}
	return inner
}

// countLookup counts a DNS-querying term; ok is false when it is over the limit.
func (ev *spfEval) countLookup(name string, t SPFTerm) (spfOutcome, bool) {
	ev.lookups++
	if ev.lookups > SPFLookupLimit {
		// RFC 7208 section 4.6.4: more than 10 DNS-querying terms is a permerror.
		return spfOutcome{result: spfPermError, cause: spfLimit, domain: name, termOf: t, hasTerm: true}, false
	}
	return spfOutcome{}, true
}

// countVoid counts a lookup that found n values; ok is false when it is the third void one.
// lookup asks for target's records of qtype for a mechanism. A lookup that ends the
// evaluation (a DNS error, or one void lookup too many) returns false, with the outcome
// to end it with.
func (ev *spfEval) lookup(ctx context.Context, o spfOutcome, target string, qtype uint16) (spfAnswer, spfOutcome, bool) {
	a := ev.dns.query(ctx, target, qtype)
	if a.err != nil {
		return a, ev.dnsError(o, a.err), false
	}
	n := len(a.addrs)
	if qtype == dns.TypeMX {
		n = len(a.mx)
	}
	o, ok := ev.countVoid(o, n)
	return a, o, ok
}

// addrType is the type of the address records that can match the client: AAAA for
// an IPv6 client, A for IPv4 (RFC 7208 section 5.3).
func (ev *spfEval) addrType() uint16 {
	if ev.ip.Is6() {
		return dns.TypeAAAA
	}
	return dns.TypeA
}

func (ev *spfEval) countVoid(o spfOutcome, n int) (spfOutcome, bool) {
	if n > 0 {
		return o, true
	}
	ev.voids++
	if ev.voids > spfMaxVoid {
		// RFC 7208 section 4.6.4: more than two void lookups is a permerror.
		o.result, o.cause = spfPermError, spfVoid
		return o, false
	}
	return o, true
}

func (ev *spfEval) dnsError(o spfOutcome, err error) spfOutcome {
	o.detail, o.err = errorText(err), err
	if errors.Is(err, errSPFBudget) {
		o.result, o.cause = spfPermError, spfBudget
		return o
	}
	// RFC 7208 section 2.6.6: a transient DNS error is a temperror.
	o.result, o.cause = spfTempError, spfDNSError
	return o
}

// spfQualifierResult maps a qualifier to its result (RFC 7208 section 4.6.2).
func spfQualifierResult(q byte) spfResult {
	switch q {
	case '-':
		return spfFail
	case '~':
		return spfSoftFail
	case '?':
		return spfNeutral
	}
	return spfPass
}

// spfInNetwork reports whether ip is in the network of an ip4 or ip6 term. An IPv4 client
// never matches ip6 and an IPv6 client never matches ip4 (RFC 7208 section 5.6).
func spfInNetwork(ip netip.Addr, t SPFTerm) bool {
	n, err := netip.ParseAddr(t.Value)
	if err != nil {
		return false
	}
	bits := t.CIDR4
	if t.Name == "ip6" {
		bits = t.CIDR6
	}
	if bits < 0 {
		bits = n.BitLen()
	}
	if n.Is4() != ip.Is4() {
		return false
	}
	p, err := n.Prefix(bits)
	return err == nil && p.Contains(ip)
}

// spfAnyInCIDR reports whether ip is within the term's prefix length of any of addrs (RFC 7208
// section 5.3's dual-cidr-length, /32 and /128 when absent).
func spfAnyInCIDR(ip netip.Addr, addrs []netip.Addr, t SPFTerm) bool {
	for _, a := range addrs {
		if a.Is4() != ip.Is4() {
			continue
		}
		bits := t.CIDR4
		if a.Is6() {
			bits = t.CIDR6
		}
		if bits < 0 {
			bits = a.BitLen()
		}
		if p, err := a.Prefix(bits); err == nil && p.Contains(ip) {
			return true
		}
	}
	return false
}

// syntaxReason returns the customer-facing reason of a *SyntaxError, or the error text.
func syntaxReason(err error) string {
	var se *SyntaxError
	if errors.As(err, &se) {
		return se.Reason
	}
	return err.Error()
}

// expand expands the macros of a domain-spec for the current domain and returns a
// lowercased name without a trailing dot, truncated on the left to 253 characters (RFC 7208
// section 7.3).
func (ev *spfEval) expand(spec, current string) (string, error) {
	s, err := spfExpand(spec, spfMacroValues{
		sender: ev.sender, local: ev.local, senderDomain: ev.senderDomain,
		domain: current, ip: ev.ip, helo: ev.helo,
	})
	if err != nil {
		return "", err
	}
	s = spfNormalName(s)
	// RFC 7208 section 7.3: an expanded name over 253 characters loses labels on the left
	// until it fits.
	for len(s) > 253 {
		i := strings.IndexByte(s, '.')
		if i < 0 {
			return "", fmt.Errorf("macro expansion %q is not a domain name", domain.TruncateBytes(s, 60))
		}
		s = s[i+1:]
	}
	return s, nil
}

// spfMacroValues are the values macros expand to (RFC 7208 section 7.2).
type spfMacroValues struct {
	sender, local, senderDomain, domain string
	ip                                  netip.Addr
	helo                                string
}

// spfExpand expands the macros of a macro-string (RFC 7208 section 7). It supports every
// letter allowed outside explanations: s, l, o, d, i, p, v and h, with the digit and "r"
// transformers and delimiters, and uppercase letters for URL escaping. %{p} expands to
// "unknown", which section 7.3 allows, since validating the client's name needs reverse DNS.
// The input must be a valid macro-string (spfMacroStringReason).
func spfExpand(spec string, v spfMacroValues) (string, error) {
	var b strings.Builder
	for i := 0; i < len(spec); {
		if b.Len() > spfMaxExpansion {
			return "", fmt.Errorf("the expansion of %q is longer than %d characters", domain.TruncateBytes(spec, 60), spfMaxExpansion)
		}
		c := spec[i]
		if c != '%' {
			b.WriteByte(c)
			i++
			continue
		}
		if i+1 >= len(spec) {
			return "", fmt.Errorf("%q ends with a lone %%", domain.TruncateBytes(spec, 60))
		}
		switch spec[i+1] {
		case '%':
			b.WriteByte('%')
			i += 2
			continue
		case '_':
			b.WriteByte(' ')
			i += 2
			continue
		case '-':
			b.WriteString("%20")
			i += 2
			continue
		case '{':
		default:
			return "", fmt.Errorf("%q has a %% that starts no macro", domain.TruncateBytes(spec, 60))
		}
		end := strings.IndexByte(spec[i+2:], '}')
		if end < 0 {
			return "", fmt.Errorf("%q has a macro without its closing brace", domain.TruncateBytes(spec, 60))
		}
		body := spec[i+2 : i+2+end]
		i += 2 + end + 1
		out, err := spfExpandOne(body, v)
		if err != nil {
			return "", err
		}
		b.WriteString(out)
	}
	if b.Len() > spfMaxExpansion {
		return "", fmt.Errorf("the expansion of %q is longer than %d characters", domain.TruncateBytes(spec, 60), spfMaxExpansion)
	}
	return b.String(), nil
}

// spfExpandOne expands the body of one %{...} macro.
func spfExpandOne(body string, v spfMacroValues) (string, error) {
	if body == "" {
		return "", errors.New("empty macro")
	}
	letter := body[0]
	escape := letter >= 'A' && letter <= 'Z'
	var value string
	switch letter | 0x20 {
	case 's':
		value = v.sender
	case 'l':
		value = v.local
	case 'o':
		value = v.senderDomain
	case 'd':
		value = v.domain
	case 'i':
		value = spfMacroIP(v.ip)
	case 'p':
		value = "unknown"
	case 'v':
		value = "in-addr"
		if v.ip.Is6() {
			value = "ip6"
		}
	case 'h':
		value = v.helo
	default:
		return "", fmt.Errorf("macro letter %q is not allowed in a domain", letter)
	}
	rest := body[1:]
	digits := 0
	for digits < len(rest) && isDigit(rest[digits]) {
		digits++
	}
	keep := -1
	if digits > 0 {
		// The number of labels to keep; anything above the labels there can be keeps all.
		n, err := strconv.Atoi(rest[:min(digits, 4)])
		if err != nil || n == 0 {
			return "", fmt.Errorf("macro %%{%s} keeps no labels", body)
		}
		keep = n
		if digits > 4 {
			keep = 1 << 30
		}
	}
	rest = rest[digits:]
	reverse := false
	if rest != "" && (rest[0] == 'r' || rest[0] == 'R') {
		reverse = true
		rest = rest[1:]
	}
	delims := rest
	if delims == "" {
		delims = "."
	}
	for i := 0; i < len(delims); i++ {
		if !strings.ContainsRune(".-+,/_=", rune(delims[i])) {
			return "", fmt.Errorf("macro %%{%s} has an invalid delimiter", body)
		}
	}
	if keep >= 0 || reverse || rest != "" {
		// RFC 7208 section 7.3: split on the delimiters, reverse if asked, keep the
		// rightmost labels, and join with dots.
		parts := spfSplitAny(value, delims)
		if reverse {
			slices.Reverse(parts)
		}
		if keep >= 0 && keep < len(parts) {
			parts = parts[len(parts)-keep:]
		}
		value = strings.Join(parts, ".")
	}
	if escape {
		value = spfURLEscape(value)
	}
	return value, nil
}

// spfSplitAny splits s at every byte that is in delims, keeping empty parts.
func spfSplitAny(s, delims string) []string {
	var parts []string
	start := 0
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(delims, s[i]) >= 0 {
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

// spfMacroIP formats the client address for %{i}: dotted quad for IPv4, and for IPv6 the 32
// nibbles in hexadecimal separated by dots (RFC 7208 section 7.3).
func spfMacroIP(ip netip.Addr) string {
	if !ip.IsValid() {
		return ""
	}
	if ip.Is4() {
		return ip.String()
	}
	const hex = "0123456789abcdef"
	b16 := ip.As16()
	var b strings.Builder
	for i, c := range b16 {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteByte(hex[c>>4])
		b.WriteByte('.')
		b.WriteByte(hex[c&0xf])
	}
	return b.String()
}

// spfURLEscape escapes every character outside RFC 3986's unreserved set, as uppercase macro
// letters ask (RFC 7208 section 7.3).
func spfURLEscape(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isAlpha(c) || isDigit(c) || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&0xf])
	}
	return b.String()
}

// spfPlatformSenders returns representative addresses of the servers the SPF record of
// domain authorizes: the first and last address of each network its ip4 and ip6 terms name
// with the pass qualifier (and of the addresses its a and mx terms resolve to), following its
// includes and redirect, until the first all mechanism. The walk is bounded like an
// evaluation: at most 10 records, 10 MX hosts a term, and spfMaxSenders addresses. An error
// means the record could not be read definitely.
func spfPlatformSenders(ctx context.Context, d *spfDNS, name string) ([]netip.Addr, error) {
	w := &spfSenderWalk{d: d, seen: map[string]bool{}}
	err := w.walk(ctx, spfNormalName(name))
	return w.addrs, err
}

// spfMaxSenders caps the representative addresses of the platform.
const spfMaxSenders = 32

type spfSenderWalk struct {
	d       *spfDNS
	seen    map[string]bool
	records int
	addrs   []netip.Addr
}

func (w *spfSenderWalk) add(p netip.Prefix) {
	p = p.Masked()
	first := p.Addr()
	b := first.AsSlice()
	host := first.BitLen() - p.Bits()
	for i := len(b) - 1; i >= 0 && host > 0; i-- {
		n := min(host, 8)
		b[i] |= byte(1<<n - 1)
		host -= n
	}
	last, _ := netip.AddrFromSlice(b)
	for _, a := range []netip.Addr{first, last} {
		if len(w.addrs) < spfMaxSenders && !slices.Contains(w.addrs, a) {
			w.addrs = append(w.addrs, a)
		}
	}
}

func (w *spfSenderWalk) walk(ctx context.Context, name string) error {
	if w.seen[name] || w.records >= SPFLookupLimit || len(w.addrs) >= spfMaxSenders {
		return nil
	}
	w.seen[name] = true
	w.records++
	a := w.d.query(ctx, name, dns.TypeTXT)
	if a.err != nil {
		return a.err
	}
	var spf []string
	for _, t := range a.txt {
		if IsSPF(t) {
			spf = append(spf, t)
		}
	}
	if len(spf) != 1 {
		return nil
	}
	rec, err := w.d.parse(spf[0])
	if err != nil {
		return nil
	}
	for _, t := range rec.Terms {
		if t.Modifier || t.Qualifier != '+' && t.Name != "all" {
			continue
		}
		if strings.Contains(t.Value, "%") {
			continue // A macro needs a client to expand for.
		}
		target := name
		if t.Value != "" {
			target = spfNormalName(t.Value)
		}
		switch t.Name {
		case "all":
			return nil
		case "ip4", "ip6":
			n, err := netip.ParseAddr(t.Value)
			if err != nil {
				continue
			}
			bits := t.CIDR4
			if t.Name == "ip6" {
				bits = t.CIDR6
			}
			if bits < 0 {
				bits = n.BitLen()
			}
			if p, err := n.Prefix(bits); err == nil {
				w.add(p)
			}
		case "include":
			if err := w.walk(ctx, target); err != nil {
				return err
			}
		case "a":
			w.addHosts(ctx, []string{target}, t)
		case "mx":
			mx := w.d.query(ctx, target, dns.TypeMX)
			if mx.err == nil && len(mx.mx) <= spfMaxMX {
				w.addHosts(ctx, mx.mx, t)
			}
		}
	}
	if target := rec.Redirect(); target != "" && !strings.Contains(target, "%") {
		return w.walk(ctx, spfNormalName(target))
	}
	return nil
}

// addHosts adds the networks around the addresses of hosts, as an a or mx term names them.
func (w *spfSenderWalk) addHosts(ctx context.Context, hosts []string, t SPFTerm) {
	for _, h := range hosts {
		for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA} {
			a := w.d.query(ctx, h, qtype)
			for _, ip := range a.addrs {
				bits := t.CIDR4
				if ip.Is6() {
					bits = t.CIDR6
				}
				if bits < 0 {
					bits = ip.BitLen()
				}
				if p, err := ip.Prefix(bits); err == nil {
					w.add(p)
				}
			}
		}
	}
}
