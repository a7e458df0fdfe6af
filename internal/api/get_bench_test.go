package api_test

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/domaind/domaind/internal/apptest"
	"github.com/domaind/domaind/internal/dnscheck"
	"github.com/domaind/domaind/internal/ratelimit"
)

// BenchmarkGetDomain serves GET /v1/domains/{id} through the handler app.New
// builds, on SQLite, without the network in between, so that a CPU profile of it
// (go test -bench GetDomain -cpuprofile) shows the request's own work.
func BenchmarkGetDomain(b *testing.B) {
	cfg := apptest.Config(testMasterKey)
	cfg.DB = "sqlite:" + filepath.Join(b.TempDir(), "domaind.db")
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
		for pb.Next() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				b.Fatalf("status %d: %s", w.Code, w.Body)
			}
		}
	})
}
