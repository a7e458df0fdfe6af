package ratelimit

import (
	"fmt"
	"net/http"
	"net/netip"
	"testing"
	"time"
)

// t0 is the injected clock's start; every test moves time by hand.
var t0 = time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)

func TestParseLimit(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Limit
		ok   bool
	}{
		{"120/m", Limit{120, time.Minute}, true},
		{" 5/s ", Limit{5, time.Second}, true},
		{"1000/h", Limit{1000, time.Hour}, true},
		{"0/m", Limit{}, false}, {"-1/m", Limit{}, false}, {"120", Limit{}, false},
		{"120/d", Limit{}, false}, {"x/m", Limit{}, false}, {"", Limit{}, false},
		{"99999999999999999999/m", Limit{}, false},
	} {
		got, err := ParseLimit(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseLimit(%q) = %v, %v; want %v, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
		if tc.ok && got.String() != fmt.Sprintf("%d/%s", tc.want.N, map[time.Duration]string{time.Second: "s", time.Minute: "m", time.Hour: "h"}[tc.want.Per]) {
			t.Errorf("String() = %q", got.String())
		}
	}
}

func TestKeysBudget(t *testing.T) {
	k := NewKeys(Limit{N: 3, Per: time.Minute}) // a token every 20s
	for i := range 3 {
		v := k.Allow(1, t0)
		if !v.OK || v.Remaining != 2-i {
			t.Fatalf("request %d: %+v, want allowed with %d left", i, v, 2-i)
		}
	}
	v := k.Allow(1, t0)
	if v.OK || v.RetryAfter != 20*time.Second || v.Remaining != 0 || !v.Reset.Equal(t0.Add(time.Minute)) {
		t.Fatalf("4th request: %+v, want refused, retry after 20s, reset in 1m", v)
	}
	// A refused request spends nothing: one token later, exactly one more passes.
	if v := k.Allow(1, t0.Add(19*time.Second)); v.OK {
		t.Fatalf("allowed before the token came back: %+v", v)
	}
	if v := k.Allow(1, t0.Add(20*time.Second)); !v.OK {
		t.Fatalf("refused after the token came back: %+v", v)
	}
	if v := k.Allow(1, t0.Add(20*time.Second)); v.OK {
		t.Fatal("two requests passed on one token")
	}
	// Another key has a budget of its own.
	if v := k.Allow(2, t0); !v.OK || v.Remaining != 2 {
		t.Fatalf("key 2 shares key 1's budget: %+v", v)
	}
}

func request(remote string, xff ...string) *http.Request {
	r, err := http.NewRequest("GET", "http://domaind.test/", nil)
	if err != nil {
		panic(err)
	}
	r.RemoteAddr = remote
	for _, h := range xff {
		r.Header.Add("X-Forwarded-For", h)
	}
	return r
}

func TestAddrsCheckDoesNotSpend(t *testing.T) {
	a := NewAddrs(Limit{N: 2, Per: time.Minute}, 0, nil)
	r := request("127.0.0.9:4000")
	for range 5 {
		if v := a.Check(r, t0); !v.OK {
			t.Fatalf("Check refused an address that spent nothing: %+v", v)
		}
	}
	a.Allow(r, t0)
	a.Allow(r, t0)
	v := a.Check(r, t0)
	if v.OK || v.RetryAfter != 30*time.Second {
		t.Fatalf("Check after the budget was spent: %+v, want refused for 30s", v)
	}
	if v := a.Check(r, t0.Add(30*time.Second)); !v.OK {
		t.Fatalf("Check once a token came back: %+v", v)
	}
	// Another port of the same host is the same client.
	if v := a.Allow(request("127.0.0.9:4001"), t0); v.OK {
		t.Fatal("a new source port escaped the limit")
	}
	if v := a.Allow(request("127.0.0.10:4000"), t0); !v.OK {
		t.Fatal("another address was limited")
	}
}

func TestAddrsGroupsIPv6By64(t *testing.T) {
	a := NewAddrs(Limit{N: 1, Per: time.Hour}, 0, nil)
	if !a.Allow(request("[2001:db8:1:2::1]:443"), t0).OK {
		t.Fatal("first request refused")
	}
	for _, same := range []string{"[2001:db8:1:2:ffff::9]:443", "[2001:db8:1:2::1%eth0]:443"} {
		if a.Allow(request(same), t0).OK {
			t.Errorf("%s is in the same /64 but has its own budget", same)
		}
	}
	if !a.Allow(request("[2001:db8:1:3::1]:443"), t0).OK {
		t.Error("another /64 shares the budget")
	}
	// An IPv4-mapped peer is the IPv4 address.
	if !a.Allow(request("192.0.2.7:80"), t0).OK {
		t.Fatal("first IPv4 request refused")
	}
	if a.Allow(request("[::ffff:192.0.2.7]:80"), t0).OK {
		t.Error("the IPv4-mapped form of an address escaped its budget")
	}
	// A peer address that does not parse is limited all the same.
	a.Allow(request("junk"), t0)
	if a.Allow(request("more junk"), t0).OK {
		t.Error("unparseable peers are not limited")
	}
}

