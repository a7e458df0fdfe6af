package dnscheck

import (
	"container/list"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of a Cache.
const (
	// DefaultCacheEntries bounds the entries of a Cache. An entry holds a zone's
	// few server addresses (maxZoneServers at most) or one lame mark, a few
	// hundred bytes, so the default stays within a few tens of megabytes.
	DefaultCacheEntries = 100_000
	// DefaultCacheMinTTL and DefaultCacheMaxTTL clamp how long an entry is kept.
	// The upper bound keeps a hostile server's TTL from pinning its delegation,
	// and a changed delegation is seen within the hour whatever its TTL (like
	// Unbound's cache-max-ttl); the lower one keeps a TTL of 0 from making every
	// check walk from the root again.
	DefaultCacheMinTTL = 5 * time.Second
	DefaultCacheMaxTTL = time.Hour
	// lameFor is how long a server that failed for a zone is asked after the
	// others when a walk needs one answer; it is still asked for every record.
	lameFor = time.Minute
)

// CacheOptions tunes a Cache; zero values take the defaults.
type CacheOptions struct {
	MaxEntries     int
	MinTTL, MaxTTL time.Duration
	// Now is the cache's clock; nil means time.Now.
	Now func() time.Time
}

// Cache is the infrastructure cache that the checks of a process share: the
// zone cuts they found (a zone and the addresses of its name servers), the
// addresses of name servers that had to be looked up, and marks on servers
// that failed for a zone. It never holds the records checks judge: those are
// asked of the authoritative servers every time, and only the way to those
// servers is remembered.
//
// What goes in is bounded three ways: by bailiwick (walk.go stores a zone cut
// only as learnt from a server of the parent zone, for a zone below it, and
// with addresses that the parent may speak for or that were looked up; RFC
// 2181 §5.4.1 ranks glue below authoritative data and resolvers drop glue from
// outside the parent's zone for the same reason), by lifetime (the TTL is
// clamped to [MinTTL, MaxTTL]), and by size (the least recently used entry goes
// first once MaxEntries is reached). A Cache must only be shared by Checkers
// with the same root hints and authoritative port. It is safe for concurrent
// use.
type Cache struct {
	opts CacheOptions

	mu  sync.Mutex
	lru *list.List // of *cacheEntry, most recently used first
	m   map[cacheKey]*list.Element

	// hits and misses count the lookups of zone cuts; evictions the entries
	// dropped for room.
	hits, misses, evictions atomic.Int64
}

type cacheKind uint8

const (
	kindZone cacheKind = iota // a zone cut: name is the zone, value its servers
	kindHost                  // a name server's addresses: name is the host, value its IPs
	kindLame                  // name is "zone server"; no value
)

type cacheKey struct {
	kind cacheKind
	name string
}

type cacheEntry struct {
	key     cacheKey
	value   []string
	expires time.Time
}

// NewCache returns an empty Cache with opts.
func NewCache(opts CacheOptions) *Cache {
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = DefaultCacheEntries
	}
	if opts.MinTTL <= 0 {
		opts.MinTTL = DefaultCacheMinTTL
	}
	if opts.MaxTTL <= 0 {
		opts.MaxTTL = DefaultCacheMaxTTL
	}
	opts.MinTTL = min(opts.MinTTL, opts.MaxTTL)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Cache{opts: opts, lru: list.New(), m: make(map[cacheKey]*list.Element)}
}

// get returns the value of key while it has not expired.
func (c *Cache) get(key cacheKey) ([]string, bool) {
	if c == nil {
		return nil, false
	}
	now := c.opts.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.m[key]
	if !ok {
		return nil, false
	}
	e := el.Value.(*cacheEntry)
	if !now.Before(e.expires) {
		c.lru.Remove(el)
		delete(c.m, key)
		return nil, false
	}
	c.lru.MoveToFront(el)
	return e.value, true
}

// put stores value under key for ttl, clamped to the cache's bounds. The value
// is kept as given and must not be changed afterwards.
func (c *Cache) put(key cacheKey, value []string, ttl time.Duration) {
	if c == nil {
		return
	}
	ttl = min(max(ttl, c.opts.MinTTL), c.opts.MaxTTL)
	expires := c.opts.Now().Add(ttl)
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.m[key]; ok {
		e := el.Value.(*cacheEntry)
		e.value, e.expires = value, expires
		c.lru.MoveToFront(el)
		return
	}
	for c.lru.Len() >= c.opts.MaxEntries {
		last := c.lru.Back()
		c.lru.Remove(last)
		delete(c.m, last.Value.(*cacheEntry).key)
		c.evictions.Add(1)
	}
	c.m[key] = c.lru.PushFront(&cacheEntry{key: key, value: value, expires: expires})
}

// forget removes key.
func (c *Cache) forget(key cacheKey) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.m[key]; ok {
		c.lru.Remove(el)
		delete(c.m, key)
	}
}

// Len returns the number of entries, expired ones not yet removed included.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// zone returns the cached servers (host:port) of the canonical zone.
func (c *Cache) zone(zone string) ([]string, bool) {
	v, ok := c.get(cacheKey{kindZone, zone})
	if c != nil {
		if ok {
			c.hits.Add(1)
		} else {
			c.misses.Add(1)
		}
	}
	return v, ok
}

func (c *Cache) putZone(zone string, servers []string, ttl time.Duration) {
	c.put(cacheKey{kindZone, zone}, servers, ttl)
}

func (c *Cache) forgetZone(zone string) { c.forget(cacheKey{kindZone, zone}) }

// host returns the cached IP addresses of a name server host.
func (c *Cache) host(host string) ([]string, bool) { return c.get(cacheKey{kindHost, host}) }

func (c *Cache) putHost(host string, ips []string, ttl time.Duration) {
	c.put(cacheKey{kindHost, host}, ips, ttl)
}

// lame reports whether server failed for zone within the last lameFor.
func (c *Cache) lame(zone, server string) bool {
	_, ok := c.get(cacheKey{kindLame, zone + " " + server})
	return ok
}

func (c *Cache) markLame(zone, server string) {
	c.put(cacheKey{kindLame, zone + " " + server}, nil, lameFor)
}
