// Package ratelimit provides the request allowances every front end of domaind
// spends: one token bucket per API key, shared by the API and the dashboard so
// that a key has one budget however it is used, and one per client address for
// requests that carry no valid credential, so that guessing keys or flooding the
// sign-in form costs the guesser and nobody else.
//
// Both kinds keep their buckets in a table with a bounded number of entries:
// buckets that have refilled are forgotten (a new one starts full, so nothing is
// lost), and past the bound the least recently used bucket goes first.
package ratelimit

import (
	"container/list"
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

// perToken is how long one request's token takes to come back.
func (l Limit) perToken() time.Duration { return l.Per / time.Duration(l.N) }

// Verdict is what a limiter decided for one request.
type Verdict struct {
	OK        bool
	Remaining int       // whole requests left in the bucket
	Reset     time.Time // when the bucket is full again
	// RetryAfter is, when !OK, how long until one request is allowed.
	RetryAfter time.Duration
}

// table keeps one token bucket per key, at most max of them (0: no bound).
type table[K comparable] struct {
	limit Limit
	max   int

	mu  sync.Mutex
	m   map[K]*list.Element
	lru list.List // of *entry[K], the most recently used at the front
}

type entry[K comparable] struct {
	key  K
	lim  *rate.Limiter
	last time.Time // when the bucket was last asked
}

func newTable[K comparable](l Limit, max int) *table[K] {
	if l.N < 1 || l.Per <= 0 {
		panic(fmt.Sprintf("ratelimit: invalid limit %d per %s", l.N, l.Per))
	}
	return &table[K]{limit: l, max: max, m: make(map[K]*list.Element)}
}

// bucket returns key's bucket, creating it if need be. Creating one first forgets
// every bucket idle for a whole period, which is full again and so worth nothing,
// and then, if the table is still at its bound, the least recently used one.
func (t *table[K]) bucket(key K, now time.Time) *rate.Limiter {
	t.mu.Lock()
	defer t.mu.Unlock()
	if el, ok := t.m[key]; ok {
		e := el.Value.(*entry[K])
		if now.After(e.last) {
			e.last = now
		}
		t.lru.MoveToFront(el)
		return e.lim
	}
	for back := t.lru.Back(); back != nil; back = t.lru.Back() {
		e := back.Value.(*entry[K])
		if now.Sub(e.last) < t.limit.Per && (t.max == 0 || t.lru.Len() < t.max) {
			break
		}
		t.lru.Remove(back)
		delete(t.m, e.key)
	}
	e := &entry[K]{key: key, lim: rate.NewLimiter(rate.Every(t.limit.perToken()), t.limit.N), last: now}
	t.m[key] = t.lru.PushFront(e)
	return e.lim
}

// allow spends one token of key's bucket if it has one.
func (t *table[K]) allow(key K, now time.Time) Verdict {
	lim := t.bucket(key, now)
	r := lim.ReserveN(now, 1)
	v := Verdict{OK: true}
	if d := r.DelayFrom(now); d > 0 {
		// Cancelling at the reservation's own instant gives the token back.
		r.CancelAt(now)
		v = Verdict{RetryAfter: d}
	}
	return t.describe(lim, now, v)
}

// peek reports whether key's bucket has a token, without spending it.
func (t *table[K]) peek(key K, now time.Time) Verdict {
	t.mu.Lock()
	el, ok := t.m[key]
	t.mu.Unlock()
	if !ok {
		return Verdict{OK: true, Remaining: t.limit.N, Reset: now}
	}
	lim := el.Value.(*entry[K]).lim
	v := Verdict{OK: true}
	if tokens := lim.TokensAt(now); tokens < 1 {
		v = Verdict{RetryAfter: time.Duration((1 - tokens) * float64(t.limit.perToken()))}
	}
	return t.describe(lim, now, v)
}

func (t *table[K]) describe(lim *rate.Limiter, now time.Time, v Verdict) Verdict {
	tokens := lim.TokensAt(now)
	v.Remaining = max(int(math.Floor(tokens)), 0)
	missing := float64(t.limit.N) - tokens
	v.Reset = now.Add(time.Duration(missing * float64(t.limit.perToken())))
	return v
}

func (t *table[K]) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}

// Keys is the allowance of each API key: one budget per key, whichever front
// end (API or dashboard) spends it. Only requests that proved they hold a key
// reach it, so it needs no bound beyond forgetting idle keys.
type Keys struct {
	t *table[int64]
}

// NewKeys returns the per-key limiter for l. It panics on a limit ParseLimit
// would refuse.
func NewKeys(l Limit) *Keys { return &Keys{t: newTable[int64](l, 0)} }

// Limit returns the allowance of each key.
func (k *Keys) Limit() Limit { return k.t.limit }

// Allow spends one request of the API key keyID, if its budget has one.
func (k *Keys) Allow(keyID int64, now time.Time) Verdict { return k.t.allow(keyID, now) }
