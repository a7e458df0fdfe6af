package sqlite

import (
	"context"
	"database/sql"
	"sync"
	"time"
)

// In WAL mode a commit appends the pages it changed to the -wal file, and a
// checkpoint copies them back into the database file. By default the
// connection whose commit takes the log past 1,000 pages runs the checkpoint,
// there and then, with an fsync of each file. Here that connection is the
// store's one writer, which every check's save waits for: under a stream of
// checks it checkpointed several times a second and stood still each time (in
// the bench's scale-out section, with no checkpoint at all the writer made
// about 10% more checks a second).
//
// So a connection of its own, the checkpointer, copies the log while the
// writer goes on: at once when a commit follows a quiet spell, then at most
// once per checkpointInterval while commits go on. A PASSIVE checkpoint, as
// the automatic one is, never waits for the writer or the readers: it copies
// what no reader still needs, and the next one copies the rest
// (https://sqlite.org/wal.html#checkpointing).
//
// The log starts again from the beginning of the -wal file only when a write
// transaction begins with every page of it copied. Where writes pause, even
// briefly, the checkpointer's copy gets there. Under a stream of commits that
// never pause, each copy is overtaken by the commits made meanwhile, and the
// writer's own automatic checkpoint, raised to backstopPages, ends the cycle:
// it copies the little the checkpointer has not, and the log starts again. So
// the writer stops once per backstopPages of log rather than once per 1,000
// pages, for a shorter copy, and the -wal file grows to at most about
// backstopPages pages.

// checkpointInterval is the least time between two of the checkpointer's
// checkpoints. A page that many writes change (an index's, the events' last)
// is copied once per interval rather than once per 1,000 pages of log.
const checkpointInterval = 500 * time.Millisecond

// backstopPages is the writer's wal_autocheckpoint: past this many pages of
// log (64 MiB of 4 KiB pages) it checkpoints itself, which lets the log start
// again under writes that never pause (see above), and bounds the log if the
// checkpointer cannot keep up.
const backstopPages = 16384

// checkpointer runs the background checkpoints of one database on a
// connection of its own.
type checkpointer struct {
	db   *sql.DB
	wake chan struct{} // has a value when the log has pages to copy
	// ctx ends when the checkpointer stops, interrupting a checkpoint under
	// way: the copy is left for the next connection to the file, and SQLite
	// takes up an interrupted checkpoint where it stood.
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once // closes the pool
	err    error     // of closing the pool
}

// newCheckpointer starts the checkpoints of db, a pool the checkpointer
// keeps one connection of and closes when it stops.
func newCheckpointer(db *sql.DB) *checkpointer {
	db.SetMaxOpenConns(1)
	ctx, cancel := context.WithCancel(context.Background())
	c := &checkpointer{db: db, wake: make(chan struct{}, 1), ctx: ctx, cancel: cancel, done: make(chan struct{})}
	go c.run()
	return c
}

// committed tells the checkpointer that a commit added pages to the log. It
// never blocks.
func (c *checkpointer) committed() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *checkpointer) run() {
	defer close(c.done)
	pause := time.NewTimer(0)
	defer pause.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.wake:
		}
		// A checkpoint that another holds the lock for (the writer's
		// backstop) returns busy in its row, and one that fails (a full
		// disk) an error: either way the log is still there, the writes that
		// made it got their own outcomes, and the next commit wakes the
		// checkpointer to copy it.
		var busy, logPages, copied int
		_ = c.db.QueryRowContext(c.ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &logPages, &copied)
		pause.Reset(checkpointInterval)
		select {
		case <-c.ctx.Done():
			return
		case <-pause.C:
		}
	}
}

// close stops the checkpointer and closes its pool; a Store may be closed
// twice. SQLite checkpoints the log once more, and removes it, when the last
// connection to the file closes.
func (c *checkpointer) close() error {
	c.once.Do(func() {
		c.cancel()
		<-c.done
		c.err = c.db.Close()
	})
	return c.err
}
