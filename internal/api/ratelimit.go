package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/domaind/domaind/internal/ratelimit"
)

// Limit is a request allowance; see ratelimit.Limit.
type Limit = ratelimit.Limit

// ParseLimit parses "N/s", "N/m" or "N/h"; see ratelimit.ParseLimit.
func ParseLimit(s string) (Limit, error) { return ratelimit.ParseLimit(s) }

// setRateLimitHeaders sets the contract's X-RateLimit headers from a key's
// verdict. The keys are given in their canonical form (as Header.Set would
// make them, and as they go on the wire), which spares every request
// canonicalizing them anew.
func setRateLimitHeaders(h http.Header, limit Limit, v ratelimit.Verdict) {
	h["X-Ratelimit-Limit"] = []string{strconv.Itoa(limit.N)}
	h["X-Ratelimit-Remaining"] = []string{strconv.Itoa(v.Remaining)}
	h["X-Ratelimit-Reset"] = []string{strconv.FormatInt(ceilUnix(v.Reset), 10)}
}

func ceilUnix(t time.Time) int64 {
	s := t.Unix()
	if t.Nanosecond() > 0 {
		s++
	}
	return s
}
