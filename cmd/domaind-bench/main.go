// Command domaind-bench measures domaind on this machine and prints the results as
// Markdown, for scripts/bench.sh to put in BENCHMARKS.md:
//
//   - api: requests per second and p50/p99 latency of GET /v1/domains/{id}, driven
//     by wrk beside a bare net/http handler and a bare loop of the same point
//     read, and of POST /v1/domains under concurrent clients, on SQLite and on
//     PostgreSQL, with many domains stored;
//   - scaleout: background checks per second of one and of two replicas sharing
//     one PostgreSQL, against a loopback authoritative DNS server whose query log
//     proves that no domain was checked twice;
//   - memory: the peak RSS of the real `domaind serve` with many domains stored.
//
// Everything runs on loopback. Seeded SQLite databases are kept in -cache (and
// PostgreSQL databases too with -keep-postgres), so runs after the first skip the
// slow part. Progress goes to stderr, the report to -o.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/domaind/domaind/internal/app"
)

// config is what the flags say.
type config struct {
	sizes        []int
	sections     []string
	postgres     string // admin DSN of a server the bench may create databases on; "" skips PostgreSQL
	keepPostgres bool
	cacheDir     string
	out          string
	header       bool
	seedWorkers  int

	clients      int
	getDuration  time.Duration
	postDuration time.Duration

	scaleDomains     int
	scaleConcurrency int
	scaleTimeout     time.Duration
	verifyDuration   time.Duration
	dnsperfDuration  time.Duration

	memorySize int
	memoryGets int

	cpuProfile string
	// scaleProfile, if set, is where the scaleout section writes a CPU profile
	// of each run's checks alone (and of its verify load), without the seeding.
	scaleProfile string
	// listSections asks for the sections' names instead of a run.
	listSections bool
}

