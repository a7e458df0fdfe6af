package sqlite

import (
	"io/fs"

	"github.com/domaind/domaind/internal/store/sqlstore"
)

// mustSub gives the tests the migrations folder, as Open reads it.
func mustSub(fsys fs.FS, dir string) fs.FS { return sqlstore.MustSub(fsys, dir) }
