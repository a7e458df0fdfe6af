package fault

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestRetrySeconds(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want int
	}{
		{0, 1},               // never "Retry-After: 0"
		{-time.Second, 1},    // a deadline already past
		{time.Nanosecond, 1}, // rounded up, not down to 0
		{time.Second, 1},     // exact seconds stay
		{time.Second + time.Millisecond, 2},
		{59*time.Second + 500*time.Millisecond, 60},
		{2 * time.Minute, 120},
	} {
		if got := RetrySeconds(tc.d); got != tc.want {
			t.Errorf("RetrySeconds(%v) = %d, want %d", tc.d, got, tc.want)
		}
	}
}

func TestCodeOf(t *testing.T) {
	nf := NotFoundf("domain", "Domain not found.", errors.New("no rows"))
	for _, tc := range []struct {
		err  error
		want Code
	}{
		{nil, ""},
		{errors.New("disk full"), Internal},
		{nf, NotFound},
		{fmt.Errorf("get: %w", nf), NotFound}, // wrapped faults keep their code
		{Invalidf("name", "Name must not be empty."), Invalid},
	} {
		if got := CodeOf(tc.err); got != tc.want {
			t.Errorf("CodeOf(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
	if !errors.Is(nf, nf.Err) {
		t.Error("a fault does not unwrap to its cause")
	}
}
