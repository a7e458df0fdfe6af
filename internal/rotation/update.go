package rotation

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Updater changes the operator's key zone by RFC 2136 dynamic update signed
// with TSIG (RFC 8945), as Knot, BIND and PowerDNS accept it.
type Updater struct {
	Zone    string // the zone updated, fully qualified
	Server  string // its primary, host:port
	TSIG    TSIG
	Timeout time.Duration // per exchange; 5s when zero
}

// NewUpdater returns the Updater of cfg, or nil outside cname mode.
func NewUpdater(cfg Config) *Updater {
	if cfg.Zone == "" || cfg.Server == "" {
		return nil
	}
	return &Updater{Zone: dns.Fqdn(strings.ToLower(cfg.Zone)), Server: cfg.Server, TSIG: cfg.TSIG}
}

// ttl of the key records domaind publishes: short, so a removed key leaves
// caches soon; the retire time is what protects mail in transit.
const ttl = 300

// txtStrings splits a value into the character-strings of one TXT record, at
// most 255 bytes each (RFC 1035 §3.3); a 4096-bit key needs three.
func txtStrings(v string) []string {
	var out []string
	for len(v) > 255 {
		out = append(out, v[:255])
		v = v[255:]
	}
	return append(out, v)
}

// Replace makes value the one TXT record at name: the old RRset is deleted and
// the new one added in one update (RFC 2136 §2.5), so repeating it is harmless.
func (u *Updater) Replace(ctx context.Context, name, value string) error {
	owner := dns.Fqdn(name)
	rr := &dns.TXT{Hdr: dns.RR_Header{Name: owner, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: ttl}, Txt: escape(txtStrings(value))}
	m := new(dns.Msg)
	m.SetUpdate(u.Zone)
	m.RemoveRRset([]dns.RR{&dns.TXT{Hdr: dns.RR_Header{Name: owner, Rrtype: dns.TypeTXT, Class: dns.ClassINET}}})
	m.Insert([]dns.RR{rr})
	return u.send(ctx, m)
}

// Delete removes every TXT record at name; deleting what is not there is no
// error (RFC 2136 §3.4.2.3), so repeating it is harmless.
func (u *Updater) Delete(ctx context.Context, name string) error {
	m := new(dns.Msg)
	m.SetUpdate(u.Zone)
	m.RemoveRRset([]dns.RR{&dns.TXT{Hdr: dns.RR_Header{Name: dns.Fqdn(name), Rrtype: dns.TypeTXT, Class: dns.ClassINET}}})
	return u.send(ctx, m)
}

// escape writes each string as miekg/dns keeps TXT strings, in presentation
// form: a key record holds only base64, ';', '=' and spaces, but a quote or a
// backslash would otherwise change meaning.
func escape(strs []string) []string {
	out := make([]string, len(strs))
	for i, s := range strs {
		s = strings.ReplaceAll(s, `\`, `\\`)
		out[i] = strings.ReplaceAll(s, `"`, `\"`)
	}
	return out
}

func (u *Updater) send(ctx context.Context, m *dns.Msg) error {
	timeout := u.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	// The signature's time is the machine's, never a test's clock: servers
	// refuse a TSIG more than the fudge (300s) away from theirs (RFC 8945
	// §5.2.3).
	m.SetTsig(u.TSIG.Name, u.TSIG.Algorithm, 300, time.Now().Unix())
	// TCP: an update with a 4096-bit key approaches 1 KiB, and TCP needs no
	// truncation fallback.
	c := &dns.Client{Net: "tcp", Timeout: timeout, TsigSecret: map[string]string{u.TSIG.Name: u.TSIG.Secret}}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, _, err := c.ExchangeContext(ctx, m, u.Server)
	if err != nil {
		return fmt.Errorf("rotation: update of %s at %s: %w", u.Zone, u.Server, err)
	}
	if resp.Rcode != dns.RcodeSuccess {
		return fmt.Errorf("rotation: update of %s at %s: %w", u.Zone, u.Server, &RcodeError{Rcode: resp.Rcode})
	}
	return nil
}

// RcodeError is an update the server refused.
type RcodeError struct{ Rcode int }

func (e *RcodeError) Error() string {
	return "server answered " + dns.RcodeToString[e.Rcode]
}

// ErrNoUpdater is returned for a cname-mode step with no --dns-update-server.
var ErrNoUpdater = errors.New("rotation: cname mode needs --dns-update-server and --dns-update-tsig")
