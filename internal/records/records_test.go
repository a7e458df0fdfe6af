package records_test

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/records"
)

var now = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// want is one row of an expected record table.
type want struct {
	key      domain.RecordKey
	name     string
	typ      string
	value    string // ignored for the ownership and DKIM records, checked apart
	priority uint16
}

func checkTable(t *testing.T, got []domain.Record, table []want) {
	t.Helper()
	if len(got) != len(table) {
		t.Fatalf("got %d records, want %d", len(got), len(table))
	}
	for i, w := range table {
		r := got[i]
		if r.Key != w.key || r.Name != w.name || r.Type != w.typ || r.Priority != w.priority {
			t.Errorf("record %d = %s %s %s priority %d, want %s %s %s priority %d",
				i, r.Key, r.Name, r.Type, r.Priority, w.key, w.name, w.typ, w.priority)
		}
		if w.value != "" && r.Value != w.value {
			t.Errorf("record %s value = %q, want %q", r.Key, r.Value, w.value)
		}
		if r.Purpose == "" {
			t.Errorf("record %s has no purpose", r.Key)
		}
		if r.Status != domain.CheckUnchecked || r.Verified || !r.CreatedAt.Equal(now) || !r.UpdatedAt.Equal(now) {
			t.Errorf("record %s starts as status %q verified %v created %v updated %v, want unchecked, unverified, both %v",
				r.Key, r.Status, r.Verified, r.CreatedAt, r.UpdatedAt, now)
		}
	}
}

var ownershipValue = regexp.MustCompile(`^autosend-verify-[0-9a-f]{32}$`)

// checkDKIM checks that g's DKIM record publishes the public half of g's private
// key, an RSA key of the given size.
func checkDKIM(t *testing.T, g records.Generated, bits int) {
	t.Helper()
	r := g.Records[1]
	// RFC 6376 section 3.6.1: p= is required; a bare key is not a key record.
	b64, ok := strings.CutPrefix(r.Value, "v=DKIM1; k=rsa; p=")
	if !ok {
		t.Fatalf("DKIM value = %q, want v=DKIM1; k=rsa; p=<key>", r.Value)
	}
	der, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatalf("DKIM value is not base64: %v", err)
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		t.Fatalf("DKIM value is not a SubjectPublicKeyInfo: %v", err)
	}
	rpub, ok := pub.(*rsa.PublicKey)
	if !ok {
		t.Fatalf("DKIM key is %T, want RSA", pub)
	}
	if rpub.N.BitLen() != bits {
		t.Errorf("DKIM key has %d bits, want %d", rpub.N.BitLen(), bits)
	}
	priv, err := x509.ParsePKCS8PrivateKey(g.DKIMPrivateKey)
	if err != nil {
		t.Fatalf("DKIM private key is not PKCS #8: %v", err)
	}
	rpriv, ok := priv.(*rsa.PrivateKey)
	if !ok {
		t.Fatalf("DKIM private key is %T, want RSA", priv)
	}
	if !rpriv.PublicKey.Equal(rpub) {
		t.Error("the published DKIM key is not the public half of the private key")
	}
	if err := rpriv.Validate(); err != nil {
		t.Errorf("DKIM private key: %v", err)
	}
}

// TestGenerate checks the generated table: the contract's for example.com in
// us-east-1 with the default config (and its 2048-bit key), and one of a
// config that changes every name and value.
func TestGenerate(t *testing.T) {
	custom := records.Config{
		MailFromSubdomain: "bounce.mx",
		DKIMSelector:      "s2025",
		OwnershipPrefix:   "acme-site-verify",
		MXTemplate:        "fb.{region}.mail.acme.net",
		SPFInclude:        "spf.acme.net",
		DMARCValue:        "v=DMARC1; p=quarantine; rua=mailto:d@acme.net",
		InboundMXTemplate: "in-{region}.acme.net",
		DKIMBits:          1024,
	}
	for _, tc := range []struct {
		name, domain, region string
		config               records.Config
		want                 []want
		ownership            *regexp.Regexp
		inbound              want
		bits                 int
	}{
		{
			name: "defaults", domain: "example.com", region: "us-east-1", config: records.DefaultConfig(),
			want: []want{
				{domain.KeyOwnership, "_autosend-verify.example.com", "TXT", "", 0},
				{domain.KeyDKIM, "autosend._domainkey.example.com", "TXT", "", 0},
				{domain.KeyMailFromMX, "mail.example.com", "MX", "feedback-smtp.us-east-1.amazonses.com", 10},
				{domain.KeyMailFromSPF, "mail.example.com", "TXT", "v=spf1 include:amazonses.com ~all", 0},
				{domain.KeyDMARC, "_dmarc.example.com", "TXT", "v=DMARC1; p=none;", 0},
			},
			ownership: ownershipValue,
			inbound:   want{domain.KeyInboundMX, "example.com", "MX", "inbound-smtp.us-east-1.amazonaws.com", 10},
			bits:      2048,
		},
		{
			name: "custom", domain: "shop.example.org", region: "eu-central-1", config: custom,
			want: []want{
				{domain.KeyOwnership, "_acme-site-verify.shop.example.org", "TXT", "", 0},
				{domain.KeyDKIM, "s2025._domainkey.shop.example.org", "TXT", "", 0},
				{domain.KeyMailFromMX, "bounce.mx.shop.example.org", "MX", "fb.eu-central-1.mail.acme.net", 10},
				{domain.KeyMailFromSPF, "bounce.mx.shop.example.org", "TXT", "v=spf1 include:spf.acme.net ~all", 0},
				{domain.KeyDMARC, "_dmarc.shop.example.org", "TXT", "v=DMARC1; p=quarantine; rua=mailto:d@acme.net", 0},
			},
			ownership: regexp.MustCompile(`^acme-site-verify-[0-9a-f]{32}$`),
			inbound:   want{domain.KeyInboundMX, "shop.example.org", "MX", "in-eu-central-1.acme.net", 10},
			bits:      1024,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.config.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			g, err := tc.config.Generate(tc.domain, tc.region, now)
			if err != nil {
				t.Fatalf("Generate: %v", err)
			}
			checkTable(t, g.Records, tc.want)
			if v := g.Records[0].Value; !tc.ownership.MatchString(v) {
				t.Errorf("ownership value = %q, want it to match %s", v, tc.ownership)
			}
			checkDKIM(t, g, tc.bits)
			checkTable(t, []domain.Record{tc.config.InboundMX(tc.domain, tc.region, now)}, []want{tc.inbound})
		})
	}
}

