package dnscheck

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// SyntaxError reports why a TXT record does not parse as the kind of record it claims to be.
type SyntaxError struct {
	// Kind is "SPF", "DKIM" or "DMARC".
	Kind string
	// Record is the TXT string as it was given to the parser.
	Record string
	// Reason is one plain English sentence, ending in a period, that a customer can act on.
	Reason string
}

// Error returns the kind of record, the record and the reason in one line.
func (e *SyntaxError) Error() string {
	return fmt.Sprintf("invalid %s record %q: %s", e.Kind, e.Record, e.Reason)
}

// SPFLookupLimit is the number of DNS-querying terms an SPF evaluation may use before it
// fails with a permerror (RFC 7208 section 4.6.4).
const SPFLookupLimit = 10

// IsSPF reports whether a TXT string is an SPF record: it starts with "v=spf1", in any case,
// followed by a space or the end of the string (RFC 7208 section 4.5). Records that fail this
// test are not SPF records at all, so they neither count towards "multiple SPF records" nor get
// parsed.
func IsSPF(txt string) bool {
	if len(txt) < 6 || !strings.EqualFold(txt[:6], "v=spf1") {
		return false
	}
	return len(txt) == 6 || txt[6] == ' '
}

// SPFRecord is a parsed SPF record: its terms in the order they were written.
type SPFRecord struct {
	Terms []SPFTerm
}

// SPFTerm is one mechanism or modifier of an SPF record.
type SPFTerm struct {
	// Qualifier is '+', '-', '~' or '?' for a mechanism ('+' when none was written) and 0 for
	// a modifier.
	Qualifier byte
	// Name is the lowercased mechanism name (all, include, a, mx, ptr, ip4, ip6, exists) or
	// modifier name (redirect, exp, or any other).
	Name string
	// Value is the domain-spec of include, a, mx, ptr, exists, redirect and exp without any
	// CIDR suffix, the address of ip4 and ip6 without its prefix length, the value of an
	// unknown modifier as written, and empty for all and for a, mx and ptr without a domain.
	Value string
	// Modifier is true for name=value terms.
	Modifier bool
	// CIDR4 is the IPv4 prefix length given on ip4, a and mx, or -1 when none is given.
	CIDR4 int
	// CIDR6 is the IPv6 prefix length given on ip6, a and mx, or -1 when none is given.
	CIDR6 int
}

// String returns the term as it would be written in a record, with the default '+'
// qualifier left out.
func (t SPFTerm) String() string {
	if t.Modifier {
		return t.Name + "=" + t.Value
	}
	var b strings.Builder
	if t.Qualifier != 0 && t.Qualifier != '+' {
		b.WriteByte(t.Qualifier)
	}
	b.WriteString(t.Name)
	if t.Value != "" {
		b.WriteByte(':')
		b.WriteString(t.Value)
	}
	if t.CIDR4 >= 0 {
		b.WriteString("/" + strconv.Itoa(t.CIDR4))
	}
	if t.CIDR6 >= 0 {
		if t.Name == "ip6" {
			b.WriteString("/" + strconv.Itoa(t.CIDR6))
		} else {
			b.WriteString("//" + strconv.Itoa(t.CIDR6))
		}
	}
	return b.String()
}

// String returns the record in canonical form: "v=spf1" and the terms separated by single
// spaces.
func (r SPFRecord) String() string {
	var b strings.Builder
	b.WriteString("v=spf1")
	for _, t := range r.Terms {
		b.WriteByte(' ')
		b.WriteString(t.String())
	}
	return b.String()
}

// Includes returns the domain-specs of the record's include mechanisms, in order, as written
// (they may contain macros or a trailing dot).
func (r SPFRecord) Includes() []string {
	var out []string
	for _, t := range r.Terms {
		if !t.Modifier && t.Name == "include" {
			out = append(out, t.Value)
		}
	}
	return out
}

// Redirect returns the domain-spec of the record's redirect modifier, or "" when it has none.
// Note that RFC 7208 section 6.1 makes evaluation ignore a redirect when the record also has an
// all mechanism.
func (r SPFRecord) Redirect() string {
	for _, t := range r.Terms {
		if t.Modifier && t.Name == "redirect" {
			return t.Value
		}
	}
	return ""
}

