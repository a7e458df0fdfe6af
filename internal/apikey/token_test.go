package apikey

import (
	"strings"
	"testing"
)

// TestValidToken: the form SignIn makes passes, and anything else is turned
// away before the store is asked.
func TestValidToken(t *testing.T) {
	good := strings.Repeat("A", 42) + "Q" // 43 characters, the base64url of 32 bytes
	for _, tc := range []struct {
		token string
		want  bool
	}{
		{good, true},
		{strings.Repeat("-_", 21) + "A", true},
		{"", false},
		{good[:42], false},                     // too short
		{good + "A", false},                    // too long
		{strings.Repeat("A", 42) + "=", false}, // padding is not base64url's raw form
		{strings.Repeat("A", 42) + "+", false}, // standard base64's alphabet
	} {
		if got := ValidToken(tc.token); got != tc.want {
			t.Errorf("ValidToken(%q) = %v, want %v", tc.token, got, tc.want)
		}
	}
}
