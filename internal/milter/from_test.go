package milter

import (
	"strings"
	"testing"

	"github.com/domaind/domaind/internal/domain"
)

func TestFromDomain(t *testing.T) {
	for _, tc := range []struct {
		in     string
		domain string
		result Result
	}{
		{"a@example.com", "example.com", ""},
		{"Alice <alice@Example.COM>", "example.com", ""},
		// A trailing dot is the root, written out: the same domain.
		{"a@example.com.", "example.com", ""},
		{"Alice <alice@EXAMPLE.com.>", "example.com", ""},
		{"\"Doe, Jane\" <jane@example.com> (work)", "example.com", ""},
		// Display names in any charset: only the address matters.
		{"=?windows-1252?q?J=F6rg?= <j@example.com>", "example.com", ""},
		{"=?utf-8?b?w7xiZXI=?= <u@example.com>", "example.com", ""},
		// Folded by the MTA.
		{"Alice\r\n <alice@example.com>", "example.com", ""},
		{"Alice\n\t<alice@example.com>", "example.com", ""},
		// Internationalized domains become A-labels, as domaind stores them.
		{"a@bücher.example", "xn--bcher-kva.example", ""},
		// Several authors in one domain sign for it; in two, they cannot.
		{"a@example.com, B <b@EXAMPLE.com>", "example.com", ""},
		{"team: a@example.com, b@example.com;", "example.com", ""},
		{"a@example.com, b@example.org", "", ResultMultipleFrom},
		{"", "", ResultBadFrom},
		{"Undisclosed recipients:;", "", ResultBadFrom},
		{"not an address", "", ResultBadFrom},
		{"a@", "", ResultBadFrom},
		{"<a@[192.0.2.1]>", "", ResultBadFrom},
		{"a@localhost", "", ResultBadFrom},
		{"a@b@c", "", ResultBadFrom},
		{"a@example..com", "", ResultBadFrom},
		{strings.Repeat("a", maxFromLen) + "@example.com", "", ResultBadFrom},
	} {
		d, r := FromDomain(tc.in)
		if d != tc.domain || r != tc.result {
			t.Errorf("FromDomain(%q) = %q, %q; want %q, %q", tc.in, d, r, tc.domain, tc.result)
		}
	}
}

// FuzzFromDomain checks that any From value gives either a normalized domain or a
// reason, quickly and without a panic.
func FuzzFromDomain(f *testing.F) {
	for _, s := range []string{
		"a@example.com", "Alice <alice@EXAMPLE.com.>", "a@example.com, b@example.org",
		"=?windows-1252?q?J=F6rg?= <j@example.com>", "team: a@x.example, b@x.example;", "<a@[192.0.2.1]>",
		"\"q\\\"uoted\"@example.com", "a@bücher.example", "(comment) a@example.com (c)", "a@example.com....",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, r := FromDomain(s)
		if (d == "") == (r == "") {
			t.Fatalf("FromDomain(%q) = %q, %q: want exactly one of a domain and a reason", s, d, r)
		}
		if d != "" {
			if n, err := domain.NormalizeName(d); err != nil || n != d {
				t.Fatalf("FromDomain(%q) = %q, which is not a normalized name (%q, %v)", s, d, n, err)
			}
		}
	})
}
