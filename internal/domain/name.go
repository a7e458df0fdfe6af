package domain

import (
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/net/publicsuffix"
)

// Limits on a domain name's size, from RFC 1035 section 2.3.4 as applied to the presentation
// form without the root dot.
const (
	nameMaxLen      = 253
	nameMaxLabelLen = 63
)

// nameMaxInputLen bounds the text NormalizeName hands to IDNA processing, whose punycode
// encoder is quadratic in a label's length. No name that fits in 253 characters once encoded
// needs this many bytes to type: even Hangul typed as separate jamo (nine bytes that compose
// into one character) stays under 2,300. Only padding with characters IDNA ignores could reach
// it, and that is not a name anyone means.
const nameMaxInputLen = 4096

// NameError is returned by NormalizeName when what a customer typed is not a usable sending
// domain. Message is one plain English sentence naming the rule that was broken, suitable to
// show to an API user as it is; Rule names the same rule as a short word a program can test
// (one of "empty", "too_long", "scheme", "path", "port", "trailing_slash", "ip_address",
// "single_label", "invalid_label", "public_suffix", "invalid_idn" and, from
// NormalizeNameWith, "not_public").
type NameError struct {
	// Input is the text as given, before trimming.
	Input string
	// Rule is the short name of the broken rule.
	Rule string
	// Message explains the broken rule in a sentence.
	Message string
}

// Error reports the input, shortened if it is long, and the message.
func (e *NameError) Error() string {
	return fmt.Sprintf("invalid domain %q: %s", TruncateBytes(e.Input, 80), e.Message)
}

// NormalizeName turns what a customer typed into the canonical sending-domain name: surrounding
// whitespace trimmed, lower-case, internationalized labels in punycode (so "Bücher.Example"
// becomes "xn--bcher-kva.example"), and no trailing dot. A single trailing dot, as DNS users
// type it, is accepted and removed, because names elsewhere in the service carry none.
// Subdomains such as mail.example.com are valid sending domains.
//
// It returns a *NameError when the input is empty or too long; carries a scheme, path, port or
// trailing slash; is an IP address or an email address; has a single label; has a label that is
// empty, too long, starts or ends with a hyphen, or holds characters other than letters, digits
// and hyphens; is not a valid internationalized name; or is itself a public suffix such as com,
// co.uk or github.io, under which nobody owns the name. Names under top-level domains the public
// suffix list does not know, such as example.test, are accepted.
func NormalizeName(raw string) (string, error) {
	return NormalizeNameWith(raw, NameOptions{AllowPrivate: true})
}

// NameOptions are the rules NormalizeNameWith applies beyond NormalizeName's.
type NameOptions struct {
	// AllowPrivate accepts names whose top-level domain is not delegated on the
	// public internet (corp.internal, printer.local, example.test), as private
	// deployments and tests use. Off, such a name is refused with the rule
	// "not_public": checking it would read the records of the network domaind runs
	// in (split-horizon DNS) through its resolvers.
	AllowPrivate bool
}

// privateTLDs are top-level domains reserved for use outside the public DNS, or
// never delegated in it, with why. The public suffix list knows none of them
// except arpa, which it lists for reverse DNS.
var privateTLDs = map[string]string{
	"test":      "reserved for testing by RFC 6761",
	"example":   "reserved for documentation by RFC 6761",
	"invalid":   "reserved as never valid by RFC 6761",
	"localhost": "reserved for the local host by RFC 6761",
	"local":     "reserved for multicast DNS by RFC 6762",
	"onion":     "reserved for Tor onion services by RFC 7686",
	"alt":       "reserved for names outside DNS by RFC 9476",
	"arpa":      "reserved for the infrastructure of the internet, and home.arpa for home networks by RFC 8375",
	"internal":  "reserved by ICANN for private networks",
	"corp":      "never delegated by ICANN, being widely used in private networks",
	"home":      "never delegated by ICANN, being widely used in private networks",
	"lan":       "not a top-level domain of the public DNS, and widely used in private networks",
	"intranet":  "not a top-level domain of the public DNS, and widely used in private networks",
	"private":   "not a top-level domain of the public DNS, and widely used in private networks",
}