// ParseSPF parses an SPF record strictly by the ABNF of RFC 7208 section 12. Unknown
// mechanisms, malformed ip4/ip6 networks and prefix lengths, malformed domain-specs and macros,
// and a second redirect or exp modifier are reported as a *SyntaxError, because any of them
// makes every receiver return permerror.
//
// Two checks go beyond the ABNF because they catch mistakes that silently break the record:
// a domain-spec without macros must be a well-formed domain name (no empty labels, labels of
// at most 63 and names of at most 253 characters), and a modifier named like a mechanism
// ("include=example.com") is rejected instead of being ignored as an unknown modifier.
func ParseSPF(txt string) (SPFRecord, error) {
	fail := func(format string, args ...any) (SPFRecord, error) {
		return SPFRecord{}, &SyntaxError{Kind: "SPF", Record: txt, Reason: fmt.Sprintf(format, args...)}
	}
	if reason := spfCharsReason(txt); reason != "" {
		return fail("%s", reason)
	}
	if !IsSPF(txt) {
		switch {
		case strings.HasPrefix(txt, `"`):
			return fail("The record starts with a quotation mark; enter it without quotes so that it starts with v=spf1.")
		case len(txt) > 6 && strings.EqualFold(txt[:6], "v=spf1"):
			return fail("The record must start with v=spf1 followed by a space, but it starts with %q.", firstField(txt))
		default:
			return fail("The record must start with v=spf1, but it starts with %q.", firstField(txt))
		}
	}
	var rec SPFRecord
	var seenRedirect, seenExp bool
	for _, field := range strings.Split(txt[6:], " ") {
		if field == "" {
			continue // RFC 7208 allows any number of spaces between terms and at the end.
		}
		term, reason := spfParseTerm(field)
		if reason != "" {
			return fail("%s", reason)
		}
		if term.Modifier && term.Name == "redirect" {
			if seenRedirect {
				return fail("The record has more than one redirect= modifier; keep only one.")
			}
			seenRedirect = true
		}
		if term.Modifier && term.Name == "exp" {
			if seenExp {
				return fail("The record has more than one exp= modifier; keep only one.")
			}
			seenExp = true
		}
		rec.Terms = append(rec.Terms, term)
	}
	return rec, nil
}

// spfCharsReason explains characters that can never appear in an SPF record, which are
// usually artifacts of copying the record from a document; it returns "" if there are none.
func spfCharsReason(txt string) string {
	for _, r := range txt {
		switch {
		case r == '\t' || r == '\r' || r == '\n':
			return "The record contains a tab or line break; separate its terms with single spaces."
		case r == '\u00a0':
			return "The record contains a non-breaking space, which often comes from copying it out of a document; retype the spaces as plain spaces."
		case r > 0x7e:
			return fmt.Sprintf("The record contains the character %q, which is not allowed in SPF; use only plain ASCII.", r)
		case r < 0x20 || r == 0x7f:
			return fmt.Sprintf("The record contains the control character %q; remove it.", r)
		}
	}
	return ""
}

// spfMechanisms lists the mechanism names of RFC 7208 section 5.
var spfMechanisms = map[string]bool{
	"all": true, "include": true, "a": true, "mx": true, "ptr": true, "ip4": true, "ip6": true, "exists": true,
}

