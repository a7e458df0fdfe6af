package verify

import (
	"slices"
	"testing"

	"github.com/domaind/domaind/internal/dnscheck"
	"github.com/domaind/domaind/internal/domain"
)

// TestStillExpected: what a check saw of a record is kept only while the
// record is still the one it looked for.
func TestStillExpected(t *testing.T) {
	asked := []dnscheck.Expectation{
		{Key: domain.KeyOwnership, Name: "_autosend.example.com", Type: "TXT", Value: "tok"},
		{Key: domain.KeyDKIM, Name: "autosend._domainkey.example.com", Type: "TXT", Value: "v=DKIM1; p=OLD"},
		{Key: domain.KeyDKIMPrevious, Name: "x._domainkey.example.com", Type: "TXT", Value: "v=DKIM1; p=PREV"},
		{Key: domain.KeyDMARC, Name: "_dmarc.example.com", Type: "TXT", Value: "v=DMARC1; p=none"},
	}
	now := slices.Clone(asked)
	now[1].Name, now[1].Value = "autosend2._domainkey.example.com", "v=DKIM1; p=NEW" // switched
	now[2].Value = domain.RevokedDKIMValue                                           // retired
	now = slices.Delete(now, 3, 4)                                                   // gone
	obs := []domain.Observation{
		{Key: domain.KeyOwnership, Status: domain.CheckVerified},
		{Key: domain.KeyDKIM, Status: domain.CheckVerified},
		{Key: domain.KeyDKIMPrevious, Status: domain.CheckVerified},
		{Key: domain.KeyDMARC, Status: domain.CheckVerified},
	}
	got := stillExpected(obs, asked, now)
	if len(got) != 1 || got[0].Key != domain.KeyOwnership {
		t.Fatalf("kept %+v, want only the ownership record's", got)
	}
	if len(obs) != 4 {
		t.Fatalf("the observations given were changed: %+v", obs)
	}
}
