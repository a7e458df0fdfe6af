package sqlite

import (
	"context"
	"database/sql"
	"sync"
	"time"
)

// In WAL mode a commit appends the pages it changed to the -wal file, and a
// checkpoint copies them back into the database file so that the log can start
// again from its beginning. By default the connection whose commit takes the
// log past 1,000 pages runs the checkpoint, there and then, with an fsync of
// each file. Here that connection is the store's one writer, which every
// check's save waits for: under a stream of checks it checkpointed several
// times a second and stood still each time (make bench: 8–12% fewer checks a
// second than with the writer left alone).
//
// So the writer's own checkpoints are only a backstop, at backstopPages, and a
// connection of its own, the checkpointer, copies the log a little after the
// writes, at most once per checkpointInterval, while the writer goes on. A
// PASSIVE checkpoint, as the automatic one is, never waits for the writer or
// the readers: it copies what no reader still needs, and the next one copies
// the rest (../sqlite/wal.html "Checkpointing").

// checkpointInterval is the least time between two of the checkpointer's
// checkpoints. A page that many writes change (an index's, the events' last)
// is copied once per interval rather than once per 1,000 pages of log.
const checkpointInterval = 500 * time.Millisecond

// backstopPages is the writer's wal_autocheckpoint: past this many pages of
// log (64 MiB of 4 KiB pages) it checkpoints itself, as SQLite does by
// default at 1,000, in case the checkpointer cannot keep up or fails.
const backstopPages = 16384

// checkpointer runs the background checkpoints of one database on a
// connection of its own.
type checkpointer struct {
	db   *sql.DB
	wake chan struct{} // has a value when the log has pages to copy
	stop chan struct{}
	done chan struct{}
	once sync.Once // closes stop
}

// newCheckpointer starts the checkpoints of db, a pool the checkpointer
// keeps one connection of and closes when it stops.
func newCheckpointer(db *sql.DB, interval time.Duration) *checkpointer {
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxIdleTime(0)
	c := &checkpointer{db: db, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go c.run(interval)
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

func (c *checkpointer) run(interval time.Duration) {
	defer close(c.done)
	pause := time.NewTimer(0)
	defer pause.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-c.wake:
		}
		// An error (SQLITE_BUSY while the writer's backstop checkpoints, a
		// full disk) is not the checkpointer's to report: the writes that
		// made the log got their own errors, and the next commit wakes the
		// checkpointer to try again.
		var busy, logPages, copied int
		_ = c.db.QueryRowContext(context.Background(), `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &logPages, &copied)
		pause.Reset(interval)
		select {
		case <-c.stop:
			return
		case <-pause.C:
		}
	}
}

// close stops the checkpointer and closes its pool; a Store may be closed
// twice. SQLite checkpoints the log once more, and removes it, when the last
// connection to the file closes.
func (c *checkpointer) close() error {
	c.once.Do(func() { close(c.stop) })
	<-c.done
	return c.db.Close()
}
