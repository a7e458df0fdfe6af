package dnscheck_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/domaind/domaind/internal/dnscheck"
	"github.com/domaind/domaind/internal/dnstest"
	"github.com/domaind/domaind/internal/domain"
)

// A 1024-bit RSA SubjectPublicKeyInfo, the form of the contract's DKIM value.
const testKey = "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDzh0cxFPOe1+Wd+C1qLPU0NzV1TTngGmRwAHNgn/r0WnZn9M852akruW8nVOEe70wKsp3lcTRzBEFclbjNQsGBNLA8dyAuJnHN4g7fpi/iRke9G9adA3u9XAvX3r0ZzLeWqt2+EMuo17PdFzVU2BubYhhqmmEOclOhs+4NI5QjLwIDAQAB"

var expectations = map[domain.RecordKey]dnscheck.Expectation{
	domain.KeyOwnership:   {Key: domain.KeyOwnership, Name: "_autosend-verify.example.com", Type: "TXT", Value: "autosend-verify-0123456789abcdef0123456789abcdef"},
	domain.KeyDKIM:        {Key: domain.KeyDKIM, Name: "autosend._domainkey.example.com", Type: "TXT", Value: "v=DKIM1; k=rsa; p=" + testKey},
	domain.KeyMailFromMX:  {Key: domain.KeyMailFromMX, Name: "mail.example.com", Type: "MX", Value: "feedback-smtp.us-east-1.amazonses.com", Priority: 10},
	domain.KeyMailFromSPF: {Key: domain.KeyMailFromSPF, Name: "mail.example.com", Type: "TXT", Value: "v=spf1 include:amazonses.com ~all"},
	domain.KeyDMARC:       {Key: domain.KeyDMARC, Name: "_dmarc.example.com", Type: "TXT", Value: "v=DMARC1; p=none;"},
}

