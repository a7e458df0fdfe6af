package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgServer is a PostgreSQL server the bench creates its own databases on. It never
// writes to the database the admin DSN names.
type pgServer struct {
	admin   *url.URL
	version string
	// settings describes the settings that matter to the numbers.
	settings string
}

func openPG(ctx context.Context, dsn string) (*pgServer, error) {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, fmt.Errorf("-postgres must be a postgres:// URL")
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("-postgres: %w", err)
	}
	defer conn.Close(ctx)
	var version, buffers, fsync, commit string
	if err := conn.QueryRow(ctx, `SELECT current_setting('server_version'), current_setting('shared_buffers'),
		current_setting('fsync'), current_setting('synchronous_commit')`).Scan(&version, &buffers, &fsync, &commit); err != nil {
		return nil, fmt.Errorf("-postgres: %w", err)
	}
	return &pgServer{admin: u, version: version,
		settings: fmt.Sprintf("shared_buffers %s, fsync %s, synchronous_commit %s", buffers, fsync, commit)}, nil
}

// dsn returns the DSN of database db on the server, with extra run-time
// parameters (pgx sends unknown query parameters to the server as settings).
func (p *pgServer) dsn(db string, params map[string]string) string {
	u := *p.admin
	u.Path = "/" + db
	q := u.Query()
	for k, v := range params {
		q.Set(k, v)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// exec runs statements on the admin connection.
func (p *pgServer) exec(ctx context.Context, stmts ...string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.admin.String())
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	defer conn.Close(ctx)
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("postgres: %s: %w", strings.Fields(s)[0]+" "+strings.Fields(s)[1], err)
		}
	}
	return nil
}

// create creates an empty database, dropping one of that name first.
func (p *pgServer) create(ctx context.Context, name string) error {
	id := pgx.Identifier{name}.Sanitize()
	return p.exec(ctx, `DROP DATABASE IF EXISTS `+id+` WITH (FORCE)`, `CREATE DATABASE `+id)
}

// drop removes a database the bench created.
func (p *pgServer) drop(ctx context.Context, name string) error {
	return p.exec(ctx, `DROP DATABASE IF EXISTS `+pgx.Identifier{name}.Sanitize()+` WITH (FORCE)`)
}

// comment returns the comment on a database and whether the database exists.
func (p *pgServer) comment(ctx context.Context, name string) (string, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.admin.String())
	if err != nil {
		return "", false, fmt.Errorf("postgres: %w", err)
	}
	defer conn.Close(ctx)
	var c *string
	err = conn.QueryRow(ctx, `SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1`, name).Scan(&c)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("postgres: %w", err)
	}
	if c == nil {
		return "", true, nil
	}
	return *c, true, nil
}

// setComment sets the comment on a database; c must hold no quote.
func (p *pgServer) setComment(ctx context.Context, name, c string) error {
	if strings.ContainsAny(c, `'\`) {
		return fmt.Errorf("comment %q holds a quote", c)
	}
	return p.exec(ctx, `COMMENT ON DATABASE `+pgx.Identifier{name}.Sanitize()+` IS '`+c+`'`)
}