// spfParseTerm parses one space-separated term, returning a reason sentence if it is invalid.
func spfParseTerm(field string) (SPFTerm, string) {
	t := SPFTerm{CIDR4: -1, CIDR6: -1}
	if strings.Contains(field, `"`) {
		return t, fmt.Sprintf("The term %q contains a quotation mark; enter the record without quotes.", field)
	}
	// A modifier is name "=" value, where name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." ).
	if n := spfNameLen(field); n > 0 && n < len(field) && field[n] == '=' {
		t.Name = strings.ToLower(field[:n])
		t.Value = field[n+1:]
		t.Modifier = true
		switch {
		case t.Name == "redirect" || t.Name == "exp":
			if reason := spfDomainSpecReason(field, t.Value); reason != "" {
				return t, reason
			}
		case t.Name == "all":
			return t, fmt.Sprintf("The term %q is not valid; the all mechanism takes no value.", field)
		case spfMechanisms[t.Name]:
			return t, fmt.Sprintf("The term %q uses '=', but %s is a mechanism and takes ':'; write %s:%s.", field, t.Name, t.Name, t.Value)
		default:
			// Unknown modifiers are ignored by receivers (RFC 7208 section 6), but their value
			// must still be a valid macro-string.
			if reason := spfMacroStringReason(field, t.Value, true); reason != "" {
				return t, reason
			}
		}
		return t, ""
	}

	t.Qualifier = '+'
	s := field
	switch s[0] {
	case '+', '-', '~', '?':
		t.Qualifier = s[0]
		s = s[1:]
	}
	if s == "" {
		return t, fmt.Sprintf("The qualifier %q stands alone; put it directly before a mechanism, as in %sall.", field, field)
	}
	if n := spfNameLen(s); n > 0 && n < len(s) && s[n] == '=' {
		return t, fmt.Sprintf("The term %q puts a qualifier before a modifier; remove the %q.", field, string(field[0]))
	}
	name, arg := s, ""
	if i := strings.IndexAny(s, ":/"); i >= 0 {
		name, arg = s[:i], s[i:]
	}
	t.Name = strings.ToLower(name)
	switch t.Name {
	case "all":
		if arg != "" {
			return t, fmt.Sprintf("The term %q is not valid; the all mechanism takes no value.", field)
		}
	case "include", "exists":
		spec, ok := strings.CutPrefix(arg, ":")
		if !ok || spec == "" {
			return t, fmt.Sprintf("The term %q needs a domain, as in %s:example.com.", field, t.Name)
		}
		if reason := spfDomainSpecReason(field, spec); reason != "" {
			return t, reason
		}
		t.Value = spec
	case "ptr":
		if arg != "" {
			spec, ok := strings.CutPrefix(arg, ":")
			if !ok || spec == "" {
				return t, fmt.Sprintf("The term %q is not valid; ptr takes an optional :domain and no prefix length.", field)
			}
			if reason := spfDomainSpecReason(field, spec); reason != "" {
				return t, reason
			}
			t.Value = spec
		}
	case "a", "mx":
		rest, c4, c6, reason := spfSplitDualCIDR(field, arg)
		if reason != "" {
			return t, reason
		}
		t.CIDR4, t.CIDR6 = c4, c6
		if rest != "" {
			spec, ok := strings.CutPrefix(rest, ":")
			if !ok || spec == "" {
				return t, fmt.Sprintf("The term %q is not valid; write %s, %s:example.com or add a prefix length such as /24.", field, t.Name, t.Name)
			}
			if reason := spfDomainSpecReason(field, spec); reason != "" {
				if strings.Contains(spec, "/") {
					return t, fmt.Sprintf("The prefix length in %q is malformed; use /N for IPv4 (0 to 32) and //N for IPv6 (0 to 128).", field)
				}
				return t, reason
			}
			t.Value = spec
		}
	case "ip4", "ip6":
		network, ok := strings.CutPrefix(arg, ":")
		if !ok || network == "" {
			example := "ip4:192.0.2.0/24"
			if t.Name == "ip6" {
				example = "ip6:2001:db8::/32"
			}
			return t, fmt.Sprintf("The term %q needs an address, as in %s.", field, example)
		}
		addr, prefix, hasPrefix := strings.Cut(network, "/")
		var reason string
		if t.Name == "ip4" {
			reason = spfIP4Reason(field, addr)
		} else {
			reason = spfIP6Reason(field, addr)
		}
		if reason != "" {
			return t, reason
		}
		t.Value = addr
		if hasPrefix {
			n, reason := spfCIDRLen(field, prefix, t.Name == "ip6")
			if reason != "" {
				return t, reason
			}
			if t.Name == "ip4" {
				t.CIDR4 = n
			} else {
				t.CIDR6 = n
			}
		}
	case "redirect", "exp":
		return t, fmt.Sprintf("The term %q is not valid; %s is a modifier and takes '=', as in %s=example.com.", field, t.Name, t.Name)
	default:
		return t, fmt.Sprintf("The record contains the unknown mechanism %q; check its spelling (the mechanisms are all, include, a, mx, ptr, ip4, ip6 and exists).", field)
	}
	return t, ""
}

// spfNameLen returns the length of the modifier name at the start of s, or 0 if s does not
// start with one.
func spfNameLen(s string) int {
	if s == "" || !isAlpha(s[0]) {
		return 0
	}
	i := 1
	for i < len(s) && (isAlpha(s[i]) || isDigit(s[i]) || s[i] == '-' || s[i] == '_' || s[i] == '.') {
		i++
	}
	return i
}

