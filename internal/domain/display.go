package domain

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Printable returns s as a person should see a value that came from DNS: control
// characters (an ESC that would restyle a terminal, a CR or LF that would start a
// new CSV row), bidirectional overrides and isolates (U+202E makes "gpj.exe" read
// as "exe.jpg"), zero-width characters and bytes that are not UTF-8 are shown as
// escapes such as \x1b or \u202e, so they are visible and have no effect. Every
// other character, spaces and non-ASCII letters included, is kept. The dashboard,
// the CSV export and domaind check show values found in DNS through it.
func Printable(s string) string {
	if !strings.ContainsFunc(s, hidden) && utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case hidden(r) && r < 0x80:
			fmt.Fprintf(&b, `\x%02x`, r)
		case hidden(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
		i += n
	}
	return b.String()
}

// hidden reports whether r is invisible or changes how the text around it is
// shown: controls (C0, DEL, C1) and Unicode format characters (category Cf:
// bidirectional marks, embeddings, overrides and isolates, zero-width joiners and
// spaces, the byte order mark). A tab is shown as itself.
func hidden(r rune) bool {
	if r == '\t' {
		return false
	}
	return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == utf8.RuneError
}

// Truncate returns s cut to at most n characters, with "…" after it when it
// was cut: the display rule for a customer's input or a value from DNS quoted
// in a message or a table. It never cuts a UTF-8 character in half.
func Truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:max(n, 0)]) + "…"
}

// TruncateBytes returns s cut to at most n bytes, with "…" after it when it was
// cut, where the bound is on memory or storage rather than on what a person
// reads. It too cuts only where a character starts.
func TruncateBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := max(n, 0)
	// Back to the start of the character at the cut; a run of stray
	// continuation bytes (not UTF-8) is cut anywhere, as it has no start.
	for back := cut; back > 0 && back > cut-utf8.UTFMax; back-- {
		if utf8.RuneStart(s[back]) {
			cut = back
			break
		}
	}
	return s[:cut] + "…"
}
