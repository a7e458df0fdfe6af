package postgres

import (
	"strings"
	"testing"

	"github.com/domaind/domaind/internal/store/sqlstore"
	"github.com/domaind/domaind/internal/store/storetest"
)

// TestReadsPreparedOncePerConnection: pgx prepares each statement once on a
// connection and keeps it (its statement cache, the default exec mode), so a
// domain read many times is one prepared statement of the connection.
func TestReadsPreparedOncePerConnection(t *testing.T) {
	dsn := freshDatabase(t)
	// One connection, so that the statements the test counts are its reads'.
	sep := " "
	if strings.Contains(dsn, "://") {
		sep = "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
	}
	dsn += sep + "pool_max_conns=1"
	ctx := t.Context()
	s, err := Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p := storetest.Project(t, s, "acme")
	d := storetest.Domain(t, s, p.ID, "example.com")
	for range 5 {
		got, err := s.Domain(ctx, p.ID, d.ID)
		if err != nil || len(got.Records) != len(d.Records) {
			t.Fatalf("Domain: %v, %+v", err, got)
		}
	}
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM pg_prepared_statements WHERE statement = $1`,
		sqlstore.DomainSQL).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("after 5 reads the connection holds the domain's statement prepared %d times, want 1", n)
	}
}
