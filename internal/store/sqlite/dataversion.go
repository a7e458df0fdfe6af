package sqlite

import (
	"context"
	"fmt"
	"sync"
)

// dataVersion remembers which writer connection the last data_version came
// from: SQLite's counter belongs to a connection and starts afresh on a new
// one, so values read on two connections cannot be compared.
type dataVersion struct {
	mu   sync.Mutex
	conn any    // the driver connection of the last read
	gen  uint64 // how many writer connections have been seen
}

// DataVersion returns SQLite's PRAGMA data_version as the writer's connection
// sees it: a number that changes whenever a connection other than the writer
// commits, and only then. Every write of this Store is made by the writer and
// its readers are read-only, so a change means that another process (a
// `domaind` command, another serve) wrote the file: read caches drop what they
// hold when it changes. It waits for the writer while a write transaction
// holds it.
//
// database/sql may replace the writer's connection (the driver drops one that
// a cancelled statement interrupted), and the new connection's counter starts
// again at a value the old one may have had, so a commit by another process
// between the two would go unseen. The number returned therefore also counts
// the writer connections: a new connection is a new number.
// https://sqlite.org/pragma.html#pragma_data_version
func (s *Store) DataVersion(ctx context.Context) (uint64, error) {
	c, err := s.w.Conn(ctx)
	if err != nil {
		return 0, fmt.Errorf("sqlite: data_version: %w", err)
	}
	defer c.Close()
	var v int64
	if err := c.QueryRowContext(ctx, "PRAGMA data_version").Scan(&v); err != nil {
		return 0, fmt.Errorf("sqlite: data_version: %w", err)
	}
	var gen uint64
	if err := c.Raw(func(dc any) error {
		s.dv.mu.Lock()
		defer s.dv.mu.Unlock()
		if dc != s.dv.conn {
			s.dv.conn = dc
			s.dv.gen++
		}
		gen = s.dv.gen
		return nil
	}); err != nil {
		return 0, fmt.Errorf("sqlite: data_version: %w", err)
	}
	return gen<<32 | uint64(uint32(v)), nil
}
