package dnstest

import (
	"errors"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// ask sends one query for name and qtype to addr over proto ("udp" or
// "tcp"), with an EDNS0 OPT advertising ednsSize when ednsSize > 0.
func ask(t *testing.T, addr, proto, name string, qtype uint16, ednsSize uint16) *dns.Msg {
	t.Helper()
	resp, err := exchange(addr, proto, name, qtype, ednsSize, 2*time.Second)
	if err != nil {
		t.Fatalf("%s %s %s over %s: %v", addr, name, dns.TypeToString[qtype], proto, err)
	}
	return resp
}

func exchange(addr, proto, name string, qtype uint16, ednsSize uint16, timeout time.Duration) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	if ednsSize > 0 {
		m.SetEdns0(ednsSize, false)
	}
	c := &dns.Client{Net: proto, Timeout: timeout}
	resp, _, err := c.Exchange(m, addr)
	return resp, err
}

// types lists the types of rrs, leaving out OPT.
func types(rrs []dns.RR) []uint16 {
	var ts []uint16
	for _, rr := range rrs {
		if rr.Header().Rrtype != dns.TypeOPT {
			ts = append(ts, rr.Header().Rrtype)
		}
	}
	return ts
}

// exampleServer serves testdata/example.com.zone, a zone for example.net.
// and a separate zone for the more specific deep.example.com.
func exampleServer(t *testing.T) (*Server, *Zone) {
	t.Helper()
	text, err := os.ReadFile("testdata/example.com.zone")
	if err != nil {
		t.Fatal(err)
	}
	com := NewZone("example.com.")
	if err := com.Add(string(text)); err != nil {
		t.Fatal(err)
	}
	netZone := NewZone("Example.NET")
	netZone.MustAdd("www 60 IN A 192.0.2.80")
	deep := NewZone("deep.example.com.")
	deep.MustAdd("host A 192.0.2.99")
	return Start(t, com, netZone, deep), com
}