func TestAddrsMemoryIsBounded(t *testing.T) {
	const maxTracked = 100
	a := NewAddrs(Limit{N: 5, Per: time.Minute}, maxTracked, nil)
	// A flood of distinct sources, all at one instant so that none is idle.
	for i := range 10 * maxTracked {
		a.Allow(request(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}).String()+":1"), t0)
		if n := a.Tracked(); n > maxTracked {
			t.Fatalf("after %d addresses %d are tracked, more than the bound %d", i+1, n, maxTracked)
		}
	}
	if a.Tracked() != maxTracked {
		t.Fatalf("tracked %d, want the bound %d", a.Tracked(), maxTracked)
	}
	// IPv6 sources, one per /64, are bounded the same way.
	for i := range 5 * maxTracked {
		a.Allow(request(fmt.Sprintf("[2001:db8:%x:%x::1]:1", i>>16, i&0xffff)), t0)
	}
	if a.Tracked() != maxTracked {
		t.Fatalf("after an IPv6 flood tracked %d, want %d", a.Tracked(), maxTracked)
	}
	// The flood evicts the least recently used: an address still in use keeps
	// its (spent) bucket while a flood passes by.
	busy := request("127.0.0.9:1")
	for range 5 {
		a.Allow(busy, t0)
	}
	for i := range maxTracked / 2 {
		a.Allow(request(netip.AddrFrom4([4]byte{172, 16, byte(i >> 8), byte(i)}).String()+":1"), t0)
	}
	if a.Allow(busy, t0).OK {
		t.Error("a busy address got a fresh budget because other addresses came along")
	}
	// Once a whole period has passed every bucket is full again, and the next
	// new address makes the table forget them all.
	a.Allow(request("127.0.0.10:1"), t0.Add(2*time.Minute))
	if n := a.Tracked(); n != 1 {
		t.Errorf("after every bucket went idle %d are tracked, want 1", n)
	}
}

func TestClientAddr(t *testing.T) {
	proxies, err := ParseProxies("10.0.0.0/8, 192.0.2.1, ::1")
	if err != nil {
		t.Fatal(err)
	}
	a := NewAddrs(Limit{N: 1, Per: time.Minute}, 0, proxies)
	for _, tc := range []struct {
		remote string
		xff    []string
		want   string
	}{
		// Not from a proxy: the header is the client's own word and ignored.
		{"203.0.113.5:1", []string{"198.51.100.1"}, "203.0.113.5"},
		// From a proxy: the nearest hop that is not a proxy.
		{"10.1.2.3:1", []string{"198.51.100.1"}, "198.51.100.1"},
		{"10.1.2.3:1", []string{"6.6.6.6, 198.51.100.1, 10.9.9.9"}, "198.51.100.1"},
		{"10.1.2.3:1", []string{"6.6.6.6", "198.51.100.1"}, "198.51.100.1"},
		{"[::1]:1", []string{"2001:db8::5"}, "2001:db8::5"},
		{"[::ffff:192.0.2.1]:1", []string{"198.51.100.2"}, "198.51.100.2"},
		// A proxy without the header, or with a hop that is not an address.
		{"10.1.2.3:1", nil, "10.1.2.3"},
		{"10.1.2.3:1", []string{"198.51.100.1, garbage"}, "10.1.2.3"},
		// Every hop a proxy: the farthest proxy seen.
		{"10.1.2.3:1", []string{"10.0.0.1"}, "10.0.0.1"},
	} {
		if got := a.ClientAddr(request(tc.remote, tc.xff...)); got.String() != tc.want {
			t.Errorf("RemoteAddr %s, X-Forwarded-For %q: client %s, want %s", tc.remote, tc.xff, got, tc.want)
		}
	}
	// Without trusted proxies a forged header changes nothing.
	plain := NewAddrs(Limit{N: 1, Per: time.Minute}, 0, nil)
	if got := plain.ClientAddr(request("10.1.2.3:1", "198.51.100.1")); got.String() != "10.1.2.3" {
		t.Errorf("X-Forwarded-For believed without trusted proxies: %s", got)
	}

	for _, bad := range []string{"10.0.0.0/33", "example.com", "::ffff:10.0.0.0/104", "fe80::1%eth0"} {
		if _, err := ParseProxies(bad); err == nil {
			t.Errorf("ParseProxies(%q) accepted", bad)
		}
	}
	if p, err := ParseProxies(""); err != nil || len(p) != 0 {
		t.Errorf("ParseProxies(\"\") = %v, %v", p, err)
	}
}
