package dnscheck_test

import (
	"testing"
	"time"

	"github.com/domaind/domaind/internal/dnscheck"
	"github.com/domaind/domaind/internal/dnstest"
	"github.com/domaind/domaind/internal/domain"
)

// TestCheckCNAME checks the CNAME records of cname-mode DKIM: the target
// compares without case or a trailing dot; another target, a TXT record in
// its place and no record are not verified.
func TestCheckCNAME(t *testing.T) {
	zone := dnstest.NewZone("shop.example.")
	zone.MustAdd(`autosend._domainkey.shop.example. 300 IN CNAME AutoSend.Shop.Example.DKIM.Platform.Example.`)
	zone.MustAdd(`other._domainkey.shop.example. 300 IN CNAME elsewhere.example.`)
	zone.MustAdd(`txt._domainkey.shop.example. 300 IN TXT "v=DKIM1; p=abc"`)
	srv := dnstest.Start(t, zone)
	c, err := dnscheck.New(dnscheck.Config{Mode: dnscheck.ModeRecursive, Resolvers: []string{srv.Addr()}, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	want := "autosend.shop.example.dkim.platform.example"
	tests := []struct {
		name string
		want domain.CheckStatus
	}{
		{"autosend._domainkey.shop.example", domain.CheckVerified},
		{"other._domainkey.shop.example", domain.CheckMismatch},
		{"txt._domainkey.shop.example", domain.CheckMissing},
		{"none._domainkey.shop.example", domain.CheckMissing},
	}
	for _, tt := range tests {
		obs := c.Check(t.Context(), []dnscheck.Expectation{{Key: domain.KeyDKIM, Domain: "shop.example", Name: tt.name, Type: "CNAME", Value: want}})
		if len(obs) != 1 || obs[0].Status != tt.want {
			t.Errorf("%s: %+v, want %s", tt.name, obs, tt.want)
		}
	}
}

// TestCheckRevokedKey: the retired key's record verifies as the revoked key
// "v=DKIM1; p=" once it is retired, not as a key domaind cannot parse.
func TestCheckRevokedKey(t *testing.T) {
	zone := dnstest.NewZone("shop.example.")
	zone.MustAdd(`old._domainkey.shop.example. 300 IN TXT "v=DKIM1; p="`)
	zone.MustAdd(`kept._domainkey.shop.example. 300 IN TXT "v=DKIM1; k=rsa; p=AAAA"`)
	srv := dnstest.Start(t, zone)
	c, err := dnscheck.New(dnscheck.Config{Mode: dnscheck.ModeRecursive, Resolvers: []string{srv.Addr()}, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]domain.CheckStatus{
		"old._domainkey.shop.example":  domain.CheckVerified,
		"kept._domainkey.shop.example": domain.CheckMismatch,
	} {
		obs := c.Check(t.Context(), []dnscheck.Expectation{{Key: domain.KeyDKIMPrevious, Domain: "shop.example", Name: name, Type: "TXT", Value: "v=DKIM1; p="}})
		if len(obs) != 1 || obs[0].Status != want {
			t.Errorf("%s: %+v, want %s", name, obs, want)
		}
	}
}