func TestResolution(t *testing.T) {
	s, _ := exampleServer(t)
	A, CNAME, NS, SOA := dns.TypeA, dns.TypeCNAME, dns.TypeNS, dns.TypeSOA
	tests := []struct {
		name       string
		qname      string
		qtype      uint16
		rcode      int
		aa         bool
		answer     []uint16
		authority  []uint16
		additional []uint16
		first      string // text of the first answer record, if checked
	}{
		{"address", "www.example.com.", A, dns.RcodeSuccess, true, []uint16{A}, nil, nil, "192.0.2.1"},
		{"names are case-insensitive", "WWW.Example.COM.", A, dns.RcodeSuccess, true, []uint16{A}, nil, nil, "192.0.2.1"},
		{"MX at apex with TTL", "example.com.", dns.TypeMX, dns.RcodeSuccess, true, []uint16{dns.TypeMX}, nil, nil, "600\tIN\tMX\t10 mail.example.com."},
		{"CNAME chased", "alias.example.com.", A, dns.RcodeSuccess, true, []uint16{CNAME, A}, nil, nil, "www.example.com."},
		{"CNAME chain", "chain.example.com.", A, dns.RcodeSuccess, true, []uint16{CNAME, CNAME, A}, nil, nil, "alias.example.com."},
		{"CNAME asked for", "alias.example.com.", CNAME, dns.RcodeSuccess, true, []uint16{CNAME}, nil, nil, "www.example.com."},
		{"CNAME into another zone", "other.example.com.", A, dns.RcodeSuccess, true, []uint16{CNAME, A}, nil, nil, "www.example.net."},
		{"CNAME out of all zones", "outside.example.com.", A, dns.RcodeSuccess, true, []uint16{CNAME}, nil, nil, "www.elsewhere.test."},
		{"CNAME loop ends", "loop1.example.com.", A, dns.RcodeSuccess, true, []uint16{CNAME, CNAME}, nil, nil, "loop2.example.com."},
		{"NXDOMAIN", "nope.example.com.", A, dns.RcodeNameError, true, nil, []uint16{SOA}, nil, ""},
		{"NODATA", "www.example.com.", dns.TypeTXT, dns.RcodeSuccess, true, nil, []uint16{SOA}, nil, ""},
		{"empty non-terminal is NODATA", "_domainkey.example.com.", dns.TypeTXT, dns.RcodeSuccess, true, nil, []uint16{SOA}, nil, ""},
		{"referral at cut", "sub.example.com.", A, dns.RcodeSuccess, false, nil, []uint16{NS}, []uint16{A}, ""},
		{"referral below cut", "a.b.sub.example.com.", dns.TypeTXT, dns.RcodeSuccess, false, nil, []uint16{NS}, []uint16{A}, ""},
		{"most specific zone", "host.deep.example.com.", A, dns.RcodeSuccess, true, []uint16{A}, nil, nil, "192.0.2.99"},
		{"NXDOMAIN in most specific zone", "nope.deep.example.com.", A, dns.RcodeNameError, true, nil, []uint16{SOA}, nil, ""},
		{"outside every zone", "example.org.", A, dns.RcodeRefused, false, nil, nil, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, proto := range []string{"udp", "tcp"} {
				r := ask(t, s.Addr(), proto, tt.qname, tt.qtype, 0)
				if r.Rcode != tt.rcode || r.Authoritative != tt.aa {
					t.Errorf("%s: rcode %s aa %v, want %s aa %v", proto, dns.RcodeToString[r.Rcode], r.Authoritative, dns.RcodeToString[tt.rcode], tt.aa)
				}
				if got := types(r.Answer); !slices.Equal(got, tt.answer) {
					t.Errorf("%s: answer types %v, want %v", proto, got, tt.answer)
				}
				if got := types(r.Ns); !slices.Equal(got, tt.authority) {
					t.Errorf("%s: authority types %v, want %v", proto, got, tt.authority)
				}
				if got := types(r.Extra); !slices.Equal(got, tt.additional) {
					t.Errorf("%s: additional types %v, want %v", proto, got, tt.additional)
				}
				if tt.first != "" && (len(r.Answer) == 0 || !strings.HasSuffix(r.Answer[0].String(), tt.first)) {
					t.Errorf("%s: first answer %v, want it to end in %q", proto, r.Answer, tt.first)
				}
			}
		})
	}
}

func TestNegativeAnswerCarriesZoneSOA(t *testing.T) {
	s, _ := exampleServer(t)
	r := ask(t, s.Addr(), "udp", "nope.deep.example.com.", dns.TypeA, 0)
	if len(r.Ns) != 1 || r.Ns[0].Header().Name != "deep.example.com." {
		t.Fatalf("authority %v, want the SOA of deep.example.com.", r.Ns)
	}
}

func TestReferralGlue(t *testing.T) {
	s, _ := exampleServer(t)
	r := ask(t, s.Addr(), "udp", "www.sub.example.com.", dns.TypeA, 0)
	if len(r.Ns) != 1 || r.Ns[0].(*dns.NS).Ns != "ns.sub.example.com." {
		t.Fatalf("authority %v, want NS ns.sub.example.com.", r.Ns)
	}
	if len(r.Extra) != 1 || r.Extra[0].(*dns.A).A.String() != "192.0.2.54" {
		t.Fatalf("additional %v, want glue 192.0.2.54", r.Extra)
	}
}

