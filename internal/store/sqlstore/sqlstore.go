// Package sqlstore implements store.Store once for the SQL databases domaind runs
// on. Its statements are written in the SQL that SQLite and PostgreSQL share, with
// PostgreSQL's numbered placeholders ($1, $2, ...); a driver package (sqlite,
// postgres) gives it a DB, which runs those statements on its connections, and a
// Dialect, which says what the two databases do differently. Only the claims, whose
// concurrency the two databases settle in different ways, are written per database.
package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/domaind/domaind/internal/store"
)

// Row is one row of a result, or the error that there is none.
type Row interface {
	Scan(dest ...any) error
}

// Rows is a result set. Close may be called more than once.
type Rows interface {
	Row
	Next() bool
	Err() error
	Close()
}

// SQLRows is database/sql's *sql.Rows as Rows: its Close drops the error, which
// a reader has no use for (Err reports what went wrong while reading).
type SQLRows struct{ *sql.Rows }

// Close closes the rows.
func (r SQLRows) Close() { r.Rows.Close() }

// Querier runs statements on a pool, a connection or a transaction. A row that is
// not there scans as an error that is sql.ErrNoRows (pgx's ErrNoRows wraps it).
type Querier interface {
	// Exec runs a statement and returns how many rows it changed.
	Exec(ctx context.Context, query string, args ...any) (int64, error)
	Query(ctx context.Context, query string, args ...any) (Rows, error)
	QueryRow(ctx context.Context, query string, args ...any) Row
}

// DB is a database as the store uses it: where reads run, and the two kinds of
// transaction it needs.
type DB interface {
	// Read is where reads of one statement run.
	Read() Querier
	// Snapshot runs fn in a read-only transaction whose statements all see one
	// snapshot, so that a domain and its records are never read torn.
	Snapshot(ctx context.Context, fn func(Querier) error) error
	// Tx runs fn in a write transaction, committing if fn returns nil and rolling
	// back if not.
	Tx(ctx context.Context, fn func(Querier) error) error
	// Write runs fn, which writes with one statement. A database in which a
	// statement is a transaction of its own runs it outside any; one whose write
	// transactions must take their lock up front runs it in a Tx.
	Write(ctx context.Context, fn func(Querier) error) error
	// Close releases the connections.
	Close() error
}

// Dialect is what differs between the databases, beyond how a DB runs statements.
type Dialect interface {
	// Name starts the store's error messages: "sqlite", "postgres".
	Name() string
	// IsUniqueViolation reports whether err is the violation of a unique
	// constraint or primary key.
	IsUniqueViolation(err error) bool
	// LocksRows reports whether the database locks rows. Where it does not (SQLite,
	// whose write transactions exclude each other whole), the store leaves out the
	// locking clauses and the statements that only lock.
	LocksRows() bool
	// NoLimit is the LIMIT argument that means no limit.
	NoLimit() any
	// In returns a condition that expr is one of values, whose first placeholder
	// is $n, and the arguments of its placeholders.
	In(expr string, n int, values []string) (string, []any)
	// MaxIn is the most values one In may hold, 0 for no bound.
	MaxIn() int
	// KeyPrefixMatch returns a condition on the API key k that k.prefix starts
	// with the argument $1 or the argument starts with k.prefix, compared as
	// bytes, and that argument for prefix.
	KeyPrefixMatch(prefix string) (string, any)
	// AttemptSeq is the column that orders the attempts of one delivery made in
	// the same millisecond: the order they were stored in.
	AttemptSeq() string
	// BinaryValues reports whether a column of text may keep bytes, a BLOB:
	// a DKIM key record's value as the key's bytes (see storedValue), an
	// event's payload compressed (see PayloadCodec). SQLite keeps any type in
	// any column; PostgreSQL's columns are text.
	BinaryValues() bool

	// ClaimChecks claims due domains as store.Store.ClaimChecks does, with its
	// arguments made ready: until is the new due time, now and until in Unix
	// milliseconds, perProject at least 1, running only positive counts, and a
	// negative limit meaning none. It runs as one statement, in a Write.
	ClaimChecks(ctx context.Context, q Querier, until, now int64, perProject int, running map[int64]int, limit int) ([]store.Due, error)
	// ClaimDeliveries claims deliveries as store.Store.ClaimDeliveries does, in
	// the transaction q; perEndpoint is at least 1 and a negative limit means none.
	// The deliveries come as ScanDelivery reads them, most overdue first.
	ClaimDeliveries(ctx context.Context, q Querier, now, until int64, perEndpoint, limit int) ([]store.Delivery, error)
}

// Prepared returns the statements that every authenticated read runs (the
// domain a GET returns, the API key and the dashboard session that authenticate
// it), for a DB to prepare once on each connection and keep until it is closed
// rather than compile on every call. They are this package's text, as the
// Querier is given it.
func Prepared() []string {
	return []string{DomainSQL, apiKeyByHashSQL, sessionByHashSQL}
}

// Store is a store.Store on a DB, in a Dialect.
type Store struct {
	db DB
	d  Dialect
	// writes commits the checks' writes together (see group).
	writes *group
	// payloads packs events' payloads and domains' checks where the dialect
	// keeps bytes.
	payloads *PayloadCodec
	// texts holds the buffers event groups' texts are made in.
	texts buffers
}

var _ store.Store = (*Store)(nil)

// New returns a Store on db, which speaks d.
func New(db DB, d Dialect) *Store {
	runners, window := 1, groupWindow
	if d.LocksRows() {
		runners, window = groupRunners, 0
	}
	return &Store{db: db, d: d, writes: newGroup(db, runners, window), payloads: NewPayloadCodec()}
}

// groupRunners is how many group commits run at once where the database lets
// writers run side by side: as many as pgx's smallest default pool.
const groupRunners = 4

// groupWindow is how long SQLite's group commit may hold a deferrable write to
// gather others (see group). In the bench's scale-out section a millisecond
// made the transactions of a stream of checks four times larger (over 20 saves
// each, from about 5), the checks about 2% cheaper in CPU and about 3% more of
// them a second; the verifies that customers ask for are not held.
const groupWindow = time.Millisecond

// Close implements store.Store.
func (s *Store) Close() error {
	s.writes.close()
	return s.db.Close()
}

// errorf wraps an error as fmt.Errorf does, with the dialect's name in front.
func (s *Store) errorf(format string, args ...any) error {
	return fmt.Errorf("%s: %w", s.d.Name(), fmt.Errorf(format, args...))
}

// lock returns clause, a locking clause with a space in front, where the database
// locks rows, and nothing where it does not.
func (s *Store) lock(clause string) string {
	if !s.d.LocksRows() {
		return ""
	}
	return " " + clause
}

// limitOf is the LIMIT argument for a page: a Limit of 0 or less means none.
func (s *Store) limitOf(p store.Page) any {
	if p.Limit <= 0 {
		return s.d.NoLimit()
	}
	return p.Limit
}

// Collect scans every row with scan and closes rows. It returns nil, not an empty
// slice, when there are no rows.
func Collect[T any](rows Rows, scan func(Row) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// chunks splits values into runs of at most size values; a size of 0 or less
// means one run of them all.
func chunks(values []string, size int) [][]string {
	if size <= 0 || len(values) <= size {
		return [][]string{values}
	}
	var out [][]string
	for len(values) > 0 {
		n := min(size, len(values))
		out = append(out, values[:n])
		values = values[n:]
	}
	return out
}
