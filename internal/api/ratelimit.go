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

// setRateLimitHeaders sets the contract's X-RateLimit headers from a key's verdict.
func setRateLimitHeaders(h http.Header, limit Limit, v ratelimit.Verdict) {
	h.Set("X-RateLimit-Limit", strconv.Itoa(limit.N))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(v.Remaining))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(ceilUnix(v.Reset), 10))
}

func ceilUnix(t time.Time) int64 {
	s := t.Unix()
	if t.Nanosecond() > 0 {
		s++
	}
	return s
}
