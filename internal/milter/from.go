package milter

import (
	"io"
	"mime"
	"net/mail"
	"strings"

	"github.com/domaind/domaind/internal/domain"
)

// addressParser parses From fields. Its word decoder passes every charset through
// undecoded: only the addresses matter here, and net/mail's default decoder
// rejects a display name in any charset beyond UTF-8, ISO-8859-1 and US-ASCII,
// which would leave common mail ("=?windows-1252?q?J=F6rg?=") unsigned.
var addressParser = mail.AddressParser{WordDecoder: &mime.WordDecoder{
	CharsetReader: func(_ string, r io.Reader) (io.Reader, error) { return r, nil },
}}

// maxFromLen bounds the From field FromDomain parses. A From field is a few dozen
// bytes; the bound keeps a hostile one from costing more than a moment to parse.
const maxFromLen = 16 << 10

// FromDomain returns the domain of the addresses in a From field's value,
// normalized as domaind stores names (lower case, A-labels, no trailing dot), or
// the Result that says why the message cannot be signed:
//   - ResultBadFrom when the value is too long, does not parse as an address list,
//     names no address, or names an address whose domain is not a domain name
//     (an address literal such as [192.0.2.1], say);
//   - ResultMultipleFrom when it names addresses in more than one domain. One
//     signature cannot align with authors in two domains, and DMARC receivers
//     may evaluate, or reject, each (RFC 7489 section 6.6.1). Several authors
//     in one domain are signed for it.
func FromDomain(value string) (string, Result) {
	if len(value) > maxFromLen {
		return "", ResultBadFrom
	}
	// Unfold: the MTA passes a folded field with its line breaks.
	value = strings.NewReplacer("\r\n", "", "\r", "", "\n", "").Replace(value)
	list, err := addressParser.ParseList(value)
	if err != nil {
		// net/mail rejects a domain written with the root's trailing dot
		// ("a@example.com."), which DNS allows and some senders write: retry
		// once without it.
		if fixed := stripDomainDots(value); fixed != value {
			list, err = addressParser.ParseList(fixed)
		}
		if err != nil {
			return "", ResultBadFrom
		}
	}
	if len(list) == 0 {
		return "", ResultBadFrom
	}
	var name string
	for _, a := range list {
		at := strings.LastIndexByte(a.Address, '@')
		if at < 0 {
			return "", ResultBadFrom
		}
		d, err := domain.NormalizeName(a.Address[at+1:])
		if err != nil {
			return "", ResultBadFrom
		}
		if name != "" && d != name {
			return "", ResultMultipleFrom
		}
		name = d
	}
	return name, ""
}

// stripDomainDots removes the dots that end a domain after an @ in s: the
// characters of a dot-atom domain run to its first character that cannot be in
// one, and any dots at the end of that run go.
func stripDomainDots(s string) string {
	var b strings.Builder
	for {
		at := strings.IndexByte(s, '@')
		if at < 0 {
			b.WriteString(s)
			return b.String()
		}
		end := at + 1
		for end < len(s) && isDomainByte(s[end]) {
			end++
		}
		run := strings.TrimRight(s[at+1:end], ".")
		b.WriteString(s[:at+1])
		b.WriteString(run)
		s = s[end:]
	}
}

// isDomainByte reports whether c may be part of a dot-atom domain: letters,
// digits, hyphens, dots, and the bytes of UTF-8 sequences (internationalized
// mail). RFC 5322's atext allows more, but no DNS name uses it.
func isDomainByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c >= 0x80
}
