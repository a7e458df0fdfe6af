package dnscheck

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/domaind/domaind/internal/dnstest"
)

// TestSPFExpand checks macro expansion against the examples of RFC 7208 section 7.4.
func TestSPFExpand(t *testing.T) {
	v4 := spfMacroValues{
		sender: "strong-bad@email.example.com", local: "strong-bad", senderDomain: "email.example.com",
		domain: "email.example.com", ip: netip.MustParseAddr("192.0.2.3"), helo: "mx.example.org",
	}
	v6 := v4
	v6.ip = netip.MustParseAddr("2001:db8::cb01")
	for _, tc := range []struct {
		spec string
		v    spfMacroValues
		want string
	}{
		{"%{s}", v4, "strong-bad@email.example.com"},
		{"%{o}", v4, "email.example.com"},
		{"%{d}", v4, "email.example.com"},
		{"%{d4}", v4, "email.example.com"},
		{"%{d3}", v4, "email.example.com"},
		{"%{d2}", v4, "example.com"},
		{"%{d1}", v4, "com"},
		{"%{dr}", v4, "com.example.email"},
		{"%{d2r}", v4, "example.email"},
		{"%{l}", v4, "strong-bad"},
		{"%{l-}", v4, "strong.bad"},
		{"%{lr}", v4, "strong-bad"},
		{"%{lr-}", v4, "bad.strong"},
		{"%{l1r-}", v4, "strong"},
		{"%{ir}.%{v}._spf.%{d2}", v4, "3.2.0.192.in-addr._spf.example.com"},
		{"%{lr-}.lp._spf.%{d2}", v4, "bad.strong.lp._spf.example.com"},
		{"%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", v4, "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"},
		{"%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", v4, "3.2.0.192.in-addr.strong.lp._spf.example.com"},
		{"%{d2}.trusted-domains.example.net", v4, "example.com.trusted-domains.example.net"},
		{"%{ir}.%{v}._spf.%{d2}", v6, "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com"},
		// Uppercase letters URL-escape (section 7.3), and the escapes of section 7.1.
		{"%{S}", v4, "strong-bad%40email.example.com"},
		{"a%%b%_c%-d", v4, "a%b c%20d"},
		{"%{h}.%{p}", v4, "mx.example.org.unknown"},
		// A number larger than the labels keeps them all; a huge one does not overflow.
		{"%{d99999999999999999999}", v4, "email.example.com"},
		// Delimiters split every kind given, and empty parts stay (section 7.3).
		{"%{l-+}", spfMacroValues{local: "a+b--c"}, "a.b..c"},
	} {
		got, err := spfExpand(tc.spec, tc.v)
		if err != nil || got != tc.want {
			t.Errorf("spfExpand(%q) = %q, %v; want %q", tc.spec, got, err, tc.want)
		}
	}
}

// TestSPFExpandBounded checks that an expansion that grows without bound stops.
func TestSPFExpandBounded(t *testing.T) {
	v := spfMacroValues{sender: strings.Repeat("a", 200) + "@example.com", domain: "example.com"}
	if _, err := spfExpand(strings.Repeat("%{s}", 1000), v); err == nil {
		t.Fatal("an expansion of 200 KB succeeded")
	}
}

func FuzzSPFExpand(f *testing.F) {
	for _, s := range []string{"%{ir}.%{v}._spf.%{d2}", "%{l1r-}.x.example", "%{S}%%%_%-", "plain.example.com", "%{d9r.-+,/_=}"} {
		f.Add(s, "strong-bad@email.example.com", []byte{192, 0, 2, 3})
	}
	f.Fuzz(func(t *testing.T, spec, sender string, ip []byte) {
		if spfMacroStringReason("x", spec, false) != "" {
			return // ParseSPF rejects it before it could be expanded.
		}
		addr, ok := netip.AddrFromSlice(ip)
		if !ok {
			addr = netip.MustParseAddr("192.0.2.3")
		}
		local, dom, _ := strings.Cut(sender, "@")
		got, err := spfExpand(spec, spfMacroValues{sender: sender, local: local, senderDomain: dom, domain: "example.com", ip: addr, helo: "h.example"})
		if err != nil {
			if !strings.Contains(err.Error(), "longer than") {
				t.Fatalf("spfExpand(%q) of a valid macro-string failed: %v", spec, err)
			}
			return
		}
		if len(got) > spfMaxExpansion+len(spec)+1024 {
			t.Fatalf("spfExpand(%q) gave %d bytes", spec, len(got))
		}
		if !strings.Contains(spec, "%") && got != spec {
			t.Fatalf("spfExpand(%q) = %q, want the string unchanged", spec, got)
		}
	})
}

