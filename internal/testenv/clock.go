package testenv

import (
	"sync"
	"time"
)

// Clock is a clock a test moves by hand, for the packages that take a clock
// (a Now func) instead of reading time.Now. Its time is a start plus what the
// test has moved it: a fixed start (NewClock), so that nothing moves unless the
// test says so, or the real time (RealClock), for code that also reads
// time.Now and must not see the two disagree by much. It is safe for
// concurrent use.
type Clock struct {
	mu     sync.Mutex
	real   bool
	start  time.Time
	offset time.Duration
}

// NewClock returns a clock that stands at start until the test moves it.
func NewClock(start time.Time) *Clock { return &Clock{start: start} }

// RealClock returns a clock that runs with the real time, moved by what the
// test adds with Advance.
func RealClock() *Clock { return &Clock{real: true} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.real {
		return time.Now().Add(c.offset)
	}
	return c.start.Add(c.offset)
}

// Advance moves the clock by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// Set puts a clock from NewClock at t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.start, c.offset = t, 0
}
