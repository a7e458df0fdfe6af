package sqlite

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/store/sqlstore"
)

// TestPreparedReads: the read path's statements are prepared on the read pool
// at Open, answer from every reader connection at once, and are closed with
// the store.
func TestPreparedReads(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "domaind.db"))
	if err != nil {
		t.Fatal(err)
	}
	d := s.Store
	stmts := s.prepared
	for _, q := range sqlstore.Prepared() {
		if stmts[q] == nil {
			t.Errorf("not prepared: %.60s…", q)
		}
	}
	p, err := d.EnsureProject(ctx, "acme", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	id, err := domain.NewID(now)
	if err != nil {
		t.Fatal(err)
	}
	want := &domain.Domain{ID: id, ProjectID: p.ID, Name: "example.com", Region: "us-east-1", Status: domain.StatusPending, CreatedAt: now,
		Records: []domain.Record{
			{Key: domain.KeyOwnership, Name: "example.com", Type: "TXT", Value: "token", Purpose: "ownership", Status: domain.CheckUnchecked, CreatedAt: now, UpdatedAt: now},
			{Key: domain.KeyDMARC, Name: "_dmarc.example.com", Type: "TXT", Value: "v=DMARC1; p=none", Purpose: "dmarc", Status: domain.CheckUnchecked, CreatedAt: now, UpdatedAt: now},
		}}
	if err := d.CreateDomain(ctx, want, []byte{1}); err != nil {
		t.Fatal(err)
	}
	// More readers at once than the pool has connections, so that every
	// connection prepares the statement and some wait for one.
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 20 {
				got, err := d.Domain(ctx, p.ID, id)
				if err != nil {
					t.Error(err)
					return
				}
				if got.Name != want.Name || len(got.Records) != 2 || got.Records[0].Key != domain.KeyOwnership || got.Records[1].Value != "v=DMARC1; p=none" {
					t.Errorf("Domain = %+v", got)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for q, st := range stmts {
		if _, err := st.QueryContext(ctx); err == nil {
			t.Errorf("still open after Close: %.60s…", q)
		}
	}
}
