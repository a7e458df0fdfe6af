package sqlite

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/records"
)

// BenchmarkDomain reads one domain with its generated records, as GET
// /v1/domains/{id} does, from one goroutine: the store's own cost of the read.
func BenchmarkDomain(b *testing.B) {
	ctx := context.Background()
	s := open(b, filepath.Join(b.TempDir(), "domaind.db"))
	defer s.Close()
	if _, err := s.w.ExecContext(ctx, `INSERT INTO projects (id, name, created_at) VALUES (1, 'bench', 0)`); err != nil {
		b.Fatal(err)
	}
	cfg := records.DefaultConfig()
	cfg.DKIMBits = 1024
	now := time.Now()
	gen, err := cfg.Generate("example.com", "us-east-1", now)
	if err != nil {
		b.Fatal(err)
	}
	id, err := domain.NewID(now)
	if err != nil {
		b.Fatal(err)
	}
	d := &domain.Domain{ID: id, ProjectID: 1, Name: "example.com", Region: "us-east-1", Status: domain.StatusPendingConfiguration,
		Records: gen.Records, CreatedAt: now}
	if err := s.CreateDomain(ctx, d, []byte{0}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		got, err := s.Domain(ctx, 1, id)
		if err != nil || len(got.Records) != len(d.Records) {
			b.Fatalf("%v, %d records", err, len(got.Records))
		}
	}
}
