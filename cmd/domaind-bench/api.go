package main

import (
	"context"
	crand "crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"fmt"
	"github.com/domaind/domaind/internal/app"
	"github.com/domaind/domaind/internal/ratelimit"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/domaind/domaind/internal/dnscheck"
	"github.com/domaind/domaind/internal/dnstest"
	"github.com/domaind/domaind/internal/store"
)

// apiServer is the real application, built by app.New as serve builds it, on a
// loopback port.
type apiServer struct {
	url  string
	stop func()
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
	Get   loadResult
	Post  loadResult
}

// runAPI measures GET and POST on a seeded store.
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
	_, getKey, err := newAPIKey(ctx, s.store, seedProject)
	if err != nil {
		return c, err
	}
	_, postKey, err := newAPIKey(ctx, s.store, postProject)
	if err != nil {
		return c, err
	}
	srv, err := startAPI(s.store, b.masterKey(), dnsAddr)
	if err != nil {
		return c, err
	}
	defer srv.stop()
	hc := newClient(b.cfg.clients)
	defer hc.CloseIdleConnections()

	get := func(client, seq int) (*http.Request, error) {
		req, err := http.NewRequest("GET", srv.url+"/v1/domains/"+s.ids[rand.IntN(len(s.ids))], nil)
		if err == nil {
			req.Header.Set("Authorization", "Bearer "+getKey)
		}
		return req, err
	}
	// Warm up: open the connections and touch the code paths before measuring.
	if w := load(ctx, hc, b.cfg.clients, 0, 10*b.cfg.clients, http.StatusOK, get); w.Errors > 0 {
		return c, fmt.Errorf("warm-up GET: %d errors, first: %s", w.Errors, w.FirstErr)
	}
	fmt.Fprintf(b.log, "  GET /v1/domains/{id}: %d clients for %s\n", b.cfg.clients, b.cfg.getDuration)
	c.Get = load(ctx, hc, b.cfg.clients, b.cfg.getDuration, 0, http.StatusOK, get)
	fmt.Fprintf(b.log, "    %s\n", c.Get.summary())

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
