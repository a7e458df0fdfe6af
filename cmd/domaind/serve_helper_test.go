package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/domaind/domaind/internal/dnstest"
)

// served is one `domaind serve` a test runs in the background, as an operator
// would: on a fresh SQLite database in its own directory, with --dev keeping
// the master key there, and one API key of project acme.
type served struct {
	dir, db string
	base    string // http://host:port of --listen
	key     string // the API key `apikey create` printed
	// logs is what serve wrote to stderr; read it only on failure or after stop.
	logs    *bytes.Buffer
	cancel  context.CancelFunc
	done    chan error
	stopped bool
}

// startServe starts serve with --listen, --db, --dev and --data-dir and the
// flags in extra, and waits until /healthz answers 200. The test's cleanup
// stops it if the test did not.
func startServe(t *testing.T, extra ...string) *served {
	t.Helper()
	dir := t.TempDir()
	s := &served{dir: dir, db: "sqlite:" + filepath.Join(dir, "d.db"), logs: new(bytes.Buffer), done: make(chan error, 1)}
	out, _, err := runCmd(t, "apikey", "create", "--project", "acme", "--db", s.db)
	if err != nil {
		t.Fatal(err)
	}
	s.key = strings.TrimSpace(out)
	addr := freeAddr(t)
	s.base = "http://" + addr
	args := append([]string{"serve", "--listen", addr, "--db", s.db, "--dev", "--data-dir", dir}, extra...)
	var ctx context.Context
	ctx, s.cancel = context.WithCancel(context.Background())
	go func() { s.done <- run(ctx, args, io.Discard, s.logs) }()
	t.Cleanup(func() {
		if !s.stopped {
			s.cancel()
			<-s.done
		}
	})
	s.waitUntil(t, "serve", func() error {
		resp, err := http.Get(s.base + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/healthz: %d", resp.StatusCode)
		}
		return nil
	})
	return s
}

// waitUntil calls up every 20ms until it returns nil, and fails the test with
// its last error and serve's logs if that takes over 10 seconds.
func (s *served) waitUntil(t *testing.T, what string, up func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := up()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not come up: %v\n%s", what, err, s.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop cancels serve and fails the test unless serve returns nil within 20
// seconds.
func (s *served) stop(t *testing.T) {
	t.Helper()
	s.cancel()
	s.stopped = true
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("serve did not shut down cleanly: %v", err)
		}
	case <-time.After(20 * time.Second):
		s.stopped = false // the cleanup still waits for it
		t.Fatal("serve did not stop after its context was cancelled")
	}
}

// call sends body to path with the API key and decodes the JSON answer.
func (s *served) call(t *testing.T, method, path, body string) (map[string]any, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(method, s.base+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+s.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m, resp.Header
}

// publish adds a domain's ownership and DKIM TXT records, as the API returned
// them in d, to zone.
func publish(t *testing.T, zone *dnstest.Zone, d map[string]any) {
	t.Helper()
	recs := d["dnsRecords"].(map[string]any)
	for _, k := range []string{"ownership", "dkim"} {
		r := recs[k].(map[string]any)
		if err := zone.AddTXT(r["name"].(string)+".", r["value"].(string)); err != nil {
			t.Fatal(err)
		}
	}
}

// wantMetrics fails the test for each of want that /metrics does not contain.
func (s *served) wantMetrics(t *testing.T, want ...string) {
	t.Helper()
	resp, err := http.Get(s.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, w := range want {
		if !strings.Contains(string(body), w) {
			t.Errorf("/metrics lacks %q", w)
		}
	}
}
