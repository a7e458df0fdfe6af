package main

import (
	"context"
	crand "crypto/rand"
	"crypto/rsa"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/domaind/domaind/internal/app"
	"github.com/domaind/domaind/internal/dnscheck"
	"github.com/domaind/domaind/internal/dnstest"
	"github.com/domaind/domaind/internal/ratelimit"
	"github.com/domaind/domaind/internal/store"
	"github.com/domaind/domaind/internal/store/sqlstore"
)

// apiServer is the real application, built by app.New as serve builds it, on a
// loopback port.
type apiServer struct {
	url  string
	stop func()
	app  *app.App // nil for the bare handler
}

// startAPI serves the application for st on 127.0.0.1 through net/http, with
// serve's defaults but for a checker that asks dnsAddr (no benchmarked route
// checks DNS), one region, and a rate limit out of the way. Its background
// workers run, as serve runs them; the one seeded project may use every check
// slot (see scaleout.go).
func startAPI(st store.Store, key []byte, dnsAddr string) (*apiServer, error) {
	cfg := app.DefaultConfig()
	cfg.Store, cfg.MasterKey, cfg.Regions = st, key, []string{region}
	cfg.DNS = dnscheck.Config{Resolvers: []string{dnsAddr}, Mode: dnscheck.ModeRecursive, Timeout: 2 * time.Second, Retries: 1, AllowPrivate: true}
	cfg.RateLimit, cfg.AnonRateLimit = ratelimit.Limit{N: 1_000_000_000, Per: time.Second}, ratelimit.Limit{}
	cfg.ProjectShare = cfg.CheckConcurrency
	a, err := app.New(context.Background(), cfg)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		a.Close()
		return nil, err
	}
	a.Start()
	go srv.Serve(ln)
	return &apiServer{
		url: "http://" + ln.Addr().String(),
		app: a,
		stop: func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			srv.Shutdown(ctx)
			a.Close()
		},
	}, nil
}

// apiCase is one store and size of the api section.
type apiCase struct {
	Store string // "SQLite" or "PostgreSQL"
	N     int
	Seed  string // how the domains got there
	// Get is GET /v1/domains/{id} driven by wrk, Bare the same wrk against a
	// bare net/http handler, measured just before it, and Reads the GET's own
	// statement run in a loop on the same database.
	Get, Bare wrkResult
	// CacheHits and CacheMisses are the read cache's during GET's run.
	CacheHits, CacheMisses uint64
	Reads                  readResult
	Post                   loadResult
}

// wrkConns and wrkThreads are how wrk drives the GET and the bare handler.
const (
	wrkConns   = 16
	wrkThreads = 2
)

// maxWrkPaths bounds the ids wrk picks from (each of its threads holds them
// all); a random sample of a million still spreads the reads over the database.
const maxWrkPaths = 100_000

