package dnscheck

import (
	"testing"

	"github.com/miekg/dns"
)

func TestTXTValue(t *testing.T) {
	for _, tc := range []struct {
		zone string // one TXT record in zone-file text
		want string
	}{
		{`x. 60 IN TXT "plain"`, "plain"},
		{`x. 60 IN TXT "split " "in two"`, "split in two"},
		{`x. 60 IN TXT "\"quoted\""`, `"quoted"`},
		{`x. 60 IN TXT "back\\slash"`, `back\slash`},
		{`x. 60 IN TXT "semi;colon"`, "semi;colon"},
		{`x. 60 IN TXT "caf\195\169"`, "café"},
		{`x. 60 IN TXT "<script>alert(1)</script>"`, "<script>alert(1)</script>"},
	} {
		rr, err := dns.NewRR(tc.zone)
		if err != nil {
			t.Fatal(err)
		}
		// Round-trip through the wire, as answers arrive.
		buf := make([]byte, 512)
		n, err := dns.PackRR(rr, buf, 0, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		back, _, err := dns.UnpackRR(buf[:n], 0)
		if err != nil {
			t.Fatal(err)
		}
		if got := txtValue(back.(*dns.TXT).Txt); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.zone, got, tc.want)
		}
	}
}
