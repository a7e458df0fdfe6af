package api_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/domaind/domaind/internal/dnstest"
)

// TestVerifyLifecycle walks a domain from added to verified and back, publishing
// records in a real DNS server as a customer would.
func TestVerifyLifecycle(t *testing.T) {
	e := newEnv(t, envOptions{})
	d := e.addDomain("example.com")
	if d.VerificationStatus != "PENDING_CONFIGURATION" {
		t.Fatalf("new domain status = %s, want PENDING_CONFIGURATION", d.VerificationStatus)
	}
	recs := d.DNSRecords

	type want struct {
		status                           string
		ownership, dkim, mailFrom, dmarc bool
	}
	check := func(step string, w want) verifyJSON {
		t.Helper()
		v := e.verify(d.ID)
		got := want{v.Data.VerificationStatus, v.Data.OwnershipVerified, v.Data.DKIMEnabled, v.Data.MailFromEnabled, v.Data.DMARCEnabled}
		if got != w {
			t.Fatalf("%s: got %+v, want %+v", step, got, w)
		}
		// The nested domain and the top-level flags must agree.
		dd := v.Data.Domain
		if dd.VerificationStatus != w.status || dd.OwnershipVerified != w.ownership || dd.DKIMEnabled != w.dkim {
			t.Fatalf("%s: nested domain disagrees: %+v", step, dd)
		}
		if v.Data.VerificationInProgress || len(v.Data.UncheckedRecords) != 0 {
			t.Fatalf("%s: unexpected in-progress or unchecked records: %+v", step, v.Data)
		}
		return v
	}

	v := check("no records", want{status: "PENDING_CONFIGURATION"})
	if v.Data.Domain.LastCheckedAt == d.CreatedAt {
		t.Errorf("lastCheckedAt not updated by the check: %s", v.Data.Domain.LastCheckedAt)
	}
	if v.Data.Domain.VerifiedAt != nil {
		t.Errorf("verifiedAt present before verification: %s", *v.Data.Domain.VerifiedAt)
	}

	e.publish(recs.Ownership)
	check("ownership only", want{status: "PENDING", ownership: true})

	e.publish(recs.DKIM)
	v = check("ownership + dkim", want{status: "VERIFIED", ownership: true, dkim: true})
	if v.Data.Domain.VerifiedAt == nil {
		t.Fatal("verifiedAt missing once verified")
	}

	e.publish(recs.MailFrom[0]) // MX alone
	check("MX alone", want{status: "VERIFIED", ownership: true, dkim: true})
	e.publish(recs.MailFrom[1]) // SPF
	check("MX + SPF", want{status: "VERIFIED", ownership: true, dkim: true, mailFrom: true})

	e.publish(recs.DMARC)
	check("DMARC", want{status: "VERIFIED", ownership: true, dkim: true, mailFrom: true, dmarc: true})

	// Someone cleans up DNS and deletes the DKIM record: an explicit verify reports it at once.
	e.zone.Remove(recs.DKIM.Name+".", dns.TypeTXT)
	v = check("DKIM removed", want{status: "PENDING", ownership: true, mailFrom: true, dmarc: true})
	if v.Data.Domain.VerifiedAt == nil {
		t.Error("verifiedAt should keep the time of first verification")
	}
	// And the stored state agrees with what verify answered.
	if g := e.get(d.ID); g.VerificationStatus != "PENDING" || g.DKIMEnabled {
		t.Errorf("GET after DKIM removal: %+v", g)
	}
}

// TestVerifyTemporaryFailuresKeepState checks that SERVFAIL and timeouts never flip
// a verified record, and that the response names the records not checked.
func TestVerifyTemporaryFailuresKeepState(t *testing.T) {
	e := newEnv(t, envOptions{dnsTimeout: 150 * time.Millisecond})
	d := e.addDomain("example.com")
	e.publish(d.DNSRecords.Ownership)
	e.publish(d.DNSRecords.DKIM)
	if v := e.verify(d.ID); v.Data.VerificationStatus != "VERIFIED" {
		t.Fatalf("setup: status %s", v.Data.VerificationStatus)
	}

	for _, tc := range []struct {
		fault dnstest.Fault
		code  string
	}{
		{dnstest.ServFail, "SERVFAIL"},
		{dnstest.Drop, "DNS_TIMEOUT"},
	} {
		t.Run(tc.code, func(t *testing.T) {
			e.dns.SetFault(d.DNSRecords.DKIM.Name+".", dns.TypeTXT, tc.fault)
			defer e.dns.ClearFaults()
			// Even a record that is really gone must not be reported gone while its
			// server fails.
			e.zone.Remove(d.DNSRecords.Ownership.Name+".", dns.TypeTXT)
			e.dns.SetFault(d.DNSRecords.Ownership.Name+".", dns.TypeTXT, tc.fault)
			defer e.publish(d.DNSRecords.Ownership)

			v := e.verify(d.ID)
			if v.Data.VerificationStatus != "VERIFIED" || !v.Data.DKIMEnabled || !v.Data.OwnershipVerified {
				t.Fatalf("a %s flipped the verified state: %+v", tc.code, v.Data)
			}
			got := map[string]string{}
			for _, u := range v.Data.UncheckedRecords {
				got[u.Record] = u.Code
				if u.Message == "" || u.Name == "" {
					t.Errorf("unchecked record without name or message: %+v", u)
				}
			}
			if got["dkim"] != tc.code || got["ownership"] != tc.code {
				t.Fatalf("uncheckedRecords = %+v, want dkim and ownership with %s", v.Data.UncheckedRecords, tc.code)
			}
			if _, ok := got["dmarc"]; ok {
				t.Errorf("dmarc reported unchecked though its server answered")
			}
		})
	}
}