func TestLongTXTIsSplit(t *testing.T) {
	key := strings.Repeat("MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A", 12) // 384 bytes, like a 2048-bit RSA key
	value := "v=DKIM1; k=rsa; p=" + key
	z := NewZone("example.com.")
	if err := z.AddTXT("sel._domainkey", value); err != nil {
		t.Fatal(err)
	}
	// A long string in zone-file text is split by the zone parser alike.
	z.MustAdd(`zf._domainkey TXT "` + value + `"`)
	s := Start(t, z)
	for _, name := range []string{"sel._domainkey.example.com.", "zf._domainkey.example.com."} {
		r := ask(t, s.Addr(), "tcp", name, dns.TypeTXT, 0)
		if len(r.Answer) != 1 {
			t.Fatalf("%s: %d answers, want one TXT record", name, len(r.Answer))
		}
		txt := r.Answer[0].(*dns.TXT).Txt
		if len(txt) != 2 || len(txt[0]) != 255 || strings.Join(txt, "") != value {
			t.Errorf("%s: strings of lengths %d, want 255 and %d joining to the value", name, len(txt), len(value)-255)
		}
	}
}

func TestSplitTXT(t *testing.T) {
	tests := []struct {
		in   string
		lens []int
	}{
		{"", []int{0}},
		{"v=spf1 -all", []int{11}},
		{strings.Repeat("a", 255), []int{255}},
		{strings.Repeat("a", 256), []int{255, 1}},
		{strings.Repeat("a", 600), []int{255, 255, 90}},
	}
	for _, tt := range tests {
		parts := SplitTXT(tt.in)
		var lens []int
		for _, p := range parts {
			lens = append(lens, len(p))
		}
		if !slices.Equal(lens, tt.lens) || strings.Join(parts, "") != tt.in {
			t.Errorf("SplitTXT(%d bytes) lengths %v, want %v", len(tt.in), lens, tt.lens)
		}
	}
}

func TestTruncation(t *testing.T) {
	z := NewZone("example.com.")
	for i := range 12 {
		z.MustAdd("big TXT " + strconv.Quote(strconv.Itoa(i)+strings.Repeat("x", 80))) // ~1.1 kB in all
	}
	z.MustAdd("small A 192.0.2.1")
	s := Start(t, z)
	tests := []struct {
		name      string
		qname     string
		proto     string
		edns      uint16
		fault     bool
		truncated bool
	}{
		{"UDP without EDNS is limited to 512", "big.example.com.", "udp", 0, false, true},
		{"UDP with small EDNS size", "big.example.com.", "udp", 512, false, true},
		{"UDP with large EDNS size", "big.example.com.", "udp", 4096, false, false},
		{"TCP", "big.example.com.", "tcp", 0, false, false},
		{"forced over UDP", "small.example.com.", "udp", 4096, true, true},
		{"forced is ignored over TCP", "small.example.com.", "tcp", 0, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.fault {
				s.SetFault(tt.qname, 0, Truncate)
				defer s.SetFault(tt.qname, 0, NoFault)
			}
			r := ask(t, s.Addr(), tt.proto, tt.qname, dns.TypeANY, tt.edns)
			if r.Truncated != tt.truncated {
				t.Fatalf("TC %v, want %v", r.Truncated, tt.truncated)
			}
			if tt.truncated && len(r.Answer) != 0 {
				t.Errorf("truncated answer has %d records, want none", len(r.Answer))
			}
			if !tt.truncated && len(r.Answer) == 0 {
				t.Errorf("no answer records")
			}
			if (r.IsEdns0() != nil) != (tt.edns > 0) {
				t.Errorf("OPT in answer %v, want %v (echo the query's)", r.IsEdns0() != nil, tt.edns > 0)
			}
		})
	}
}

func TestTruncatedThenTCP(t *testing.T) {
	z := NewZone("example.com.")
	z.MustAdd("www A 192.0.2.1")
	s := Start(t, z)
	s.SetFault("www.example.com.", dns.TypeA, Truncate)
	if r := ask(t, s.Addr(), "udp", "www.example.com.", dns.TypeA, 0); !r.Truncated {
		t.Fatal("UDP answer not truncated")
	}
	if r := ask(t, s.Addr(), "tcp", "www.example.com.", dns.TypeA, 0); r.Truncated || len(r.Answer) != 1 {
		t.Fatalf("TCP answer TC=%v with %d records, want the record", r.Truncated, len(r.Answer))
	}
	want := []Query{
		{Name: "www.example.com.", Type: dns.TypeA, Proto: "udp", Truncated: true},
		{Name: "www.example.com.", Type: dns.TypeA, Proto: "tcp"},
	}
	if got := s.Queries(); !slices.Equal(got, want) {
		t.Errorf("query log %+v, want %+v", got, want)
	}
}

