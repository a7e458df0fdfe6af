package dnscheck

import (
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// FuzzWalkAnswer feeds arbitrary bytes, as a tenant's name server may send them,
// to every function of the walk that reads an answer: referral, usable,
// refersBack, chase and the session's reduce. None may panic, and what they keep
// must stay within the walk's bounds whatever the answer holds.
func FuzzWalkAnswer(f *testing.F) {
	seed := func(m *dns.Msg) {
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	amplified := new(dns.Msg)
	amplified.SetQuestion("x.d.evil.example.", dns.TypeTXT)
	amplified.Response = true
	for i := range 500 {
		host := "ns" + strconv.Itoa(i%20) + ".d.evil.example."
		amplified.Ns = append(amplified.Ns, &dns.NS{Hdr: hdr("d.evil.example.", dns.TypeNS), Ns: host})
		amplified.Extra = append(amplified.Extra, &dns.A{Hdr: hdr(host, dns.TypeA), A: net.IPv4(127, 0, 0, byte(i))})
	}
	amplified.Compress = true
	seed(amplified)
	loop := new(dns.Msg)
	loop.SetQuestion("x.evil.example.", dns.TypeTXT)
	loop.Response, loop.Authoritative = true, true
	loop.Answer = []dns.RR{
		&dns.CNAME{Hdr: hdr("x.evil.example.", dns.TypeCNAME), Target: "y.evil.example."},
		&dns.CNAME{Hdr: hdr("y.evil.example.", dns.TypeCNAME), Target: "x.evil.example."},
	}
	seed(loop)
	txt := new(dns.Msg)
	txt.SetQuestion("x.evil.example.", dns.TypeTXT)
	txt.Response, txt.Authoritative = true, true
	for range 100 {
		txt.Answer = append(txt.Answer, &dns.TXT{Hdr: hdr("x.evil.example.", dns.TypeTXT), Txt: []string{"v=spf1 -all"}})
	}
	seed(txt)
	f.Add([]byte{0, 1, 0x84, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0xff})

	c, err := New(Config{Mode: ModeAuthoritative, RootHints: []string{"127.0.0.1"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		msg := new(dns.Msg)
		if err := msg.Unpack(data); err != nil {
			return
		}
		for _, zone := range []string{".", "evil.example.", "example."} {
			for _, name := range []string{"x.d.evil.example.", "x.evil.example.", "evil.example."} {
				child, hosts, glue := referral(msg, zone, name)
				if len(hosts) > maxNSNames {
					t.Fatalf("referral kept %d name servers", len(hosts))
				}
				if child != "" && (child == zone || !dns.IsSubDomain(zone, child) || !dns.IsSubDomain(child, name)) {
					t.Fatalf("referral from %s for %s to %s", zone, name, child)
				}
				for h, ips := range glue {
					if len(ips) > maxAddrsPerNS {
						t.Fatalf("referral kept %d addresses for %s", len(ips), h)
					}
					seen := map[string]bool{}
					for _, ip := range ips {
						if seen[ip] {
							t.Fatalf("referral kept %s twice for %s", ip, h)
						}
						seen[ip] = true
					}
				}
				if refersBack(msg, zone) && usable(msg, zone, name) && !msg.Authoritative {
					t.Fatal("an answer both refers back and refers below")
				}
			}
		}
		for _, qtype := range []uint16{dns.TypeTXT, dns.TypeMX, dns.TypeA} {
			rrs, cnames, err := chase(msg, "x.evil.example.", qtype)
			if len(rrs) > maxAnswerRRs || len(cnames) > maxCNAMEs {
				t.Fatalf("chase kept %d records and %d CNAMEs", len(rrs), len(cnames))
			}
			if err != nil && (rrs != nil || cnames != nil) {
				t.Fatal("chase kept records with an error")
			}
			s := newSession(c)
			var r response
			s.reduce(&r, msg, "x.evil.example.", qtype)
			if r.err == nil && s.b.kept.Load() > maxCheckKept {
				t.Fatalf("reduce kept %d bytes", s.b.kept.Load())
			}
			if r.err == nil {
				compacted := compactValues(answerOf(r).values())
				if len(compacted) > maxSightingVals {
					t.Fatalf("%d values shown", len(compacted))
				}
				for _, v := range compacted {
					if len(v) > maxSightingValue+len("…") {
						t.Fatalf("a value of %d bytes shown", len(v))
					}
				}
			}
		}
	})
}

func hdr(name string, t uint16) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: 300}
}

// FuzzMatchAnswer feeds arbitrary datagrams to the reply matching: it never
// panics, and whatever it accepts answers the question asked.
func FuzzMatchAnswer(f *testing.F) {
	q := new(dns.Msg)
	q.SetQuestion("name.example.", dns.TypeTXT)
	good := new(dns.Msg)
	good.SetReply(q)
	if b, err := good.Pack(); err == nil {
		f.Add(b)
	}
	f.Add([]byte{0, 0, 0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := matchAnswer(b, q, "192.0.2.1:53")
		if err != nil {
			return
		}
		if !m.Response || len(m.Question) != 1 || !strings.EqualFold(m.Question[0].Name, "name.example.") ||
			m.Question[0].Qtype != dns.TypeTXT || m.Question[0].Qclass != dns.ClassINET {
			t.Fatalf("accepted an answer to another question: %v", m)
		}
	})
}

// FuzzCanonical checks that canonical gives what dns.CanonicalName gives.
func FuzzCanonical(f *testing.F) {
	for _, s := range []string{"", ".", "example.com", "Example.COM.", `a\.b.example`, `a\\.`, "_dmarc.c000001.bench.test."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if got, want := canonical(name), dns.CanonicalName(name); got != want {
			t.Fatalf("canonical(%q) = %q, dns.CanonicalName gives %q", name, got, want)
		}
	})
}
