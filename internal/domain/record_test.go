package domain

import "testing"

// TestRecordShown: what every front end shows of a record's status and
// priority (the API's v1 and v2, the dashboard and the exports once each had
// the rule).
func TestRecordShown(t *testing.T) {
	for _, tc := range []struct {
		r        Record
		status   CheckStatus
		priority uint16
		hasPrio  bool
	}{
		{Record{Type: "TXT"}, CheckUnchecked, 0, false},
		{Record{Type: "TXT", Status: CheckMismatch}, CheckMismatch, 0, false},
		{Record{Type: "MX", Priority: 10, Status: CheckVerified}, CheckVerified, 10, true},
		{Record{Type: "MX"}, CheckUnchecked, 0, true}, // an MX of preference 0 still shows it
		{Record{Type: "CNAME", Priority: 10}, CheckUnchecked, 0, false},
	} {
		if got := tc.r.ShownStatus(); got != tc.status {
			t.Errorf("%+v: ShownStatus = %q, want %q", tc.r, got, tc.status)
		}
		p, ok := tc.r.ShownPriority()
		if ok != tc.hasPrio || (ok && p != tc.priority) {
			t.Errorf("%+v: ShownPriority = %d, %v; want %d, %v", tc.r, p, ok, tc.priority, tc.hasPrio)
		}
	}
}