// TestVerifyLongDKIMKey publishes a 2048-bit key as two TXT strings of one record,
// as DNS's 255-byte string limit requires, and over UDP so large that the client
// must retry over TCP.
func TestVerifyLongDKIMKey(t *testing.T) {
	e := newEnv(t, envOptions{dkimBits: 2048})
	d := e.addDomain("example.com")
	dkim := d.DNSRecords.DKIM
	if len(dkim.Value) < 300 {
		t.Fatalf("2048-bit key value is only %d characters", len(dkim.Value))
	}
	if strs := dnstest.SplitTXT(dkim.Value); len(strs) < 2 {
		t.Fatalf("expected the key to need several strings, got %d", len(strs))
	}
	// Published exactly as domaind shows it: the whole key record.
	if err := e.zone.AddTXT(dkim.Name+".", dkim.Value); err != nil {
		t.Fatal(err)
	}
	e.publish(d.DNSRecords.Ownership)
	e.dns.SetFault(dkim.Name+".", dns.TypeTXT, dnstest.Truncate)
	v := e.verify(d.ID)
	if !v.Data.DKIMEnabled || v.Data.VerificationStatus != "VERIFIED" {
		t.Fatalf("2048-bit split key not verified: %+v", v.Data)
	}
	if n := e.dns.Count(dkim.Name+".", dns.TypeTXT, "tcp"); n == 0 {
		t.Error("a truncated UDP answer was not retried over TCP")
	}
}

// TestVerifyWrongValues checks that a definite wrong value reports unverified.
func TestVerifyWrongValues(t *testing.T) {
	e := newEnv(t, envOptions{})
	d := e.addDomain("example.com")
	r := d.DNSRecords
	e.zone.MustAdd(r.Ownership.Name + `. 300 IN TXT "autosend-verify-0000"`)
	e.zone.MustAdd(r.DKIM.Name + `. 300 IN TXT "v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"`)
	e.zone.MustAdd(r.MailFrom[0].Name + `. 300 IN MX 10 feedback-smtp.eu-west-1.amazonses.com.`)
	e.zone.MustAdd(r.MailFrom[1].Name + `. 300 IN TXT "v=spf1 include:_spf.google.com ~all"`)
	e.zone.MustAdd(r.DMARC.Name + `. 300 IN TXT "v=DMARC1; p=bogus"`)
	v := e.verify(d.ID)
	if v.Data.OwnershipVerified || v.Data.DKIMEnabled || v.Data.MailFromEnabled || v.Data.DMARCEnabled {
		t.Fatalf("wrong values verified: %+v", v.Data)
	}
	// Records were found, though wrong: the customer has started configuring.
	if v.Data.VerificationStatus != "PENDING" {
		t.Errorf("status = %s, want PENDING", v.Data.VerificationStatus)
	}
	// Two SPF records at the MAIL FROM name is a permerror even if one is right.
	e.zone.Remove(r.MailFrom[0].Name+".", dns.TypeMX)
	e.publish(r.MailFrom[0])
	e.publish(r.MailFrom[1])
	if v := e.verify(d.ID); v.Data.MailFromEnabled {
		t.Error("two SPF records at the MAIL FROM name verified")
	}
	e.zone.Remove(r.MailFrom[1].Name+".", dns.TypeTXT)
	e.publish(r.MailFrom[1])
	if v := e.verify(d.ID); !v.Data.MailFromEnabled {
		t.Error("MX + one SPF record did not verify")
	}
}

// TestVerifySingleFlight sends two verifies while a slow check runs and checks that
// DNS was asked once.
func TestVerifySingleFlight(t *testing.T) {
	e := newEnv(t, envOptions{dnsTimeout: 400 * time.Millisecond})
	id, results := verifyTwiceAtOnce(t, e, e)
	for i, r := range results {
		if !r.Data.DMARCEnabled {
			t.Errorf("verify %d: dmarc not enabled: %+v", i, r.Data)
		}
	}
	if e.get(id).VerificationInProgress {
		t.Error("verificationInProgress still true after the check finished")
	}
}

