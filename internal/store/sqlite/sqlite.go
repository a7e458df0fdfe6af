// Package sqlite runs domaind's store on an embedded SQLite database through the
// pure-Go modernc.org/sqlite driver, so domaind builds and runs without cgo. The
// store itself is package sqlstore's; this package opens and migrates the file,
// runs statements on it, and gives the dialect with SQLite's claims.
package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync"

	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"

	"github.com/domaind/domaind/internal/store"
	"github.com/domaind/domaind/internal/store/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is a store.Store on one SQLite file. It keeps two pools: a single writer
// connection whose transactions take the write lock up front (BEGIN IMMEDIATE, so
// two writers never deadlock upgrading read locks), and several read-only
// connections that WAL mode lets run beside the writer.
type Store struct {
	*sqlstore.Store
	w, r     *sql.DB
	prepared map[string]prepared // see db.stmts
	ws       *writeStmts
	ckpt     *checkpointer
	dv       dataVersion // see DataVersion
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the database file at path and migrates it to the
// current schema.
func Open(ctx context.Context, path string) (*Store, error) {
	// The driver reads the path as a URI, where these characters mean something.
	if path == "" || strings.ContainsAny(path, "?#%") {
		return nil, fmt.Errorf("sqlite: invalid database path %q: it must not be empty or contain ?, # or %%", path)
	}
	dsn := func(extra ...string) string {
		q := url.Values{}
		q.Add("_pragma", "busy_timeout(10000)")
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(NORMAL)")
		q.Add("_pragma", "foreign_keys(1)")
		for _, e := range extra {
			k, v, _ := strings.Cut(e, "=")
			q.Add(k, v)
		}
		return "file:" + path + "?" + q.Encode()
	}
	// The file holds sealed DKIM keys and API key hashes: only its owner may read
	// it. SQLite gives the -wal and -shm files it creates the database file's mode.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	f.Close()
	if err := registerFunctions(); err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	// The writer keeps its statement journal (what a savepoint undoes) in
	// memory: it is scratch, never needed after a crash, and on disk each write
	// of a group commit's savepoint cost a system call. It checkpoints the log
	// itself only as a backstop (see checkpointer).
	w, err := sql.Open("sqlite", dsn("_txlock=immediate", "_pragma=temp_store(MEMORY)",
		fmt.Sprintf("_pragma=wal_autocheckpoint(%d)", backstopPages)))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	if err := sqlstore.Migrate(ctx, w, goose.DialectSQLite3, migrations); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	r, err := sql.Open("sqlite", dsn("_pragma=query_only(1)"))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	// Every reader stays open: one closed after use would be opened again, with
	// its pragmas run and its statements prepared again, for the next request.
	readers := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(readers)
	r.SetMaxIdleConns(readers)
	c, err := sql.Open("sqlite", dsn())
	if err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	d := &db{w: w, r: r, stmts: make(map[string]prepared), ws: newWriteStmts(w), ckpt: newCheckpointer(c)}
	// database/sql prepares a Stmt of the pool on each connection the first time
	// it runs there, and keeps it for that connection.
	for _, q := range sqlstore.Prepared() {
		rb := rebind(q)
		st, err := r.PrepareContext(ctx, rb.text)
		if err != nil {
			d.Close()
			return nil, fmt.Errorf("sqlite: prepare: %w", err)
		}
		d.stmts[q] = prepared{Stmt: st, stmt: rb}
	}
	return &Store{Store: sqlstore.New(d, dialect{}), w: w, r: r, prepared: d.stmts, ws: d.ws, ckpt: d.ckpt}, nil
}

// registered registers the SQL functions of the migrations once: the driver
// keeps its functions for the whole process, for every connection opened
// after, and refuses a name twice.
var registered = sync.OnceValue(func() error {
	// Migration 00011 packs events' payloads, and its Down unpacks them, with
	// the store's own codec; 00014 and its Down pack and unpack the groups
	// with them too. They pack with DEFLATE, which the code of their schema
	// versions reads (see PayloadCodec.Deflate).
	codec := sqlstore.NewPayloadCodec()
	funcs := []struct {
		name string
		args int32
		fn   func(*sqlite.FunctionContext, []driver.Value) (driver.Value, error)
	}{
		{"domaind_pack_payload", 1, packText("domaind_pack_payload", codec.Deflate)},
		{"domaind_unpack_payload", 1, func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
			packed, ok := args[0].([]byte)
			if !ok {
				return nil, fmt.Errorf("domaind_unpack_payload: %T, not a blob", args[0])
			}
			return codec.Unpack(packed)
		}},
		// 00014 makes each event a group of its own, and its Down lists a
		// group's events, with the store's own text of a group.
		{"domaind_event_group", 4, func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
			id, ok1 := args[0].(string)
			typ, ok2 := args[1].(string)
			created, ok3 := args[2].(int64)
			stored, ok4 := args[3].(string)
			if !ok1 || !ok2 || !ok3 || !ok4 {
				return nil, fmt.Errorf("domaind_event_group: arguments of types %T, %T, %T, %T, not text, text, integer, text",
					args[0], args[1], args[2], args[3])
			}
			return sqlstore.EventGroupOf(id, typ, created, stored)
		}},
		{"domaind_event_group_json", 1, func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
			text, ok := args[0].(string)
			if !ok {
				return nil, fmt.Errorf("domaind_event_group_json: %T, not text", args[0])
			}
			return sqlstore.EventGroupJSON(text)
		}},
		// 00011's Down turns a DKIM key value kept as bytes back into its text.
		{"domaind_value_text", 1, func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
			return sqlstore.ValueText(args[0])
		}},
		// 00015 packs the domains' checks (with DEFLATE, as above), and its Down
		// reads them, and both name a record in them by its fingerprint, from
		// its stored name, type and value.
		{"domaind_pack_checks", 1, packText("domaind_pack_checks", codec.DeflateChecks)},
		{"domaind_checks_json", 1, func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
			return codec.ChecksJSON(args[0])
		}},
		{"domaind_fingerprint", 3, func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
			name, ok1 := args[0].(string)
			typ, ok2 := args[1].(string)
			if !ok1 || !ok2 {
				return nil, fmt.Errorf("domaind_fingerprint: arguments of types %T, %T, not text, text", args[0], args[1])
			}
			value, err := sqlstore.ValueText(args[2])
			if err != nil {
				return nil, err
			}
			return sqlstore.Fingerprint(name, typ, value), nil
		}},
	}
	for _, f := range funcs {
		if err := sqlite.RegisterDeterministicScalarFunction(f.name, f.args, f.fn); err != nil {
			return err
		}
	}
	return nil
})