// spfSplitDualCIDR removes a trailing dual-cidr-length ("/24", "//64", "/24//64") from the
// argument of an a or mx mechanism and returns what precedes it.
func spfSplitDualCIDR(field, arg string) (rest string, c4, c6 int, reason string) {
	c4, c6 = -1, -1
	rest = arg
	if i := strings.LastIndex(rest, "//"); i >= 0 && allDigits(rest[i+2:]) {
		c6, reason = spfCIDRLen(field, rest[i+2:], true)
		if reason != "" {
			return "", -1, -1, reason
		}
		rest = rest[:i]
	}
	if i := strings.LastIndexByte(rest, '/'); i >= 0 && allDigits(rest[i+1:]) {
		c4, reason = spfCIDRLen(field, rest[i+1:], false)
		if reason != "" {
			return "", -1, -1, reason
		}
		rest = rest[:i]
	}
	if rest != "" && rest[0] != ':' {
		return "", -1, -1, fmt.Sprintf("The prefix length in %q is malformed; use /N for IPv4 (0 to 32) and //N for IPv6 (0 to 128).", field)
	}
	return rest, c4, c6, ""
}

// spfCIDRLen parses a prefix length: "0" or a number without leading zeros, at most 32 for
// IPv4 and 128 for IPv6.
func spfCIDRLen(field, digits string, v6 bool) (int, string) {
	max := 32
	if v6 {
		max = 128
	}
	if !allDigits(digits) || (len(digits) > 1 && digits[0] == '0') || len(digits) > 3 {
		return -1, fmt.Sprintf("The prefix length in %q is malformed; write a number from 0 to %d after the slash, without leading zeros.", field, max)
	}
	n, _ := strconv.Atoi(digits)
	if n > max {
		return -1, fmt.Sprintf("The prefix length /%d in %q is too long; it can be at most /%d.", n, field, max)
	}
	return n, ""
}

// spfIP4Reason checks a dotted-quad IPv4 address (RFC 7208 ip4-network: no leading zeros).
func spfIP4Reason(field, addr string) string {
	for i := 0; i < len(addr); i++ {
		if !isDigit(addr[i]) && addr[i] != '.' {
			if a, err := netip.ParseAddr(addr); err == nil && a.Is6() {
				return fmt.Sprintf("The term %q holds an IPv6 address; use ip6: for it.", field)
			}
			return fmt.Sprintf("The term %q does not hold a valid IPv4 address.", field)
		}
	}
	if a, err := netip.ParseAddr(addr); err != nil || !a.Is4() {
		return fmt.Sprintf("The term %q does not hold a valid IPv4 address (four numbers from 0 to 255 without leading zeros).", field)
	}
	return ""
}

// spfIP6Reason checks an IPv6 address in any RFC 4291 section 2.2 text form, without a zone.
func spfIP6Reason(field, addr string) string {
	a, err := netip.ParseAddr(addr)
	switch {
	case err == nil && a.Is4():
		return fmt.Sprintf("The term %q holds an IPv4 address; use ip4: for it.", field)
	case err != nil || !a.Is6() || a.Zone() != "":
		return fmt.Sprintf("The term %q does not hold a valid IPv6 address.", field)
	}
	return ""
}

// spfDomainSpecReason checks a domain-spec: a macro-string that ends in "." toplabel (with an
// optional trailing dot) or in a macro. A domain-spec without macros must also be a
// well-formed domain name.
func spfDomainSpecReason(field, spec string) string {
	if spec == "" {
		return fmt.Sprintf("The term %q needs a domain after the separator.", field)
	}
	if reason := spfMacroStringReason(field, spec, false); reason != "" {
		return reason
	}
	if _, err := netip.ParseAddr(spec); err == nil {
		return fmt.Sprintf("The term %q holds an IP address where a domain belongs; use ip4: or ip6: for addresses.", field)
	}
	if !strings.Contains(spec, "%") {
		name := strings.TrimSuffix(spec, ".")
		if len(name) > 253 {
			return fmt.Sprintf("The domain in %q is longer than 253 characters.", field)
		}
		for _, label := range strings.Split(name, ".") {
			if label == "" {
				return fmt.Sprintf("The domain in %q has an empty label (two dots in a row or a dot at the start).", field)
			}
			if len(label) > 63 {
				return fmt.Sprintf("The domain in %q has a label longer than 63 characters.", field)
			}
		}
	}
	if spfEndsInMacro(spec) {
		return ""
	}
	tail := strings.TrimSuffix(spec[spfLiteralTailStart(spec):], ".")
	dot := strings.LastIndexByte(tail, '.')
	if dot < 0 {
		return fmt.Sprintf("The domain in %q is not a full domain name; it must end in a top-level domain such as .com.", field)
	}
	if !spfIsTopLabel(tail[dot+1:]) {
		return fmt.Sprintf("The domain in %q does not end in a valid top-level domain (letters, digits and inner hyphens, not all digits).", field)
	}
	return ""
}

