package rotation

import (
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/domaind/domaind/internal/domain"
)

func TestParseTSIG(t *testing.T) {
	const secret = "c2VjcmV0"
	tests := []struct {
		in      string
		want    TSIG
		wantErr string
	}{
		{in: "hmac-sha256:update-key:" + secret, want: TSIG{Algorithm: dns.HmacSHA256, Name: "update-key.", Secret: secret}},
		{in: "HMAC-SHA512:Key.Example.:" + secret, want: TSIG{Algorithm: dns.HmacSHA512, Name: "key.example.", Secret: secret}},
		// knsupdate -y takes [alg:]name:key, hmac-sha256 by default.
		{in: "update-key:" + secret, want: TSIG{Algorithm: dns.HmacSHA256, Name: "update-key.", Secret: secret}},
		{in: "hmac-md5:k:" + secret, wantErr: "algorithm"},
		{in: "hmac-sha256:k:not base64!", wantErr: "base64"},
		{in: "hmac-sha256:k:", wantErr: "base64"},
		{in: "hmac-sha256::" + secret, wantErr: "key name"},
		{in: "just-one-part", wantErr: "ALG:NAME:BASE64SECRET"},
		{in: "a:b:c:d", wantErr: "ALG:NAME:BASE64SECRET"},
	}
	for _, tt := range tests {
		got, err := ParseTSIG(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "--dns-update-tsig") {
				t.Errorf("ParseTSIG(%q) = %+v, %v; want an error naming the flag and %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseTSIG(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"7d", 7 * 24 * time.Hour, true},
		{"180d", 180 * 24 * time.Hour, true},
		{"0", 0, true},
		{"36h", 36 * time.Hour, true},
		{"1.5d", 0, false},
		{"-1d", 0, false},
		{"d", 0, false},
		{"99999999999d", 0, false}, // would overflow a Duration
		{"soon", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func FuzzParseTSIG(f *testing.F) {
	f.Add("hmac-sha256:k:c2VjcmV0")
	f.Add("k:c2VjcmV0")
	f.Add("::")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseTSIG(s)
		if err != nil {
			return
		}
		if _, ok := dns.IsDomainName(k.Name); !ok || !strings.HasSuffix(k.Name, ".") || k.Secret == "" || k.Algorithm == "" {
			t.Fatalf("ParseTSIG(%q) accepted %+v", s, k)
		}
	})
}

func FuzzParseDuration(f *testing.F) {
	f.Add("7d")
	f.Add("180d")
	f.Add("1h30m")
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err == nil && strings.HasSuffix(s, "d") && d < 0 {
			t.Fatalf("ParseDuration(%q) = %v", s, d)
		}
	})
}

func TestValidate(t *testing.T) {
	tsig := TSIG{Algorithm: dns.HmacSHA256, Name: "k.", Secret: "c2VjcmV0"}
	cname := func(edit func(c *Config)) Config {
		c := DefaultConfig()
		c.Mode, c.Zone, c.Server, c.TSIG = domain.DKIMModeCNAME, "dkim.platform.example", "127.0.0.1:53", tsig
		edit(&c)
		return c
	}
	tests := []struct {
		name    string
		cfg     Config
		wantErr string // the flag the error names; "" for none
	}{
		{"defaults", DefaultConfig(), ""},
		{"cname", cname(func(*Config) {}), ""},
		{"rotate only on request", cname(func(c *Config) { c.RotateEvery = 0 }), ""},
		{"unknown mode", cname(func(c *Config) { c.Mode = "dane" }), "--dkim-mode"},
		{"no zone", cname(func(c *Config) { c.Zone = "" }), "--dkim-zone"},
		{"zone with a dot", cname(func(c *Config) { c.Zone = "dkim.example." }), "--dkim-zone"},
		{"one-label zone", cname(func(c *Config) { c.Zone = "dkim" }), "--dkim-zone"},
		{"no server", cname(func(c *Config) { c.Server = "" }), "--dns-update-server"},
		{"server without port", cname(func(c *Config) { c.Server = "ns1.example" }), "--dns-update-server"},
		{"server port 0", cname(func(c *Config) { c.Server = "ns1.example:0" }), "--dns-update-server"},
		{"no key", cname(func(c *Config) { c.TSIG = TSIG{} }), "--dns-update-tsig"},
		{"no retire", cname(func(c *Config) { c.RetireAfter = 0 }), "--dkim-retire-after"},
		{"rotate sooner than retire", cname(func(c *Config) { c.RotateEvery = time.Hour; c.RetireAfter = 2 * time.Hour }), "--dkim-rotate-every"},
		{"negative rotate", cname(func(c *Config) { c.RotateEvery = -time.Hour }), "--dkim-rotate-every"},
		{"zone in txt mode", cname(func(c *Config) { c.Mode, c.Server, c.TSIG = domain.DKIMModeTXT, "", TSIG{} }), "--dkim-mode cname"},
		{"server in txt mode", cname(func(c *Config) { c.Mode, c.Zone, c.TSIG = domain.DKIMModeTXT, "", TSIG{} }), "--dkim-mode cname"},
		{"key in txt mode", cname(func(c *Config) { c.Mode, c.Zone, c.Server = domain.DKIMModeTXT, "", "" }), "--dkim-mode cname"},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("%s: Validate() = %v, want an error naming %q", tt.name, err, tt.wantErr)
		}
	}
}

// TestFormatDuration: serve's flag defaults are written by FormatDuration and
// read back by ParseDuration, so the two must agree.
func TestFormatDuration(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{180 * 24 * time.Hour, "180d"},
		{7 * 24 * time.Hour, "7d"},
		{0, "0s"},
		{36 * time.Hour, "36h0m0s"},
	} {
		got := FormatDuration(tc.d)
		if got != tc.want {
			t.Errorf("FormatDuration(%v) = %q, want %q", tc.d, got, tc.want)
		}
		if back, err := ParseDuration(got); err != nil || back != tc.d {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", got, back, err, tc.d)
		}
	}
}