// allSections are the benchmarks, in the order they run and are reported.
var allSections = []string{"api", "scaleout", "memory"}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case err != nil:
		fmt.Fprintln(os.Stderr, "domaind-bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	cfg, err := parseConfig(args, stderr)
	if err != nil {
		return err
	}
	if cfg.listSections {
		_, err := fmt.Println(strings.Join(allSections, "\n"))
		return err
	}
	out := io.Writer(os.Stdout)
	if cfg.out != "" && cfg.out != "-" {
		f, err := os.Create(cfg.out)
		if err != nil {
			return err
		}
		defer f.Close()
		out = f
	}
	if cfg.cpuProfile != "" {
		f, err := os.Create(cfg.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	b := &bench{cfg: cfg, log: stderr}
	return b.run(ctx, out)
}

func parseConfig(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("domaind-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: go run ./cmd/domaind-bench [flags]\n\n"+
			"Benchmarks domaind on loopback and prints Markdown. PostgreSQL cases need -postgres\n"+
			"(or DOMAIND_BENCH_POSTGRES): the DSN of a role that may CREATE DATABASE; the bench\n"+
			"creates its own databases there (domaind_bench_*) and drops them unless -keep-postgres.\n"+
			"scripts/bench.sh starts a throwaway server and runs this with every section.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	sizes := fs.String("sizes", "10000,1000000", "comma-separated numbers of stored domains for the api section")
	sections := fs.String("run", strings.Join(allSections, ","), "comma-separated sections to run: api, scaleout, memory")
	list := fs.Bool("sections", false, "print the sections, one a line, in the order they run, and exit (scripts/bench.sh runs each in a process of its own)")
	var cfg config
	fs.StringVar(&cfg.postgres, "postgres", os.Getenv("DOMAIND_BENCH_POSTGRES"), "admin DSN of a PostgreSQL server for the PostgreSQL cases (default $DOMAIND_BENCH_POSTGRES); empty skips them")
	fs.BoolVar(&cfg.keepPostgres, "keep-postgres", false, "keep seeded PostgreSQL databases for the next run instead of dropping them")
	fs.StringVar(&cfg.cacheDir, "cache", "bench-out", "folder for seeded SQLite databases, reused by later runs, and scratch files")
	fs.StringVar(&cfg.out, "o", "-", "file to write the Markdown report to (- for stdout)")
	fs.BoolVar(&cfg.header, "header", true, "start the report with the machine, date, Go version and commit")
	fs.IntVar(&cfg.seedWorkers, "seed-workers", 8, "goroutines that seed domains")
	fs.IntVar(&cfg.clients, "clients", 100, "concurrent HTTP clients of POST in the api section, and of the memory section")
	fs.DurationVar(&cfg.getDuration, "get-duration", 10*time.Second, "how long wrk drives GET /v1/domains/{id}, and each of its anchors (the bare handler, the point reads) runs")
	fs.DurationVar(&cfg.postDuration, "post-duration", 15*time.Second, "how long POST /v1/domains is measured")
	// 20,000 rather than 5,000: a run of about a second on SQLite was as much its
	// start (the first claims) and the machine's moment as its steady rate,
	// and varied by 5-8% from run to run; four seconds vary less, and measured
	// no higher on average.
	fs.IntVar(&cfg.scaleDomains, "scaleout-domains", 20000, "domains due at once in the scaleout section")
	fs.IntVar(&cfg.scaleConcurrency, "scaleout-concurrency", app.DefaultConfig().CheckConcurrency, "checks running at once in each replica (serve's --check-concurrency)")
	fs.DurationVar(&cfg.scaleTimeout, "scaleout-timeout", 3*time.Minute, "give up on a scaleout run after this long")
	fs.DurationVar(&cfg.verifyDuration, "verify-duration", 10*time.Second, "how long POST /v1/domains/{id}/verify is measured in the scaleout section")
	fs.DurationVar(&cfg.dnsperfDuration, "dnsperf-duration", 5*time.Second, "how long dnsperf runs against the scaleout's authoritative server (whole seconds)")
	fs.IntVar(&cfg.memorySize, "memory-size", 1_000_000, "domains stored for the memory section")
	fs.IntVar(&cfg.memoryGets, "memory-gets", 5000, "GET /v1/domains/{id} requests sent to serve before its peak RSS is read")
	fs.StringVar(&cfg.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run (the bench's own process) to this file")
	fs.StringVar(&cfg.scaleProfile, "scaleout-cpuprofile", "", "write CPU profiles of the scaleout's checks and of its verify load alone to files named from this one (PREFIX-sqlite-1.checks.prof, …), and of their allocations (PREFIX-sqlite-1.checks.allocs.prof, to read with -base PREFIX-sqlite-1.checks.allocs-base.prof); not with -cpuprofile")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("no arguments expected, got %q", fs.Args())
	}
	if *list {
		return config{listSections: true}, nil
	}
	for _, f := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.ReplaceAll(strings.TrimSpace(f), "_", ""))
		if err != nil || n < 1 {
			return config{}, fmt.Errorf("-sizes: %q is not a positive number", f)
		}
		cfg.sizes = append(cfg.sizes, n)
	}
	for _, s := range strings.Split(*sections, ",") {
		s = strings.TrimSpace(s)
		if !slices.Contains(allSections, s) {
			return config{}, fmt.Errorf("-run: %q is not one of %s", s, strings.Join(allSections, ", "))
		}
		cfg.sections = append(cfg.sections, s)
	}
	switch {
	case cfg.seedWorkers < 1, cfg.clients < 1, cfg.scaleConcurrency < 1:
		return config{}, errors.New("-seed-workers, -clients and -scaleout-concurrency must be at least 1")
	case cfg.getDuration <= 0, cfg.postDuration <= 0, cfg.scaleTimeout <= 0:
		return config{}, errors.New("-get-duration, -post-duration and -scaleout-timeout must be positive")
	case cfg.cpuProfile != "" && cfg.scaleProfile != "":
		return config{}, errors.New("-cpuprofile and -scaleout-cpuprofile exclude each other: Go runs one CPU profile at a time")
	case cfg.scaleDomains < 1, cfg.memorySize < 1, cfg.memoryGets < 1:
		return config{}, errors.New("-scaleout-domains, -memory-size and -memory-gets must be at least 1")
	}
	return cfg, nil
}