func TestServFail(t *testing.T) {
	z := NewZone("example.com.")
	z.MustAdd("www A 192.0.2.1\nwww TXT hello\nmail A 192.0.2.2")
	tests := []struct {
		name   string
		fname  string
		ftype  uint16
		qname  string
		qtype  uint16
		failed bool
	}{
		{"name", "www.example.com.", 0, "www.example.com.", dns.TypeTXT, true},
		{"name, other name", "www.example.com.", 0, "mail.example.com.", dns.TypeA, false},
		{"name and type", "WWW.example.com", dns.TypeA, "www.example.com.", dns.TypeA, true},
		{"name and type, other type", "www.example.com.", dns.TypeA, "www.example.com.", dns.TypeTXT, false},
		{"type everywhere", "", dns.TypeA, "mail.example.com.", dns.TypeA, true},
		{"server-wide", "", 0, "mail.example.com.", dns.TypeA, true},
		{"server-wide, even refused names", "", 0, "example.org.", dns.TypeA, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Start(t, z)
			s.SetFault(tt.fname, tt.ftype, ServFail)
			want := dns.RcodeSuccess
			if tt.failed {
				want = dns.RcodeServerFailure
			} else if tt.qname == "example.org." {
				want = dns.RcodeRefused
			}
			for _, proto := range []string{"udp", "tcp"} {
				if r := ask(t, s.Addr(), proto, tt.qname, tt.qtype, 0); r.Rcode != want {
					t.Errorf("%s: rcode %s, want %s", proto, dns.RcodeToString[r.Rcode], dns.RcodeToString[want])
				}
			}
			s.ClearFaults()
			if r := ask(t, s.Addr(), "udp", tt.qname, tt.qtype, 0); r.Rcode == dns.RcodeServerFailure {
				t.Errorf("SERVFAIL after ClearFaults")
			}
		})
	}
}

func TestDrop(t *testing.T) {
	z := NewZone("example.com.")
	z.MustAdd("www A 192.0.2.1\nmail A 192.0.2.2")
	s := Start(t, z)
	s.SetFault("www.example.com.", 0, Drop)
	for _, proto := range []string{"udp", "tcp"} {
		_, err := exchange(s.Addr(), proto, "www.example.com.", dns.TypeA, 0, 200*time.Millisecond)
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("%s: error %v, want a timeout", proto, err)
		}
	}
	if r := ask(t, s.Addr(), "udp", "mail.example.com.", dns.TypeA, 0); len(r.Answer) != 1 {
		t.Errorf("other name: %d answers, want 1", len(r.Answer))
	}
	if n := s.Count("www.example.com.", dns.TypeA, ""); n != 2 {
		t.Errorf("Count = %d, want 2 dropped queries logged", n)
	}
	for _, q := range s.Queries() {
		if q.Dropped != (q.Name == "www.example.com.") {
			t.Errorf("logged %+v: Dropped is wrong", q)
		}
	}
}