// NormalizeNameWith is NormalizeName with the rules of opts: unless
// opts.AllowPrivate, a name must also sit under a top-level domain of the public
// DNS, one the ICANN section of the public suffix list names and not one reserved
// for private use (rule "not_public").
func NormalizeNameWith(raw string, opts NameOptions) (string, error) {
	name, err := normalizeName(raw)
	if err != nil || opts.AllowPrivate {
		return name, err
	}
	tld := name[strings.LastIndexByte(name, '.')+1:]
	why, private := privateTLDs[tld]
	if _, icann := publicsuffix.PublicSuffix(tld); !icann && !private {
		private, why = true, "not a top-level domain of the public DNS"
	}
	if private {
		return "", &NameError{Input: raw, Rule: "not_public", Message: fmt.Sprintf(
			"domain must be under a public top-level domain such as .com; .%s is %s, and domaind checks only names on the public internet", tld, why)}
	}
	return name, nil
}

func normalizeName(raw string) (string, error) {
	fail := func(rule, msg string) (string, error) {
		return "", &NameError{Input: raw, Rule: rule, Message: msg}
	}
	s := strings.TrimSpace(raw)
	if s == "" {
		return fail("empty", "domain must not be empty")
	}
	if len(s) > nameMaxInputLen {
		return fail("too_long", nameTooLongMsg)
	}
	// The idna package turns invalid bytes into U+FFFD and encodes that, which would make a
	// name out of garbage.
	if !utf8.ValidString(s) {
		return fail("invalid_idn", "domain must be text in UTF-8, and this contains bytes that are not")
	}
	// Shape checks come first, on the text as typed, so that a pasted URL, address or email
	// gets a message about what it is rather than about the first odd character in it.
	if rule, msg := nameCheckShape(s); rule != "" {
		return fail(rule, msg)
	}
	// Label checks before IDNA processing give plain messages for the common mistakes,
	// which the idna package would only report as an invalid label.
	if s == "." {
		return fail("empty", `domain must not be empty; "." is the DNS root, not a domain`)
	}
	if msg := nameCheckLabels(strings.TrimSuffix(s, "."), false); msg != "" {
		return fail("invalid_label", msg)
	}

	// idna.Lookup maps case and compatibility forms (full-width letters, the ideographic full
	// stop), checks hyphens, joiners and bidi rules, and encodes punycode. It does not check
	// label or name lengths, empty labels, IP addresses or trailing dots, so the checks
	// around it do.
	name, err := idna.Lookup.ToASCII(s)
	if err != nil {
		if nameIsASCII(s) {
			return fail("invalid_idn", "domain contains an xn-- label that is not a valid internationalized label")
		}
		return fail("invalid_idn", "domain contains characters, or combinations of characters, that are not allowed in an internationalized domain name")
	}
	name = strings.TrimSuffix(name, ".")
	if name == "" {
		return fail("empty", `domain must not be empty; "." is the DNS root, not a domain`)
	}
	if len(name) > nameMaxLen {
		return fail("too_long", nameTooLongMsg)
	}
	// Mapping can turn typed characters into digits and dots, so look for an address again.
	if nameLooksLikeIP(name) {
		return fail("ip_address", nameIPMsg)
	}
	if msg := nameCheckLabels(name, true); msg != "" {
		return fail("invalid_label", msg)
	}
	if !strings.Contains(name, ".") {
		return fail("single_label", "domain must have at least two labels, such as example.com, not a single name like localhost or com")
	}
	if publicsuffix.List.PublicSuffix(name) == name {
		return fail("public_suffix", fmt.Sprintf("domain must not be a public suffix such as %s, under which others register names; use a name registered under it, such as example.%s", name, name))
	}
	return name, nil
}

const (
	nameTooLongMsg = "domain must be at most 253 characters long, counting international characters in their punycode form"
	nameIPMsg      = "domain must be a name such as example.com, not an IP address"
)