// packText is an SQL function that packs its one text argument with pack;
// name is the function's, for its errors.
func packText(name string, pack func([]byte) ([]byte, error)) func(*sqlite.FunctionContext, []driver.Value) (driver.Value, error) {
	return func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
		text, ok := args[0].(string)
		if !ok {
			return nil, fmt.Errorf("%s: %T, not text", name, args[0])
		}
		return pack([]byte(text))
	}
}

// registerFunctions registers the SQL functions of the migrations, once.
func registerFunctions() error { return registered() }

// db is the sqlstore.DB of the two pools.
type db struct {
	w, r *sql.DB
	// stmts are sqlstore.Prepared's statements, prepared on r and keyed by
	// their text as sqlstore gives it; the map is not written after Open.
	stmts map[string]prepared
	// ws are the write transactions' statements, prepared on w.
	ws *writeStmts
	// ckpt copies the log that w's commits write into the database file.
	ckpt *checkpointer
}

// Read implements sqlstore.DB: the read-only pool.
func (d *db) Read() sqlstore.Querier { return querier{q: d.r, stmts: d.stmts} }

// Snapshot implements sqlstore.DB. A read transaction of SQLite in WAL mode sees
// one snapshot, from its first read to its end.
func (d *db) Snapshot(ctx context.Context, fn func(sqlstore.Querier) error) error {
	tx, err := d.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("sqlite: begin read: %w", err)
	}
	defer tx.Rollback()
	return fn(querier{q: tx})
}

// Tx implements sqlstore.DB on the writer, whose transactions begin IMMEDIATE.
func (d *db) Tx(ctx context.Context, fn func(sqlstore.Querier) error) error {
	tx, err := d.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	// Once the writer is free again, what the transaction ran unprepared is
	// prepared for the next ones.
	defer d.ws.prepare(context.WithoutCancel(ctx))
	// Deferred after the preparing, so it runs first: a panic in fn must not
	// leave the writer's one connection in the transaction while prepare
	// waits for it. After a commit it does nothing.
	defer tx.Rollback()
	if err := fn(txQuerier{tx: tx, ws: d.ws}); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: commit: %w", err)
	}
	d.ckpt.committed()
	return nil
}

// Write implements sqlstore.DB. A statement outside a transaction would take the
// write lock only once it writes, and could then fail at once, past the busy
// timeout, if another connection wrote since it began reading; in a transaction
// that begins IMMEDIATE it waits for the lock instead.
func (d *db) Write(ctx context.Context, fn func(sqlstore.Querier) error) error {
	return d.Tx(ctx, fn)
}

// Close implements sqlstore.DB: it stops the checkpointer, and closes the
// prepared statements and the pools.
func (d *db) Close() error {
	errs := []error{d.ckpt.close(), d.ws.close()}
	for _, st := range d.stmts {
		errs = append(errs, st.Close())
	}
	return errors.Join(append(errs, d.r.Close(), d.w.Close())...)
}