func TestEditsAreVisible(t *testing.T) {
	z := NewZone("example.com.")
	z.MustAdd("www A 192.0.2.1")
	s := Start(t, z)
	addrs := func() (int, []string) {
		r := ask(t, s.Addr(), "udp", "www.example.com.", dns.TypeA, 0)
		var ips []string
		for _, rr := range r.Answer {
			ips = append(ips, rr.(*dns.A).A.String())
		}
		slices.Sort(ips)
		return r.Rcode, ips
	}
	steps := []struct {
		name  string
		edit  func() error
		rcode int
		ips   []string
	}{
		{"initial", func() error { return nil }, dns.RcodeSuccess, []string{"192.0.2.1"}},
		{"add", func() error { return z.Add("www.example.com. 60 IN A 192.0.2.2") }, dns.RcodeSuccess, []string{"192.0.2.1", "192.0.2.2"}},
		{"add duplicate", func() error { return z.Add("www A 192.0.2.2") }, dns.RcodeSuccess, []string{"192.0.2.1", "192.0.2.2"}},
		{"replace", func() error { return z.Replace("www A 192.0.2.9") }, dns.RcodeSuccess, []string{"192.0.2.9"}},
		{"remove type", func() error { z.Remove("www", dns.TypeA); return z.Add("www TXT keep") }, dns.RcodeSuccess, nil},
		{"remove name", func() error { z.RemoveName("www.example.com."); return nil }, dns.RcodeNameError, nil},
		{"add back", func() error { return z.Add("www A 192.0.2.3") }, dns.RcodeSuccess, []string{"192.0.2.3"}},
		{"zone removed", func() error { s.RemoveZone("example.com."); return nil }, dns.RcodeRefused, nil},
		{"zone back", func() error { s.AddZone(z); return nil }, dns.RcodeSuccess, []string{"192.0.2.3"}},
	}
	for _, st := range steps {
		if err := st.edit(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if rcode, ips := addrs(); rcode != st.rcode || !slices.Equal(ips, st.ips) {
			t.Errorf("%s: %s %v, want %s %v", st.name, dns.RcodeToString[rcode], ips, dns.RcodeToString[st.rcode], st.ips)
		}
	}
}

func TestAddErrors(t *testing.T) {
	z := NewZone("example.com.")
	for _, text := range []string{
		"www.example.org. A 192.0.2.1",
		"www A 192.0.2.1\nexample.com. A 192.0.2.2\nwww.example.net. A 192.0.2.3",
		"www A not-an-address",
		"www BOGUS data",
	} {
		if err := z.Add(text); err == nil {
			t.Errorf("Add(%q) succeeded, want an error", text)
		}
	}
	if rrs := z.Records("example.com.", dns.TypeANY); len(rrs) != 1 || rrs[0].Header().Rrtype != dns.TypeSOA {
		t.Errorf("zone holds %v after failed adds, want only the SOA", rrs)
	}
	if rrs := z.Records("www", dns.TypeANY); len(rrs) != 0 {
		t.Errorf("www holds %v after failed adds, want nothing", rrs)
	}
}

// TestReplaceIsAtomic edits a zone while it is queried; a Replace that
// removed before adding without holding the lock would show NODATA.
func TestReplaceIsAtomic(t *testing.T) {
	z := NewZone("example.com.")
	z.MustAdd("www A 192.0.2.1")
	s := Start(t, z)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := z.Replace("www A 192.0.2." + strconv.Itoa(1+i%200)); err != nil {
				t.Error(err)
				return
			}
		}
	})
	for range 100 {
		if r := ask(t, s.Addr(), "udp", "www.example.com.", dns.TypeA, 0); len(r.Answer) != 1 {
			t.Errorf("%d answers while editing, want 1", len(r.Answer))
			break
		}
	}
	close(stop)
	wg.Wait()
}

