package main

import (
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/domaind/domaind/internal/testenv"
)

func TestPercentile(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		var out []time.Duration
		for _, n := range ns {
			out = append(out, time.Duration(n)*time.Millisecond)
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	tests := []struct {
		name string
		lat  []time.Duration
		p    float64
		want time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one", ms(7), 99, 7 * time.Millisecond},
		{"median of odd count", ms(1, 2, 3), 50, 2 * time.Millisecond},
		{"median of even count is the lower", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"p99 of 100 is the 99th", ms(hundred...), 99, 99 * time.Millisecond},
		{"p100 is the largest", ms(hundred...), 100, 100 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := (loadResult{Latency: tt.lat}).percentile(tt.p); got != tt.want {
				t.Errorf("percentile(%v) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
}

func TestFmtCount(t *testing.T) {
	tests := []struct {
		n    int
		want string
	}{
		{0, "0"}, {999, "999"}, {1000, "1,000"}, {10000, "10,000"}, {1000000, "1,000,000"}, {-1234, "-1,234"},
	}
	for _, tt := range tests {
		if got := fmtCount(tt.n); got != tt.want {
			t.Errorf("fmtCount(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}

func TestParseConfig(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"-sizes", "10000,1_000_000"}, ""},
		{[]string{"-sizes", "10k"}, "-sizes"},
		{[]string{"-sizes", "0"}, "-sizes"},
		{[]string{"-run", "api,disk"}, `"disk"`},
		{[]string{"-clients", "0"}, "-clients"},
		{[]string{"-get-duration", "0s"}, "-get-duration"},
		{[]string{"extra"}, "no arguments"},
	}
	for _, tt := range tests {
		cfg, err := parseConfig(tt.args, io.Discard)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%q: %v", tt.args, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%q: error %v, want one naming %s", tt.args, err, tt.wantErr)
		case tt.wantErr == "" && len(cfg.sizes) != 2 || tt.wantErr == "" && cfg.sizes[1] != 1_000_000:
			t.Errorf("%q: sizes %v", tt.args, cfg.sizes)
		}
	}
}

func TestProcStatus(t *testing.T) {
	peak, err := procStatus(os.Getpid(), "VmHWM")
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	rss, err := procStatus(os.Getpid(), "VmRSS")
	if err != nil {
		t.Fatal(err)
	}
	// A Go test binary holds megabytes; kilobytes would mean the unit was lost.
	// (VmHWM may lag VmRSS a little: the kernel updates it lazily.)
	if rss < 1<<20 || peak < 1<<20 {
		t.Fatalf("VmRSS %d and VmHWM %d bytes, want megabytes", rss, peak)
	}
	if _, err := procStatus(os.Getpid(), "NoSuchField"); err == nil {
		t.Fatal("a missing field gave no error")
	}
}

// smallBench is a bench with sizes small enough for a test.
func smallBench(t *testing.T) *bench {
	t.Helper()
	cfg, err := parseConfig([]string{
		"-cache", t.TempDir(), "-clients", "4", "-get-duration", "200ms", "-post-duration", "200ms",
		"-scaleout-domains", "150", "-scaleout-concurrency", "8", "-scaleout-timeout", "1m",
		"-verify-duration", "300ms", "-dnsperf-duration", "1s",
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cfg.postgres = os.Getenv("DOMAIND_TEST_POSTGRES")
	return &bench{cfg: cfg, log: io.Discard}
}

// TestAPICaseSQLite runs the api benchmark on a small SQLite store twice: the
// second run must reuse the seeded file and find it as the first left it.
func TestAPICaseSQLite(t *testing.T) {
	testenv.LookBinary(t, "wrk", "wrk")
	b := smallBench(t)
	ctx := t.Context()
	stub, err := dnsStub(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer stub.Close()
	for run, wantSeed := range []string{"/s)", "cached"} {
		c, err := b.apiCase(ctx, "SQLite", 50, stub.Addr())
		if err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		if !strings.HasSuffix(c.Seed, wantSeed) {
			t.Errorf("run %d: seeding %q, want it to end in %q", run, c.Seed, wantSeed)
		}
		if r := c.Post; r.Requests == 0 || r.Errors != 0 || len(r.Latency) != r.Requests {
			t.Errorf("run %d: POST: %d requests, %d errors, %d latencies", run, r.Requests, r.Errors, len(r.Latency))
		}
		for name, r := range map[string]wrkResult{"GET": c.Get, "bare handler": c.Bare} {
			if r.Requests == 0 || r.Errors != 0 || r.P50 <= 0 || r.P99 < r.P50 || r.ServerCPU <= 0 || r.WrkCPU <= 0 {
				t.Errorf("run %d: %s under wrk: %+v", run, name, r)
			}
		}
		if r := c.Reads; r.Reads == 0 || r.P50 <= 0 || r.P99 < r.P50 {
			t.Errorf("run %d: point reads: %+v", run, r)
		}
	}
	s, err := b.sqliteSeeded(ctx, 50)
	if err != nil {
		t.Fatal(err)
	}
	defer s.store.Close()
	if !s.cached || len(s.ids) != 50 {
		t.Fatalf("cached %v with %d seeded ids, want the 50 seeded", s.cached, len(s.ids))
	}
	if n, err := removePosted(ctx, s.store); err != nil || n != 0 {
		t.Fatalf("%d posted domains were left behind (%v)", n, err)
	}
}

// TestScaleOutSQLite runs the scaleout's SQLite run and checks the proof that
// no domain was checked twice, and that the queries per check are counted.
func TestScaleOutSQLite(t *testing.T) {
	b := smallBench(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	r, err := b.runScaleOut(ctx, 1, true)
	if err != nil {
		t.Fatal(err)
	}
	if r.Store != "SQLite" || r.total() != 150 || r.MinChecks != 1 || r.MaxChecks != 1 || r.Outcomes["verified"] != 150 {
		t.Errorf("%s: %d checks, checks per domain %d–%d, outcomes %v", r.Store, r.total(), r.MinChecks, r.MaxChecks, r.Outcomes)
	}
	if r.DNSQueries < int(r.total()) {
		t.Errorf("%d DNS queries for %d checks", r.DNSQueries, r.total())
	}
	if r.BytesPerDomain <= 0 || r.Verify.Requests == 0 || r.Verify.Errors != 0 {
		t.Errorf("%.0f bytes per domain; verify load %d requests, %d errors (%s)", r.BytesPerDomain, r.Verify.Requests, r.Verify.Errors, r.Verify.FirstErr)
	}
}

// TestScaleOut runs both scaleout runs on a PostgreSQL server, when the tests
// have one, and checks the proof that no domain was checked twice.
func TestScaleOut(t *testing.T) {
	b := smallBench(t)
	if b.cfg.postgres == "" {
		t.Skip("DOMAIND_TEST_POSTGRES is not set (scripts/test.sh sets it when PostgreSQL is installed)")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	pg, err := openPG(ctx, b.cfg.postgres)
	if err != nil {
		t.Fatal(err)
	}
	b.pg = pg
	for _, replicas := range []int{1, 2} {
		r, err := b.runScaleOut(ctx, replicas, false)
		if err != nil {
			t.Fatalf("%d replicas: %v", replicas, err)
		}
		if r.total() != 150 || r.MinChecks != 1 || r.MaxChecks != 1 || len(r.PerReplica) != replicas {
			t.Errorf("%d replicas: %d checks %v, checks per domain %d–%d", replicas, r.total(), r.PerReplica, r.MinChecks, r.MaxChecks)
		}
		if r.AsksPerCheck < 1 || r.Outcomes["verified"] != 150 {
			t.Errorf("%d replicas: %d asks per check, outcomes %v", replicas, r.AsksPerCheck, r.Outcomes)
		}
	}
}

// TestPublishToVerified runs the figure's simulation: records published at any
// time of a domain's first hour are verified by the next check, within 30s.
func TestPublishToVerified(t *testing.T) {
	if got := publishToVerified(); got <= 0 || got > 30*time.Second {
		t.Fatalf("worst publish → VERIFIED %v, want within (0, 30s]", got)
	}
}
