package postgres

import (
	"strings"
	"testing"
	"time"

	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/store/sqlstore"
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
	p, err := s.EnsureProject(ctx, "acme", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	id, err := domain.NewID(now)
	if err != nil {
		t.Fatal(err)
	}
	d := &domain.Domain{ID: id, ProjectID: p.ID, Name: "example.com", Region: "us-east-1", Status: domain.StatusPending, CreatedAt: now,
		Records: []domain.Record{{Key: domain.KeyDMARC, Name: "_dmarc.example.com", Type: "TXT", Value: "v=DMARC1; p=none",
			Purpose: "dmarc", Status: domain.CheckUnchecked, CreatedAt: now, UpdatedAt: now}}}
	if err := s.CreateDomain(ctx, d, []byte{1}); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		got, err := s.Domain(ctx, p.ID, id)
		if err != nil || len(got.Records) != 1 {
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