func TestCount(t *testing.T) {
	z := NewZone("example.com.")
	z.MustAdd("www A 192.0.2.1")
	s := Start(t, z)
	ask(t, s.Addr(), "udp", "www.example.com.", dns.TypeA, 0)
	ask(t, s.Addr(), "udp", "www.example.com.", dns.TypeA, 0)
	ask(t, s.Addr(), "tcp", "www.example.com.", dns.TypeTXT, 0)
	ask(t, s.Addr(), "udp", "nope.example.com.", dns.TypeA, 0)
	tests := []struct {
		name  string
		qtype uint16
		proto string
		want  int
	}{
		{"WWW.EXAMPLE.COM", 0, "", 3},
		{"www.example.com.", dns.TypeA, "", 2},
		{"www.example.com.", 0, "tcp", 1},
		{"www.example.com.", dns.TypeA, "tcp", 0},
		{"", 0, "udp", 3},
		{"", 0, "", 4},
	}
	for _, tt := range tests {
		if got := s.Count(tt.name, tt.qtype, tt.proto); got != tt.want {
			t.Errorf("Count(%q, %d, %q) = %d, want %d", tt.name, tt.qtype, tt.proto, got, tt.want)
		}
	}
	if q := s.Queries()[3]; q.Rcode != dns.RcodeNameError {
		t.Errorf("logged rcode %d, want NXDOMAIN", q.Rcode)
	}
	s.ResetQueries()
	if n := s.Count("", 0, ""); n != 0 {
		t.Errorf("Count after reset = %d", n)
	}
}

