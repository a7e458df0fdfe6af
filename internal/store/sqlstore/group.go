package sqlstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/domaind/domaind/internal/store"
)

// errClosed is what a write that reaches a closed store's group gets.
var errClosed = errors.New("store closed")

// maxGroup bounds how many writes one group commit holds, so that one
// transaction stays short and its locks are held briefly.
const maxGroup = 128

// group commits writes that arrive together in one transaction: the writes of
// many checks that finish at once cost one BEGIN and one COMMIT (on SQLite, one
// turn of the single writer; on PostgreSQL, one flush of the log) instead of one
// each. A write that arrives while a transaction is committing waits for that one
// to end, and then goes with every other write that arrived meanwhile, so a burst
// costs one transaction per maxGroup writes.
//
// Where writes come steadily rather than in bursts (a stream of checks, each
// finishing at its own time), the one writer of SQLite commits nearly as fast
// as they come, and a transaction held about five of the bench's saves, each
// paying a fifth of a commit: its BEGIN and COMMIT, and on SQLite a copy in the
// log of every page the writes share (the events' last page, the indexes'
// newest). So a group with a window gathers: after a transaction of more than
// one write, the next, if its first write is store.Deferrable (a scheduled
// check's save), waits up to the window for more writes to go with it. It
// commits as soon as it has maxGroup, or a write that is not deferrable (a
// lease, or the save of a verify that a customer waits on). A lone write (the
// transaction before it held one, as when writes come one after another) never
// waits. The window is only for SQLite (see New); on PostgreSQL, whose group
// runs several transactions at once, it made no difference in the bench.
//
// A batch first runs as one plain transaction. If any write of it fails, the
// batch is undone and runs again with each write under a savepoint of its own,
// so one that fails is undone alone and its caller alone gets its error; the
// others commit. If that transaction as a whole fails (its commit, a savepoint),
// each write of it is retried in a transaction of its own, so no write is lost
// because another failed, and none is half-written. A write may therefore run up
// to three times: it must do the same each time, and keep nothing of a run that
// was undone.
type group struct {
	db     DB
	ops    chan *groupOp
	done   chan struct{}
	window time.Duration // 0: no gathering

	// mu guards closed, and is held for reading while a write is handed to
	// run, so that close never leaves a write in ops that nobody takes.
	mu     sync.RWMutex
	closed bool
}

// groupOp is one write waiting for its group commit.
type groupOp struct {
	ctx context.Context
	// key orders the writes of a transaction (a domain id), so that two
	// replicas' transactions lock rows in one order and never deadlock.
	key string
	fn  func(context.Context, Querier) error
	err chan error
}

// newGroup starts runners group commits that run at once: one where write
// transactions exclude each other whole (SQLite), several where they do not
// (PostgreSQL), so that the statements of one batch do not wait for another's
// round trips. Each batch locks its rows in the order of their keys, so
// concurrent batches, of this process or another, never deadlock. window is
// how long a transaction may wait to gather writes (see group), 0 for not at
// all.
func newGroup(db DB, runners int, window time.Duration) *group {
	g := &group{db: db, ops: make(chan *groupOp, maxGroup), done: make(chan struct{}), window: window}
	var wg sync.WaitGroup
	for range max(runners, 1) {
		wg.Go(g.run)
	}
	go func() {
		wg.Wait()
		close(g.done)
	}()
	return g
}

// do runs fn, which writes, in the next group commit and returns its error. fn
// must run its statements under the context it is given, which is the
// transaction's: ctx is consulted only before the write begins.
func (g *group) do(ctx context.Context, key string, fn func(context.Context, Querier) error) error {
	op := &groupOp{ctx: ctx, key: key, fn: fn, err: make(chan error, 1)}
	g.mu.RLock()
	if g.closed {
		g.mu.RUnlock()
		return errClosed
	}
	select {
	case g.ops <- op:
	case <-ctx.Done():
		g.mu.RUnlock()
		return ctx.Err()
	}
	g.mu.RUnlock()
	// The write is in the queue: its outcome is waited for even if ctx ends,
	// so the caller never reports a failure for a write that committed. A write
	// whose ctx has ended before its transaction begins is skipped.
	return <-op.err
}

// close stops the group once the writes already queued are committed.
func (g *group) close() {
	g.mu.Lock()
	if !g.closed {
		g.closed = true
		close(g.ops) // no write is being handed over: do holds mu to send
	}
	g.mu.Unlock()
	<-g.done
}

func (g *group) run() {
	timer := time.NewTimer(g.window)
	timer.Stop()
	last := 0 // writes in the runner's last transaction
	for {
		op, ok := <-g.ops
		if !ok {
			return
		}
		batch := g.gather(op, last > 1, timer)
		last = len(batch)
		g.commit(batch)
	}
}

// gather returns the writes of the transaction that op begins: op, the writes
// already waiting, and, if wait and op is deferrable, those that come within
// the window, up to maxGroup in all or until one that is not deferrable. A
// closed group ends the gathering at once.
func (g *group) gather(op *groupOp, wait bool, timer *time.Timer) []*groupOp {
	batch := []*groupOp{op}
	var timeout <-chan time.Time
	if wait && g.window > 0 && store.IsDeferrable(op.ctx) {
		timer.Reset(g.window)
		defer timer.Stop()
		timeout = timer.C
	}
	for len(batch) < maxGroup {
		var (
			next *groupOp
			ok   bool
		)
		if timeout == nil {
			select {
			case next, ok = <-g.ops:
			default:
				return batch
			}
		} else {
			select {
			case next, ok = <-g.ops:
			case <-timeout:
				return batch
			}
		}
		if !ok {
			return batch
		}
		batch = append(batch, next)
		if timeout != nil && !store.IsDeferrable(next.ctx) {
			// Someone waits on this one: what came is what goes.
			timeout = nil
		}
	}
	return batch
}

