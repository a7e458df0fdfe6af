package api

import (
	"strings"
	"testing"
)

func TestTXTStrings(t *testing.T) {
	a255 := strings.Repeat("a", 255)
	cases := []struct {
		name, in, want string
	}{
		{"empty", "", `""`},
		{"plain", "v=spf1 ~all", `"v=spf1 ~all"`},
		{"exactly 255 bytes", a255, `"` + a255 + `"`},
		{"256 bytes", a255 + "b", `"` + a255 + `" "b"`},
		{"quote and backslash", `a"b\c`, `"a\"b\\c"`},
		{"semicolon stays", "p=none;", `"p=none;"`},
		{"control bytes", "a\nb\tc\x7f", `"a\010b\009c\127"`},
		{"non-ASCII", "é", `"\195\169"`},
		// The split counts bytes before escaping, so an escape is never cut.
		{"quote at the split", strings.Repeat("a", 254) + `"` + "b", `"` + strings.Repeat("a", 254) + `\""` + ` "b"`},
		{"quote after the split", a255 + `"`, `"` + a255 + `" "\""`},
		{"character across the split", strings.Repeat("a", 254) + "é", `"` + strings.Repeat("a", 254) + `\195" "\169"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := txtStrings(c.in); got != c.want {
				t.Errorf("txtStrings(%q)\n got %s\nwant %s", c.in, got, c.want)
			}
		})
	}
}

func TestZoneName(t *testing.T) {
	cases := []struct{ in, want string }{
		{"example.com", "example.com."},
		{"example.com.", "example.com."},
		{"_dmarc.example.com", "_dmarc.example.com."},
		{"a b;c", `a\032b\059c.`},
		{"x\ny", `x\010y.`},
	}
	for _, c := range cases {
		if got := zoneName(c.in); got != c.want {
			t.Errorf("zoneName(%q) = %s, want %s", c.in, got, c.want)
		}
	}
}

func TestCSVSafe(t *testing.T) {
	cases := []struct{ in, want string }{
		{"=1+1", "'=1+1"},
		{"+1", "'+1"},
		{"-1", "'-1"},
		{"@SUM(A1)", "'@SUM(A1)"},
		{"\t=1", "'\t=1"},
		{"\r=1", "'\r=1"},
		{"v=spf1 -all", "v=spf1 -all"},
		{"", ""},
		{"'already", "'already"},
	}
	for _, c := range cases {
		if got := csvSafe(c.in); got != c.want {
			t.Errorf("csvSafe(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestCommentText(t *testing.T) {
	if got := commentText("a\nexample.com. IN A 1.2.3.4\r"); strings.ContainsAny(got, "\r\n") {
		t.Errorf("commentText kept a line break: %q", got)
	}
}
