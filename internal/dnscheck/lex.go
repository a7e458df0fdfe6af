package dnscheck

import (
	"strings"

	"github.com/domaind/domaind/internal/domain"
)

// The lexical rules the DKIM, SPF and DMARC parsers share. DMARC records use
// DKIM's tag-list syntax (RFC 7489 section 6.4 refers to RFC 6376 section 3.2),
// and all three use the ALPHA and DIGIT of RFC 5234 appendix B.1, so each rule is written once here
// rather than in the parser that happened to need it first.

// quoteLen is how many characters of a value read from DNS a message quotes, so
// that a long key or record does not swamp the sentence around it.
const quoteLen = 40

// isAlpha matches ALPHA (RFC 5234 appendix B.1): an ASCII letter.
func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// isDigit matches DIGIT (RFC 5234 appendix B.1): an ASCII digit.
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// allDigits reports whether s is a non-empty string of ASCII digits.
func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// isTagSpace matches the whitespace that folding white space (FWS) and WSP
// allow around tags (RFC 6376 section 3.2).
func isTagSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// trimWSP removes the whitespace isTagSpace matches from both ends of s.
func trimWSP(s string) string { return strings.Trim(s, " \t\r\n") }

// isTagName matches tag-name = ALPHA *ALNUMPUNC, where ALNUMPUNC is ALPHA,
// DIGIT or "_" (RFC 6376 section 3.2).
func isTagName(s string) bool {
	if s == "" || !isAlpha(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !(isAlpha(s[i]) || isDigit(s[i]) || s[i] == '_') {
			return false
		}
	}
	return true
}

// lowerFirst lowercases the first letter of a sentence that goes inside another.
func lowerFirst(s string) string {
	if s != "" && s[0] >= 'A' && s[0] <= 'Z' {
		return string(s[0]+'a'-'A') + s[1:]
	}
	return s
}

// firstField returns the text of a record up to its first space, cut for
// quoting in a message.
func firstField(txt string) string {
	f, _, _ := strings.Cut(txt, " ")
	return domain.Truncate(f, 20)
}
