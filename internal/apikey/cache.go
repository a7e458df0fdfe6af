package apikey

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// The key cache spares the store a lookup on every request of a valid key.
//
// A cached key is believed for less than MaxStale after the lookup that found
// it began; a request after that looks the key up again. A revocation made
// anywhere (another replica, `domaind apikey revoke`) is committed before
// that lookup begins or it is not: so once a revocation has been committed for
// MaxStale, every replica refuses the key, without any replica telling the
// others. Service.Revoke also drops the key from its own cache at once, so the
// process that revokes honours it immediately.
//
// Only keys found valid are cached, by their hash (never the key itself): an
// unknown or revoked key is looked up on every try, which costs one indexed
// lookup, and the client address's limit for requests without a valid key
// (ratelimit.Addrs, asked before the key is looked up) bounds how often an
// address may try. Unknown keys can therefore neither fill the cache nor push
// valid keys out of it. Lookups of one hash at once are made once, and their
// answer shared.

// MaxStale is the longest a revocation made elsewhere goes unnoticed.
const MaxStale = time.Second

// DefaultCacheSize is how many valid keys a Service keeps at most.
const DefaultCacheSize = 10_000

// lookupTimeout bounds a lookup that callers share, which no one caller's
// context may cancel.
const lookupTimeout = 10 * time.Second

type cacheEntry struct {
	key     Key
	checked time.Time // when the lookup that found key began
}

// keyCache is the cache of valid keys by hash. Its zero value is empty, with
// room for DefaultCacheSize keys.
type keyCache struct {
	mu      sync.Mutex
	entries map[[32]byte]cacheEntry
	max     int // 0: DefaultCacheSize
	// drops counts drop's calls: a lookup that began before a drop may have
	// read the key before it was revoked, and is not cached.
	drops  uint64
	flight singleflight.Group
}

// get returns the key of hash if a lookup that began less than MaxStale
// before now found it valid.
func (c *keyCache) get(hash [32]byte, now time.Time) (Key, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[hash]
	if !ok {
		return Key{}, false
	}
	if age := now.Sub(e.checked); age < 0 || age >= MaxStale {
		// A clock that went back believes nothing it remembers.
		delete(c.entries, hash)
		return Key{}, false
	}
	return e.key, true
}

// put remembers k, found valid by a lookup that began at checked when drops
// was gen, making room by forgetting another key when the cache is full.
func (c *keyCache) put(k Key, checked time.Time, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.drops {
		return
	}
	if c.entries == nil {
		c.entries = make(map[[32]byte]cacheEntry)
	}
	if _, ok := c.entries[k.Hash]; !ok && len(c.entries) >= c.size() {
		// Any one: map iteration starts at a random place, and whatever is
		// forgotten is only looked up again.
		for h := range c.entries {
			delete(c.entries, h)
			break
		}
	}
	c.entries[k.Hash] = cacheEntry{key: k, checked: checked}
}

// drop forgets the key of hash.
func (c *keyCache) drop(hash [32]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.drops++
	delete(c.entries, hash)
}

func (c *keyCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

func (c *keyCache) size() int {
	if c.max > 0 {
		return c.max
	}
	return DefaultCacheSize
}

// lookupResult is what a shared lookup found, when it began and what drops
// was then.
type lookupResult struct {
	key     Key
	checked time.Time
	gen     uint64
}

// lookup runs fn, the store lookup of hash, once for every caller asking for
// hash at the same time, and returns its result to each, or ctx's error to a
// caller that stops waiting. fn's context is detached from any one caller's,
// so that one caller leaving fails none of the others.
func (c *keyCache) lookup(ctx context.Context, hash [32]byte, now func() time.Time, fn func(context.Context) (Key, error)) (lookupResult, error) {
	ch := c.flight.DoChan(string(hash[:]), func() (any, error) {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lookupTimeout)
		defer cancel()
		c.mu.Lock()
		res := lookupResult{checked: now(), gen: c.drops}
		c.mu.Unlock()
		var err error
		res.key, err = fn(lctx)
		return res, err
	})
	select {
	case r := <-ch:
		res, _ := r.Val.(lookupResult)
		return res, r.Err
	case <-ctx.Done():
		return lookupResult{}, ctx.Err()
	}
}
