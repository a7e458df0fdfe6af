package domain

import "testing"

// TestNeed fixes, for every record, both answers to "must the customer publish
// it": Required (for VERIFIED) and MustPublish (for anything the customer uses,
// a rotation included). Every key of AllKeys must have a row, so a new key is
// decided here rather than by whichever front end meets it first.
func TestNeed(t *testing.T) {
	const key = "v=DKIM1; k=rsa; p=MIIB"
	cases := []struct {
		k           RecordKey
		value       string
		need        Need
		required    bool // before VERIFIED
		mustPublish bool // the v2 API's isRequired
	}{
		{KeyOwnership, "autosend-verify-0123", NeedSend, true, true},
		{KeyDKIM, key, NeedSend, true, true},
		{KeyMailFromMX, "feedback-smtp.us-east-1.amazonses.com", NeedRecommended, false, false},
		{KeyMailFromSPF, "v=spf1 include:amazonses.com ~all", NeedRecommended, false, false},
		{KeyDMARC, "v=DMARC1; p=none;", NeedRecommended, false, false},
		{KeyInboundMX, "inbound-smtp.us-east-1.amazonaws.com", NeedReceive, false, true},
		// The rotation waits for these, but sending does not.
		{KeyDKIMNext, key, NeedRotation, false, true},
		{KeyDKIM2, "autosend2.example.com.dkim.example", NeedRotation, false, true},
		{KeyDKIMPrevious, key, NeedUntilRetired, false, false},
		{KeyDKIMPrevious, RevokedDKIMValue, NeedRecommended, false, false},
	}
	decided := map[RecordKey]bool{}
	for _, tc := range cases {
		decided[tc.k] = true
		r := Record{Key: tc.k, Value: tc.value}
		got := r.Need()
		if got != tc.need || tc.k.Required() != tc.required || got.MustPublish() != tc.mustPublish {
			t.Errorf("%s %q: need %q, required %v, must publish %v; want %q, %v, %v",
				tc.k, tc.value, got, tc.k.Required(), got.MustPublish(), tc.need, tc.required, tc.mustPublish)
		}
		// A record needed before sending is needed for publishing too.
		if tc.required && !got.MustPublish() {
			t.Errorf("%s is required but need not be published", tc.k)
		}
	}
	// Every key is in the table above.
	for _, k := range AllKeys() {
		if !decided[k] {
			t.Errorf("key %s has no row in TestNeed", k)
		}
	}
}
