package dashboard

import (
	"testing"

	"github.com/domaind/domaind/internal/domain"
)

func TestBadgesHaveWords(t *testing.T) {
	states := []string{"verified", "pending", "pending_configuration", "degrading", "failed",
		"missing", "mismatch", "temporary_failure", "unchecked", "", "something new"}
	for _, s := range states {
		b := badgeFor(domain.CheckStatus(s))
		if b.Label == "" || b.Icon == "" || b.State == "" {
			t.Errorf("badgeFor(%q) = %+v: a badge needs a word and a symbol", s, b)
		}
	}
}

// TestRecordNeed: each record's need on the page is what domain.NeedOf says of
// it, for every key there is (the dashboard once kept a rule of its own).
func TestRecordNeed(t *testing.T) {
	recs := []domain.Record{{Key: domain.KeyDKIMPrevious, Value: domain.RevokedDKIMValue}}
	for _, k := range domain.AllKeys() {
		recs = append(recs, domain.Record{Key: k, Value: "v=DKIM1; p=MIIB"})
	}
	for _, r := range recs {
		if got, want := toRecordView(&r).Need, string(domain.NeedOf(r.Key, r.Value)); got != want || got == "" {
			t.Errorf("%s %q: need %q, want %q", r.Key, r.Value, got, want)
		}
	}
}