// querier is a sqlstore.Querier on a pool or a transaction of database/sql. It
// rewrites the statements' $1 placeholders as SQLite's plain ? (see rebind),
// and runs the statements prepared on the read pool as prepared.
type querier struct {
	q interface {
		ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
		QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
		QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	}
	// stmts are the statements prepared on q, when q is the read pool. (The
	// prepared statements are reads of one statement, which run on the pool.)
	stmts map[string]prepared
}

func (q querier) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	st := rebind(query)
	args, err := st.args(args)
	if err != nil {
		return 0, err
	}
	res, err := q.q.ExecContext(ctx, st.text, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (q querier) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	var rows *sql.Rows
	if p, ok := q.stmts[query]; ok {
		args, err := p.args(args)
		if err != nil {
			return nil, err
		}
		if rows, err = p.QueryContext(ctx, args...); err != nil {
			return nil, err
		}
		return sqlstore.SQLRows{Rows: rows}, nil
	}
	st := rebind(query)
	args, err := st.args(args)
	if err != nil {
		return nil, err
	}
	if rows, err = q.q.QueryContext(ctx, st.text, args...); err != nil {
		return nil, err
	}
	return sqlstore.SQLRows{Rows: rows}, nil
}

func (q querier) QueryRow(ctx context.Context, query string, args ...any) sqlstore.Row {
	if p, ok := q.stmts[query]; ok {
		args, err := p.args(args)
		if err != nil {
			return errRow{err}
		}
		return p.QueryRowContext(ctx, args...)
	}
	st := rebind(query)
	args, err := st.args(args)
	if err != nil {
		return errRow{err}
	}
	return q.q.QueryRowContext(ctx, st.text, args...)
}

// errRow is a row that could not be asked for.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// prepared is a statement prepared on a pool, with how it takes its
// arguments.
type prepared struct {
	*sql.Stmt
	stmt
}

// stmt is a statement as SQLite runs it: its text, with each placeholder $n of
// the store's text written as a plain ?, and the order of the arguments those
// take.
//
// A plain ? costs the driver half of what a numbered ?n does to bind: for a
// numbered one it asks SQLite for the parameter's name, copies it out and
// parses the number, for every argument of every run, and a check's save binds
// about a hundred.
type stmt struct {
	text string
	// order holds, for each ? of text in turn, the number n of the $n it
	// replaced; nil where the arguments are passed as they come. want is the
	// largest n: as many arguments as a numbered placeholder would take.
	order []int
	want  int
}

// rebind rewrites every placeholder $n of query, outside quoted text, as a
// plain ?, and notes which argument each takes. A query that has placeholders
// of its own (?, ?n, :name, @name), a comment or an unclosed quote is left as
// it is: SQLite takes its $n as named parameters, which the driver binds by
// their number, only at the numbered placeholders' cost. A plain ? must never
// stand beside a $n, whose index SQLite would count between them.
func rebind(query string) stmt {
	if !strings.Contains(query, "$") {
		return stmt{text: query}
	}
	b := make([]byte, 0, len(query))
	var (
		order    []int
		want     int
		quote    byte
		identity = true
	)
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '?' || c == ':' || c == '@',
			c == '-' && strings.HasPrefix(query[i:], "--"), c == '/' && strings.HasPrefix(query[i:], "/*"):
			// Placeholders of the statement's own, or a comment, whose quotes
			// would mislead the scan: SQLite reads $n as it is, by name.
			return stmt{text: query}
		case c == '$' && i+1 < len(query) && query[i+1] >= '0' && query[i+1] <= '9':
			n := 0
			for i+1 < len(query) && query[i+1] >= '0' && query[i+1] <= '9' {
				i++
				if n = n*10 + int(query[i]-'0'); n > maxParam {
					return stmt{text: query}
				}
			}
			if n == 0 || i+1 < len(query) && isNameChar(query[i+1]) {
				// $0, or a name such as $1a, which SQLite reads whole.
				return stmt{text: query}
			}
			order = append(order, n)
			identity = identity && n == len(order)
			want = max(want, n)
			c = '?'
		}
		b = append(b, c)
	}
	if quote != 0 {
		return stmt{text: query}
	}
	if identity {
		order = nil
	}
	return stmt{text: string(b), order: order, want: want}
}

// isNameChar reports whether SQLite reads c as part of a parameter's name.
func isNameChar(c byte) bool {
	return c == '_' || c == '$' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

// maxParam is the largest placeholder number SQLite takes.
const maxParam = 32766

// args returns the arguments for st's placeholders, in their order, from
// those given for the store's $n.
func (st stmt) args(args []any) ([]any, error) {
	if st.order == nil {
		return args, nil
	}
	if len(args) != st.want {
		return nil, fmt.Errorf("sqlite: statement takes %d arguments, got %d", st.want, len(args))
	}
	out := make([]any, len(st.order))
	for i, n := range st.order {
		out[i] = args[n-1]
	}
	return out, nil
}