func TestServerAddress(t *testing.T) {
	s := Start(t)
	host, port, err := net.SplitHostPort(s.Addr())
	if err != nil || host != "127.0.0.1" || port != strconv.Itoa(s.Port()) || s.Port() == 0 {
		t.Fatalf("Addr() = %q, Port() = %d", s.Addr(), s.Port())
	}
	if _, err := NewServer(t.Context(), "127.0.0.1", s.Port()); !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("second server on %s: %v, want EADDRINUSE", s.Addr(), err)
	}
	for _, ip := range []string{"0.0.0.0", "192.0.2.1", "localhost"} {
		if _, err := NewServer(t.Context(), ip, 0); err == nil {
			t.Errorf("NewServer(%q) succeeded, want only loopback addresses", ip)
		}
	}
	// Both protocols answer on the one port.
	for _, proto := range []string{"udp", "tcp"} {
		if r := ask(t, s.Addr(), proto, "example.com.", dns.TypeA, 0); r.Rcode != dns.RcodeRefused {
			t.Errorf("%s: rcode %d, want REFUSED", proto, r.Rcode)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := exchange(s.Addr(), "tcp", "example.com.", dns.TypeA, 0, time.Second); err == nil {
		t.Errorf("query after Close succeeded")
	}
}

// walk follows referrals from the Net's root the way a delegation walk
// will, returning the final answer and the servers asked.
func walk(t *testing.T, n *Net, name string, qtype uint16) (*dns.Msg, []string) {
	t.Helper()
	ip := n.RootIPs()[0]
	var asked []string
	for range 10 {
		asked = append(asked, ip)
		r := ask(t, net.JoinHostPort(ip, strconv.Itoa(n.Port())), "udp", name, qtype, 1232)
		if r.Authoritative || r.Rcode != dns.RcodeSuccess {
			return r, asked
		}
		if len(r.Extra) == 0 {
			t.Fatalf("referral from %s without glue: %v", ip, r)
		}
		a, ok := r.Extra[0].(*dns.A)
		if !ok {
			t.Fatalf("first additional record %v is not glue", r.Extra[0])
		}
		ip = a.A.String()
	}
	t.Fatalf("no answer after %v", asked)
	return nil, nil
}

func TestNet(t *testing.T) {
	n := StartNet(t, 2)
	servers := n.Servers()
	if len(servers) != 2 {
		t.Fatalf("%d servers, want 2", len(servers))
	}
	s1, s2 := servers[0], servers[1]
	for i, s := range []*Server{n.Root(), s1, s2} {
		want := "127.0.0." + strconv.Itoa(i+1)
		if s.IP() != want || s.Port() != n.Port() {
			t.Errorf("server %d on %s, want %s port %d", i, s.Addr(), want, n.Port())
		}
	}

	example, err := n.AddZone("example.com.", s1)
	if err != nil {
		t.Fatal(err)
	}
	example.MustAdd("www A 192.0.2.1")
	dkim, err := n.AddZone("_domainkey.example.com.", s2)
	if err != nil {
		t.Fatal(err)
	}
	key := strings.Repeat("k", 400)
	if err := dkim.AddTXT("sel", "p="+key); err != nil {
		t.Fatal(err)
	}

	// The root refers straight to example.com.'s server, with glue.
	r := ask(t, n.Root().Addr(), "udp", "www.example.com.", dns.TypeA, 0)
	if r.Authoritative || len(r.Ns) != 1 || r.Ns[0].(*dns.NS).Ns != "ns1.example.com." ||
		len(r.Extra) != 1 || r.Extra[0].(*dns.A).A.String() != s1.IP() {
		t.Fatalf("root's answer is not a referral to %s with glue: %v", s1.IP(), r)
	}

	tests := []struct {
		name  string
		qtype uint16
		rcode int
		path  []string
	}{
		{"www.example.com.", dns.TypeA, dns.RcodeSuccess, []string{"127.0.0.1", "127.0.0.2"}},
		{"sel._domainkey.example.com.", dns.TypeTXT, dns.RcodeSuccess, []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}},
		{"nope._domainkey.example.com.", dns.TypeTXT, dns.RcodeNameError, []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}},
		{"example.org.", dns.TypeA, dns.RcodeNameError, []string{"127.0.0.1"}},
	}
	for _, tt := range tests {
		r, path := walk(t, n, tt.name, tt.qtype)
		if r.Rcode != tt.rcode || !slices.Equal(path, tt.path) {
			t.Errorf("%s: %s via %v, want %s via %v", tt.name, dns.RcodeToString[r.Rcode], path, dns.RcodeToString[tt.rcode], tt.path)
		}
	}

	// A parent added after its child takes over the delegation.
	s3, err := n.AddServer(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if s3.IP() != "127.0.0.4" || s3.Port() != n.Port() {
		t.Errorf("added server on %s, want 127.0.0.4 port %d", s3.Addr(), n.Port())
	}
	if _, err := n.AddZone("com.", s3); err != nil {
		t.Fatal(err)
	}
	r, path := walk(t, n, "sel._domainkey.example.com.", dns.TypeTXT)
	if want := []string{"127.0.0.1", "127.0.0.4", "127.0.0.2", "127.0.0.3"}; !slices.Equal(path, want) {
		t.Errorf("walk via %v, want %v", path, want)
	}
	if len(r.Answer) != 1 || strings.Join(r.Answer[0].(*dns.TXT).Txt, "") != "p="+key {
		t.Errorf("answer %v, want the DKIM TXT", r.Answer)
	}

	if _, err := n.AddZone("com.", s1); err == nil {
		t.Error("adding com. twice succeeded")
	}
	if n.Zone("example.com.") != example || n.Zone(".") == nil {
		t.Error("Zone does not return the zones added")
	}
}

func TestNetZoneOnTwoServers(t *testing.T) {
	n := StartNet(t, 2)
	s1, s2 := n.Servers()[0], n.Servers()[1]
	z, err := n.AddZone("example.com.", s1, s2)
	if err != nil {
		t.Fatal(err)
	}
	z.MustAdd("www A 192.0.2.1")
	r := ask(t, n.Root().Addr(), "tcp", "www.example.com.", dns.TypeA, 0)
	if len(r.Ns) != 2 || len(r.Extra) != 2 {
		t.Fatalf("referral %v, want two NS with two glue records", r)
	}
	// One server failing leaves the other answering: what a walk's fallback needs.
	s1.SetFault("", 0, ServFail)
	for _, s := range []*Server{s1, s2} {
		want := dns.RcodeSuccess
		if s == s1 {
			want = dns.RcodeServerFailure
		}
		if r := ask(t, s.Addr(), "udp", "www.example.com.", dns.TypeA, 0); r.Rcode != want {
			t.Errorf("%s: rcode %s, want %s", s.Addr(), dns.RcodeToString[r.Rcode], dns.RcodeToString[want])
		}
	}
}
