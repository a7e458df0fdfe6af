package sqlite

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"sync"
	"testing"
	"time"

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
		if _, ok := stmts[q]; !ok {
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

// TestPreparedWrites: a write transaction's statements are prepared on the
// writer once the transaction that first ran them has ended, later
// transactions run them prepared with the same effect, the cache stays
// bounded, and after Close the statements are closed.
func TestPreparedWrites(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "domaind.db"))
	p := storetest.Project(t, s.Store, "acme")
	d := storetest.Domain(t, s.Store, p.ID, "example.com")
	prepared := func() int {
		s.ws.mu.Lock()
		defer s.ws.mu.Unlock()
		return len(s.ws.stmts)
	}
	// The writer's statement journal, which savepoints write, is in memory.
	var tempStore int
	if err := s.w.QueryRowContext(ctx, `PRAGMA temp_store`).Scan(&tempStore); err != nil || tempStore != 2 {
		t.Errorf("writer's temp_store = %d, %v; want 2 (MEMORY)", tempStore, err)
	}
	before := prepared()
	for i := range 3 {
		d.LastCheckedAt = d.LastCheckedAt.Add(time.Second)
		d.CheckAttempt = i + 1
		if err := s.SaveCheck(ctx, d, nil); err != nil {
			t.Fatal(err)
		}
		got, err := s.Domain(ctx, p.ID, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.CheckAttempt != i+1 || !got.LastCheckedAt.Equal(d.LastCheckedAt.Truncate(time.Millisecond).UTC()) {
			t.Errorf("save %d: attempt %d, last checked %v; want %d, %v", i, got.CheckAttempt, got.LastCheckedAt, i+1, d.LastCheckedAt)
		}
		if i == 0 && prepared() <= before {
			t.Errorf("after the first save, %d statements prepared, as before it", prepared())
		}
	}
	after := prepared()
	if err := s.SaveCheck(ctx, d, nil); err != nil {
		t.Fatal(err)
	}
	if n := prepared(); n != after {
		t.Errorf("the same save again prepared %d statements more", n-after)
	}

	// Statements whose text differs each time fill the cache up to its bound
	// and no further, and still run.
	for i := range maxWriteStmts + 10 {
		if err := (&db{w: s.w, r: s.r, ws: s.ws, ckpt: s.ckpt}).Tx(ctx, func(q sqlstore.Querier) error {
			_, err := q.Exec(ctx, fmt.Sprintf(`UPDATE domains SET check_attempt = %d WHERE id = $1`, i), d.ID)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	if n := prepared(); n > maxWriteStmts {
		t.Errorf("%d statements prepared, more than the bound %d", n, maxWriteStmts)
	}
	if got, err := s.Domain(ctx, p.ID, d.ID); err != nil || got.CheckAttempt != maxWriteStmts+9 {
		t.Errorf("after the unprepared updates: %v, %v", got, err)
	}

	stmts := maps.Clone(s.ws.stmts)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for q, st := range stmts {
		if _, err := st.ExecContext(ctx); err == nil {
			t.Errorf("still open after Close: %.60s…", q)
		}
	}
}
