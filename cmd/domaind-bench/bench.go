package main

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/records"
)

// bench runs the sections and writes the report.
type bench struct {
	cfg    config
	log    io.Writer
	pg     *pgServer // nil when PostgreSQL cases are skipped
	pgSkip string    // why they are
	m      machine

	seal *records.Sealer
	key  []byte // the master key seal uses
	tmpl *template
}

// sealer returns the run's sealer. Its master key is random: nothing the bench
// seals is ever opened.
// masterKey returns the run's master key, made on first use.
func (b *bench) masterKey() []byte {
	if b.key == nil {
		b.key = make([]byte, 32)
		crand.Read(b.key)
	}
	return b.key
}

func (b *bench) sealer() (*records.Sealer, error) {
	if b.seal == nil {
		s, err := records.NewSealer(b.masterKey())
		if err != nil {
			return nil, err
		}
		b.seal = s
	}
	return b.seal, nil
}

// template returns the records every seeded domain copies.
func (b *bench) template() (*template, error) {
	if b.tmpl == nil {
		s, err := b.sealer()
		if err != nil {
			return nil, err
		}
		if b.tmpl, err = newTemplate(s); err != nil {
			return nil, err
		}
	}
	return b.tmpl, nil
}

func (b *bench) run(ctx context.Context, out io.Writer) error {
	b.m = describeMachine(ctx)
	if err := os.MkdirAll(b.cfg.cacheDir, 0o755); err != nil {
		return err
	}
	needPG := slices.Contains(b.cfg.sections, "api") || slices.Contains(b.cfg.sections, "scaleout")
	if b.cfg.postgres == "" {
		b.pgSkip = "skipped: no PostgreSQL server (install postgresql for scripts/bench.sh to start one, or set DOMAIND_BENCH_POSTGRES)"
	} else if needPG {
		pg, err := openPG(ctx, b.cfg.postgres)
		if err != nil {
			return err
		}
		b.pg = pg
	}
	if b.pg == nil && needPG {
		fmt.Fprintf(b.log, "!!! PostgreSQL cases %s\n", b.pgSkip)
	}

	if b.cfg.header {
		fmt.Fprintf(out, "- date: %s\n", b.m.Started.Format("2006-01-02T15:04Z"))
		fmt.Fprintf(out, "- machine: %s, %d cores, %s, %s\n", b.m.CPU, b.m.Cores, b.m.Memory, b.m.Kernel)
		fmt.Fprintf(out, "- go: %s\n", b.m.Go)
		fmt.Fprintf(out, "- commit: %s\n\n", b.m.Commit)
	}
	var errs []error
	for _, s := range b.cfg.sections {
		var buf bytes.Buffer
		var err error
		start := time.Now()
		fmt.Fprintf(b.log, "== %s\n", s)
		switch s {
		case "api":
			err = b.apiSection(ctx, &buf)
		case "scaleout":
			err = b.scaleOutSection(ctx, &buf)
		case "memory":
			err = b.memorySection(ctx, &buf)
		}
		fmt.Fprintf(b.log, "== %s done in %s\n", s, fmtSeconds(time.Since(start)))
		if err != nil {
			fmt.Fprintf(&buf, "\n**FAILED:** %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
			errs = append(errs, fmt.Errorf("%s: %w", s, err))
			fmt.Fprintf(b.log, "!!! %s failed: %v\n", s, err)
		}
		if _, werr := out.Write(buf.Bytes()); werr != nil {
			return werr
		}
		if ctx.Err() != nil {
			break
		}
	}
	return errors.Join(errs...)
}

func (b *bench) apiSection(ctx context.Context, w io.Writer) error {
	keygen, err := keygenTime(records.DefaultConfig().DKIMBits, 5)
	if err != nil {
		return err
	}
	postCeiling := float64(runtime.NumCPU()) / keygen.Seconds()
	stub, err := dnsStub(ctx)
	if err != nil {
		return err
	}
	defer stub.Close()

	pool := "PostgreSQL: " + b.pgSkip
	if b.pg != nil {
		pool = fmt.Sprintf("PostgreSQL %s on loopback (%s); domaind uses pgx's default pool,\n"+
			"  max(4, cores) = %d connections.", b.pg.version, b.pg.settings, max(4, runtime.NumCPU()))
	}
	fmt.Fprintf(w, "## API under load\n\n")
	fmt.Fprintf(w, "The real application (`app.New`, the one constructor `serve` uses, with its verifier and background workers, as `serve` runs\n"+
		"them) served by net/http on 127.0.0.1 from the bench's process. The server, the load and the database share the machine's cores.\n\n")
	fmt.Fprintf(w, "- GET /v1/domains/{id} is driven by wrk (Debian's, a process of its own): %d connections, %d threads, %s, each request for\n"+
		"  a random one of (at most %s) seeded domains. Its anchors, measured in the same run, just before it and just after:\n"+
		"  - *bare handler*: the same wrk against a bare net/http handler of this process answering a %d-byte JSON body;\n"+
		"  - *point reads*: GET's own SELECT (a domain by primary key, with its records), prepared, in a loop in %d goroutines\n"+
		"    on a pool of domaind's size on the same database, for %s: no HTTP, no authentication, no decoding.\n"+
		"  The share is GET's req/s over the bare handler's, and p99 × is GET's p99 over the bare handler's (targets: at least\n"+
		"  60%% and at most 1.5×). CPU is each process's user and system time over the run's wall time, in cores: the\n"+
		"  server (this process), wrk, and PostgreSQL's processes (from /proc/PID/stat). GET answers from the replica's\n"+
		"  read cache what it holds (at most 200,000 domains, 256 MiB; on PostgreSQL for less than a second each); its\n"+
		"  CPU cell gives the hits and misses. Each of the domains wrk picks from is asked for once before GET is\n"+
		"  measured, as a replica that has served them has been: on SQLite its read cache holds them, on PostgreSQL\n"+
		"  the database's buffers (the script starts PostgreSQL afresh, so its first reads would be measured otherwise).\n",
		wrkConns, wrkThreads, b.cfg.getDuration, fmtCount(maxWrkPaths), len(bareBody), wrkConns, b.cfg.getDuration)
	fmt.Fprintf(w, "- POST /v1/domains adds a new domain, from %d clients in the bench's process for %s. It generates an RSA-%d DKIM\n"+
		"  key, and that is where its time goes: one key takes %s on one core here (mean of 5), so %d cores allow at most\n"+
		"  about %.0f POSTs per second whatever the database. Its CPU is how busy the machine's cores were, and in parentheses\n"+
		"  the bench process's share.\n", b.cfg.clients, b.cfg.postDuration, records.DefaultConfig().DKIMBits, fmtLatency(keygen),
		runtime.NumCPU(), postCeiling)
	fmt.Fprintf(w, "- Seeded domains are stored through `Store.CreateDomainRotating` (with the rotation row serve adds) by %d\n"+
		"  goroutines, in one project, with one RSA key reused for all (and a fresh id and ownership token each);\n"+
		"  their next check is a year away, so the\n"+
		"  background worker stays idle. POST adds to another project, and its domains are deleted afterwards.\n",
		b.cfg.seedWorkers)
	fmt.Fprintf(w, "- %s\n\n", pool)
	fmt.Fprintf(w, "| store | domains stored | seeding took | measured | requests | req/s | share | p50 | p99 | p99 × | errors | CPU |\n")
	fmt.Fprintf(w, "| --- | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")

	var errs []error
	for _, n := range b.cfg.sizes {
		for _, storeName := range []string{"SQLite", "PostgreSQL"} {
			if storeName == "PostgreSQL" && b.pg == nil {
				continue
			}
			fmt.Fprintf(b.log, "-- %s with %d domains\n", storeName, n)
			c, err := b.apiCase(ctx, storeName, n, stub.Addr())
			if err != nil {
				fmt.Fprintf(w, "| %s | %s | | failed: %s | | | | | | | | |\n", storeName, fmtCount(n), oneLine(err))
				errs = append(errs, fmt.Errorf("%s with %d domains: %w", storeName, n, err))
				fmt.Fprintf(b.log, "!!! %s with %d domains: %v\n", storeName, n, err)
				if ctx.Err() != nil {
					return errors.Join(errs...)
				}
				if c.Get.Requests == 0 || c.Reads.Reads == 0 {
					continue // nothing measured to show
				}
			}
			row := func(what string, requests int, rps float64, share string, p50, p99 time.Duration, ratio string, errors int, cpu string) {
				fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %.0f | %s | %s | %s | %s | %d | %s |\n", storeName, fmtCount(n), c.Seed,
					what, fmtCount(requests), rps, share, fmtLatency(p50), fmtLatency(p99), ratio, errors, cpu)
			}
			g, bare := c.Get, c.Bare
			row("bare handler (wrk)", bare.Requests, bare.rps(), "", bare.P50, bare.P99, "", bare.Errors, wrkCPU(bare, c.Store))
			row("**GET /v1/domains/{id}** (wrk)", g.Requests, g.rps(), fmt.Sprintf("**%.0f%%**", 100*g.rps()/bare.rps()), g.P50, g.P99,
				fmt.Sprintf("**%.2f×**", float64(g.P99)/float64(bare.P99)), g.Errors,
				fmt.Sprintf("%s; cache %s hits, %s misses", wrkCPU(g, c.Store), fmtCount(int(c.CacheHits)), fmtCount(int(c.CacheMisses))))
			rd := c.Reads
			cpu := fmt.Sprintf("loop %.2f", rd.SelfCPU)
			if c.Store == "PostgreSQL" {
				cpu += fmt.Sprintf(", PostgreSQL %.2f", rd.PGCPU)
			}
			row(fmt.Sprintf("point reads (%d goroutines)", wrkConns), rd.Reads, rd.rps(), "", rd.P50, rd.P99, "", 0, cpu)
			p := c.Post
			row(fmt.Sprintf("POST /v1/domains (%d clients)", b.cfg.clients), p.Requests, p.rps(), "", p.percentile(50), p.percentile(99),
				"", p.Errors, fmtCPU(p.CPUBusy, p.CPUSelf))
		}
	}
	if b.pg == nil {
		fmt.Fprintf(w, "\nPostgreSQL cases %s.\n", b.pgSkip)
	}
	fmt.Fprintln(w)
	return errors.Join(errs...)
}

