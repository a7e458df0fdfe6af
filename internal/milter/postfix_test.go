package milter_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"net/textproto"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/domaind/domaind/internal/apptest"
	"github.com/domaind/domaind/internal/dnstest"
	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/mailtest"
	"github.com/domaind/domaind/internal/milter"
	"github.com/domaind/domaind/internal/records"
	"github.com/domaind/domaind/internal/store/sqlite"
)

// milterCount returns how many messages the app's /metrics counts with result
// r, as the operator's scraper reads it.
func milterCount(t *testing.T, h http.Handler, r milter.Result) int {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	prefix := `domaind_milter_messages_total{result="` + string(r) + `"} `
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("/metrics: %q", line)
			}
			return n
		}
	}
	t.Fatalf("/metrics has no %s line:\n%s", prefix, rec.Body)
	return 0
}

// TestPostfix runs the platform's path end to end with real parts: a customer adds
// example.com through domaind's service, publishes exactly the zone-file lines
// domaind gives into an authoritative DNS server on loopback, and a real check
// (an authoritative walk from a root on loopback) verifies it. Debian's Postfix
// then relays mail through domaind's milter to a sink, and dkimpy, which is not
// ours, verifies the delivered signatures against the same DNS.
func TestPostfix(t *testing.T) {
	ctx := t.Context()
	net1 := dnstest.StartNet(t, 1)
	zone, err := net1.AddZone("example.com.", net1.Servers()[0])
	if err != nil {
		t.Fatal(err)
	}
	zoneServer := net1.Servers()[0].Addr()

	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "d.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := apptest.Config(bytes.Repeat([]byte{9}, 32))
	cfg.Store = st // the last subtest closes it under the milter
	cfg.DNS = apptest.AuthoritativeDNS(net1.RootIPs(), net1.Port())
	cfg.Regions = []string{"us-east-1"}
	cfg.VerifyBudget, cfg.VerifyMinInterval = 10*time.Second, 0
	a := apptest.New(t, cfg)
	svc, v := a.Domains(), a.Verifier()
	project, err := st.EnsureProject(ctx, "acme", time.Now())
	if err != nil {
		t.Fatal(err)
	}

	// The customer adds the domain (as typed) and publishes what domaind shows.
	d, err := svc.Add(ctx, project.ID, "Example.COM", "")
	if err != nil {
		t.Fatal(err)
	}
	zoneText, err := records.ZoneFile(d)
	if err != nil {
		t.Fatal(err)
	}
	if err := zone.Add(string(zoneText)); err != nil {
		t.Fatalf("publishing domaind's zone lines: %v\n%s", err, zoneText)
	}
	check := func() *domain.Domain {
		t.Helper()
		out, err := v.Verify(ctx, project.ID, d.ID)
		if err != nil || out.InProgress {
			t.Fatalf("verify: %v (in progress: %v)", err, out.InProgress)
		}
		return out.Domain
	}
	if got := check(); got.Status != domain.StatusVerified || !got.DKIMEnabled {
		t.Fatalf("after publishing: status %s, dkimEnabled %v; want VERIFIED with DKIM", got.Status, got.DKIMEnabled)
	}

	srv := a.Milter()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			t.Errorf("milter shutdown: %v", err)
		}
		if err := <-served; err != milter.ErrServerClosed {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	sink := mailtest.StartSink(t)
	started := time.Now()
	pf := mailtest.StartPostfix(t, mailtest.PostfixOptions{Milter: ln.Addr().String(), Relay: sink.Addr()})
	t.Logf("Postfix started in %s", time.Since(started).Round(time.Millisecond))

	n := 0
	// deliver sends a message through Postfix and returns it as the sink got it.
	deliver := func(t *testing.T, from string, viaSendmail bool) *mail.Message {
		t.Helper()
		n++
		subject := fmt.Sprintf("test %d %s", n, t.Name())
		msg := fmt.Sprintf("From: Sender <%s>\r\nTo: rcpt@example.org\r\nSubject: %s\r\nMIME-Version: 1.0\r\n"+
			"Content-Type: text/plain; charset=utf-8\r\n\r\nHello,  world.\r\n\r\n.leading dot\r\n", from, subject)
		envFrom := "bounce@example.com"
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if viaSendmail {
			if err := pf.Sendmail(sctx, envFrom, []string{"rcpt@example.org"}, []byte(strings.ReplaceAll(msg, "\r\n", "\n"))); err != nil {
				t.Fatal(err)
			}
		} else if err := pf.Send(envFrom, []string{"rcpt@example.org"}, []byte(msg)); err != nil {
			t.Fatalf("SMTP to Postfix: %v\n%s", err, pf.Log())
		}
		got, err := sink.Wait(sctx, func(m mailtest.Message) bool {
			return bytes.Contains(m.Data, []byte("Subject: "+subject+"\r\n"))
		})
		if err != nil {
			t.Fatalf("%v\nPostfix log:\n%s", err, pf.Log())
		}
		parsed, err := mail.ReadMessage(bytes.NewReader(got.Data))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(got.Data), "DKIM-Signature:") && parsed.Header.Get("DKIM-Signature") != "" {
			t.Errorf("the signature is not the first field:\n%s", got.Data)
		}
		if parsed.Header.Get("DKIM-Signature") != "" {
			res := mailtest.VerifyDKIM(t, got.Data, zoneServer)
			if !res.OK {
				t.Errorf("dkimpy rejects the signature: %+v\n%s", res, got.Data)
			}
			if res.Domain != "example.com" || res.Selector != "autosend" {
				t.Errorf("signature d=%s s=%s, want d=example.com s=autosend", res.Domain, res.Selector)
			}
		}
		return parsed
	}
	signed := func(t *testing.T, m *mail.Message, want bool) {
		t.Helper()
		if got := m.Header.Get("DKIM-Signature") != ""; got != want {
			t.Errorf("signed: %v, want %v", got, want)
		}
	}

	for _, tc := range []struct {
		name     string
		from     string
		sendmail bool
		signed   bool
	}{
		{"verified domain", "alice@example.com", false, true},
		{"verified domain, uppercase", "alice@EXAMPLE.Com", false, true},
		{"verified domain, trailing dot", "alice@example.com.", false, true},
		{"subdomain signs as its parent", "news@news.example.com", false, true},
		{"sendmail command (non_smtpd_milters)", "alice@example.com", true, true},
		{"unverified domain", "alice@example.net", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			signed(t, deliver(t, tc.from, tc.sendmail), tc.signed)
		})
	}
	if signed, noKey := milterCount(t, a.Handler(), milter.ResultSigned), milterCount(t, a.Handler(), milter.ResultNoKey); signed != 5 || noKey != 1 {
		t.Errorf("/metrics counted %d signed and %d unsigned_no_key, want 5 and 1", signed, noKey)
	}

	t.Run("DKIM record removed, one check", func(t *testing.T) {
		zone.Remove("autosend._domainkey.example.com.", dns.TypeTXT)
		if got := check(); got.Record(domain.KeyDKIM).Status == domain.CheckVerified {
			t.Fatalf("the check still finds the DKIM record")
		}
		signed(t, deliver(t, "alice@example.com", false), false)
	})

	// Last, as it breaks the store: when domaind cannot look the key up, the
	// message is deferred (4xx to the SMTP client), never passed unsigned.
	t.Run("store unreachable", func(t *testing.T) {
		st.Close()
		msg := "From: alice@example.com\r\nTo: rcpt@example.org\r\nSubject: deferred\r\n\r\nHello\r\n"
		err := pf.Send("bounce@example.com", []string{"rcpt@example.org"}, []byte(msg))
		var tpe *textproto.Error
		if !errors.As(err, &tpe) || tpe.Code/100 != 4 {
			t.Fatalf("SMTP answered %v, want a 4xx temporary failure", err)
		}
		if n := milterCount(t, a.Handler(), milter.ResultTempFail); n != 1 {
			t.Errorf("tempfail counted %d times, want 1", n)
		}
	})
}
