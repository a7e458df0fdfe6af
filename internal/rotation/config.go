// Package rotation rotates domains' DKIM keys without a moment in which mail is
// signed with a key receivers cannot find: a new key is made at the idle
// selector, published (by the customer in txt mode, by domaind through RFC 2136
// in cname mode), seen on every authoritative server, and only then signs; the
// old key stays published until the retire time. Every step is recorded before
// the next is taken, so a crash resumes where it stopped.
package rotation

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/domaind/domaind/internal/domain"
)

// Config is how domains' keys rotate; serve's --dkim-* and --dns-update-* flags
// set it.
type Config struct {
	// Mode is how new domains publish their keys; existing domains keep the
	// mode they were added in.
	Mode domain.DKIMMode
	// Zone is the operator's zone that holds the keys in cname mode
	// (--dkim-zone), without a trailing dot.
	Zone string
	// Server is the primary of Zone that takes RFC 2136 updates, host:port.
	Server string
	// TSIG signs the updates.
	TSIG TSIG
	// RotateEvery starts a rotation this long after a key began signing; zero
	// rotates only on request.
	RotateEvery time.Duration
	// RetireAfter is how long after the switch the old key stays published.
	RetireAfter time.Duration
}

// DefaultConfig returns serve's defaults.
func DefaultConfig() Config {
	return Config{
		Mode: domain.DKIMModeTXT, RotateEvery: 180 * 24 * time.Hour, RetireAfter: 7 * 24 * time.Hour,
	}
}

// Validate reports the first setting that cannot work, naming its flag.
func (c Config) Validate() error {
	switch c.Mode {
	case domain.DKIMModeTXT, domain.DKIMModeCNAME:
	default:
		return fmt.Errorf("--dkim-mode %q must be txt or cname", c.Mode)
	}
	if c.Mode != domain.DKIMModeCNAME && (c.Zone != "" || c.Server != "" || c.TSIG != TSIG{}) {
		// Settings that do nothing in txt mode are a mistake to report,
		// not to ignore: the operator meant cname mode.
		return errors.New("--dkim-zone, --dns-update-server and --dns-update-tsig are for --dkim-mode cname")
	}
	if c.RotateEvery < 0 {
		return fmt.Errorf("--dkim-rotate-every %s must not be negative (0 rotates only on request)", c.RotateEvery)
	}
	if c.RetireAfter <= 0 {
		return fmt.Errorf("--dkim-retire-after %s must be positive: mail signed with the old key needs time to be verified", c.RetireAfter)
	}
	if c.RotateEvery > 0 && c.RotateEvery <= c.RetireAfter {
		return fmt.Errorf("--dkim-rotate-every %s must be longer than --dkim-retire-after %s", c.RotateEvery, c.RetireAfter)
	}
	if c.Mode != domain.DKIMModeCNAME {
		return nil
	}
	if _, ok := dns.IsDomainName(c.Zone); !ok || c.Zone == "" || !strings.Contains(c.Zone, ".") || strings.HasSuffix(c.Zone, ".") {
		return fmt.Errorf("--dkim-zone %q must be a domain name (without a trailing dot) in cname mode", c.Zone)
	}
	if c.Server == "" {
		return errors.New("--dns-update-server HOST:PORT is required in cname mode")
	}
	if _, port, err := net.SplitHostPort(c.Server); err != nil || !validPort(port) {
		return fmt.Errorf("--dns-update-server %q must be HOST:PORT", c.Server)
	}
	if c.TSIG.Name == "" {
		return errors.New("--dns-update-tsig ALG:NAME:BASE64SECRET is required in cname mode")
	}
	return nil
}

func validPort(s string) bool {
	p, err := strconv.Atoi(s)
	return err == nil && p >= 1 && p <= 65535
}

// TSIG is a TSIG key (RFC 8945): its algorithm, name and secret.
type TSIG struct {
	Algorithm string // a miekg/dns algorithm name, fully qualified (hmac-sha256.)
	Name      string // fully qualified, lower case
	Secret    string // base64
}

// tsigAlgorithms are the algorithms --dns-update-tsig takes, by the names
// knsupdate -y and BIND's keys use. HMAC-MD5 is left out: RFC 8945 §6 says it
// must not be used for new deployments.
var tsigAlgorithms = map[string]string{
	"hmac-sha1":   dns.HmacSHA1,
	"hmac-sha224": dns.HmacSHA224,
	"hmac-sha256": dns.HmacSHA256,
	"hmac-sha384": dns.HmacSHA384,
	"hmac-sha512": dns.HmacSHA512,
}

// ParseTSIG parses ALG:NAME:BASE64SECRET, the form `knsupdate -y` takes; the
// algorithm may be left out (NAME:SECRET), when it is hmac-sha256, as with
// knsupdate.
func ParseTSIG(s string) (TSIG, error) {
	parts := strings.Split(s, ":")
	if len(parts) == 2 {
		parts = append([]string{"hmac-sha256"}, parts...)
	}
	if len(parts) != 3 {
		return TSIG{}, errors.New("--dns-update-tsig must be ALG:NAME:BASE64SECRET")
	}
	alg, ok := tsigAlgorithms[strings.ToLower(parts[0])]
	if !ok {
		return TSIG{}, fmt.Errorf("--dns-update-tsig algorithm %q must be one of hmac-sha1, hmac-sha224, hmac-sha256, hmac-sha384, hmac-sha512", domain.Truncate(parts[0], 32))
	}
	name := strings.ToLower(parts[1])
	if _, ok := dns.IsDomainName(name); !ok || name == "" {
		return TSIG{}, fmt.Errorf("--dns-update-tsig key name %q must be a domain name", domain.Truncate(parts[1], 64))
	}
	secret, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(secret) == 0 {
		return TSIG{}, errors.New("--dns-update-tsig secret must be base64")
	}
	return TSIG{Algorithm: alg, Name: dns.Fqdn(name), Secret: parts[2]}, nil
}

// ParseDuration parses a duration as time.ParseDuration does, and also a
// whole number of days with "d" (7d, 180d), as the --dkim-* flags take them.
func ParseDuration(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 || days > 100*365 {
			return 0, fmt.Errorf("%q is not a number of days", s)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

// FormatDuration writes d as ParseDuration reads it: whole days as days
// (180d), anything else as time.Duration writes it.
func FormatDuration(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	return d.String()
}