// apiCase seeds (or reuses) a store of n domains and measures it.
func (b *bench) apiCase(ctx context.Context, storeName string, n int, dnsAddr string) (apiCase, error) {
	var s *seeded
	var err error
	if storeName == "SQLite" {
		s, err = b.sqliteSeeded(ctx, n)
	} else {
		s, err = b.pgSeeded(ctx, n)
	}
	if err != nil {
		return apiCase{}, err
	}
	defer func() {
		s.store.Close()
		if storeName == "PostgreSQL" && !b.cfg.keepPostgres {
			b.pg.drop(context.WithoutCancel(ctx), fmt.Sprintf("domaind_bench_api_%d", n))
		}
	}()
	c, err := b.runAPI(ctx, storeName, s, dnsAddr)
	if err == nil && (c.Get.Errors > 0 || c.Bare.Errors > 0 || c.Post.Errors > 0) {
		err = fmt.Errorf("%d GET, %d bare handler and %d POST errors; first POST error: %s", c.Get.Errors, c.Bare.Errors, c.Post.Errors, c.Post.FirstErr)
	}
	return c, err
}

func (b *bench) scaleOutSection(ctx context.Context, w io.Writer) error {
	fmt.Fprintf(w, "## Background checks: one replica on SQLite, and scale-out on PostgreSQL\n\n")
	pgNote := ""
	if b.pg != nil {
		pgNote = fmt.Sprintf(" (PostgreSQL %s)", b.pg.version)
	}
	fmt.Fprintf(w, "%s domains, all due at once, in a fresh SQLite file, checked by one replica; then in a fresh PostgreSQL%s\n"+
		"database, by one replica, or two sharing the database, until all are checked. Each replica has its own connection pool, checker, verifier and\n"+
		"`schedule.Worker` (%d checks at once), as a separate process would; here both run in one process, on the same\n"+
		"cores as the database and the DNS servers. Checks walk from a loopback root to one loopback authoritative server\n"+
		"for the domains' zone (`dnstest.Net`, authoritative mode), where every domain's records are published, so each\n"+
		"check asks for all five records and the domain becomes VERIFIED, which puts its next check a day away. Checks are\n"+
		"not limited per DNS server here (serve's default `--authoritative-qps 50` would be all that was measured, since\n"+
		"every domain is on one server), and the DNS servers' UDP receive buffers are enlarged so that bursts are not\n"+
		"lost. CPU is how busy the machine's cores were, and in parentheses the share of the bench's own process (the\n"+
		"replicas and the DNS servers); the rest is the database server's (none for SQLite, which runs in the bench's\n"+
		"process). DNS queries per check count every query the root and the authoritative server received during the\n"+
		"run, whatever the checker caches. After the SQLite run, dnsperf (Debian's, a separate process) asks the same\n"+
		"authoritative server for the domains' ownership TXT records for %s: the checks' DNS rate beside it\n"+
		"says how close the checker comes to what the server can answer.\n\n",
		fmtCount(b.cfg.scaleDomains), pgNote, b.cfg.scaleConcurrency, fmtSeconds(b.cfg.dnsperfDuration))
	fmt.Fprintf(w, "No check ran twice: the authoritative server's query log counts how often each domain's ownership\n"+
		"TXT name was asked for. One check asks for it a fixed number of times (found first by checking one domain\n"+
		"alone: once per server of the zone, the walk's own answer included), so the count divided by that\n"+
		"is the domain's number of checks. The bench fails if any domain's is not exactly 1, if the verifiers counted\n"+
		"more checks than domains, or if any check did not verify the domain.\n\n")
	fmt.Fprintf(w, "| store | replicas | domains | checks | time | checks/s | checks per replica | mean check | slots busy | DNS queries per check | checks' DNS queries/s (dnsperf's) | checks per domain (min–max) | CPU |\n")
	fmt.Fprintf(w, "| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | --- | ---: |\n")
	var errs []error
	var rates []float64
	var drops, notes, after []string
	type runCase struct {
		replicas int
		sqlite   bool
	}
	cases := []runCase{{1, true}}
	if b.pg != nil {
		cases = append(cases, runCase{1, false}, runCase{2, false})
	}
	for _, c := range cases {
		fmt.Fprintf(b.log, "-- %d replica(s), SQLite %v\n", c.replicas, c.sqlite)
		r, err := b.runScaleOut(ctx, c.replicas, c.sqlite)
		if err != nil {
			errs = append(errs, err)
			fmt.Fprintf(b.log, "!!! %v\n", err)
		}
		if r.Elapsed == 0 {
			fmt.Fprintf(w, "| %s | %d | %s | | failed: %s | | | | | | | | |\n", r.Store, c.replicas, fmtCount(r.Domains), oneLine(err))
			if ctx.Err() != nil {
				break
			}
			continue
		}
		per := make([]string, len(r.PerReplica))
		for i, n := range r.PerReplica {
			per[i] = fmtCount(int(n))
		}
		asks := fmt.Sprintf("%d–%d", r.MinChecks, r.MaxChecks)
		if r.MaxChecks == 1 && r.MinChecks == 1 {
			asks = "1–1: max per domain = 1"
		}
		if err != nil {
			asks += " **FAILED**"
		}
		dnsRate := fmt.Sprintf("%.0f", r.dnsRate())
		if r.DNSPerf > 0 {
			dnsRate += fmt.Sprintf(" (%.0f: %.0f%%)", r.DNSPerf, 100*r.dnsRate()/r.DNSPerf)
		} else if r.DNSPerfNote != "" {
			notes = append(notes, r.DNSPerfNote)
		}
		fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %.0f | %s | %s | %.0f of %d | %.1f | %s | %s | %s |\n", r.Store, c.replicas, fmtCount(r.Domains),
			fmtCount(int(r.total())), fmtSeconds(r.Elapsed), r.rate(), strings.Join(per, " + "), fmtLatency(r.MeanCheck),
			r.slotsBusy(), r.Concurrency, float64(r.DNSQueries)/float64(max(r.total(), 1)), dnsRate, asks, fmtCPU(r.CPUBusy, r.CPUSelf))
		if c.sqlite {
			after = append(after, fmt.Sprintf("- Storage per domain (SQLite), once every domain is checked and verified, with what the checks found "+
				"and what each server said and the events the checks raised: %.0f bytes (the file and its WAL, once checkpointed, over %s domains; "+
				"by table and index, from SQLite's dbstat: %s). The memory section gives it for domains never checked.",
				r.BytesPerDomain, fmtCount(r.Domains), perDomain(r.Tables, r.Domains)))
			if v := r.Verify; v.Requests > 0 {
				after = append(after, fmt.Sprintf("- Verifications through `POST /v1/domains/{id}/verify` on the same database and DNS, %d clients "+
					"(net/http on loopback, in the bench's process) for %s, each verify a DNS check and a save: %s verifications/s, "+
					"p50 %s, p99 %s, %d errors%s, CPU %s.", verifyClients, fmtSeconds(b.cfg.verifyDuration), fmt.Sprintf("%.0f", v.rps()), fmtLatency(v.percentile(50)),
					fmtLatency(v.percentile(99)), v.Errors, firstErr(v.FirstErr), fmtCPU(v.CPUBusy, v.CPUSelf)))
			}
		}
		if err == nil && !c.sqlite {
			rates = append(rates, r.rate())
		}
		if r.UDPDrops > 0 {
			drops = append(drops, fmt.Sprintf("%d with %d replicas on %s", r.UDPDrops, c.replicas, r.Store))
		}
	}
	after = append(after, fmt.Sprintf("- Publish → VERIFIED with no call, during the first hour after the add: at most %s. serve's default "+
		"re-check schedule, run by its own code (`Domain.StartWindow`, `Apply`, `ScheduleNext`) under a simulated clock, for records "+
		"published at every 10 s of the first hour; the worst wait from publishing to the check that verifies.", fmtSeconds(publishToVerified())))
	fmt.Fprintf(w, "\n%s\n", strings.Join(after, "\n"))
	if b.pg == nil {
		fmt.Fprintf(w, "\nPostgreSQL cases %s.\n", b.pgSkip)
	}
	if len(notes) > 0 {
		fmt.Fprintf(w, "\nNo dnsperf anchor: %s.\n", strings.Join(notes, "; "))
	}
	if len(drops) > 0 {
		fmt.Fprintf(w, "\nThe kernel dropped UDP datagrams during the runs (%s): some checks waited for a DNS timeout.\n", strings.Join(drops, ", "))
	}
	if len(rates) == 2 {
		fmt.Fprintf(w, "\nOn PostgreSQL, two replicas ran %.2f× the checks per second of one.\n", rates[1]/rates[0])
	}
	fmt.Fprintln(w)
	return errors.Join(errs...)
}

