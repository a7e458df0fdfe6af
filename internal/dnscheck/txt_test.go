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

// TestIsSPFIsDMARC checks which TXT values IsSPF and IsDMARC take for records
// of their kind: the values of SPF records, of DMARC records, and of neither.
// Every value is put to both, so that a value taken for both kinds, or for the
// wrong one, fails too.
func TestIsSPFIsDMARC(t *testing.T) {
	for _, tc := range []struct {
		spf, dmarc bool
		txts       []string
	}{
		{spf: true, txts: []string{"v=spf1", "v=spf1 -all", "V=SPF1 include:amazonses.com ~all"}},
		{dmarc: true, txts: []string{
			"v=DMARC1; p=none;", "v=DMARC1;p=reject", "v = DMARC1 ; p=none", "V=DMARC1; p=none", "v=DMARC1",
			"v=DMARC1\tp=none", // recognised, so that ParseDMARC can explain the missing ';'
		}},
		{txts: []string{
			"v=spf10", "v=spf1x -all", "v=spf1\t-all", " v=spf1 -all", `"v=spf1 -all"`, "v=spf2.0/pra -all", "spf1 -all",
			"v=dmarc1; p=none", "v=DMARC10; p=none", "v=DMARC1x", " v=DMARC1; p=none", `"v=DMARC1; p=none"`, "p=none; v=DMARC1",
			"",
		}},
	} {
		for _, txt := range tc.txts {
			if got := IsSPF(txt); got != tc.spf {
				t.Errorf("IsSPF(%q) = %v, want %v", txt, got, tc.spf)
			}
			if got := IsDMARC(txt); got != tc.dmarc {
				t.Errorf("IsDMARC(%q) = %v, want %v", txt, got, tc.dmarc)
			}
		}
	}
}
