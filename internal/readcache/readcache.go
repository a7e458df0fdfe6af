// Package readcache keeps, per replica, what a read of one row costs to build
// (a domain's encoded answer), and serves it while it is still true.
//
// An entry is believed by these rules, each of which bounds how stale it may
// be:
//
//   - A write made through this replica invalidates its entry at once: the
//     store every service writes through tells the cache (package
//     store/watched), after the write returns. A load that began before an
//     invalidation of its shard is not kept, so a read racing a write never
//     caches what the write replaced.
//   - Writes made elsewhere (another replica, a `domaind` command on the same
//     SQLite file) are caught by the epoch, when the store has one: a number
//     that changes whenever anyone but this replica commits (SQLite's
//     PRAGMA data_version on the writer's connection). It is asked at most
//     every PollEvery, in the background of a read. An entry loaded under
//     another epoch is dropped; one whose epoch a poll that began less than
//     MaxStale ago confirmed is believed.
//   - Otherwise (no epoch, as on PostgreSQL, or no recent poll) an entry is
//     believed for less than MaxStale after its load began: the bound the API
//     key cache gives revocations made on other replicas.
//
// Entries are bounded in number and in bytes; a full shard forgets entries
// chosen at random, which are only loaded again.
package readcache

import (
	"context"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// Config sets a Cache's bounds and its view of other writers.
type Config struct {
	// MaxEntries and MaxBytes bound what the cache keeps; 0 for MaxEntries
	// means no cache at all (every lookup misses and nothing is kept).
	MaxEntries int
	MaxBytes   int64
	// MaxStale is the longest a write made elsewhere goes unnoticed; 0 means
	// DefaultMaxStale.
	MaxStale time.Duration
	// Epoch, when set, returns a number that changes whenever a writer other
	// than this replica commits. Nil: entries live for MaxStale.
	Epoch func(context.Context) (uint64, error)
	// PollEvery is how often, at most, Epoch is asked; 0 means
	// DefaultPollEvery.
	PollEvery time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// The defaults of Config.
const (
	DefaultMaxStale  = time.Second
	DefaultPollEvery = 50 * time.Millisecond
	// DefaultMaxEntries and DefaultMaxBytes are serve's bounds: a tenant with
	// a million domains fills them and no more.
	DefaultMaxEntries = 200_000
	DefaultMaxBytes   = 256 << 20
)

// entryOverhead is what an entry costs beside its value's own size: the map
// slot, the entry and its key.
const entryOverhead = 128

// shards spreads the entries over locks, so that readers on every core rarely
// wait for one another.
const shards = 32

// pollTimeout bounds one ask of Epoch.
const pollTimeout = 5 * time.Second

// Cache maps ids to values of type V, each belonging to one project.
type Cache[V any] struct {
	cfg    Config
	seed   maphash.Seed
	shards [shards]shard[V]

	// The epoch as of the last successful poll, and when that poll began;
	// known is false until a poll succeeded. lastKick is when the last
	// background poll was started, in UnixNano of cfg.Now.
	mu       sync.Mutex
	epoch    uint64
	known    bool
	polledAt time.Time
	polling  atomic.Bool
	lastKick atomic.Int64

	hits, misses atomic.Uint64
}

type shard[V any] struct {
	mu sync.Mutex
	// entries are kept by value: one object fewer per entry for the
	// garbage collector to mark.
	entries map[string]entry[V]
	bytes   int64
	// gen counts the shard's invalidations: a load that began under another
	// gen may have read what was since replaced, and is not kept.
	gen uint64
}

type entry[V any] struct {
	project int64
	value   V
	size    int64
	loaded  time.Time // when the load that made it began
	epoch   uint64
	known   bool // whether epoch was known when the load began
}

// Ticket is what a lookup that missed hands to Put: when and under what the
// load began.
type Ticket struct {
	shard   int
	gen     uint64
	at      time.Time
	epoch   uint64
	known   bool
	enabled bool
}

// New returns an empty Cache with cfg's bounds.
func New[V any](cfg Config) *Cache[V] {
	if cfg.MaxStale <= 0 {
		cfg.MaxStale = DefaultMaxStale
	}
	if cfg.PollEvery <= 0 {
		cfg.PollEvery = DefaultPollEvery
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := &Cache[V]{cfg: cfg, seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i].entries = make(map[string]entry[V])
	}
	return c
}

func (c *Cache[V]) shardOf(id string) int {
	return int(maphash.String(c.seed, id) % shards)
}

// Get returns the value of id if it belongs to project and is still
// believed. Otherwise it returns a Ticket for Put, to be taken before the
// load begins.
func (c *Cache[V]) Get(id string, project int64) (V, Ticket, bool) {
	var zero V
	if c == nil || c.cfg.MaxEntries <= 0 {
		return zero, Ticket{}, false
	}
	now := c.cfg.Now()
	c.kick(now)
	c.mu.Lock()
	epoch, known, polledAt := c.epoch, c.known, c.polledAt
	c.mu.Unlock()
	i := c.shardOf(id)
	s := &c.shards[i]
	s.mu.Lock()
	e, found := s.entries[id]
	if found && e.project == project {
		if c.believed(&e, now, epoch, known, polledAt) {
			v := e.value
			s.mu.Unlock()
			c.hits.Add(1)
			return v, Ticket{}, true
		}
		s.drop(id, e)
	}
	t := Ticket{shard: i, gen: s.gen, at: now, epoch: epoch, known: known, enabled: true}
	s.mu.Unlock()
	c.misses.Add(1)
	return zero, t, false
}

// believed says whether e may be served at now, given the epoch as last
// polled (see the package comment).
func (c *Cache[V]) believed(e *entry[V], now time.Time, epoch uint64, known bool, polledAt time.Time) bool {
	if e.known && known {
		if e.epoch != epoch {
			return false // someone else committed since e was loaded
		}
		if age := now.Sub(polledAt); age >= 0 && age < c.cfg.MaxStale {
			return true
		}
	}
	// A clock that went back believes nothing it remembers.
	age := now.Sub(e.loaded)
	return age >= 0 && age < c.cfg.MaxStale
}

// Put keeps v, of about size bytes, as id's value for project, loaded under
// t, unless id was invalidated since t was taken.
func (c *Cache[V]) Put(t Ticket, id string, project int64, v V, size int) {
	if c == nil || !t.enabled {
		return
	}
	sz := int64(size) + int64(len(id)) + entryOverhead
	perShard := c.cfg.MaxBytes / shards
	maxEntries := max(1, c.cfg.MaxEntries/shards)
	if c.cfg.MaxBytes > 0 && sz > perShard {
		return // larger than its share: never kept
	}
	s := &c.shards[t.shard]
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen != t.gen {
		return
	}
	if old, ok := s.entries[id]; ok {
		s.drop(id, old)
	}
	// Any entries: map iteration starts at a random place, and whatever is
	// forgotten is only loaded again.
	for k, e := range s.entries {
		if len(s.entries) < maxEntries && (c.cfg.MaxBytes <= 0 || s.bytes+sz <= perShard) {
			break
		}
		s.drop(k, e)
	}
	s.entries[id] = entry[V]{project: project, value: v, size: sz, loaded: t.at, epoch: t.epoch, known: t.known}
	s.bytes += sz
}

func (s *shard[V]) drop(id string, e entry[V]) {
	delete(s.entries, id)
	s.bytes -= e.size
}

// Invalidate forgets id's value, and any load of it that began before.
func (c *Cache[V]) Invalidate(id string) {
	if c == nil {
		return
	}
	s := &c.shards[c.shardOf(id)]
	s.mu.Lock()
	s.gen++
	if e, ok := s.entries[id]; ok {
		s.drop(id, e)
	}
	s.mu.Unlock()
}

// InvalidateAll forgets every value, and every load that began before.
func (c *Cache[V]) InvalidateAll() {
	if c == nil {
		return
	}
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		s.gen++
		clear(s.entries)
		s.bytes = 0
		s.mu.Unlock()
	}
}

// Stats are a cache's counts, for tests and the bench.
type Stats struct {
	Entries      int
	Bytes        int64
	Hits, Misses uint64
}

// Stats returns the cache's counts now.
func (c *Cache[V]) Stats() Stats {
	var st Stats
	if c == nil {
		return st
	}
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		st.Entries += len(s.entries)
		st.Bytes += s.bytes
		s.mu.Unlock()
	}
	st.Hits, st.Misses = c.hits.Load(), c.misses.Load()
	return st
}

// kick starts a poll of the epoch in the background if none ran for
// PollEvery and none is running: reads that find the cache idle pay for no
// poll, and no read waits for one.
func (c *Cache[V]) kick(now time.Time) {
	if c.cfg.Epoch == nil {
		return
	}
	last := c.lastKick.Load()
	if now.UnixNano()-last < int64(c.cfg.PollEvery) && now.UnixNano() >= last {
		return
	}
	if !c.polling.CompareAndSwap(false, true) {
		return
	}
	c.lastKick.Store(now.UnixNano())
	go func() {
		defer c.polling.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), pollTimeout)
		defer cancel()
		c.Poll(ctx)
	}()
}

// Poll asks the epoch now and returns its error; reads call it in the
// background by themselves, tests call it to be sure it ran.
func (c *Cache[V]) Poll(ctx context.Context) error {
	if c == nil || c.cfg.Epoch == nil {
		return nil
	}
	began := c.cfg.Now()
	v, err := c.cfg.Epoch(ctx)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// Polls may finish out of order; only a later one moves the epoch.
	if c.known && began.Before(c.polledAt) {
		return nil
	}
	c.epoch, c.known, c.polledAt = v, true, began
	return nil
}