// firstErr is ", the first: MSG" for a load's first error, or nothing.
func firstErr(msg string) string {
	if msg == "" {
		return ""
	}
	return fmt.Sprintf(" (the first: %.120s)", msg)
}

func (b *bench) memorySection(ctx context.Context, w io.Writer) error {
	fmt.Fprintf(w, "## Memory of serve\n\n")
	fmt.Fprintf(w, "`domaind serve` (built with `go build`, run as its own process with `--dev`, SQLite, recursive DNS mode at a\n"+
		"loopback server) on the SQLite database of %s seeded domains. Once `/healthz` answers, %s clients send %s\n"+
		"GET /v1/domains/{id} for random domains, then 100 each of GET /v1/domains?limit=100 and\n"+
		"GET /api/v2/domains?limit=100; the peak is the process's VmHWM from /proc afterwards.\n\n",
		fmtCount(b.cfg.memorySize), fmtCount(b.cfg.clients), fmtCount(b.cfg.memoryGets))
	r, err := b.runMemory(ctx)
	fmt.Fprintf(w, "| domains | database file | per domain | start to /healthz | RSS after start | peak RSS (VmHWM) | RSS at end | GET rps | GET p50 | GET p99 |\n")
	fmt.Fprintf(w, "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	if err != nil {
		fmt.Fprintf(w, "| %s | failed: %s | | | | | | | | |\n\n", fmtCount(r.Domains), oneLine(err))
		return err
	}
	fmt.Fprintf(w, "| %s | %s | %.0f B | %s | %s | %s | %s | %.0f | %s | %s |\n\n", fmtCount(r.Domains), fmtMiB(r.DBSize),
		float64(r.DBSize)/float64(r.Domains), fmtSeconds(r.Startup), fmtMiB(r.RSSStart), fmtMiB(r.Peak), fmtMiB(r.RSSEnd), r.Gets.rps(),
		fmtLatency(r.Gets.percentile(50)), fmtLatency(r.Gets.percentile(99)))
	fmt.Fprintf(w, "Storage per domain is the file and its WAL over the domains, seeded and never checked (no found values,\n"+
		"propagation or events yet; the background-checks section gives it for checked ones). By table and index, in bytes\n"+
		"per domain, from SQLite's dbstat: %s.\n\n", perDomain(r.Tables, r.Domains))
	return nil
}