// spfTestEval starts one DNS server with the zones and returns a function that runs
// check_host() over the wire for an address at mail.example.com.
func spfTestEval(t *testing.T, zones ...*dnstest.Zone) (*dnstest.Server, func(ip string) spfOutcome) {
	t.Helper()
	srv := dnstest.Start(t, zones...)
	c, err := New(Config{Resolvers: []string{srv.Addr()}, Mode: ModeRecursive, Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return srv, func(ip string) spfOutcome {
		j := &spfJudge{s: newSession(c), name: "mail.example.com"}
		j.dns = newSPFDNS(j.s)
		return j.eval(context.Background(), netip.MustParseAddr(ip), "", nil)
	}
}

// TestSPFCheckHost evaluates records over the wire as a receiver would, one rule of RFC 7208
// each.
func TestSPFCheckHost(t *testing.T) {
	const platform = "199.255.192.1" // in amazonses.com's first network
	elevenMX := []string{}
	for i := range 11 {
		elevenMX = append(elevenMX, "many 300 IN MX 10 mx"+string(rune('a'+i))+".example.com.")
	}
	for _, tc := range []struct {
		name   string
		record string   // at mail.example.com
		zone   []string // more lines of example.com
		ip     string   // the client; the platform's address when empty
		fault  string   // a name whose TXT answer is SERVFAIL
		want   spfResult
		cause  spfCause
	}{
		{name: "include passes", record: "v=spf1 include:amazonses.com ~all", want: spfPass},
		{name: "names are case-insensitive", record: "V=SPF1 INCLUDE:AmazonSES.com -ALL", want: spfPass},
		{name: "other client soft-fails", record: "v=spf1 include:amazonses.com ~all", ip: "203.0.113.9", want: spfSoftFail},
		// Section 4.6.2: the first match ends evaluation, so terms after all never count.
		{name: "all before include", record: "v=spf1 -all include:amazonses.com", want: spfFail},
		{name: "qualifier on include", record: "v=spf1 -include:amazonses.com ~all", want: spfFail},
		{name: "neutral all", record: "v=spf1 ?all", want: spfNeutral},
		{name: "no match is neutral", record: "v=spf1 ip4:192.0.2.0/24", want: spfNeutral, cause: spfDefault},
		// Section 4.6.4: a third void lookup is a permerror, even before the include.
		{name: "three void lookups", record: "v=spf1 a:v1.example.com mx:v2.example.com exists:v3.example.com include:amazonses.com ~all",
			want: spfPermError, cause: spfVoid},
		{name: "two void lookups", record: "v=spf1 a:v1.example.com exists:v3.example.com include:amazonses.com ~all", want: spfPass},
		// Section 6.1: redirect applies when nothing matched and there is no all.
		{name: "redirect", record: "v=spf1 redirect=_spf.example.com", zone: []string{`_spf 300 IN TXT "v=spf1 include:amazonses.com -all"`}, want: spfPass},
		{name: "redirect ignored beside all", record: "v=spf1 ~all redirect=_spf.example.com", zone: []string{`_spf 300 IN TXT "v=spf1 include:amazonses.com -all"`}, want: spfSoftFail},
		{name: "redirect to nothing", record: "v=spf1 redirect=none.example.com", want: spfPermError, cause: spfTargetNone},
		// Section 5.2: include passes only on an inner pass; an inner none is a permerror.
		{name: "include of a failing record does not match", record: "v=spf1 include:_deny.example.com include:amazonses.com -all",
			zone: []string{`_deny 300 IN TXT "v=spf1 -all"`}, want: spfPass},
		{name: "include of a domain without SPF", record: "v=spf1 include:none.example.com include:amazonses.com -all", want: spfPermError, cause: spfTargetNone},
		{name: "include with two records", record: "v=spf1 include:two.example.com include:amazonses.com -all",
			zone: []string{`two 300 IN TXT "v=spf1 -all"`, `two 300 IN TXT "v=spf1 ~all"`}, want: spfPermError, cause: spfMultiple},
		{name: "include of a broken record", record: "v=spf1 include:bad.example.com include:amazonses.com -all",
			zone: []string{`bad 300 IN TXT "v=spf1 ip4:999.0.0.1 -all"`}, want: spfPermError, cause: spfSyntax},
		{name: "include loop", record: "v=spf1 include:loop.example.com -all", zone: []string{`loop 300 IN TXT "v=spf1 include:mail.example.com"`},
			want: spfPermError, cause: spfLoop},
		// Section 4.6.4: the eleventh DNS-querying term is a permerror, and terms after a
		// match are never reached.
		{name: "eleven lookups before the include", record: "v=spf1 a:a.example.com a:a.example.com a:a.example.com a:a.example.com a:a.example.com a:a.example.com a:a.example.com a:a.example.com a:a.example.com a:a.example.com include:amazonses.com -all",
			zone: []string{"a 300 IN A 192.0.2.1"}, want: spfPermError, cause: spfLimit},
		{name: "eleven lookups after the include", record: "v=spf1 include:amazonses.com a:a.example.com a:a.example.com a:a.example.com a:a.example.com a:a.example.com a:a.example.com a:a.example.com a:a.example.com a:a.example.com a:a.example.com -all",
			zone: []string{"a 300 IN A 192.0.2.1"}, want: spfPass},
		{name: "a with prefix length", record: "v=spf1 a/20 -all", zone: []string{"mail 300 IN A 199.255.200.1"}, want: spfPass},
		{name: "a without prefix length", record: "v=spf1 a -all", zone: []string{"mail 300 IN A 199.255.200.1"}, want: spfFail},
		{name: "mx", record: "v=spf1 mx:mxs.example.com -all", zone: []string{"mxs 300 IN MX 10 out.example.com.", "out 300 IN A " + platform}, want: spfPass},
		{name: "mx with eleven hosts", record: "v=spf1 mx:many.example.com include:amazonses.com -all", zone: elevenMX, want: spfPermError, cause: spfMXLimit},
		{name: "ptr is counted and does not match", record: "v=spf1 ptr:amazonses.com -all", want: spfFail},
		{name: "exists with the client address", record: "v=spf1 exists:%{i}.ok.example.com -all", zone: []string{platform + ".ok 300 IN A 127.0.0.2"}, want: spfPass},
		{name: "exists with reversed address", record: "v=spf1 exists:%{ir}.%{v}._spf.%{d} -all",
			zone: []string{"1.192.255.199.in-addr._spf.mail 300 IN A 127.0.0.2"}, want: spfPass},
		{name: "exists with the local part", record: "v=spf1 exists:%{l}.%{o}.ok.example.com -all",
			zone: []string{"postmaster.mail.example.com.ok 300 IN A 127.0.0.2"}, want: spfPass},
		{name: "ip6", record: "v=spf1 ip6:2001:db8::/32 -all", ip: "2001:db8::1", want: spfPass},
		{name: "ip4 never matches an IPv6 client", record: "v=spf1 ip4:0.0.0.0/0 -all", ip: "2001:db8::1", want: spfFail},
		{name: "DNS failure is a temperror", record: "v=spf1 include:down.example.com include:amazonses.com -all", fault: "down.example.com.",
			want: spfTempError, cause: spfDNSError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			z := dnstest.NewZone("example.com.")
			if err := z.AddTXT("mail.example.com.", tc.record); err != nil {
				t.Fatal(err)
			}
			for _, l := range tc.zone {
				z.MustAdd(l)
			}
			ses := dnstest.NewZone("amazonses.com.")
			ses.MustAdd(`@ 300 IN TXT "v=spf1 ip4:199.255.192.0/22 ip4:199.127.232.0/22 -all"`)
			srv, eval := spfTestEval(t, z, ses)
			if tc.fault != "" {
				srv.SetFault(tc.fault, dns.TypeTXT, dnstest.ServFail)
			}
			ip := tc.ip
			if ip == "" {
				ip = platform
			}
			out := eval(ip)
			if out.result != tc.want || (tc.cause != 0 && out.cause != tc.cause) {
				t.Fatalf("check_host(%s, %q) = %s (cause %d, %+v), want %s (cause %d)", ip, tc.record, out.result, out.cause, out, tc.want, tc.cause)
			}
		})
	}
}

// TestSPFPlatformSenders checks the representative addresses of the platform: the first and
// last address of each network, following includes, stopping at all.
func TestSPFPlatformSenders(t *testing.T) {
	z := dnstest.NewZone("example.net.")
	z.MustAdd(`@ 300 IN TXT "v=spf1 ip4:192.0.2.0/30 -ip4:198.51.100.0/24 include:_a.example.net ip6:2001:db8::/127 -all ip4:203.0.113.0/24"`)
	z.MustAdd(`_a 300 IN TXT "v=spf1 a:out.example.net ~all"`)
	z.MustAdd(`out 300 IN A 192.0.2.77`)
	srv := dnstest.Start(t, z)
	c, err := New(Config{Resolvers: []string{srv.Addr()}, Mode: ModeRecursive, Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	got, err := spfPlatformSenders(context.Background(), newSPFDNS(newSession(c)), "example.net")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"192.0.2.0", "192.0.2.3", "192.0.2.77", "2001:db8::", "2001:db8::1"}
	var gotS []string
	for _, a := range got {
		gotS = append(gotS, a.String())
	}
	if strings.Join(gotS, " ") != strings.Join(want, " ") {
		t.Errorf("senders %q, want %q", gotS, want)
	}
}
