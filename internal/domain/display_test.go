package domain

import "testing"

func TestPrintable(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"v=spf1 include:amazonses.com ~all", "v=spf1 include:amazonses.com ~all"},
		{"ünïcode spaces\tand tabs", "ünïcode spaces\tand tabs"},
		{"\x1b[31mred", `\x1b[31mred`},
		{"a\r\nb", `a\x0d\x0ab`},
		{"\x7f\u0085", `\x7f\u0085`},
		{"photo\u202egpj.exe", `photo\u202egpj.exe`},
		{"\u2066isolate\u2069 \u200e\u200f\u061c", `\u2066isolate\u2069 \u200e\u200f\u061c`},
		{"zero\u200bwidth\ufeff", `zero\u200bwidth\ufeff`},
		{"bad \xff byte", `bad \xff byte`},
		{"", ""},
	} {
		if got := Printable(tc.in); got != tc.want {
			t.Errorf("Printable(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzPrintable(f *testing.F) {
	f.Add("\x1b\u202e\xff")
	f.Fuzz(func(t *testing.T, s string) {
		out := Printable(s)
		for _, r := range out {
			if hidden(r) {
				t.Fatalf("Printable(%q) = %q keeps %U", s, out, r)
			}
		}
	})
}
