package api_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/domaind/domaind/internal/apptest"
	"github.com/domaind/domaind/internal/dnscheck"
	"github.com/domaind/domaind/internal/ratelimit"
)

// BenchmarkGetDomain serves GET /v1/domains/{id} through the handler app.New
// builds, on SQLite and (with DOMAIND_TEST_POSTGRES) PostgreSQL, without the
// network in between, so that a CPU profile of it (go test -bench GetDomain
// -cpuprofile) shows the request's own work.
func BenchmarkGetDomain(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchGetDomain(b, "sqlite:"+filepath.Join(b.TempDir(), "domaind.db")) })
	b.Run("postgres", func(b *testing.B) {
		if os.Getenv("DOMAIND_TEST_POSTGRES") == "" {
			b.Skip("DOMAIND_TEST_POSTGRES is not set")
		}
		benchGetDomain(b, freshPostgres(b, "domaind_bench_"))
	})
}

func benchGetDomain(b *testing.B, db string) {
	cfg := apptest.Config(testMasterKey)
	cfg.DB = db
	// No benchmarked request asks DNS; the checker must have somewhere to ask.
	cfg.DNS = dnscheck.Config{Resolvers: []string{"127.0.0.1:9"}, Mode: dnscheck.ModeRecursive, Timeout: time.Second, Retries: 1, AllowPrivate: true}
	cfg.RateLimit, cfg.AnonRateLimit = ratelimit.Limit{N: 1_000_000_000, Per: time.Second}, ratelimit.Limit{}
	a := apptest.New(b, cfg)
	key, k, err := a.Auth().Create(b.Context(), "acme", time.Now())
	if err != nil {
		b.Fatal(err)
	}
	d, err := a.Domains().Add(b.Context(), k.ProjectID, "example.com", "")
	if err != nil {
		b.Fatal(err)
	}
	h := a.Handler()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req := httptest.NewRequest("GET", "/v1/domains/"+d.ID, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		w := &discardWriter{header: http.Header{}}
		for pb.Next() {
			clear(w.header)
			w.code, w.n = 0, 0
			h.ServeHTTP(w, req)
			if w.code != http.StatusOK || w.n == 0 {
				b.Fatalf("status %d, %d bytes", w.code, w.n)
			}
		}
	})
}

// discardWriter is a ResponseWriter that keeps the status and counts the
// body, reusing its header map: the profile shows the handler's work, not a
// recorder's copies.
type discardWriter struct {
	header http.Header
	code   int
	n      int
}

func (w *discardWriter) Header() http.Header { return w.header }
func (w *discardWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}
func (w *discardWriter) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	w.n += len(b)
	return len(b), nil
}

// freshPostgres creates a database named prefix and a random suffix on
// DOMAIND_TEST_POSTGRES's server, dropped when tb ends, and returns its DSN.
func freshPostgres(tb testing.TB, prefix string) string {
	tb.Helper()
	base := os.Getenv("DOMAIND_TEST_POSTGRES")
	admin, err := pgx.Connect(tb.Context(), base)
	if err != nil {
		tb.Fatal(err)
	}
	var r [6]byte
	rand.Read(r[:])
	name := prefix + hex.EncodeToString(r[:])
	if _, err := admin.Exec(tb.Context(), "CREATE DATABASE "+name); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		admin.Exec(context.Background(), "DROP DATABASE "+name+" WITH (FORCE)")
		admin.Close(context.Background())
	})
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}
