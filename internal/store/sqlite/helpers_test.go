package sqlite

import (
	"io/fs"
	"testing"

	"github.com/pressly/goose/v3"

	"github.com/domaind/domaind/internal/store/sqlstore"
)

// mustSub gives the tests the migrations folder, as Open reads it.
func mustSub(fsys fs.FS, dir string) fs.FS { return sqlstore.MustSub(fsys, dir) }

// provider gives the tests goose's view of s's migrations, as Open runs them.
func provider(t *testing.T, s *Store) *goose.Provider {
	t.Helper()
	p, err := goose.NewProvider(goose.DialectSQLite3, s.w, mustSub(migrations, "migrations"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// migrateDown takes s's schema back to version, so that a test can write rows
// as the code of that version did and check what the later migrations make of
// them.
func migrateDown(t *testing.T, s *Store, version int64) {
	t.Helper()
	if _, err := provider(t, s).DownTo(t.Context(), version); err != nil {
		t.Fatal(err)
	}
}
