// Package apptest builds, for a test, the application `domaind serve` runs
// (app.New), so that tests exercise the wiring operators get instead of a copy
// of it.
//
// It imports testing, so only tests may import it.
package apptest

import (
	"io"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/domaind/domaind/internal/app"
	"github.com/domaind/domaind/internal/dnscheck"
	"github.com/domaind/domaind/internal/ratelimit"
)

// Config is serve's defaults (app.DefaultConfig) with what every test wants on
// top: masterKey, DKIM keys of 1024 bits (fast; no test but the one that sets
// the size depends on it), and the log shown only with go test -v. The caller
// still names the store or database and the DNS.
func Config(masterKey []byte) app.Config {
	cfg := app.DefaultConfig()
	cfg.MasterKey = masterKey
	cfg.Records.DKIMBits = 1024
	cfg.Log = app.Discard(testing.Verbose(), os.Stderr)
	return cfg
}

// AuthoritativeDNS is a checker's configuration for an authoritative walk from
// the root servers rootIPs, which answer on port like every server of the
// test's DNS. They live on loopback, which a checker never asks unless told
// to, so it is told to; the walk never leaves the machine.
func AuthoritativeDNS(rootIPs []string, port int) dnscheck.Config {
	return dnscheck.Config{
		Mode: dnscheck.ModeAuthoritative, RootHints: rootIPs, AuthoritativePort: port,
		Timeout: time.Second, Retries: 1, AllowPrivate: true,
	}
}

// New builds the application of cfg, as serve does, and closes it when the
// test ends. It starts nothing; the caller calls Start or serves its handlers.
func New(t testing.TB, cfg app.Config) *app.App {
	t.Helper()
	a, err := app.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// Limit parses s as serve's --rate-limit flag does.
func Limit(t testing.TB, s string) ratelimit.Limit {
	t.Helper()
	l, err := ratelimit.ParseLimit(s)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// Do sends req with c and returns the response, its body read and closed.
func Do(t testing.TB, c *http.Client, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}
