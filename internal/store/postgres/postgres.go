// Package postgres runs domaind's store on PostgreSQL through pgx, for operators
// who run several domaind replicas on one database. The store itself is package
// sqlstore's, and keeps the data exactly as on SQLite (times as Unix milliseconds,
// JSON as text); this package connects, migrates under an advisory lock, runs
// statements on the pool, and gives the dialect, whose claims use FOR UPDATE SKIP
// LOCKED so that replicas claiming at once never claim the same row.
package postgres

import (
	"context"
	"embed"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/domaind/domaind/internal/store"
	"github.com/domaind/domaind/internal/store/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// migrationLock is the key of the session advisory lock held while migrating: the
// ASCII bytes of "domaind". Advisory locks are per database, so only replicas of
// one database wait for each other.
const migrationLock int64 = 0x646f6d61696e64

// maxLockWait bounds how long Open waits for another replica's migrations and then
// runs its own, when its context sets no earlier deadline.
const maxLockWait = 5 * time.Minute

// Store is a store.Store on a PostgreSQL database, through a pool of connections.
// Any number of Stores, in one process or in several, may share the database.
type Store struct {
	*sqlstore.Store
	pool *pgxpool.Pool
}

var _ store.Store = (*Store)(nil)

// Open connects to the database named by dsn (a postgres:// URL or a libpq
// keyword/value string; pool_max_conns and the other pgxpool settings may be set in
// it) and migrates it to the current schema. When several replicas open the same
// database at once, one migrates while the others wait for it, for as long as ctx
// allows but at most five minutes.
func Open(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx quotes the DSN in the error with its password masked.
		return nil, fmt.Errorf("postgres: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	if err := migrate(ctx, pool, cfg.ConnConfig); err != nil {
		pool.Close()
		return nil, err
	}
	return &Store{Store: sqlstore.New(db{pool}, dialect{}), pool: pool}, nil
}

// migrate applies the pending migrations while holding the migration lock.
//
// The lock is a blocking pg_advisory_lock on a connection of its own rather than
// goose's session locker, which polls pg_try_advisory_lock at intervals of whole
// seconds (five by default): a replica that loses the race here starts as soon as
// the winner is done. When ctx ends first, pgx sends the server a cancel request, so
// the wait ends there too and the lock is not taken after Open has given up. If a
// replica dies while migrating, PostgreSQL ends its session and so releases the lock.
func migrate(ctx context.Context, pool *pgxpool.Pool, connCfg *pgx.ConnConfig) error {
	ctx, cancel := context.WithTimeout(ctx, maxLockWait)
	defer cancel()

	conn, err := pgx.ConnectConfig(ctx, connCfg)
	if err != nil {
		return fmt.Errorf("postgres: migration lock: %w", err)
	}
	defer func() {
		// Ending the session releases the lock, whatever happened meanwhile.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		conn.Close(ctx)
	}()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrationLock); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("postgres: waiting for another replica's migrations: %w (%w)", ctx.Err(), err)
		}
		return fmt.Errorf("postgres: migration lock: %w", err)
	}

	db := stdlib.OpenDBFromPool(pool) // closing db leaves the pool open
	defer db.Close()
	if err := sqlstore.Migrate(ctx, db, goose.DialectPostgres, migrations); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	return nil
}

// db is the sqlstore.DB of a pool. It speaks pgx's own protocol rather than
// database/sql's, which would keep a second pool in front of this one.
type db struct {
	pool *pgxpool.Pool
}

// Read implements sqlstore.DB: the pool.
func (d db) Read() sqlstore.Querier { return querier{d.pool} }

// Snapshot implements sqlstore.DB with a read-only REPEATABLE READ transaction,
// whose statements all see the snapshot of its first.
func (d db) Snapshot(ctx context.Context, fn func(sqlstore.Querier) error) error {
	tx, err := d.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("postgres: begin read: %w", err)
	}
	defer tx.Rollback(ctx)
	return fn(querier{tx})
}

// Tx implements sqlstore.DB with a READ COMMITTED transaction.
func (d db) Tx(ctx context.Context, fn func(sqlstore.Querier) error) error {
	return pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error { return fn(querier{tx}) })
}

// Write implements sqlstore.DB: a statement is a transaction of its own, and
// needs no BEGIN and COMMIT around it.
func (d db) Write(ctx context.Context, fn func(sqlstore.Querier) error) error {
	return fn(querier{d.pool})
}

// Close implements sqlstore.DB: it closes the pool, waiting for connections in
// use to be returned.
func (d db) Close() error {
	d.pool.Close()
	return nil
}

// querier is a sqlstore.Querier on the pool or a transaction. sqlstore's
// statements are PostgreSQL's, and pgx's rows are sqlstore.Rows already.
type querier struct {
	q interface {
		Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
		Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
		QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	}
}

func (q querier) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	tag, err := q.q.Exec(ctx, query, args...)
	return tag.RowsAffected(), err
}

func (q querier) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	return q.q.Query(ctx, query, args...)
}

func (q querier) QueryRow(ctx context.Context, query string, args ...any) sqlstore.Row {
	return q.q.QueryRow(ctx, query, args...)
}
