package dashboard

import "testing"

func TestBadgesHaveWords(t *testing.T) {
	states := []string{"verified", "pending", "pending_configuration", "degrading", "failed",
		"missing", "mismatch", "temporary_failure", "unchecked", "", "something new"}
	for _, s := range states {
		b := badgeFor(s)
		if b.Label == "" || b.Icon == "" || b.State == "" {
			t.Errorf("badgeFor(%q) = %+v: a badge needs a word and a symbol", s, b)
		}
	}
}
