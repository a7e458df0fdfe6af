package verify

import (
	"bytes"
	stdjson "encoding/json"
	"testing"

	"github.com/segmentio/encoding/json"

	"github.com/domaind/domaind/internal/domain"
)

// FuzzPayloadJSON checks that the encoder events are written with gives the
// bytes encoding/json gives, whatever a tenant's names and a DNS answer's
// text put in them: HTML characters, U+2028, invalid UTF-8 and control
// characters are escaped alike.
func FuzzPayloadJSON(f *testing.F) {
	f.Add("example.com", "_dmarc.example.com", "no record <found> & none", "A required record is no longer published.")
	f.Add("\u2028x\u2029", "\xff\xfe", "\x00\x1f\"\\/", "")
	f.Add("é.example", "tab\there", "line\nbreak", "\ufffd")
	f.Fuzz(func(t *testing.T, name, record, message, reason string) {
		p := domain.EventPayload{
			Type:      domain.EventDegraded,
			Timestamp: "2026-11-30T05:00:00.000Z",
			Data: domain.EventData{
				EventID: "evt_01a22ac38b4a3cc48d9762ec", DomainID: "6b0c53e2001d7d69fb39add5", Domain: name,
				VerificationStatus: "FAILED", PreviousStatus: "VERIFIED", DKIMEnabled: true,
				Records: []domain.EventRecord{
					{Type: "dmarc", Name: record, RecordType: "TXT", Status: "mismatch", Problems: []domain.Problem{{Code: "x", Message: message}}},
					{Type: "dkim", Name: name, RecordType: "TXT", IsVerified: true, Status: "verified", Problems: []domain.Problem{}},
				},
				Reason: reason,
			},
		}
		want, err := stdjson.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		got, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("payload encoded as\n%s\nwant\n%s", got, want)
		}
	})
}