func smallConfig() records.Config {
	c := records.DefaultConfig()
	c.DKIMBits = 1024 // fast; the 2048-bit default is covered by TestGenerate
	return c
}

func TestGenerateFresh(t *testing.T) {
	c := smallConfig()
	a, err := c.Generate("example.com", "us-east-1", now)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Generate("example.com", "us-east-1", now)
	if err != nil {
		t.Fatal(err)
	}
	checkDKIM(t, a, 1024)
	checkDKIM(t, b, 1024)
	if a.Records[0].Value == b.Records[0].Value {
		t.Errorf("two generations share the ownership token %s", a.Records[0].Value)
	}
	if a.Records[1].Value == b.Records[1].Value || bytes.Equal(a.DKIMPrivateKey, b.DKIMPrivateKey) {
		t.Error("two generations share a DKIM key")
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		change  func(*records.Config)
		wantErr string // a part of the error naming the setting; "" for none
	}{
		{"defaults", func(*records.Config) {}, ""},
		{"multi-label selector", func(c *records.Config) { c.DKIMSelector = "s1.mail" }, ""},
		{"1024 bits", func(c *records.Config) { c.DKIMBits = 1024 }, ""},
		{"4096 bits", func(c *records.Config) { c.DKIMBits = 4096 }, ""},
		{"empty selector", func(c *records.Config) { c.DKIMSelector = "" }, "--dkim-selector"},
		{"selector with underscore", func(c *records.Config) { c.DKIMSelector = "auto_send" }, "--dkim-selector"},
		{"selector with space", func(c *records.Config) { c.DKIMSelector = "auto send" }, "--dkim-selector"},
		{"selector starting with hyphen", func(c *records.Config) { c.DKIMSelector = "-autosend" }, "--dkim-selector"},
		{"selector with empty label", func(c *records.Config) { c.DKIMSelector = "a..b" }, "--dkim-selector"},
		{"selector label too long", func(c *records.Config) { c.DKIMSelector = strings.Repeat("a", 64) }, "--dkim-selector"},
		{"bad mail-from subdomain", func(c *records.Config) { c.MailFromSubdomain = "mail." }, "--mail-from-subdomain"},
		{"bad ownership prefix", func(c *records.Config) { c.OwnershipPrefix = "_verify" }, "--ownership-prefix"},
		{"mx template of one label", func(c *records.Config) { c.MXTemplate = "{region}" }, "--mx-template"},
		{"mx template with bad placeholder", func(c *records.Config) { c.MXTemplate = "feedback.{zone}.amazonses.com" }, "--mx-template"},
		{"mx template with space", func(c *records.Config) { c.MXTemplate = "feedback smtp.{region}.amazonses.com" }, "--mx-template"},
		{"inbound mx template with trailing dot", func(c *records.Config) { c.InboundMXTemplate = "inbound.{region}.amazonaws.com." }, "--inbound-mx-template"},
		{"spf include of one label", func(c *records.Config) { c.SPFInclude = "amazonses" }, "--spf-include"},
		{"dmarc without v=DMARC1", func(c *records.Config) { c.DMARCValue = "p=none;" }, "--dmarc-value"},
		{"dmarc with v=DMARC1 later", func(c *records.Config) { c.DMARCValue = "p=none; v=DMARC1" }, "--dmarc-value"},
		{"dkim bits too few", func(c *records.Config) { c.DKIMBits = 1023 }, "--dkim-bits"},
		{"dkim bits 512", func(c *records.Config) { c.DKIMBits = 512 }, "--dkim-bits"},
		{"dkim bits too many", func(c *records.Config) { c.DKIMBits = 4097 }, "--dkim-bits"},
		{"dkim bits unset", func(c *records.Config) { c.DKIMBits = 0 }, "--dkim-bits"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := records.DefaultConfig()
			tc.change(&c)
			err := c.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("Validate() = %v, want an error about %s", err, tc.wantErr)
			}
		})
	}
}