// runAPI measures GET (and its anchors) and POST on a seeded store.
func (b *bench) runAPI(ctx context.Context, storeName string, s *seeded, dnsAddr string) (apiCase, error) {
	c := apiCase{Store: storeName, N: s.n}
	switch {
	case s.cached:
		c.Seed = "cached"
	default:
		c.Seed = fmt.Sprintf("%s (%.0f/s)", fmtSeconds(s.seedTime), float64(s.n)/s.seedTime.Seconds())
	}
	if n, err := removePosted(ctx, s.store); err != nil {
		return c, err
	} else if n > 0 {
		fmt.Fprintf(b.log, "  removed %d domains an earlier run added\n", n)
	}
	projectID, getKey, err := newAPIKey(ctx, s.store, seedProject)
	if err != nil {
		return c, err
	}
	_, postKey, err := newAPIKey(ctx, s.store, postProject)
	if err != nil {
		return c, err
	}
	var pg *pgCPU
	if s.dsn != "" {
		if pg, err = postmasterOf(ctx, s.dsn); err != nil {
			return c, err
		}
	}
	srv, err := startAPI(s.store, b.masterKey(), dnsAddr)
	if err != nil {
		return c, err
	}
	defer srv.stop()
	bare, err := startBare()
	if err != nil {
		return c, err
	}
	defer bare.stop()
	hc := newClient(b.cfg.clients)
	defer hc.CloseIdleConnections()

	paths := make([]string, 0, min(len(s.ids), maxWrkPaths))
	for _, i := range rand.Perm(len(s.ids))[:cap(paths)] {
		paths = append(paths, "/v1/domains/"+s.ids[i])
	}
	// Warm up: touch the code paths, check that GET answers, and ask for each
	// path wrk picks from once before measuring, as a replica that has served
	// them has. On SQLite its read cache then holds them (as many as it may);
	// on PostgreSQL, where an entry lives for less than a second, the
	// database's buffers do: bench.sh starts PostgreSQL afresh, and without
	// this the first reads after its start would be measured as GET's.
	warm := max(10*b.cfg.clients, len(paths))
	var next atomic.Int64
	each := func(client, seq int) (*http.Request, error) {
		req, err := http.NewRequest("GET", srv.url+paths[int(next.Add(1)-1)%len(paths)], nil)
		if err == nil {
			req.Header.Set("Authorization", "Bearer "+getKey)
		}
		return req, err
	}
	if w := load(ctx, hc, b.cfg.clients, 0, warm, http.StatusOK, each); w.Errors > 0 {
		return c, fmt.Errorf("warm-up GET: %d errors, first: %s", w.Errors, w.FirstErr)
	}
	run := wrkRun{paths: paths, header: "Authorization: Bearer " + getKey, conns: wrkConns, threads: wrkThreads, d: b.cfg.getDuration, pg: pg}
	fmt.Fprintf(b.log, "  wrk, %d connections for %s: a bare net/http handler\n", wrkConns, b.cfg.getDuration)
	run.base = bare.url
	if c.Bare, err = runWrk(ctx, b.cfg.cacheDir, run); err != nil {
		return c, fmt.Errorf("bare handler: %w", err)
	}
	fmt.Fprintf(b.log, "    %s\n", c.Bare.summary())
	fmt.Fprintf(b.log, "  wrk, %d connections for %s: GET /v1/domains/{id}\n", wrkConns, b.cfg.getDuration)
	run.base = srv.url
	before := srv.app.GetCache().Stats()
	if c.Get, err = runWrk(ctx, b.cfg.cacheDir, run); err != nil {
		return c, fmt.Errorf("GET: %w", err)
	}
	fmt.Fprintf(b.log, "    %s\n", c.Get.summary())
	after := srv.app.GetCache().Stats()
	c.CacheHits, c.CacheMisses = after.Hits-before.Hits, after.Misses-before.Misses
	fmt.Fprintf(b.log, "    read cache: %d hits, %d misses; %d entries, %d KiB at the end\n",
		c.CacheHits, c.CacheMisses, after.Entries, after.Bytes>>10)
	fmt.Fprintf(b.log, "  point reads, %d goroutines for %s\n", wrkConns, b.cfg.getDuration)
	if c.Reads, err = pointReads(ctx, s, projectID, wrkConns, b.cfg.getDuration, pg); err != nil {
		return c, fmt.Errorf("point reads: %w", err)
	}
	fmt.Fprintf(b.log, "    %d reads: %.0f/s, p50 %s, p99 %s\n", c.Reads.Reads, c.Reads.rps(), fmtLatency(c.Reads.P50), fmtLatency(c.Reads.P99))

	prefix := "p" + runID() + "-"
	post := func(client, seq int) (*http.Request, error) {
		body := fmt.Sprintf(`{"domain":"%s%d-%d.%s"}`, prefix, client, seq, zoneOrigin)
		req, err := http.NewRequest("POST", srv.url+"/v1/domains", strings.NewReader(body))
		if err == nil {
			req.Header.Set("Authorization", "Bearer "+postKey)
			req.Header.Set("Content-Type", "application/json")
		}
		return req, err
	}
	fmt.Fprintf(b.log, "  POST /v1/domains: %d clients for %s\n", b.cfg.clients, b.cfg.postDuration)
	c.Post = load(ctx, hc, b.cfg.clients, b.cfg.postDuration, 0, http.StatusCreated, post)
	fmt.Fprintf(b.log, "    %s\n", c.Post.summary())
	if n, err := removePosted(ctx, s.store); err != nil {
		return c, err
	} else {
		fmt.Fprintf(b.log, "  removed the %d domains POST added\n", n)
	}
	return c, nil
}

