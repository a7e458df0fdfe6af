package sqlstore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/domaind/domaind/internal/domain"
)

// TestFingerprint pins the fingerprint's text: migration 00015 computes the
// same in PostgreSQL's SQL (md5 of the stored name, type and value, each ended
// by a line feed, cut to 16 digits), so a change here must change both.
func TestFingerprint(t *testing.T) {
	// printf '_dmarc.\nTXT\nv=DMARC1; p=none\n' | md5sum | cut -c1-16
	if got := Fingerprint("_dmarc.", "TXT", "v=DMARC1; p=none"); got != "77d91ea2e654295a" {
		t.Errorf("Fingerprint = %s, want 77d91ea2e654295a", got)
	}
	if Fingerprint("a.", "TXT", "b") == Fingerprint("a.", "TXT", "c") || Fingerprint("a.", "TXT", "b") == Fingerprint("b.", "TXT", "b") {
		t.Error("records that differ share a fingerprint")
	}
}

func testChecked() *domain.Domain {
	t0 := time.UnixMilli(1_795_970_018_605).UTC()
	return &domain.Domain{Name: "example.com", CreatedAt: t0, Records: []domain.Record{
		{Key: domain.KeyOwnership, Name: "_autosend-verify.example.com", Type: "TXT", Value: "tok",
			Status: domain.CheckUnchecked, CreatedAt: t0, UpdatedAt: t0},
		{Key: domain.KeyDKIM, Name: "s._domainkey.example.com", Type: "TXT", Value: "v=DKIM1; k=rsa; p=QUJD",
			Verified: true, Status: domain.CheckVerified, CheckedAt: t0.Add(time.Hour), CreatedAt: t0, UpdatedAt: t0.Add(time.Hour),
			Found:       []string{"v=DKIM1; k=rsa; p=QUJD"},
			Propagation: []domain.Sighting{{Server: "127.0.0.1:53", Role: domain.RoleAuthoritative, Status: domain.CheckVerified, Values: []string{"v=DKIM1; k=rsa; p=QUJD"}}}},
		{Key: domain.KeyDMARC, Name: "_dmarc.example.com", Type: "TXT", Value: "v=DMARC1; p=none",
			Status: domain.CheckMissing, Failures: 2, CheckedAt: t0.Add(time.Hour), CreatedAt: t0, UpdatedAt: t0,
			Problems: []domain.Problem{{Code: "MISSING", Message: "no record"}}},
	}}
}

// TestChecksRoundTrip checks that what a check found of each record reads back
// onto the same record, that a record never checked keeps nothing, and that a
// record whose value changed since reads as never checked.
func TestChecksRoundTrip(t *testing.T) {
	d := testChecked()
	cs, text, err := checksOf(d)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 2 {
		t.Fatalf("%d entries, want 2: the record never checked keeps none", len(cs))
	}
	// The records as read from their rows: never checked.
	fresh := testChecked()
	for i := range fresh.Records {
		r := &fresh.Records[i]
		r.Verified, r.Status, r.Failures, r.CheckedAt, r.Found, r.Problems, r.Propagation = false, domain.CheckUnchecked, 0, time.Time{}, nil, nil, nil
		r.UpdatedAt = r.CreatedAt
	}
	// The DMARC record's value changed since it was checked.
	fresh.Records[2].Value = "v=DMARC1; p=reject"
	// As both dialects keep the column: JSON, and packed.
	s := &Store{payloads: NewPayloadCodec()}
	packed, err := s.payloads.PackChecks(text)
	if err != nil {
		t.Fatal(err)
	}
	if len(packed) > len(text)/2 {
		t.Errorf("checks packed into %d bytes from %d; want the dictionary to find most of them", len(packed), len(text))
	}
	for _, raw := range []string{string(text), string(packed)} {
		got, err := s.readChecks(raw)
		if err != nil || !reflect.DeepEqual(got, cs) {
			t.Fatalf("readChecks(%.20q) = %+v, %v; want %+v", raw, got, err, cs)
		}
	}
	if err := applyChecks(fresh, cs); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fresh.Records[:2], d.Records[:2]) {
		t.Errorf("records after applying their checks:\n%+v\nwant\n%+v", fresh.Records[:2], d.Records[:2])
	}
	if r := fresh.Records[2]; r.Status != domain.CheckUnchecked || r.Failures != 0 || !r.CheckedAt.IsZero() || r.Problems != nil {
		t.Errorf("a record whose value changed reads %+v; want never checked", r)
	}
	if _, err := s.readChecks("{"); err == nil {
		t.Error("a broken checks column read without an error")
	}
	for _, broken := range []string{"\x02broken", "\x04broken"} {
		if _, err := s.readChecks(broken); err == nil {
			t.Errorf("a broken packed checks column %q read without an error", broken)
		}
	}
}

