package sqlite

import (
	"context"
	"fmt"
)

// DataVersion returns SQLite's PRAGMA data_version as the writer's connection
// sees it: a number that changes whenever a connection other than the writer
// commits, and only then. Every write of this Store is made by the writer and
// its readers are read-only, so a change means that another process (a
// `domaind` command, another serve) wrote the file: read caches drop what they
// hold when it changes. It waits for the writer while a write transaction
// holds it.
func (s *Store) DataVersion(ctx context.Context) (uint64, error) {
	var v int64
	if err := s.w.QueryRowContext(ctx, "PRAGMA data_version").Scan(&v); err != nil {
		return 0, fmt.Errorf("sqlite: data_version: %w", err)
	}
	return uint64(v), nil
}