// spfMacroStringReason checks the macro-string syntax of RFC 7208 section 7.1. With anyLetter
// false, the letters c, r and t, which are only allowed in explanation text, are rejected.
func spfMacroStringReason(field, s string, anyLetter bool) string {
	for i := 0; i < len(s); {
		c := s[i]
		if c != '%' {
			if c < 0x21 || c > 0x7e {
				return fmt.Sprintf("The term %q contains the character %q, which is not allowed.", field, c)
			}
			i++
			continue
		}
		if i+1 >= len(s) {
			return fmt.Sprintf("The term %q ends with a lone '%%'; write %%%% for a literal percent sign.", field)
		}
		switch s[i+1] {
		case '%', '_', '-':
			i += 2
			continue
		case '{':
		default:
			return fmt.Sprintf("The '%%' in %q must start a macro such as %%{d}; write %%%% for a literal percent sign.", field)
		}
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			return fmt.Sprintf("The macro in %q has no closing '}'.", field)
		}
		body := s[i+2 : i+2+end]
		if reason := spfMacroBodyReason(field, body, anyLetter); reason != "" {
			return reason
		}
		i += 2 + end + 1
	}
	return ""
}

// spfMacroBodyReason checks what is between "%{" and "}": a macro letter, transformers
// (*DIGIT ["r"], the number nonzero if given) and delimiters.
func spfMacroBodyReason(field, body string, anyLetter bool) string {
	bad := fmt.Sprintf("The macro %%{%s} in %q is malformed; it must be a letter (s, l, o, d, i, p, h or v), an optional number and r, and optional delimiters.", body, field)
	if body == "" {
		return bad
	}
	letter := body[0] | 0x20 // ASCII lowercase; uppercase letters ask for URL escaping.
	switch letter {
	case 's', 'l', 'o', 'd', 'i', 'p', 'h', 'v':
	case 'c', 'r', 't':
		if !anyLetter {
			return fmt.Sprintf("The macro %%{%s} in %q is only allowed in explanation text, not in a record.", body, field)
		}
	default:
		return bad
	}
	rest := body[1:]
	digits := 0
	for digits < len(rest) && isDigit(rest[digits]) {
		digits++
	}
	if digits > 0 && strings.Trim(rest[:digits], "0") == "" {
		return fmt.Sprintf("The macro %%{%s} in %q asks for zero labels; the number must be at least 1.", body, field)
	}
	rest = rest[digits:]
	if rest != "" && (rest[0] == 'r' || rest[0] == 'R') {
		rest = rest[1:]
	}
	for i := 0; i < len(rest); i++ {
		if !strings.ContainsRune(".-+,/_=", rune(rest[i])) {
			return bad
		}
	}
	return ""
}

// spfEndsInMacro reports whether a syntactically valid macro-string ends with a macro-expand.
func spfEndsInMacro(s string) bool {
	return spfLiteralTailStart(s) == len(s) && strings.Contains(s, "%")
}

// spfLiteralTailStart returns the index just after the last macro-expand of a syntactically
// valid macro-string, or 0 if it has none.
func spfLiteralTailStart(s string) int {
	start := 0
	for i := 0; i < len(s); {
		if s[i] != '%' {
			i++
			continue
		}
		if s[i+1] == '{' {
			i += 2 + strings.IndexByte(s[i+2:], '}') + 1
		} else {
			i += 2
		}
		start = i
	}
	return start
}

// spfIsTopLabel matches the RFC 7208 toplabel: alphanumerics with at least one letter, or
// alphanumerics and hyphens that neither start nor end with a hyphen and contain one.
func spfIsTopLabel(s string) bool {
	if s == "" {
		return false
	}
	alpha, hyphen := false, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case isAlpha(c):
			alpha = true
		case isDigit(c):
		case c == '-':
			hyphen = true
		default:
			return false
		}
	}
	if hyphen {
		return s[0] != '-' && s[len(s)-1] != '-'
	}
	return alpha
}

// spfNormalName lowercases a domain name and removes its trailing dot, so that names written
// differently compare equal.
func spfNormalName(name string) string {
	return strings.ToLower(strings.TrimSuffix(name, "."))
}
