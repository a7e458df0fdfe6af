package testenv

import (
	"maps"
	"sync"
)

// Counter counts events by name, safely from many goroutines: the fake of an
// observer that metrics would count. The zero value is ready to use.
type Counter struct {
	mu sync.Mutex
	n  map[string]int
}

// Add counts one event of the name.
func (c *Counter) Add(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = make(map[string]int)
	}
	c.n[name]++
}

// Get returns how many events of the name were counted.
func (c *Counter) Get(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[name]
}

// Counts returns a copy of every count, by name.
func (c *Counter) Counts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.n))
	maps.Copy(out, c.n)
	return out
}