func (r wrkResult) summary() string {
	return fmt.Sprintf("%d requests in %s: %.0f/s, p50 %s, p99 %s, %d errors; CPU server %.0f%%, wrk %.0f%%, PostgreSQL %.0f%%",
		r.Requests, fmtSeconds(r.Elapsed), r.rps(), fmtLatency(r.P50), fmtLatency(r.P99), r.Errors,
		100*r.ServerCPU, 100*r.WrkCPU, 100*r.PGCPU)
}

// bareBody is what the bare handler answers: a small JSON body, as the API's
// smallest answers are.
const bareBody = `{"success":true,"data":{"status":"ok"}}` + "\n"

// startBare serves a bare net/http handler answering bareBody on 127.0.0.1,
// with the API server's settings: what net/http and wrk cost on this machine
// without domaind.
func startBare() (*apiServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.Header().Set("Cache-Control", "no-store")
			io.WriteString(w, bareBody)
		}),
		ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
	}
	go srv.Serve(ln)
	return &apiServer{url: "http://" + ln.Addr().String(), stop: func() { srv.Close() }}, nil
}

// readResult is what a loop of point reads measured.
type readResult struct {
	Reads    int
	Elapsed  time.Duration
	P50, P99 time.Duration
	// CPU used, as a share of one core: this process's (the loop's and the
	// embedded SQLite's) and PostgreSQL's.
	SelfCPU, PGCPU float64
}

func (r readResult) rps() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Reads) / r.Elapsed.Seconds()
}