// nameCheckShape looks for things that are not part of a domain name but often arrive with
// one: URLs, addresses with ports, IP addresses and email addresses. It returns the broken rule
// and its message, or two empty strings.
func nameCheckShape(s string) (rule, msg string) {
	if strings.Contains(s, "://") {
		return "scheme", "domain must not include a scheme such as https://"
	}
	// Before the port check, because IPv6 addresses are full of colons.
	if nameLooksLikeIP(s) {
		return "ip_address", nameIPMsg
	}
	if i := strings.IndexByte(s, '/'); i >= 0 {
		if i == len(s)-1 {
			return "trailing_slash", "domain must not end with a slash"
		}
		return "path", "domain must not include a path such as /index.html; give only the name, like example.com"
	}
	// Before the port check, so that mailto:user@example.com is called an email address.
	if strings.Contains(s, "@") {
		return "invalid_label", "domain must be a domain such as example.com, not an email address; use the part after the @"
	}
	if i := strings.LastIndexByte(s, ':'); i >= 0 && nameAllDigits(s[i+1:], true) {
		return "port", "domain must not include a port such as :25"
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf || c == '.' || c == '-' || nameIsAlnum(c) {
			continue
		}
		what := fmt.Sprintf("%q", string(rune(c)))
		switch c {
		case '_':
			what = "underscores"
		case ' ', '\t', '\n', '\r', '\v', '\f':
			what = "spaces"
		}
		return "invalid_label", "domain may contain only letters, digits, hyphens and dots, not " + what
	}
	return "", ""
}

// nameLooksLikeIP reports whether s is an IPv4 or IPv6 address, with or without brackets, a
// port or a trailing dot, or is made only of digits and dots the way the older IPv4 forms
// (1.2.3, 010.0.0.1) are.
func nameLooksLikeIP(s string) bool {
	if _, err := netip.ParseAddrPort(s); err == nil {
		return true
	}
	host := strings.TrimSuffix(s, ".")
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	for label := range strings.SplitSeq(host, ".") {
		if !nameAllDigits(label, false) {
			return false
		}
	}
	return true
}

// nameCheckLabels checks each dot-separated label of name, which has no trailing dot. Before
// IDNA processing (encoded false) labels may hold non-ASCII characters, whose length is only
// known once encoded, so only the checks that hold either way are made. It returns a message
// for the first broken rule, or "".
func nameCheckLabels(name string, encoded bool) string {
	labels := strings.Split(name, ".")
	for _, label := range labels {
		if label == "" {
			return "domain must not contain an empty label, as in a..com or .example.com"
		}
		if (encoded || nameIsASCII(label)) && len(label) > nameMaxLabelLen {
			return "each label of a domain (the parts between dots) must be at most 63 characters long"
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return "labels of a domain must not start or end with a hyphen"
		}
		// RFC 5891 section 4.2.3.1 reserves this form for encodings such as punycode's xn--.
		// Only on ASCII labels: in others bytes are not characters, and IDNA checks them.
		if nameIsASCII(label) && len(label) >= 4 && label[2:4] == "--" && !strings.EqualFold(label[:2], "xn") {
			return "labels of a domain must not have hyphens in both the third and fourth places unless they start with xn--"
		}
		if encoded {
			for i := 0; i < len(label); i++ {
				if c := label[i]; c != '-' && !nameIsAlnum(c) {
					return "domain may contain only letters, digits, hyphens and dots"
				}
			}
		}
	}
	// No top-level domain is all digits, and allowing one would let IPv4-like names such
	// as 0x7f.1 through.
	if nameAllDigits(labels[len(labels)-1], false) {
		return "the last label of a domain (its top-level domain) must not be all digits"
	}
	return ""
}

// nameAllDigits reports whether s is made only of ASCII digits; the empty string counts only
// when allowEmpty is set.
func nameAllDigits(s string, allowEmpty bool) bool {
	if s == "" {
		return allowEmpty
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// nameIsAlnum reports whether c is an ASCII letter of either case or an ASCII digit.
func nameIsAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// nameIsASCII reports whether s holds only ASCII bytes.
func nameIsASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
