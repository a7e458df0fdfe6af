package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// memoryRun is the result of the memory section.
type memoryRun struct {
	Domains   int
	DBSize    int64         // bytes of the SQLite file and its WAL
	Tables    []tableSize   // bytes of each table and index of the file
	Startup   time.Duration // from exec to a healthy /healthz
	RSSStart  int64         // VmRSS once healthy, in bytes
	RSSEnd    int64         // VmRSS after the requests
	Peak      int64         // VmHWM after the requests
	Gets      loadResult
	ListLimit int
}

// runMemory builds domaind, runs `domaind serve` on the SQLite database of
// memorySize seeded domains, sends it requests, and reads its peak resident set
// size from /proc.
func (b *bench) runMemory(ctx context.Context) (memoryRun, error) {
	r := memoryRun{Domains: b.cfg.memorySize, ListLimit: 100}
	s, err := b.sqliteSeeded(ctx, b.cfg.memorySize)
	if err != nil {
		return r, err
	}
	_, key, err := newAPIKey(ctx, s.store, seedProject)
	if err == nil {
		_, err = removePosted(ctx, s.store)
	}
	if cerr := s.store.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return r, err
	}
	for _, suffix := range []string{"", "-wal"} {
		if fi, err := os.Stat(s.path + suffix); err == nil {
			r.DBSize += fi.Size()
		}
	}
	if r.Tables, err = tableBytes(ctx, s.path); err != nil {
		return r, err
	}

	dir, err := os.MkdirTemp(b.cfg.cacheDir, "serve-")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "domaind")
	fmt.Fprintf(b.log, "  go build -o %s ./cmd/domaind\n", bin)
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/domaind")
	if out, err := build.CombinedOutput(); err != nil {
		return r, fmt.Errorf("go build ./cmd/domaind: %w\n%s", err, out)
	}
	stub, err := dnsStub(ctx)
	if err != nil {
		return r, err
	}
	defer stub.Close()
	addr, err := freeAddr()
	if err != nil {
		return r, err
	}
	logPath := filepath.Join(dir, "serve.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return r, err
	}
	defer logFile.Close()

	cmd := exec.Command(bin, "serve", "--dev", "--data-dir", dir, "--db", "sqlite:"+s.path,
		"--listen", addr, "--dns-mode", "recursive", "--resolvers", stub.Addr(),
		// Seeded domains are not due; a long schedule keeps the worker idle for
		// anything that might become due.
		"--recheck-schedule", "24h", "--rate-limit", "1000000000/s")
	cmd.Env = serveEnv()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	start := time.Now()
	fmt.Fprintf(b.log, "  domaind serve on %s with %d domains\n", addr, r.Domains)
	if err := cmd.Start(); err != nil {
		return r, err
	}
	// exited closes when serve has exited; waitErr then says how.
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	defer func() {
		select {
		case <-exited:
			return
		default:
		}
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}()
	tail := func() string {
		b, _ := os.ReadFile(logPath)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		return strings.Join(lines[max(0, len(lines)-10):], "\n")
	}

	base := "http://" + addr
	hc := newClient(b.cfg.clients)
	defer hc.CloseIdleConnections()
	if err := waitHealthy(ctx, hc, base, exited, 2*time.Minute); err != nil {
		select {
		case <-exited:
			err = fmt.Errorf("%w (%v)", err, waitErr)
		default:
		}
		return r, fmt.Errorf("%w\nserve's log ends:\n%s", err, tail())
	}
	r.Startup = time.Since(start)
	pid := cmd.Process.Pid
	if r.RSSStart, err = procStatus(pid, "VmRSS"); err != nil {
		return r, err
	}

	ids := s.ids
	get := func(client, seq int) (*http.Request, error) {
		req, err := http.NewRequest("GET", base+"/v1/domains/"+ids[rand.IntN(len(ids))], nil)
		if err == nil {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		return req, err
	}
	r.Gets = load(ctx, hc, b.cfg.clients, 0, b.cfg.memoryGets, http.StatusOK, get)
	if r.Gets.Errors > 0 {
		return r, fmt.Errorf("GET against serve: %d errors, first: %s", r.Gets.Errors, r.Gets.FirstErr)
	}
	for _, path := range []string{"/v1/domains?limit=", "/api/v2/domains?limit="} {
		list := func(client, seq int) (*http.Request, error) {
			req, err := http.NewRequest("GET", base+path+strconv.Itoa(r.ListLimit), nil)
			if err == nil {
				req.Header.Set("Authorization", "Bearer "+key)
			}
			return req, err
		}
		if res := load(ctx, hc, 10, 0, 100, http.StatusOK, list); res.Errors > 0 {
			return r, fmt.Errorf("GET %s: %d errors, first: %s", path, res.Errors, res.FirstErr)
		}
	}
	if r.Peak, err = procStatus(pid, "VmHWM"); err != nil {
		return r, err
	}
	if r.RSSEnd, err = procStatus(pid, "VmRSS"); err != nil {
		return r, err
	}
	// The kernel updates VmHWM lazily, so it may trail the current size.
	r.Peak = max(r.Peak, r.RSSEnd)
	fmt.Fprintf(b.log, "    healthy after %s; RSS %s at start, %s at end, peak %s; %s\n", fmtSeconds(r.Startup),
		fmtMiB(r.RSSStart), fmtMiB(r.RSSEnd), fmtMiB(r.Peak), r.Gets.summary())
	return r, nil
}

// serveEnv is this process's environment without DOMAIND_ variables, which serve
// would read as flags.
func serveEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DOMAIND_") {
			env = append(env, kv)
		}
	}
	return env
}

// freeAddr returns a loopback address with a port free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// waitHealthy polls /healthz until it answers 200, the process exits, or within
// passes.
func waitHealthy(ctx context.Context, hc *http.Client, base string, exited <-chan struct{}, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		req, err := http.NewRequestWithContext(ctx, "GET", base+"/healthz", nil)
		if err != nil {
			return err
		}
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("serve not healthy after %s", within)
		}
		select {
		case <-exited:
			return errors.New("serve exited before it was healthy")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// procStatus returns a size field (such as VmHWM) of /proc/<pid>/status in bytes.
func procStatus(pid int, field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != field {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/status %s: %w", pid, field, err)
		}
		return kb << 10, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("/proc/" + strconv.Itoa(pid) + "/status has no " + field)
}