// pointReads runs GET's own statement (sqlstore.DomainSQL: a domain by its
// primary key, with its records), prepared, in goroutines goroutines for d, on
// a pool of the size domaind uses and the same database, with nothing else
// around it: no HTTP, no authentication, no decoding beyond the rows.
func pointReads(ctx context.Context, s *seeded, projectID int64, goroutines int, d time.Duration, pg *pgCPU) (readResult, error) {
	pool := max(4, runtime.GOMAXPROCS(0))
	var read func(ctx context.Context, id string) (int, error)
	if s.dsn != "" {
		cfg, err := pgxpool.ParseConfig(s.dsn)
		if err != nil {
			return readResult{}, err
		}
		p, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			return readResult{}, err
		}
		defer p.Close()
		read = func(ctx context.Context, id string) (int, error) {
			rows, err := p.Query(ctx, sqlstore.DomainSQL, id, projectID)
			if err != nil {
				return 0, err
			}
			defer rows.Close()
			n := 0
			for rows.Next() {
				rows.RawValues()
				n++
			}
			return n, rows.Err()
		}
	} else {
		db, err := sql.Open("sqlite", "file:"+s.path+"?_pragma=busy_timeout(10000)&_pragma=query_only(1)")
		if err != nil {
			return readResult{}, err
		}
		defer db.Close()
		db.SetMaxOpenConns(pool)
		db.SetMaxIdleConns(pool)
		st, err := db.PrepareContext(ctx, strings.NewReplacer("$1", "?1", "$2", "?2").Replace(sqlstore.DomainSQL))
		if err != nil {
			return readResult{}, err
		}
		defer st.Close()
		read = func(ctx context.Context, id string) (int, error) {
			rows, err := st.QueryContext(ctx, id, projectID)
			if err != nil {
				return 0, err
			}
			defer rows.Close()
			cols, err := rows.Columns()
			if err != nil {
				return 0, err
			}
			raw := make([]sql.RawBytes, len(cols))
			dest := make([]any, len(cols))
			for i := range raw {
				dest[i] = &raw[i]
			}
			n := 0
			for rows.Next() {
				if err := rows.Scan(dest...); err != nil {
					return n, err
				}
				n++
			}
			return n, rows.Err()
		}
	}
	// Warm up: a connection of the pool each, and the statement prepared on it.
	for i := range pool {
		if n, err := read(ctx, s.ids[i%len(s.ids)]); err != nil || n == 0 {
			return readResult{}, fmt.Errorf("read %s: %d rows, %v", s.ids[i%len(s.ids)], n, err)
		}
	}
	var (
		wg       sync.WaitGroup
		lats     = make([][]time.Duration, goroutines)
		errs     = make([]error, goroutines)
		self     = selfCPU()
		pg0      time.Duration
		start    = time.Now()
		deadline = start.Add(d)
	)
	if pg != nil {
		pg0 = pg.used()
	}
	for g := range goroutines {
		wg.Go(func() {
			for time.Now().Before(deadline) && ctx.Err() == nil {
				id := s.ids[rand.IntN(len(s.ids))]
				t0 := time.Now()
				n, err := read(ctx, id)
				if err == nil && n == 0 {
					err = fmt.Errorf("domain %s: no rows", id)
				}
				if err != nil {
					errs[g] = err
					return
				}
				lats[g] = append(lats[g], time.Since(t0))
			}
		})
	}
	wg.Wait()
	r := readResult{Elapsed: time.Since(start)}
	r.SelfCPU = float64(selfCPU()-self) / float64(r.Elapsed)
	if pg != nil {
		r.PGCPU = float64(pg.used()-pg0) / float64(r.Elapsed)
	}
	if err := errors.Join(errs...); err != nil {
		return r, err
	}
	all := loadResult{}
	for _, l := range lats {
		all.Latency = append(all.Latency, l...)
	}
	slices.Sort(all.Latency)
	r.Reads, r.P50, r.P99 = len(all.Latency), all.percentile(50), all.percentile(99)
	return r, nil
}

// postmasterOf finds the postmaster of the server dsn names, for measuring its
// CPU: the parent of the process that serves a connection to it. The server
// must run on this machine (the bench's runs on loopback).
func postmasterOf(ctx context.Context, dsn string) (*pgCPU, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	var pid int
	if err := conn.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		return nil, err
	}
	st, err := procStat(pid)
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL's CPU: %w (is the server on this machine?)", err)
	}
	return &pgCPU{postmaster: st.ppid}, nil
}

func (r loadResult) summary() string {
	return fmt.Sprintf("%d requests in %s: %.0f/s, p50 %s, p99 %s, %d errors", r.Requests, fmtSeconds(r.Elapsed),
		r.rps(), fmtLatency(r.percentile(50)), fmtLatency(r.percentile(99)), r.Errors)
}

// runID returns 8 random hex characters, so names a run adds never meet an
// earlier run's.
func runID() string {
	var b [4]byte
	crand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// keygenTime measures how long one RSA key of the size POST generates takes on
// one core, so the report can say what bounds POST.
func keygenTime(bits, n int) (time.Duration, error) {
	start := time.Now()
	for range n {
		if _, err := rsa.GenerateKey(crand.Reader, bits); err != nil {
			return 0, err
		}
	}
	return time.Since(start) / time.Duration(n), nil
}

// dnsStub starts a DNS server on loopback with no zones, for checkers that must
// have somewhere to ask.
func dnsStub(ctx context.Context) (*dnstest.Server, error) {
	return dnstest.NewServer(ctx, "127.0.0.1", 0)
}
