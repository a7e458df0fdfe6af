package api

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limit is a request allowance: N requests per Per, with bursts of up to N.
type Limit struct {
	N   int
	Per time.Duration
}

// ParseLimit parses "N/s", "N/m" or "N/h".
func ParseLimit(s string) (Limit, error) {
	n, unit, ok := strings.Cut(strings.TrimSpace(s), "/")
	count, err := strconv.Atoi(n)
	if !ok || err != nil || count < 1 {
		return Limit{}, fmt.Errorf("rate limit %q must look like 120/m: a positive count, a slash and s, m or h", s)
	}
	per := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour}[unit]
	if per == 0 {
		return Limit{}, fmt.Errorf("rate limit %q must end in /s, /m or /h", s)
	}
	return Limit{N: count, Per: per}, nil
}

func (l Limit) String() string {
	return fmt.Sprintf("%d/%s", l.N, map[time.Duration]string{time.Second: "s", time.Minute: "m", time.Hour: "h"}[l.Per])
}

// limiter keeps one token bucket per API key. Only authenticated requests reach
// it, so the map is bounded by the number of keys that exist.
type limiter struct {
	limit Limit
	mu    sync.Mutex
	keys  map[int64]*rate.Limiter
}

func newLimiter(l Limit) *limiter {
	return &limiter{limit: l, keys: make(map[int64]*rate.Limiter)}
}

// verdict is what the limiter decided for one request.
type verdict struct {
	ok         bool
	remaining  int
	reset      time.Time     // when the bucket is full again
	retryAfter time.Duration // when !ok: until one request is allowed
}

func (l *limiter) allow(key int64, now time.Time) verdict {
	perToken := l.limit.Per / time.Duration(l.limit.N)
	l.mu.Lock()
	lim := l.keys[key]
	if lim == nil {
		lim = rate.NewLimiter(rate.Every(perToken), l.limit.N)
		l.keys[key] = lim
	}
	l.mu.Unlock()

	r := lim.ReserveN(now, 1)
	v := verdict{ok: true}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		v = verdict{retryAfter: d}
	}
	tokens := lim.TokensAt(now)
	v.remaining = max(int(math.Floor(tokens)), 0)
	missing := float64(l.limit.N) - tokens
	v.reset = now.Add(time.Duration(missing * float64(perToken)))
	return v
}
