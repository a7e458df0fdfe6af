// Package records generates the DNS records a customer publishes for a sending domain:
// the ownership token, a DKIM key pair, the MAIL FROM MX and SPF records and DMARC.
package records

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/domaind/domaind/internal/domain"
)

// Config holds the operator's templates for generated records. The zero value is
// not useful; start from DefaultConfig.
type Config struct {
	MailFromSubdomain string // the MAIL FROM domain is this label under the domain
	DKIMSelector      string
	OwnershipPrefix   string // the token lives at _<prefix>.<domain> and starts with <prefix>-
	MXTemplate        string // MAIL FROM MX host; {region} is replaced by the region key
	SPFInclude        string
	DMARCValue        string
	InboundMXTemplate string // inbound MX host; {region} is replaced by the region key
	DKIMBits          int
	// DKIMZone, when set, is the operator's zone of cname mode: new domains
	// publish CNAMEs from both selectors to names in it (DKIMTarget), and
	// domaind publishes the keys there itself.
	DKIMZone string
}

// DefaultConfig returns the contract's defaults, which match AutoSend's records.
func DefaultConfig() Config {
	return Config{
		MailFromSubdomain: "mail",
		DKIMSelector:      "autosend",
		OwnershipPrefix:   "autosend-verify",
		MXTemplate:        "feedback-smtp.{region}.amazonses.com",
		SPFInclude:        "amazonses.com",
		DMARCValue:        "v=DMARC1; p=none;",
		InboundMXTemplate: "inbound-smtp.{region}.amazonaws.com",
		DKIMBits:          2048,
	}
}

// Validate reports the first setting that would generate records DNS cannot hold.
func (c Config) Validate() error {
	for _, f := range []struct{ name, v string }{
		{"mail-from-subdomain", c.MailFromSubdomain},
		{"dkim-selector", c.DKIMSelector},
		{"ownership-prefix", c.OwnershipPrefix},
	} {
		if !validLabels(f.v, false) {
			return fmt.Errorf("records: --%s %q must be one or more DNS labels of letters, digits and hyphens", f.name, f.v)
		}
	}
	for _, f := range []struct {
		name, v    string
		underscore bool
	}{
		{"mx-template", c.MXTemplate, false},
		{"inbound-mx-template", c.InboundMXTemplate, false},
		{"spf-include", c.SPFInclude, true},
	} {
		if !validLabels(strings.ReplaceAll(f.v, "{region}", "us-east-1"), f.underscore) || !strings.Contains(f.v, ".") {
			return fmt.Errorf("records: --%s %q must be a host name", f.name, f.v)
		}
	}
	if !strings.HasPrefix(c.DMARCValue, "v=DMARC1") {
		return fmt.Errorf("records: --dmarc-value %q must start with v=DMARC1", c.DMARCValue)
	}
	if c.DKIMBits < 1024 || c.DKIMBits > 4096 {
		return fmt.Errorf("records: --dkim-bits %d must be between 1024 and 4096", c.DKIMBits)
	}
	return nil
}

// validLabels reports whether s is a dot-separated list of DNS labels; underscore
// allows underscores, which host names may not hold but SPF include targets such
// as _spf.example.com do.
func validLabels(s string, underscore bool) bool {
	if s == "" || len(s) > 200 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || 'A' <= c && c <= 'Z' || c == '_' && underscore) {
				return false
			}
		}
	}
	return true
}

// Generated is a new domain's records and the private half of its DKIM key.
type Generated struct {
	Records []domain.Record
	// DKIMPrivateKey is the PKCS #8 DER private key. Callers seal it before storing.
	DKIMPrivateKey []byte
	// DKIMSelector and DKIMValue are the key's selector and its DKIM key record.
	DKIMSelector, DKIMValue string
}

// SecondSelector returns the selector a domain's keys alternate with: the
// first selector with "2" after its first label (autosend → autosend2), so
// both are predictable and a customer can publish both CNAMEs of cname mode
// once.
func SecondSelector(first string) string {
	label, rest, ok := strings.Cut(first, ".")
	if ok {
		return label + "2." + rest
	}
	return first + "2"
}

// OtherSelector returns the selector that is not cur: of a domain whose
// current selector is neither of the two (the operator changed
// --dkim-selector), the first.
func (c Config) OtherSelector(cur string) string {
	if cur == c.DKIMSelector {
		return SecondSelector(c.DKIMSelector)
	}
	return c.DKIMSelector
}

// DKIMName is where the key of selector sel of the domain name is looked up
// (RFC 6376 §3.6.2.1).
func DKIMName(sel, name string) string { return sel + "._domainkey." + name }

// DKIMTarget is where, in cname mode, the customer's CNAME at selector sel of
// the domain name leads: <sel>.<domain>.<zone>, a name in the operator's zone
// that domaind writes the key to.
func (c Config) DKIMTarget(sel, name string) string {
	return sel + "." + name + "." + c.DKIMZone
}

// NewDKIMKey generates an RSA key of bits and returns its PKCS #8 DER private
// half and the DKIM key record that publishes it.
func NewDKIMKey(bits int) (priv []byte, value string, err error) {
	key, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return nil, "", fmt.Errorf("records: dkim key: %w", err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, "", fmt.Errorf("records: dkim public key: %w", err)
	}
	priv, err = x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, "", fmt.Errorf("records: dkim private key: %w", err)
	}
	return priv, DKIMRecordValue(pub), nil
}

