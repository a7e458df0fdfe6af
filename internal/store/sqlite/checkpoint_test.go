package sqlite

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestCheckpointer: what the store's commits add to the log reaches the
// database file without the writer checkpointing (its own checkpoints wait for
// backstopPages of log, far more than this test writes), and the background
// checkpoints are no commit of another process's to the read caches
// (DataVersion stays put). Close stops the checkpointer, and a Store closes
// twice without harm.
func TestCheckpointer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "domaind.db")
	s := open(t, path)
	defer s.Close()
	ctx := t.Context()
	var backstop int
	if err := s.w.QueryRowContext(ctx, `PRAGMA wal_autocheckpoint`).Scan(&backstop); err != nil {
		t.Fatal(err)
	}
	if backstop != backstopPages {
		t.Fatalf("the writer's wal_autocheckpoint = %d, want %d", backstop, backstopPages)
	}
	size := func() int64 {
		t.Helper()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	// Open's migrations are in the log; nothing has woken the checkpointer yet.
	before := size()
	v0, err := s.DataVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.EnsureProject(ctx, "acme", time.Now()); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); size() <= before; {
		if time.Now().After(deadline) {
			t.Fatalf("the database file stayed at %d bytes for 10 s after a commit: the log was not checkpointed", before)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if v, err := s.DataVersion(ctx); err != nil || v != v0 {
		t.Fatalf("DataVersion = %d, %v after a background checkpoint, want %d", v, err, v0)
	}
	// Closed here and again by the deferred Close, as some callers do.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.ckpt.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the checkpointer still runs 10 s after Close")
	}
}
