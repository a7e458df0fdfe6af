package sqlite

import (
	"path/filepath"
	"testing"
	"time"
)

// TestDataVersion: the writer's data_version stays put across this Store's own
// commits and moves when another Store on the file (another process) commits.
func TestDataVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "domaind.db")
	a, b := open(t, path), open(t, path)
	defer a.Close()
	defer b.Close()
	ctx := t.Context()
	version := func() uint64 {
		t.Helper()
		v, err := a.DataVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	v0 := version()
	if _, err := a.EnsureProject(ctx, "own", time.Now()); err != nil {
		t.Fatal(err)
	}
	if v := version(); v != v0 {
		t.Fatalf("data_version moved from %d to %d on the Store's own commit", v0, v)
	}
	if _, err := b.EnsureProject(ctx, "other", time.Now()); err != nil {
		t.Fatal(err)
	}
	v1 := version()
	if v1 == v0 {
		t.Fatalf("data_version stayed %d after another Store committed", v0)
	}
	if v := version(); v != v1 {
		t.Fatalf("data_version moved from %d to %d with no commit between", v1, v)
	}
}

// TestDataVersionNewWriter: when database/sql replaces the writer's connection,
// whose counter starts afresh, the number changes, so that a commit by another
// process just before the replacement is not hidden behind an equal count.
func TestDataVersionNewWriter(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "domaind.db"))
	defer s.Close()
	ctx := t.Context()
	v0, err := s.DataVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// No idle connection kept: the writer's connection is closed, and the
	// next use opens another, as after the driver drops an interrupted one.
	s.w.SetMaxIdleConns(0)
	s.w.SetMaxIdleConns(1)
	v1, err := s.DataVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v1 == v0 {
		t.Fatalf("data_version %d on a new writer connection, the same as on the old one", v1)
	}
	if v2, err := s.DataVersion(ctx); err != nil || v2 != v1 {
		t.Fatalf("data_version %d, %v on the same connection with no commit; want %d", v2, err, v1)
	}
}
