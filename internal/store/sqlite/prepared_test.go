package sqlite

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/domaind/domaind/internal/store/sqlstore"
	"github.com/domaind/domaind/internal/store/storetest"
)

// TestPreparedReads: the read path's statements are prepared on the read pool
// at Open, answer from every reader connection at once, and are closed with
// the store.
func TestPreparedReads(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "domaind.db"))
	d := s.Store
	stmts := s.prepared
	for _, q := range sqlstore.Prepared() {
		if stmts[q] == nil {
			t.Errorf("not prepared: %.60s…", q)
		}
	}
	p := storetest.Project(t, d, "acme")
	want := storetest.Domain(t, d, p.ID, "example.com")
	// More readers at once than the pool has connections, so that every
	// connection prepares the statement and some wait for one.
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 20 {
				got, err := d.Domain(ctx, p.ID, want.ID)
				if err != nil {
					t.Error(err)
					return
				}
				if got.Name != want.Name || len(got.Records) != len(want.Records) || got.Records[0].Key != want.Records[0].Key || got.Records[1].Value != want.Records[1].Value {
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