// verifyTwiceAtOnce adds example.com through first and verifies it through first
// and, once that check has started, through second (the same server or another
// replica), while a dropped query makes the check last at least two timeouts,
// long enough for the two to overlap. It checks that DNS was asked once, and
// returns the domain's id and both answers.
func verifyTwiceAtOnce(t *testing.T, first, second *env) (string, [2]verifyJSON) {
	t.Helper()
	d := first.addDomain("example.com")
	first.publish(d.DNSRecords.DMARC)
	first.dns.SetFault(d.DNSRecords.Ownership.Name+".", dns.TypeTXT, dnstest.Drop)

	var wg sync.WaitGroup
	var results [2]verifyJSON
	wg.Go(func() { results[0] = first.verify(d.ID) })
	// The wait reads the database as second does, not second's read cache,
	// which shows another replica's lease up to readcache.DefaultMaxStale late.
	db := second.uncached()
	waitFor(t, 5*time.Second, "the first check to start", func() bool { return db.get(d.ID).VerificationInProgress })
	wg.Go(func() { results[1] = second.verify(d.ID) })
	wg.Wait()

	if n := first.dns.Count(d.DNSRecords.DMARC.Name+".", dns.TypeTXT, ""); n != 1 {
		t.Errorf("DMARC name asked %d times for two verifies at once, want 1", n)
	}
	return d.ID, results
}

// TestVerifyBudget checks that a verify whose check outlasts the budget answers
// with the stored state and in-progress, and that the check then finishes.
func TestVerifyBudget(t *testing.T) {
	e := newEnv(t, envOptions{budget: 100 * time.Millisecond, dnsTimeout: 300 * time.Millisecond})
	d := e.addDomain("example.com")
	e.publish(d.DNSRecords.Ownership)
	e.dns.SetFault(d.DNSRecords.DKIM.Name+".", dns.TypeTXT, dnstest.Drop)

	v := e.verify(d.ID)
	if !v.Data.VerificationInProgress || !v.Data.Domain.VerificationInProgress {
		t.Fatalf("verify past its budget did not say in progress: %+v", v.Data)
	}
	if v.Data.OwnershipVerified || v.Data.Domain.LastCheckedAt != d.CreatedAt {
		t.Fatalf("verify past its budget should answer the stored state: %+v", v.Data)
	}
	waitFor(t, 10*time.Second, "the background check to finish", func() bool {
		g := e.get(d.ID)
		return !g.VerificationInProgress && g.OwnershipVerified
	})
}

// TestVerifyMinInterval checks the 429 for a verify right after a finished check.
func TestVerifyMinInterval(t *testing.T) {
	e := newEnv(t, envOptions{minInterval: time.Hour})
	d := e.addDomain("example.com")
	e.verify(d.ID) // the first check is always allowed
	r := e.do("POST", "/v1/domains/"+d.ID+"/verify", "", e.key)
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("second verify status %d, want 429: %s", r.status, r.body)
	}
	errObj := r.json(t)["error"].(map[string]any)
	if errObj["code"] != "RATE_LIMIT_EXCEEDED" {
		t.Errorf("code = %v", errObj["code"])
	}
	ra, ok := errObj["retryAfter"].(float64)
	if !ok || ra < 3500 || ra > 3600 {
		t.Errorf("retryAfter = %v, want about 3600", errObj["retryAfter"])
	}
	if r.header.Get("Retry-After") == "" {
		t.Error("no Retry-After header")
	}
}

// TestRestartKeepsData writes through one server, stops it and reads through another
// on the same database file.
func TestRestartKeepsData(t *testing.T) {
	e := newEnv(t, envOptions{})
	d := e.addDomain("example.com")
	e.publish(d.DNSRecords.Ownership)
	e.publish(d.DNSRecords.DKIM)
	v := e.verify(d.ID)
	second := e.addDomain("second.example.com")
	e.close()

	e2 := newEnv(t, envOptions{dbPath: e.dbPath, dnsServer: e.dns})
	e2.key = e.key // the key lives in the database too
	got := e2.get(d.ID)
	want := v.Data.Domain
	if got.VerificationStatus != "VERIFIED" || got.LastCheckedAt != want.LastCheckedAt ||
		got.VerifiedAt == nil || *got.VerifiedAt != *want.VerifiedAt || got.DNSRecords.DKIM.Value != d.DNSRecords.DKIM.Value ||
		got.DNSRecords.Ownership.Value != d.DNSRecords.Ownership.Value || got.CreatedAt != d.CreatedAt {
		t.Fatalf("after restart:\n got %+v\nwant %+v", got, want)
	}
	list := e2.do("GET", "/v1/domains", "", e2.key)
	if !strings.Contains(string(list.body), second.ID) {
		t.Fatalf("second domain lost in restart: %s", list.body)
	}
}