func newChecker(t *testing.T, servers ...string) *dnscheck.Checker {
	t.Helper()
	// Recursive mode: these tests use a loopback server as the resolver, and a walk
	// from the default root hints would leave loopback.
	c, err := dnscheck.New(dnscheck.Config{Resolvers: servers, Mode: dnscheck.ModeRecursive, Timeout: 200 * time.Millisecond, Retries: 1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCheckRecords publishes zone content in a real DNS server and checks each
// record's outcome and first problem code.
func TestCheckRecords(t *testing.T) {
	for _, tc := range []struct {
		name   string
		key    domain.RecordKey
		zone   []string // zone-file lines added to example.com.
		status domain.CheckStatus
		code   domain.ProblemCode // first problem's code, "" for none
		found  string             // a substring of some found value
	}{
		{"ownership missing", domain.KeyOwnership, nil, domain.CheckMissing, "NOT_FOUND", ""},
		{"ownership right", domain.KeyOwnership, []string{`_autosend-verify 300 IN TXT "autosend-verify-0123456789abcdef0123456789abcdef"`}, domain.CheckVerified, "", "autosend-verify-0123"},
		{"ownership among others", domain.KeyOwnership, []string{`_autosend-verify 300 IN TXT "other"`, `_autosend-verify 300 IN TXT "autosend-verify-0123456789abcdef0123456789abcdef"`}, domain.CheckVerified, "", ""},
		{"ownership split strings", domain.KeyOwnership, []string{`_autosend-verify 300 IN TXT "autosend-verify-0123456789" "abcdef0123456789abcdef"`}, domain.CheckVerified, "", ""},
		{"ownership wrong", domain.KeyOwnership, []string{`_autosend-verify 300 IN TXT "autosend-verify-ffff"`}, domain.CheckMismatch, "WRONG_VALUE", "autosend-verify-ffff"},
		// A bare key is no key record (RFC 6376 section 3.6.1: p= is required), so receivers find no key.
		{"dkim bare key", domain.KeyDKIM, []string{`autosend._domainkey 300 IN TXT "` + testKey + `"`}, domain.CheckMismatch, "WRONG_VALUE", ""},
		{"dkim key record", domain.KeyDKIM, []string{`autosend._domainkey 300 IN TXT "v=DKIM1; k=rsa; p=` + testKey[:100] + `" "` + testKey[100:] + `"`}, domain.CheckVerified, "", ""},
		{"dkim key with spaces", domain.KeyDKIM, []string{`autosend._domainkey 300 IN TXT "v=DKIM1; p=` + testKey[:50] + " " + testKey[50:] + `"`}, domain.CheckVerified, "", ""},
		{"dkim other key", domain.KeyDKIM, []string{`autosend._domainkey 300 IN TXT "v=DKIM1; k=rsa; p=` + strings.Replace(testKey, "Q", "R", 1) + `"`}, domain.CheckMismatch, "WRONG_VALUE", ""},
		{"dkim missing", domain.KeyDKIM, nil, domain.CheckMissing, "NOT_FOUND", ""},
		{"mx right", domain.KeyMailFromMX, []string{`mail 300 IN MX 10 FEEDBACK-SMTP.us-east-1.amazonses.com.`}, domain.CheckVerified, "", "10 feedback-smtp"},
		{"mx wrong host", domain.KeyMailFromMX, []string{`mail 300 IN MX 10 mx.example.net.`}, domain.CheckMismatch, "WRONG_VALUE", "mx.example.net"},
		{"mx missing though TXT exists", domain.KeyMailFromMX, []string{`mail 300 IN TXT "v=spf1 include:amazonses.com ~all"`}, domain.CheckMissing, "NOT_FOUND", ""},
		{"spf right", domain.KeyMailFromSPF, []string{`mail 300 IN TXT "v=spf1 include:amazonses.com ~all"`}, domain.CheckVerified, "", ""},
		{"spf with other includes", domain.KeyMailFromSPF, []string{`mail 300 IN TXT "v=spf1 include:_spf.google.com include:amazonses.com -all"`}, domain.CheckVerified, "", ""},
		{"spf without include", domain.KeyMailFromSPF, []string{`mail 300 IN TXT "v=spf1 include:_spf.google.com ~all"`}, domain.CheckMismatch, "WRONG_VALUE", ""},
		{"spf twice", domain.KeyMailFromSPF, []string{`mail 300 IN TXT "v=spf1 include:amazonses.com ~all"`, `mail 300 IN TXT "v=spf1 -all"`}, domain.CheckMismatch, "MULTIPLE_SPF", ""},
		{"spf only other TXT", domain.KeyMailFromSPF, []string{`mail 300 IN TXT "google-site-verification=x"`}, domain.CheckMissing, "NOT_FOUND", ""},
		{"dmarc right", domain.KeyDMARC, []string{`_dmarc 300 IN TXT "v=DMARC1; p=reject; rua=mailto:d@example.com"`}, domain.CheckVerified, "", ""},
		{"dmarc bad policy", domain.KeyDMARC, []string{`_dmarc 300 IN TXT "v=DMARC1; p=maybe"`}, domain.CheckMismatch, "DMARC_SYNTAX", ""},
		{"dmarc twice", domain.KeyDMARC, []string{`_dmarc 300 IN TXT "v=DMARC1; p=none"`, `_dmarc 300 IN TXT "v=DMARC1; p=reject"`}, domain.CheckMismatch, "DMARC_MULTIPLE", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			z := dnstest.NewZone("example.com.")
			for _, l := range tc.zone {
				z.MustAdd(l)
			}
			// The SPF records the MAIL FROM record includes: an SPF verdict evaluates them
			// as receivers do.
			ses := dnstest.NewZone("amazonses.com.")
			ses.MustAdd(`@ 300 IN TXT "v=spf1 ip4:199.255.192.0/22 -all"`)
			google := dnstest.NewZone("google.com.")
			google.MustAdd(`_spf 300 IN TXT "v=spf1 ip4:35.190.247.0/24 ~all"`)
			srv := dnstest.Start(t, z, ses, google)
			obs := newChecker(t, srv.Addr()).Check(context.Background(), []dnscheck.Expectation{expectations[tc.key]})
			o := obs[0]
			if o.Key != tc.key || o.Status != tc.status {
				t.Fatalf("got %s %s, want %s: %+v", o.Key, o.Status, tc.status, o)
			}
			if tc.code == "" && len(o.Problems) > 0 {
				t.Errorf("unexpected problems %+v", o.Problems)
			}
			if tc.code != "" {
				if len(o.Problems) == 0 || o.Problems[0].Code != tc.code {
					t.Fatalf("problems %+v, want first %s", o.Problems, tc.code)
				}
				if !strings.HasSuffix(o.Problems[0].Message, ".") || len(o.Problems[0].Message) < 20 {
					t.Errorf("message %q is not a sentence", o.Problems[0].Message)
				}
			}
			if tc.found != "" && !strings.Contains(strings.Join(o.Found, "|"), tc.found) {
				t.Errorf("found %q, want it to contain %q", o.Found, tc.found)
			}
		})
	}
}

// TestCheckFallsBackToNextResolver checks that a failing first resolver does not
// hide the definite answer of the second.
func TestCheckFallsBackToNextResolver(t *testing.T) {
	z := dnstest.NewZone("example.com.")
	z.MustAdd(`_dmarc 300 IN TXT "v=DMARC1; p=none"`)
	bad := dnstest.Start(t, dnstest.NewZone("example.com."))
	bad.SetFault("", 0, dnstest.ServFail)
	good := dnstest.Start(t, z)
	o := newChecker(t, bad.Addr(), good.Addr()).Check(context.Background(), []dnscheck.Expectation{expectations[domain.KeyDMARC]})[0]
	if o.Status != domain.CheckVerified {
		t.Fatalf("got %+v, want verified through the second resolver", o)
	}
}

// TestCheckTemporaryFailures checks that a SERVFAIL and a silent server are
// temporary failures with their own codes, never "missing".
func TestCheckTemporaryFailures(t *testing.T) {
	for _, tc := range []struct {
		fault dnstest.Fault
		code  domain.ProblemCode
	}{{dnstest.ServFail, "SERVFAIL"}, {dnstest.Drop, "DNS_TIMEOUT"}} {
		srv := dnstest.Start(t, dnstest.NewZone("example.com."))
		srv.SetFault("", 0, tc.fault)
		o := newChecker(t, srv.Addr()).Check(context.Background(), []dnscheck.Expectation{expectations[domain.KeyOwnership]})[0]
		if o.Status != domain.CheckTemporaryFailure || len(o.Problems) != 1 || o.Problems[0].Code != tc.code {
			t.Errorf("%s: got %+v", tc.code, o)
		}
		if tc.fault == dnstest.Drop {
			// One try and one retry, each timing out.
			if n := srv.Count(expectations[domain.KeyOwnership].Name+".", dns.TypeTXT, "udp"); n != 2 {
				t.Errorf("timed-out query sent %d times, want 2 (one retry)", n)
			}
		}
	}
}

// TestClientRejectsAnswerToAnotherQuestion runs a hostile server that answers every
// query with a record for another name, and checks the answer is not believed.
func TestClientRejectsAnswerToAnotherQuestion(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		m.Question[0].Name = "attacker.example."
		m.Answer = append(m.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: "attacker.example.", Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60}, Txt: []string{"v=DMARC1; p=none"}})
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })

	c := &dnscheck.Client{Timeout: 200 * time.Millisecond}
	_, err = c.Exchange(context.Background(), pc.LocalAddr().String(), "_dmarc.example.com", dns.TypeTXT, true)
	if !errors.Is(err, dnscheck.ErrServFail) {
		t.Fatalf("answer to another question: err = %v, want ErrServFail", err)
	}
	o := newChecker(t, pc.LocalAddr().String()).Check(context.Background(), []dnscheck.Expectation{expectations[domain.KeyDMARC]})[0]
	if o.Status != domain.CheckTemporaryFailure {
		t.Fatalf("hostile answer gave %+v, want a temporary failure", o)
	}
}

func TestNewNeedsResolvers(t *testing.T) {
	if _, err := dnscheck.New(dnscheck.Config{}); err == nil {
		t.Fatal("New without resolvers succeeded")
	}
}
