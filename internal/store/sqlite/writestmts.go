package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"sync"

	"github.com/domaind/domaind/internal/store/sqlstore"
)

// maxWriteStmts bounds the statements the writer keeps prepared. The store's
// statements are texts of its own code, not of its input, so a few dozen cover
// them all (a statement whose text grows with its arguments, such as an IN list,
// takes a few more); the bound only keeps a new kind of statement from growing
// the cache for ever.
const maxWriteStmts = 256

// writeStmts keeps the statements of the write transactions prepared on the
// writer connection, so that each is compiled once and not on every call: SQLite
// spends more time parsing a small UPDATE than running it, and the checks' saves
// run a dozen of them each on the one writer, which every other write waits for.
//
// A statement is prepared after the transaction that first ran it has ended:
// the writer pool has one connection, and preparing on the pool while a
// transaction holds it would wait for ever. Until then it runs as it always did.
type writeStmts struct {
	w *sql.DB

	mu sync.Mutex
	// stmts are the prepared statements, keyed by their text as sqlstore gives
	// it; want are those run unprepared since the last transaction ended.
	stmts  map[string]prepared
	want   map[string]struct{}
	closed bool
}

func newWriteStmts(w *sql.DB) *writeStmts {
	return &writeStmts{w: w, stmts: map[string]prepared{}, want: map[string]struct{}{}}
}

// get returns the statement prepared for query, if there is one, noting query
// to be prepared once the writer is free if not.
func (s *writeStmts) get(query string) (prepared, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.stmts[query]
	if !ok && !s.closed && len(s.stmts)+len(s.want) < maxWriteStmts {
		s.want[query] = struct{}{}
	}
	return st, ok
}

// prepare prepares the statements noted since the last call. It runs between
// transactions, on the writer pool, and its failure costs only speed: the
// statement keeps running unprepared, and is tried again after its next use.
func (s *writeStmts) prepare(ctx context.Context) {
	s.mu.Lock()
	if len(s.want) == 0 || s.closed {
		s.mu.Unlock()
		return
	}
	want := make([]string, 0, len(s.want))
	for q := range s.want {
		want = append(want, q)
	}
	clear(s.want)
	s.mu.Unlock()
	for _, q := range want {
		rb := rebind(q)
		st, err := s.w.PrepareContext(ctx, rb.text)
		if err != nil {
			continue
		}
		s.mu.Lock()
		if _, ok := s.stmts[q]; ok || s.closed {
			st.Close()
		} else {
			s.stmts[q] = prepared{Stmt: st, stmt: rb}
		}
		s.mu.Unlock()
	}
}

// close closes the prepared statements; later transactions run theirs
// unprepared.
func (s *writeStmts) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	var errs []error
	for _, st := range s.stmts {
		errs = append(errs, st.Close())
	}
	clear(s.stmts)
	return errors.Join(errs...)
}

// txQuerier is a sqlstore.Querier on a write transaction: it runs the
// statements the writer has prepared as prepared, and the others as text.
//
// A group commit's statements run under their context's values but not its
// cancellation (see stmtContext).
type txQuerier struct {
	tx *sql.Tx
	ws *writeStmts
}

// stmtContext is the context a statement of a write transaction runs under: for
// a write of a group commit (sqlstore.InGroup: the saves of checks and their
// leases), ctx without its cancellation. For a statement whose context can end,
// the driver starts a goroutine that waits for the end to interrupt it, which
// costs a short UPDATE of a group commit more than the UPDATE itself. Those
// statements are the store's own, on indexed rows of one domain each, never a
// scan that a tenant's input can make long; and the transaction is bounded all
// the same: database/sql rolls it back when ctx ends, so its later statements
// fail at once. Every other write (a delete that cascades over a domain's
// events or a webhook's deliveries, a claim) can still be interrupted.
func stmtContext(ctx context.Context) context.Context {
	if sqlstore.InGroup(ctx) {
		return context.WithoutCancel(ctx)
	}
	return ctx
}

func (q txQuerier) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	ctx = stmtContext(ctx)
	if p, ok := q.ws.get(query); ok {
		args, err := p.args(args)
		if err != nil {
			return 0, err
		}
		res, err := q.tx.StmtContext(ctx, p.Stmt).ExecContext(ctx, args...)
		if err != nil {
			return 0, err
		}
		return res.RowsAffected()
	}
	return querier{q: q.tx}.Exec(ctx, query, args...)
}

func (q txQuerier) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	ctx = stmtContext(ctx)
	if p, ok := q.ws.get(query); ok {
		args, err := p.args(args)
		if err != nil {
			return nil, err
		}
		rows, err := q.tx.StmtContext(ctx, p.Stmt).QueryContext(ctx, args...)
		if err != nil {
			return nil, err
		}
		return sqlstore.SQLRows{Rows: rows}, nil
	}
	return querier{q: q.tx}.Query(ctx, query, args...)
}

func (q txQuerier) QueryRow(ctx context.Context, query string, args ...any) sqlstore.Row {
	ctx = stmtContext(ctx)
	if p, ok := q.ws.get(query); ok {
		args, err := p.args(args)
		if err != nil {
			return errRow{err}
		}
		return q.tx.StmtContext(ctx, p.Stmt).QueryRowContext(ctx, args...)
	}
	return querier{q: q.tx}.QueryRow(ctx, query, args...)
}