// wrkCPU shows the CPU each process used during a wrk run, in cores.
func wrkCPU(r wrkResult, storeName string) string {
	s := fmt.Sprintf("server %.2f, wrk %.2f", r.ServerCPU, r.WrkCPU)
	if storeName == "PostgreSQL" {
		s += fmt.Sprintf(", PostgreSQL %.2f", r.PGCPU)
	}
	return s
}

// oneLine shortens an error for a table cell.
func oneLine(err error) string {
	if err == nil {
		return ""
	}
	s := strings.ReplaceAll(err.Error(), "\n", " ")
	s = strings.ReplaceAll(s, "|", "/")
	return domain.TruncateBytes(s, 160)
}

func fmtSeconds(d time.Duration) string {
	if d < 10*time.Second {
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}

func fmtLatency(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	switch {
	case ms < 10:
		return fmt.Sprintf("%.2f ms", ms)
	case ms < 1000:
		return fmt.Sprintf("%.0f ms", ms)
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

func fmtMiB(n int64) string { return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20)) }

// fmtCPU shows how busy the machine was and, in parentheses, this process's share.
func fmtCPU(all, self float64) string {
	if all < 0 || self < 0 {
		return "?"
	}
	return fmt.Sprintf("%.0f%% (%.0f%%)", 100*all, 100*self)
}

// fmtCount writes n with thousands separators.
func fmtCount(n int) string {
	s := fmt.Sprint(n)
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 && s[i-1] != '-' {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}
