package rotation_test

import (
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/domaind/domaind/internal/dnstest"
	"github.com/domaind/domaind/internal/dnstest/realdns"
	"github.com/domaind/domaind/internal/rotation"
)

// The TSIG key of the tests' operator zone, and another the server does not
// know.
const (
	testSecret  = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA=="
	wrongSecret = "d3Jvbmctd3Jvbmctd3Jvbmctd3Jvbmctd3Jvbmctd3Jvbmc="
)

func operatorZone(nsIP string) string {
	return `$TTL 300
@    3600 IN SOA ns hostmaster 1 3600 600 86400 60
@         IN NS  ns
ns        IN A   ` + nsIP + `
`
}

// txtAt asks the server for the TXT records at name and returns their values.
func txtAt(t *testing.T, addr, name string) []string {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeTXT)
	c := &dns.Client{Net: "tcp", Timeout: 5 * time.Second}
	resp, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatal(err)
	}
	return dnstest.TXTValues(resp)
}

// TestUpdaterAgainstKnot publishes, replaces and deletes a key record in a
// real Knot by RFC 2136 with TSIG, and checks that an update signed with a
// wrong secret, or sent to no server, fails and changes nothing.
func TestUpdaterAgainstKnot(t *testing.T) {
	k := realdns.StartKnotWithUpdates(t, "127.0.0.71", 0, map[string]string{"dkim.platform.test": operatorZone("127.0.0.71")},
		realdns.UpdateKey{Algorithm: "hmac-sha256", Name: "domaind-update.", Secret: testSecret}, "dkim.platform.test")
	tsig, err := rotation.ParseTSIG("hmac-sha256:domaind-update:" + testSecret)
	if err != nil {
		t.Fatal(err)
	}
	u := &rotation.Updater{Zone: "dkim.platform.test.", Server: k.Addr(), TSIG: tsig}
	ctx := t.Context()
	name := "autosend.example.com.dkim.platform.test"
	// A 4096-bit key's record is longer than one TXT string holds.
	long := "v=DKIM1; k=rsa; p=" + strings.Repeat("A", 700)
	for _, v := range []string{"v=DKIM1; k=rsa; p=AAAA", long, long} {
		if err := u.Replace(ctx, name, v); err != nil {
			t.Fatalf("replace: %v", err)
		}
		if got := txtAt(t, k.Addr(), name); len(got) != 1 || got[0] != v {
			t.Fatalf("after replace with %.30q: %q", v, got)
		}
	}

	wrong, _ := rotation.ParseTSIG("hmac-sha256:domaind-update:" + wrongSecret)
	bad := &rotation.Updater{Zone: "dkim.platform.test.", Server: k.Addr(), TSIG: wrong}
	if err := bad.Replace(ctx, name, "v=DKIM1; p=forged"); err == nil {
		t.Fatal("an update signed with a wrong secret succeeded")
	}
	unknown, _ := rotation.ParseTSIG("hmac-sha256:someone-else:" + testSecret)
	if err := (&rotation.Updater{Zone: "dkim.platform.test.", Server: k.Addr(), TSIG: unknown}).Delete(ctx, name); err == nil {
		t.Fatal("an update signed with an unknown key succeeded")
	}
	if got := txtAt(t, k.Addr(), name); len(got) != 1 || got[0] != long {
		t.Fatalf("refused updates changed the record: %q", got)
	}

	down := &rotation.Updater{Zone: "dkim.platform.test.", Server: "127.0.0.72:9", TSIG: tsig, Timeout: time.Second}
	if err := down.Replace(ctx, name, "v=DKIM1; p=x"); err == nil {
		t.Fatal("an update to no server succeeded")
	}

	for range 2 { // deleting twice is no error
		if err := u.Delete(ctx, name); err != nil {
			t.Fatalf("delete: %v", err)
		}
	}
	if got := txtAt(t, k.Addr(), name); len(got) != 0 {
		t.Fatalf("after delete: %q", got)
	}
}
