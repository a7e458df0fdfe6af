package publicaddr

import (
	"net/netip"
	"testing"
)

func TestReason(t *testing.T) {
	for _, tc := range []struct {
		addr   string
		public bool
	}{
		{"8.8.8.8", true},
		{"2a00:1450:4001:81b::200e", true},
		{"1.1.1.1", true},
		{"127.0.0.1", false},
		{"127.0.0.77", false},
		{"::1", false},
		{"0.0.0.0", false},
		{"0.1.2.3", false},
		{"::", false},
		{"10.1.2.3", false},
		{"172.16.0.1", false},
		{"192.168.1.1", false},
		{"fd00::1", false},
		{"fec0::1", false},          // site-local
		{"169.254.169.254", false},  // cloud metadata
		{"fe80::1%eth0", false},     // link-local with a zone
		{"100.64.0.1", false},       // CGNAT
		{"224.0.0.1", false},        // multicast
		{"ff02::1", false},          // multicast
		{"240.0.0.1", false},        // reserved
		{"255.255.255.255", false},  // broadcast
		{"192.0.0.8", false},        // IETF assignments
		{"198.18.0.1", false},       // benchmarking
		{"192.0.2.1", false},        // documentation
		{"2001:db8::1", false},      // documentation
		{"::ffff:127.0.0.1", false}, // IPv4-mapped loopback
		{"::ffff:8.8.8.8", true},    // IPv4-mapped public
		{"::127.0.0.1", false},      // IPv4-compatible loopback
		{"::10.0.0.1", false},       // IPv4-compatible private
		{"::8.8.8.8", true},         // IPv4-compatible public
		{"64:ff9b::10.0.0.1", false},
		{"64:ff9b::8.8.8.8", true},
		{"64:ff9b:1::a00:1", false},                     // local-use NAT64 of 10.0.0.1
		{"2002:7f00:1::1", false},                       // 6to4 of 127.0.0.1
		{"2002:c0a8:101::1", false},                     // 6to4 of 192.168.1.1
		{"2002:808:808::1", true},                       // 6to4 of 8.8.8.8
		{"2001:0:4136:e378:8000:63bf:80ff:fffe", false}, // Teredo, client 127.0.0.1
		{"2001:0:4136:e378:8000:63bf:f7f7:f7f7", true},  // Teredo, client 8.8.8.8
		{"100::1", false},                               // discard-only
	} {
		a := netip.MustParseAddr(tc.addr)
		if got := Public(a); got != tc.public {
			t.Errorf("Public(%s) = %v (%q), want %v", tc.addr, got, Reason(a), tc.public)
		}
	}
	if Public(netip.Addr{}) {
		t.Error("the zero Addr is public")
	}
}

func FuzzReason(f *testing.F) {
	f.Add([]byte{127, 0, 0, 1})
	f.Add(netip.MustParseAddr("2002:7f00:1::1").AsSlice())
	f.Fuzz(func(t *testing.T, b []byte) {
		a, ok := netip.AddrFromSlice(b)
		if !ok {
			return
		}
		r := Reason(a)
		// Whatever the form, an address that leads to loopback is never public.
		if a.Unmap().IsLoopback() && r == "" {
			t.Errorf("Reason(%s) = public", a)
		}
	})
}