// TestLargeChecks checks that checks as large as a tenant's name servers can
// make them (see maxChecks) read back, past the bound on an event's payload.
func TestLargeChecks(t *testing.T) {
	d := testChecked()
	r := &d.Records[1]
	for i := range 16 {
		g := domain.Sighting{Server: fmt.Sprintf("192.0.2.%d:53", i), Status: domain.CheckMismatch}
		for j := range 16 {
			g.Values = append(g.Values, fmt.Sprintf("%d.%d.%s", i, j, strings.Repeat("\x01", 2000)))
		}
		r.Propagation = append(r.Propagation, g)
	}
	_, text, err := checksOf(d)
	if err != nil {
		t.Fatal(err)
	}
	if len(text) <= maxPayload {
		t.Fatalf("checks of %d bytes; the test wants more than an event's bound", len(text))
	}
	s := &Store{payloads: NewPayloadCodec()}
	packed, err := s.payloads.PackChecks(text)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := s.readChecks(string(packed))
	if err != nil || len(cs) != 2 || len(cs[0].State.Propagation) != len(r.Propagation) {
		t.Fatalf("large checks read back as %d entries, %v", len(cs), err)
	}
}

// TestMergeChecks checks a save over a domain that changed since it was read:
// per current record the later check, none for a record gone.
func TestMergeChecks(t *testing.T) {
	a, b, gone := recordPrint{domain.KeyDKIM, "a"}, recordPrint{domain.KeyDKIMPrevious, "b"}, "g"
	saved := []recordCheck{{Print: "a", Status: "missing", CheckedAt: 10}, {Print: "b", Status: "verified", CheckedAt: 10}, {Print: gone, CheckedAt: 10}}
	stored := []recordCheck{{Print: "a", Status: "verified", CheckedAt: 20}, {Print: "b", Status: "missing", CheckedAt: 5}, {Print: gone, CheckedAt: 30}}
	got := mergeChecks(saved, stored, []recordPrint{a, b})
	want := []recordCheck{stored[0], saved[1]}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("mergeChecks = %+v, want %+v", got, want)
	}
}

// FuzzDecodeChecks checks that any text either fails to decode or decodes to
// entries that encode and decode to themselves.
func FuzzDecodeChecks(f *testing.F) {
	d := testChecked()
	_, text, _ := checksOf(d)
	f.Add(string(text))
	f.Add("")
	f.Add(`[{"h":"x","st":null}]`)
	f.Fuzz(func(t *testing.T, text string) {
		cs, err := decodeChecks(text)
		if err != nil {
			return
		}
		again, err := encodeChecks(cs)
		if err != nil {
			return
		}
		back, err := decodeChecks(string(again))
		if err != nil || len(back) != len(cs) {
			t.Fatalf("%q decoded to %d entries, which encode to %q and decode to %d (%v)", text, len(cs), again, len(back), err)
		}
		// Applying them to a domain must not panic, whatever they hold.
		_ = applyChecks(testChecked(), back)
	})
}

// FuzzChecksJSON checks that the encoder the checks column is written with
// gives the bytes encoding/json gives, whatever the values found, problems and
// servers a tenant's name servers make.
func FuzzChecksJSON(f *testing.F) {
	f.Add("v=spf1 include:x <a> & -all", "192.0.2.1:53", "no record", int64(1796013787978), 0.0)
	f.Add("\u2028\xff\x00", "\"\\", "\t\n", int64(-1), 1e21)
	f.Add("x", "y", "z", int64(7), -1.5e-7)
	f.Fuzz(func(t *testing.T, value, server, message string, at int64, index float64) {
		if math.IsNaN(index) || math.IsInf(index, 0) {
			return // JSON has neither; both encoders refuse them
		}
		cs := []recordCheck{{
			Print: "fd2ebd85dd8f8c83", Key: "mailfrom_spf", Status: "mismatch", Failures: 3, CheckedAt: at, UpdatedAt: at / 2,
			State: &recordState{
				// Decoded checks hold numbers as float64, which a later
				// edit encodes again.
				Found:       []any{value, nil, 0, index},
				Problems:    []domain.Problem{{Code: "spf_mismatch", Message: message}},
				Propagation: []sighting{{S: server, R: domain.RoleAuthoritative, Z: value, T: domain.CheckMismatch, V: []any{0, value, nil, index}, E: message}},
			},
		}, {Print: "9431dd3b6e336de0", Verified: true}}
		want, err := json.Marshal(cs)
		if err != nil {
			t.Fatal(err)
		}
		got, err := encodeChecks(cs)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("checks encoded as\n%s\nwant\n%s", got, want)
		}
	})
}