// DKIMCNAMEs returns, for cname mode, the CNAME records of the domain name:
// dkim at the selector cur that signs, dkim_2 at the other.
func (c Config) DKIMCNAMEs(name, cur string, now time.Time) []domain.Record {
	other := c.OtherSelector(cur)
	recs := []domain.Record{
		{Key: domain.KeyDKIM, Type: "CNAME", Name: DKIMName(cur, name), Value: c.DKIMTarget(cur, name),
			Purpose: domain.PurposeOf(domain.KeyDKIM, "CNAME", "")},
		{Key: domain.KeyDKIM2, Type: "CNAME", Name: DKIMName(other, name), Value: c.DKIMTarget(other, name),
			Purpose: domain.PurposeOf(domain.KeyDKIM2, "CNAME", "")},
	}
	for i := range recs {
		recs[i].Status = domain.CheckUnchecked
		recs[i].CreatedAt, recs[i].UpdatedAt = now, now
	}
	return recs
}

// Names are where a domain's records are published.
type Names struct {
	Ownership, DKIM, MailFrom, DMARC, Inbound string
}

// NamesOf returns where the records of the domain name are published: the one
// place record names are made, for generation and for `domaind check` alike.
func (c Config) NamesOf(name string) Names {
	return Names{
		Ownership: "_" + c.OwnershipPrefix + "." + name,
		DKIM:      DKIMName(c.DKIMSelector, name),
		MailFrom:  c.MailFromSubdomain + "." + name,
		DMARC:     "_dmarc." + name,
		Inbound:   name,
	}
}

// Generate creates the records for a new domain named name in region: a fresh
// ownership token and RSA key pair, and the templated MAIL FROM and DMARC records.
func (c Config) Generate(name, region string, now time.Time) (Generated, error) {
	var tok [16]byte
	if _, err := rand.Read(tok[:]); err != nil {
		return Generated{}, fmt.Errorf("records: ownership token: %w", err)
	}
	priv, dkimValue, err := NewDKIMKey(c.DKIMBits)
	if err != nil {
		return Generated{}, err
	}
	names := c.NamesOf(name)
	mailFrom := names.MailFrom
	recs := []domain.Record{
		{
			Key: domain.KeyOwnership, Type: "TXT",
			Name:    names.Ownership,
			Value:   c.OwnershipPrefix + "-" + hex.EncodeToString(tok[:]),
			Purpose: domain.KeyOwnership.Purpose(),
		},
		{
			Key: domain.KeyDKIM, Type: "TXT",
			Name:    names.DKIM,
			Value:   dkimValue,
			Purpose: domain.KeyDKIM.Purpose(),
		},
		{
			Key: domain.KeyMailFromMX, Type: "MX", Priority: domain.MXPriority,
			Name:    mailFrom,
			Value:   strings.ReplaceAll(c.MXTemplate, "{region}", region),
			Purpose: domain.KeyMailFromMX.Purpose(),
		},
		{
			Key: domain.KeyMailFromSPF, Type: "TXT",
			Name:    mailFrom,
			Value:   SPFValue(c.SPFInclude),
			Purpose: domain.KeyMailFromSPF.Purpose(),
		},
		{
			Key: domain.KeyDMARC, Type: "TXT",
			Name:    names.DMARC,
			Value:   c.DMARCValue,
			Purpose: domain.KeyDMARC.Purpose(),
		},
	}
	for i := range recs {
		recs[i].Status = domain.CheckUnchecked
		recs[i].CreatedAt, recs[i].UpdatedAt = now, now
	}
	if c.DKIMZone != "" {
		// cname mode: the key record is the operator's to publish; the
		// customer publishes the two CNAMEs in its place.
		recs = slices.Concat(recs[:1], c.DKIMCNAMEs(name, c.DKIMSelector, now), recs[2:])
	}
	return Generated{Records: recs, DKIMPrivateKey: priv, DKIMSelector: c.DKIMSelector, DKIMValue: dkimValue}, nil
}

// DKIMRecordValue returns the DKIM key record that publishes an RSA public key given as
// DER SubjectPublicKeyInfo (see domain.DKIMRSAPrefix).
func DKIMRecordValue(spki []byte) string {
	return domain.DKIMRSAPrefix + base64.StdEncoding.EncodeToString(spki)
}

// SPFValue returns the SPF record domaind generates for a MAIL FROM domain:
// the platform's servers by include, and ~all (softfail) for the rest, as
// AutoSend, SES and Resend publish, so that a forgotten server softfails
// rather than bounces while DMARC still decides.
func SPFValue(include string) string { return "v=spf1 include:" + include + " ~all" }

// InboundMX returns the MX record a domain publishes to receive mail through the platform.
func (c Config) InboundMX(name, region string, now time.Time) domain.Record {
	return domain.Record{
		Key: domain.KeyInboundMX, Type: "MX", Priority: domain.MXPriority,
		Name:      name,
		Value:     strings.ReplaceAll(c.InboundMXTemplate, "{region}", region),
		Purpose:   domain.KeyInboundMX.Purpose(),
		Status:    domain.CheckUnchecked,
		CreatedAt: now, UpdatedAt: now,
	}
}

// ErrSealed is returned by Open when a sealed value cannot be opened: the master key
// is wrong, the value was tampered with, or it belongs to another domain.
var ErrSealed = errors.New("records: sealed value cannot be opened with this master key")
