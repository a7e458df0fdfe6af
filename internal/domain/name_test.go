package domain

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// nameTestOfLen builds an ASCII name of exactly n characters out of 63-character labels, the
// last one shorter, under the top-level domain "test".
func nameTestOfLen(n int) string {
	const tld = ".test"
	var labels []string
	rest := n - len(tld)
	for rest > 0 {
		l := min(rest, 63)
		if rest-l == 1 {
			// A leftover of one character would have no room for its dot.
			l--
		}
		labels = append(labels, strings.Repeat("a", l))
		rest -= l + 1
	}
	return strings.Join(labels, ".") + tld
}

func TestNormalizeNameAccepts(t *testing.T) {
	label63 := strings.Repeat("a", 63)
	longest := nameTestOfLen(253)
	if len(longest) != 253 {
		t.Fatalf("nameTestOfLen(253) has length %d", len(longest))
	}
	tests := []struct {
		name, in, want string
	}{
		{"plain", "example.com", "example.com"},
		{"subdomain", "mail.example.com", "mail.example.com"},
		{"surrounding whitespace", " \t example.com \r\n", "example.com"},
		{"upper case", "Example.COM", "example.com"},
		{"single trailing dot", "example.com.", "example.com"},
		{"whitespace, case and dot", "  MAIL.Example.Com.  ", "mail.example.com"},
		{"idn", "Bücher.Example", "xn--bcher-kva.example"},
		{"idn trailing dot", "bücher.example.", "xn--bcher-kva.example"},
		{"punycode upper case", "XN--BCHER-KVA.example", "xn--bcher-kva.example"},
		{"sharp s kept, not mapped to ss", "faß.de", "xn--fa-hia.de"},
		{"full-width letters", "ｅｘａｍｐｌｅ.com", "example.com"},
		{"ideographic full stop", "example。com", "example.com"},
		{"ideographic full stop at end", "example.com。", "example.com"},
		{"unknown top-level domain", "example.test", "example.test"},
		{"digits and hyphens inside labels", "123.a-b.example.com", "123.a-b.example.com"},
		{"one-letter labels", "a.b.c", "a.b.c"},
		{"label of 63", label63 + ".com", label63 + ".com"},
		{"name of 253", longest, longest},
		{"name of 253 with trailing dot", longest + ".", longest},
		{"under a private suffix", "me.github.io", "me.github.io"},
		{"under an idn public suffix", "example.公司.cn", "example.xn--55qx5d.cn"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NormalizeName(tt.in)
			if err != nil {
				t.Fatalf("NormalizeName(%q) error: %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("NormalizeName(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestNormalizeNameRejects(t *testing.T) {
	label64 := strings.Repeat("a", 64)
	// 251 characters as typed, but the last label before .test, 53 a's and an ü, becomes
	// xn--, 53 a's, a hyphen and three more: 61 characters, and the name 258.
	idnTooLong := strings.Replace(nameTestOfLen(250), ".test", "ü.test", 1)
	if n := utf8.RuneCountInString(idnTooLong); n != 251 {
		t.Fatalf("idnTooLong has %d characters", n)
	}
	tests := []struct {
		name, in, rule string
		// msgHas, when set, is text the message must contain.
		msgHas string
	}{
		{"empty", "", "empty", ""},
		{"only whitespace", " \t\n", "empty", ""},
		{"only a dot", ".", "empty", ""},
		{"only an ideographic full stop", "。", "empty", ""},

		{"254 characters", nameTestOfLen(254), "too_long", "253"},
		{"over 253 only after punycode", idnTooLong, "too_long", "punycode"},
		// Soft hyphens are ignored by IDNA, so only the input bound rejects this.
		{"huge input", "example" + strings.Repeat("\u00ad", 3000) + ".com", "too_long", ""},

		{"https scheme", "https://example.com", "scheme", "https://"},
		{"http scheme with slash", "http://example.com/", "scheme", ""},
		{"path", "example.com/a", "path", ""},
		{"path with trailing slash", "example.com/a/", "path", ""},
		{"trailing slash", "example.com/", "trailing_slash", ""},
		{"port", "example.com:25", "port", ":25"},
		{"empty port", "example.com:", "port", ""},

		{"ipv4", "192.0.2.1", "ip_address", ""},
		{"ipv4 trailing dot", "192.0.2.1.", "ip_address", ""},
		{"ipv4 with port", "192.0.2.1:25", "ip_address", ""},
		{"ipv4 in brackets", "[192.0.2.1]", "ip_address", ""},
		{"ipv6", "2001:db8::1", "ip_address", ""},
		{"ipv6 in brackets", "[2001:db8::1]", "ip_address", ""},
		{"ipv6 with port", "[2001:db8::1]:25", "ip_address", ""},
		{"ipv6 with zone", "fe80::1%eth0", "ip_address", ""},
		{"short ipv4 form", "127.1", "ip_address", ""},
		{"ipv4 leading zeros", "010.0.0.1", "ip_address", ""},
		{"full-width ipv4", "１９２.０.２.１", "ip_address", ""},

		{"localhost", "localhost", "single_label", ""},
		{"bare top-level domain", "com", "single_label", ""},
		{"top-level domain with dot", "COM.", "single_label", ""},

		{"empty label", "a..com", "invalid_label", "empty label"},
		{"leading dot", ".example.com", "invalid_label", "empty label"},
		{"two trailing dots", "example.com..", "invalid_label", "empty label"},
		{"label of 64", label64 + ".com", "invalid_label", "63"},
		{"idn label over 63 after punycode", strings.Repeat("ü", 60) + ".com", "invalid_label", "63"},
		{"leading hyphen", "-a.example.com", "invalid_label", "hyphen"},
		{"trailing hyphen", "a-.example.com", "invalid_label", "hyphen"},
		{"hyphen on idn label", "bücher-.example", "invalid_label", "hyphen"},
		{"hyphens in third and fourth place", "ab--c.example.com", "invalid_label", "third and fourth"},
		{"underscore", "_dmarc.example.com", "invalid_label", "underscores"},
		{"inner space", "exa mple.com", "invalid_label", "spaces"},
		{"email address", "user@example.com", "invalid_label", "email address"},
		{"mailto", "mailto:user@example.com", "invalid_label", "email address"},
		{"query", "example.com?a=b", "invalid_label", `"?"`},
		{"wildcard", "*.example.com", "invalid_label", `"*"`},
		{"colon that is no port", "example.com:smtp", "invalid_label", `":"`},
		{"numeric top-level domain", "example.123", "invalid_label", "all digits"},
		{"hex ipv4 form", "0x7f.1", "invalid_label", "all digits"},

		{"com via public suffix list", "co.uk", "public_suffix", "co.uk"},
		{"public suffix upper case with dot", " CO.UK. ", "public_suffix", ""},
		{"private suffix", "github.io", "public_suffix", ""},
		{"wildcard suffix", "anything.ck", "public_suffix", ""},
		{"idn public suffix", "公司.cn", "public_suffix", "xn--55qx5d.cn"},

		{"zero width joiner", "a\u200db.example", "invalid_idn", ""},
		{"no-break space inside", "a\u00a0b.example", "invalid_idn", ""},
		{"mixed directions", "אa.example", "invalid_idn", ""},
		{"invalid utf-8", "0.\xff", "invalid_idn", "UTF-8"},
		{"bad punycode", "xn--zz.example", "invalid_idn", "xn--"},
		{"punycode of a disallowed character", "xn--a.example", "invalid_idn", "xn--"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NormalizeName(tt.in)
			if err == nil {
				t.Fatalf("NormalizeName(%q) = %q, want error with rule %q", tt.in, got, tt.rule)
			}
			if got != "" {
				t.Errorf("NormalizeName(%q) returned %q with an error", tt.in, got)
			}
			var ne *NameError
			if !errors.As(err, &ne) {
				t.Fatalf("NormalizeName(%q) error %T is not a *NameError", tt.in, err)
			}
			if ne.Rule != tt.rule {
				t.Errorf("NormalizeName(%q) rule = %q (%s), want %q", tt.in, ne.Rule, ne.Message, tt.rule)
			}
			if ne.Input != tt.in {
				t.Errorf("Input = %q, want the raw input %q", ne.Input, tt.in)
			}
			if ne.Message == "" || !strings.Contains(err.Error(), ne.Message) {
				t.Errorf("Error() = %q does not carry the message %q", err.Error(), ne.Message)
			}
			if tt.msgHas != "" && !strings.Contains(ne.Message, tt.msgHas) {
				t.Errorf("message %q does not mention %q", ne.Message, tt.msgHas)
			}
		})
	}
}

func TestNameErrorShortensLongInput(t *testing.T) {
	in := strings.Repeat("ü", 3000)
	_, err := NormalizeName(in)
	if err == nil {
		t.Fatal("NormalizeName accepted 3000 ü")
	}
	msg := err.Error()
	if len(msg) > 300 || !strings.Contains(msg, "…") {
		t.Errorf("Error() of a long input is not shortened: %d bytes", len(msg))
	}
	if !utf8.ValidString(msg) {
		t.Errorf("Error() cut a character in half: %q", msg)
	}
}

var nameRules = map[string]bool{
	"empty": true, "too_long": true, "scheme": true, "path": true, "port": true,
	"trailing_slash": true, "ip_address": true, "single_label": true, "invalid_label": true,
	"public_suffix": true, "invalid_idn": true,
}

func FuzzNormalizeName(f *testing.F) {
	// Seeds live in testdata/fuzz/FuzzNormalizeName.
	f.Fuzz(func(t *testing.T, in string) {
		out, err := NormalizeName(in)
		if err != nil {
			var ne *NameError
			if !errors.As(err, &ne) {
				t.Fatalf("NormalizeName(%q) error %T is not a *NameError", in, err)
			}
			if !nameRules[ne.Rule] || ne.Message == "" || ne.Input != in {
				t.Fatalf("NormalizeName(%q) gave a malformed error %#v", in, ne)
			}
			if out != "" {
				t.Fatalf("NormalizeName(%q) returned %q with an error", in, out)
			}
			return
		}
		if out == "" || len(out) > 253 || strings.HasSuffix(out, ".") || !strings.Contains(out, ".") {
			t.Fatalf("NormalizeName(%q) = %q: empty, too long, single-label or with a trailing dot", in, out)
		}
		for i := 0; i < len(out); i++ {
			c := out[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
				t.Fatalf("NormalizeName(%q) = %q holds %q, not lower-case letters, digits, hyphens and dots", in, out, c)
			}
		}
		again, err := NormalizeName(out)
		if err != nil || again != out {
			t.Fatalf("NormalizeName(%q) = %q, %v; not idempotent on the output of %q", out, again, err, in)
		}
		// What the customer might equally have typed must give the same name.
		typed := " " + strings.ToUpper(out) + ". "
		if again, err := NormalizeName(typed); err != nil || again != out {
			t.Fatalf("NormalizeName(%q) = %q, %v; want %q", typed, again, err, out)
		}
	})
}

// TestNormalizeNameWithPrivate refuses names outside the public DNS unless the
// option allows them, and leaves public names, and NormalizeName, as they were.
func TestNormalizeNameWithPrivate(t *testing.T) {
	for _, tc := range []struct {
		in     string
		public bool
		inMsg  string
	}{
		{"example.com", true, ""},
		{"mail.example.co.uk", true, ""},
		{"foo.github.io", true, ""},
		{"Bücher.de", true, ""},
		{"corp.internal", false, ".internal is reserved by ICANN for private networks"},
		{"printer.local", false, "RFC 6762"},
		{"router.home.arpa", false, "RFC 8375"},
		{"a.localhost", false, "RFC 6761"},
		{"example.test", false, "RFC 6761"},
		{"x.example", false, "RFC 6761"},
		{"intra.corp", false, "never delegated"},
		{"nas.lan", false, "private networks"},
		{"service.consul", false, "not a top-level domain of the public DNS"},
	} {
		got, err := NormalizeNameWith(tc.in, NameOptions{})
		if tc.public {
			if err != nil {
				t.Errorf("NormalizeNameWith(%q) = %v, want it accepted", tc.in, err)
			}
			continue
		}
		var ne *NameError
		if !errors.As(err, &ne) || ne.Rule != "not_public" || !strings.Contains(ne.Message, tc.inMsg) {
			t.Errorf("NormalizeNameWith(%q) = %q, %v; want rule not_public with %q", tc.in, got, err, tc.inMsg)
		}
		if _, err := NormalizeNameWith(tc.in, NameOptions{AllowPrivate: true}); err != nil {
			t.Errorf("NormalizeNameWith(%q, AllowPrivate) = %v, want it accepted", tc.in, err)
		}
		if _, err := NormalizeName(tc.in); err != nil {
			t.Errorf("NormalizeName(%q) = %v, want it accepted as before", tc.in, err)
		}
	}
	// The lexical rules still come first.
	var ne *NameError
	if _, err := NormalizeNameWith("com", NameOptions{}); !errors.As(err, &ne) || ne.Rule != "single_label" {
		t.Errorf("NormalizeNameWith(com) = %v, want single_label", err)
	}
}
