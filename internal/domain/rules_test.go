package domain

import (
	"encoding/json"
	"slices"
	"testing"
	"time"
)

func newTestDomain() *Domain {
	d := &Domain{ID: "0123456789abcdef01234567", Name: "example.com", Status: StatusPendingConfiguration}
	for _, k := range SendingKeys {
		d.Records = append(d.Records, Record{Key: k, Status: CheckUnchecked})
	}
	return d
}

func obs(pairs ...any) []Observation {
	var out []Observation
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, Observation{Key: pairs[i].(RecordKey), Status: pairs[i+1].(CheckStatus)})
	}
	return out
}

func TestApply(t *testing.T) {
	V, M, X, T := CheckVerified, CheckMissing, CheckMismatch, CheckTemporaryFailure
	for _, tc := range []struct {
		name   string
		before []Observation // applied first
		check  []Observation
		rules  Rules
		status Status
		flags  [4]bool // ownership, dkim, mailFrom, dmarc
	}{
		{"nothing found", nil, obs(KeyOwnership, M, KeyDKIM, M), Rules{}, StatusPendingConfiguration, [4]bool{}},
		{"ownership only", nil, obs(KeyOwnership, V, KeyDKIM, M), Rules{}, StatusPending, [4]bool{true}},
		{"wrong dkim counts as found", nil, obs(KeyOwnership, M, KeyDKIM, X), Rules{}, StatusPending, [4]bool{}},
		{"required verified", nil, obs(KeyOwnership, V, KeyDKIM, V), Rules{}, StatusVerified, [4]bool{true, true}},
		{"mx alone is not mail from", nil, obs(KeyOwnership, V, KeyDKIM, V, KeyMailFromMX, V, KeyMailFromSPF, M), Rules{}, StatusVerified, [4]bool{true, true}},
		{"mx and spf", nil, obs(KeyOwnership, V, KeyDKIM, V, KeyMailFromMX, V, KeyMailFromSPF, V, KeyDMARC, V), Rules{}, StatusVerified, [4]bool{true, true, true, true}},
		{"temporary keeps verified", obs(KeyOwnership, V, KeyDKIM, V), obs(KeyOwnership, T, KeyDKIM, T), Rules{}, StatusVerified, [4]bool{true, true}},
		{"temporary keeps unverified", nil, obs(KeyOwnership, T, KeyDKIM, T), Rules{}, StatusPendingConfiguration, [4]bool{}},
		{"definite loss at once", obs(KeyOwnership, V, KeyDKIM, V), obs(KeyOwnership, V, KeyDKIM, M), Rules{DegradeAfter: 1}, StatusPending, [4]bool{true}},
		{"loss under threshold is pending but flagged", obs(KeyOwnership, V, KeyDKIM, V), obs(KeyOwnership, V, KeyDKIM, M), Rules{DegradeAfter: 3}, StatusPending, [4]bool{true, true}},
		{"recommended loss keeps verified", obs(KeyOwnership, V, KeyDKIM, V, KeyDMARC, V), obs(KeyOwnership, V, KeyDKIM, V, KeyDMARC, M), Rules{}, StatusVerified, [4]bool{true, true}},
		{"all lost", obs(KeyOwnership, V, KeyDKIM, V), obs(KeyOwnership, M, KeyDKIM, M), Rules{}, StatusPendingConfiguration, [4]bool{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newTestDomain()
			t0 := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
			if tc.before != nil {
				d.Apply(tc.before, t0, tc.rules)
			}
			d.Apply(tc.check, t0.Add(time.Minute), tc.rules)
			got := [4]bool{d.OwnershipVerified, d.DKIMEnabled, d.MailFromEnabled, d.DMARCEnabled}
			if d.Status != tc.status || got != tc.flags {
				t.Fatalf("status %s flags %v, want %s %v", d.Status, got, tc.status, tc.flags)
			}
			if !d.LastCheckedAt.Equal(t0.Add(time.Minute)) {
				t.Errorf("LastCheckedAt = %v", d.LastCheckedAt)
			}
		})
	}
}

func TestApplyDegradesAfterConsecutiveFailures(t *testing.T) {
	d := newTestDomain()
	now := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	rules := Rules{DegradeAfter: 3}
	d.Apply(obs(KeyOwnership, CheckVerified, KeyDKIM, CheckVerified), now, rules)
	verifiedAt := d.VerifiedAt
	seq := []struct {
		dkim   CheckStatus
		status Status
		dkimOK bool
	}{
		{CheckMissing, StatusPending, true},
		{CheckTemporaryFailure, StatusPending, true}, // neither counts nor resets
		{CheckMissing, StatusPending, true},
		{CheckMissing, StatusPending, false}, // third definite failure
		{CheckVerified, StatusVerified, true},
	}
	for i, s := range seq {
		now = now.Add(time.Minute)
		c := d.Apply(obs(KeyOwnership, CheckVerified, KeyDKIM, s.dkim), now, rules)
		if d.Status != s.status || d.DKIMEnabled != s.dkimOK {
			t.Fatalf("step %d (%s): status %s dkim %v, want %s %v", i, s.dkim, d.Status, d.DKIMEnabled, s.status, s.dkimOK)
		}
		flipped := slices.Contains(c.Flipped, KeyDKIM)
		if wantFlip := i == 3 || i == 4; flipped != wantFlip {
			t.Errorf("step %d: Flipped = %v", i, c.Flipped)
		}
	}
	if !d.VerifiedAt.Equal(verifiedAt) {
		t.Errorf("VerifiedAt moved from %v to %v; it is the first verification", verifiedAt, d.VerifiedAt)
	}
}

func TestApplyNothingChanged(t *testing.T) {
	d := newTestDomain()
	now := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	all := obs(KeyOwnership, CheckVerified, KeyDKIM, CheckVerified, KeyDMARC, CheckVerified)
	if c := d.Apply(all, now, Rules{}); !c.Changed() || c.To != StatusVerified {
		t.Fatalf("first verification not reported as a change: %+v", c)
	}
	if c := d.Apply(all, now.Add(time.Hour), Rules{}); c.Changed() {
		t.Fatalf("a check that found nothing new reported a change: %+v", c)
	}
}

func TestIDs(t *testing.T) {
	now := time.Now()
	a, err := NewID(now)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewID(now)
	if !ValidID(a) || !ValidID(b) || a == b {
		t.Fatalf("ids %q %q", a, b)
	}
	for _, bad := range []string{"", "0123", "0123456789ABCDEF01234567", "0123456789abcdef0123456g", "0123456789abcdef012345678"} {
		if ValidID(bad) {
			t.Errorf("ValidID(%q) = true", bad)
		}
	}
}

// TestViewCheckEmpty checks that ViewCheck shows what is missing as [] and never null,
// which clients of the v2 API and of domaind check --json rely on.
func TestViewCheckEmpty(t *testing.T) {
	v := ViewCheck(Observation{Status: CheckMissing, Propagation: []Sighting{{Server: "127.0.0.1:53", Status: CheckMissing}}})
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"status":"missing","found":[],"problems":[],"propagation":[{"server":"127.0.0.1:53","role":"","status":"missing","values":[]}]}`
	if string(b) != want {
		t.Errorf("ViewCheck = %s, want %s", b, want)
	}
}