// commit runs batch in one transaction and tells each write its outcome.
func (g *group) commit(batch []*groupOp) {
	live := batch[:0]
	for _, op := range batch {
		if err := op.ctx.Err(); err != nil {
			op.err <- err
			continue
		}
		live = append(live, op)
	}
	if len(live) == 0 {
		return
	}
	if len(live) == 1 {
		live[0].alone(g.db)
		return
	}
	slices.SortStableFunc(live, func(a, b *groupOp) int { return cmp.Compare(a.key, b.key) })
	ctx, cancel := batchContext(live)
	defer cancel()
	// Writes almost never fail (a save of a domain deleted meanwhile is the
	// usual one), so the batch first runs whole, with no savepoints, which cost
	// two statements per write and, on SQLite, a copy of each page a write
	// touches. Only if something fails is it undone and run again with a
	// savepoint per write, which tells each write its own outcome.
	// What the writes read that none of them writes (a project's webhooks) is
	// read once for the whole transaction; see batchReads.
	plain := groupContext(ctx, &batchReads{})
	if err := g.db.Tx(ctx, func(tx Querier) error {
		for _, op := range live {
			if err := op.fn(plain, tx); err != nil {
				return err
			}
		}
		return nil
	}); err == nil {
		for _, op := range live {
			op.err <- nil
		}
		return
	}
	errs := make([]error, len(live))
	saved := groupContext(ctx, nil)
	err := g.db.Tx(ctx, func(tx Querier) error {
		for i, op := range live {
			if _, err := tx.Exec(ctx, `SAVEPOINT group_write`); err != nil {
				return err
			}
			if errs[i] = op.fn(saved, tx); errs[i] != nil {
				if _, err := tx.Exec(ctx, `ROLLBACK TO SAVEPOINT group_write`); err != nil {
					return err
				}
			}
			if _, err := tx.Exec(ctx, `RELEASE SAVEPOINT group_write`); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		// Nothing of the batch committed: each write gets a transaction of its
		// own, and its own outcome.
		for _, op := range live {
			if op.ctx.Err() != nil {
				op.err <- fmt.Errorf("group commit: %w (then %w)", err, op.ctx.Err())
				continue
			}
			op.alone(g.db)
		}
		return
	}
	for i, op := range live {
		op.err <- errs[i]
	}
}

// batchReads holds, for the writes of one group transaction, what they read
// and none of them writes: a project's webhooks, which a save reads to queue
// its events' deliveries. Within one transaction they cannot change under it
// (SQLite has one writer; PostgreSQL's first read locks the rows FOR KEY SHARE
// until the commit), so a batch of a hundred saves of one project reads them
// once. Only the plain run of a batch has one: a run with savepoints could undo
// a read's locks, and then reads again. On PostgreSQL the lock keeps webhooks
// from being deleted, not from being changed or added by another replica while
// the batch runs: the batch's later saves then see the webhooks as its first
// read did, as all of one save's deliveries always saw them as of its read.
type batchReads struct {
	webhooks map[int64][]store.Webhook
}

// batchReadsOf returns the batch's reads that ctx carries, or nil outside a
// group's plain run.
func batchReadsOf(ctx context.Context) *batchReads {
	r, _ := ctx.Value(groupKey{}).(*batchReads)
	return r
}

// alone runs the write in a transaction of its own.
func (op *groupOp) alone(db DB) {
	ctx := groupContext(op.ctx, nil)
	op.err <- db.Tx(op.ctx, func(q Querier) error { return op.fn(ctx, q) })
}

type groupKey struct{}

// groupContext marks ctx as the context of a group's write (see InGroup),
// carrying reads, the batch's shared reads, or nil where the writes must read
// for themselves.
func groupContext(ctx context.Context, reads *batchReads) context.Context {
	return context.WithValue(ctx, groupKey{}, reads)
}

// InGroup reports whether ctx is the context of a write of a group commit: the
// saves of checks and their leases, whose statements are short and on indexed
// rows of one domain. A driver may run those without watching ctx end to
// interrupt them (see the sqlite package's stmtContext); the transaction that
// holds them still ends with ctx.
func InGroup(ctx context.Context) bool {
	_, ok := ctx.Value(groupKey{}).(*batchReads) // a nil *batchReads too
	return ok
}

// batchContext is the context of a group's transaction: no single caller's
// cancellation ends it (that would fail the others' writes), but it ends by
// the latest deadline among them, if every one has a deadline.
func batchContext(ops []*groupOp) (context.Context, context.CancelFunc) {
	var latest time.Time
	for _, op := range ops {
		d, ok := op.ctx.Deadline()
		if !ok {
			return context.WithCancel(context.Background())
		}
		if d.After(latest) {
			latest = d
		}
	}
	return context.WithDeadline(context.Background(), latest)
}
