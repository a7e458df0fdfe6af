package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/domaind/domaind/internal/app"
	"github.com/domaind/domaind/internal/dnscheck"
	"github.com/domaind/domaind/internal/dnstest"
	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/ratelimit"
	"github.com/domaind/domaind/internal/records"
	"github.com/domaind/domaind/internal/store"
	"github.com/domaind/domaind/internal/store/postgres"
	"github.com/domaind/domaind/internal/store/sqlite"
	"github.com/domaind/domaind/internal/store/sqlstore"
)

// scaleRun is one run of the scaleout section.
type scaleRun struct {
	Store       string // "SQLite" or "PostgreSQL"
	Replicas    int
	Domains     int
	Concurrency int
	Elapsed     time.Duration // from the workers' start to the last check's end
	PerReplica  []int64       // checks each replica ran
	Outcomes    map[string]int
	MeanCheck   time.Duration // mean duration of one check
	DNSQueries  int           // queries the root and the authoritative server received
	// AsksPerCheck is how often one check asks the authoritative server for a
	// domain's ownership name, learnt by checking one domain first.
	AsksPerCheck int
	MaxChecks    int // most checks of one domain, from the DNS query log
	MinChecks    int // fewest, to show every domain was checked
	UDPDrops     int64
	CPUBusy      float64
	CPUSelf      float64
	SeedTime     time.Duration
	// DNSPerf is dnsperf's rate (queries a second) against the same
	// authoritative server in the same run, asking the domains' ownership
	// names; 0 when dnsperf is not installed. DNSPerfNote says why not.
	DNSPerf     float64
	DNSPerfNote string
	// On SQLite: the file's bytes per domain once every domain is checked and
	// verified (its found values and propagation stored), and the verifications
	// a second through POST /v1/domains/{id}/verify afterwards.
	BytesPerDomain float64
	Tables         []tableSize
	Verify         loadResult
}

// tableSize is the bytes of one table or index of a SQLite file.
type tableSize struct {
	Name  string
	Bytes int64
}

// tableBytes returns the bytes of each table and index of the SQLite file at
// path, largest first, from SQLite's dbstat table (compiled into the driver).
func tableBytes(ctx context.Context, path string) ([]tableSize, error) {
	out, err := querySQLite(ctx, "file:"+path+"?mode=ro",
		func(r sqlstore.Row) (t tableSize, err error) { err = r.Scan(&t.Name, &t.Bytes); return },
		`SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC`)
	if err != nil {
		return nil, fmt.Errorf("dbstat of %s: %w", path, err)
	}
	return out, nil
}

// perDomain lists every table and index of the file, largest first, as bytes
// per domain: "domain_records 812, domains 460, …"; those of less than half a
// byte each (the empty ones, of one page) are summed as "the other n".
func perDomain(tables []tableSize, domains int) string {
	var parts []string
	var rest int64
	others := 0
	for _, t := range tables {
		if per := float64(t.Bytes) / float64(domains); per >= 0.5 {
			parts = append(parts, fmt.Sprintf("%s %.0f", t.Name, per))
		} else {
			rest += t.Bytes
			others++
		}
	}
	if others > 0 {
		parts = append(parts, fmt.Sprintf("the other %d %.1f", others, float64(rest)/float64(domains)))
	}
	return strings.Join(parts, ", ")
}

// slotsBusy is how many of a replica's check slots were busy on average.
func (r scaleRun) slotsBusy() float64 {
	return r.MeanCheck.Seconds() * float64(r.total()) / r.Elapsed.Seconds() / float64(r.Replicas)
}

// dnsRate is the checks' DNS queries a second.
func (r scaleRun) dnsRate() float64 { return float64(r.DNSQueries) / r.Elapsed.Seconds() }

func (r scaleRun) total() int64 {
	var n int64
	for _, c := range r.PerReplica {
		n += c
	}
	return n
}

func (r scaleRun) rate() float64 { return float64(r.total()) / r.Elapsed.Seconds() }

// checkCounter is a verify.Observer that counts the checks of a run.
type checkCounter struct {
	run      *runCounter
	n        atomic.Int64
	tookSum  atomic.Int64
	mu       sync.Mutex
	outcomes map[string]int
}

// runCounter counts all replicas' checks and notes when the last expected one ended.
type runCounter struct {
	want  int64
	total atomic.Int64
	done  chan struct{}
	end   atomic.Int64 // UnixNano of the want-th check's end
}

func (c *checkCounter) CheckDone(outcome string, took time.Duration) {
	c.n.Add(1)
	c.tookSum.Add(int64(took))
	c.mu.Lock()
	c.outcomes[outcome]++
	c.mu.Unlock()
	if c.run.total.Add(1) == c.run.want {
		c.run.end.Store(time.Now().UnixNano())
		close(c.run.done)
	}
}

// runScaleOut seeds the scaleout domains, all due now, in a fresh database, and
// runs replicas workers (each with its own connection pool, checker and verifier,
// as separate processes would have) until every domain has been checked. The
// loopback authoritative server's query log then shows how often each domain's
// ownership record was asked for, which calibrate turns into checks.
//
// With onSQLite the one replica runs on a fresh SQLite file in the cache
// folder instead, and dnsperf then measures the same authoritative server.
func (b *bench) runScaleOut(ctx context.Context, replicas int, onSQLite bool) (scaleRun, error) {
	r := scaleRun{Store: "PostgreSQL", Replicas: replicas, Domains: b.cfg.scaleDomains, Concurrency: b.cfg.scaleConcurrency, Outcomes: map[string]int{}}
	if onSQLite {
		r.Store = "SQLite"
	}
	dnsNet, err := dnstest.NewNet(ctx, 1)
	if err != nil {
		return r, err
	}
	defer dnsNet.Close()
	auth := dnsNet.Servers()[0]
	zone, err := dnsNet.AddZone(zoneOrigin+".", auth)
	if err != nil {
		return r, err
	}
	// The domains' SPF record includes the sending platform's, and their MAIL
	// FROM MX names its host: both resolve, as on the internet.
	rc := records.DefaultConfig()
	platform, err := dnsNet.AddZone(rc.SPFInclude+".", auth)
	if err != nil {
		return r, err
	}
	mxHost := strings.ReplaceAll(rc.MXTemplate, "{region}", region) + "."
	if err := platform.Add("@ TXT \"v=spf1 ip4:192.0.2.0/24 -all\"\n" + mxHost + " A 192.0.2.25"); err != nil {
		return r, err
	}
	// Hundreds of checks in flight send bursts of queries that overflow the
	// kernel's default UDP buffer (about 200 queries) while the servers wait
	// for a core; lost queries would be timeouts of the test's DNS, not of
	// domaind.
	for _, s := range []*dnstest.Server{dnsNet.Root(), auth} {
		if err := s.SetReadBuffer(dnsReadBuffer); err != nil {
			fmt.Fprintf(b.log, "  warning: %v\n", err)
		}
	}

	var (
		seedStore store.Store
		dsn       string
	)
	if onSQLite {
		path := filepath.Join(b.cfg.cacheDir, fmt.Sprintf("scaleout-%s.db", runID()))
		defer func() {
			for _, suffix := range []string{"", "-wal", "-shm"} {
				os.Remove(path + suffix)
			}
		}()
		dsn = "sqlite:" + path
		if seedStore, err = sqlite.Open(ctx, path); err != nil {
			return r, err
		}
	} else {
		dbName := fmt.Sprintf("domaind_bench_scaleout_%d_%s", replicas, runID())
		if err := b.pg.create(ctx, dbName); err != nil {
			return r, err
		}
		defer b.pg.drop(context.WithoutCancel(ctx), dbName)
		dsn = b.pg.dsn(dbName, nil)
		if seedStore, err = postgres.Open(ctx, b.pg.dsn(dbName, b.seedParams())); err != nil {
			return r, err
		}
	}
	t, err := b.template()
	if err != nil {
		seedStore.Close()
		return r, err
	}
	p, err := seedStore.EnsureProject(ctx, seedProject, time.Now())
	if err != nil {
		seedStore.Close()
		return r, err
	}
	// Every domain is due from the moment it is stored, and its records are
	// published, so each check finds them all and the domain becomes VERIFIED,
	// which puts its next check a day away: a second check within the run can
	// only be a claim that went to two workers.
	ownership := make([]string, r.Domains)
	ids := make([]string, r.Domains)
	var publishErr atomic.Pointer[error]
	r.SeedTime, err = seed(ctx, seedStore, t, seedSpec{
		label: fmt.Sprintf("scaleout %d replicas", replicas), n: r.Domains, projectID: p.ID,
		name: func(i int) string { return fmt.Sprintf("c%06d.%s", i, zoneOrigin) },
		next: func(_ int, now time.Time) time.Time { return now },
		made: func(i int, d *domain.Domain) {
			ids[i] = d.ID
			ownership[i] = dns.CanonicalName(d.Record(domain.KeyOwnership).Name)
			if err := publish(zone, d); err != nil {
				publishErr.CompareAndSwap(nil, &err)
			}
		},
	}, b.cfg.seedWorkers, b.log)
	seedStore.Close()
	if err != nil {
		return r, err
	}
	if e := publishErr.Load(); e != nil {
		return r, fmt.Errorf("publish records: %w", *e)
	}

	// No bound on queries per authoritative server (serve's default is 50/s) and
	// a bound on those in flight to one that is never reached: every domain here
	// is on one server, and the bound would be all that was measured.
	dnsConfig := dnscheck.Config{
		Mode: dnscheck.ModeAuthoritative, RootHints: dnsNet.RootIPs(), AuthoritativePort: dnsNet.Port(),
		Timeout: 2 * time.Second, Retries: 1, AllowPrivate: true, ServerConcurrency: 1 << 16,
	}
	newChecker := func() (*dnscheck.Checker, error) { return dnscheck.New(dnsConfig) }
	if r.AsksPerCheck, err = calibrate(ctx, t, zone, auth, newChecker); err != nil {
		return r, err
	}

	run := &runCounter{want: int64(r.Domains), done: make(chan struct{})}
	counters := make([]*checkCounter, replicas)
	// Each replica is the application app.New builds, with a connection pool,
	// checker and verifier of its own, as separate processes would have; only
	// its scheduler runs.
	reps := make([]*app.App, 0, replicas)
	defer func() {
		for _, rep := range reps {
			rep.Close()
		}
	}()
	for i := range replicas {
		counters[i] = &checkCounter{run: run, outcomes: map[string]int{}}
		cfg := app.DefaultConfig()
		cfg.DB, cfg.DNS, cfg.Regions = dsn, dnsConfig, []string{region}
		cfg.MasterKey, cfg.CheckObserver, cfg.NoDeliverer = b.masterKey(), counters[i], true
		// One seeded project: it may use every slot, so this measures the
		// worker and not the per-project share.
		cfg.CheckConcurrency, cfg.ProjectShare = b.cfg.scaleConcurrency, b.cfg.scaleConcurrency
		rep, err := app.New(ctx, cfg)
		if err != nil {
			return r, err
		}
		reps = append(reps, rep)
	}

	dnsNet.Root().ResetQueries()
	auth.ResetQueries()
	fmt.Fprintf(b.log, "  %d replica(s), %d checks at once each, checking %d due domains\n", replicas, b.cfg.scaleConcurrency, r.Domains)
	drops := udpDrops()
	stopProfile := b.startScaleProfile(fmt.Sprintf("%s-%d.checks", strings.ToLower(r.Store), replicas))
	cpu := startCPU()
	start := time.Now()
	for _, rep := range reps {
		rep.Start()
	}
	timeout := time.NewTimer(b.cfg.scaleTimeout)
	defer timeout.Stop()
	var runErr error
	select {
	case <-run.done:
		r.Elapsed = time.Unix(0, run.end.Load()).Sub(start)
	case <-timeout.C:
		runErr = fmt.Errorf("scaleout: only %d of %d domains checked after %s", run.total.Load(), r.Domains, b.cfg.scaleTimeout)
	case <-ctx.Done():
		runErr = ctx.Err()
	}
	r.CPUBusy, r.CPUSelf = cpu.busyShare(), cpu.selfShare()
	stopProfile()
	r.UDPDrops = udpDrops() - drops
	// Stop claiming, and wait for the checks already started: any of them would
	// be a second check of some domain, which the counts below must see.
	for _, rep := range reps {
		rep.Close()
	}
	reps = nil

	var tookSum int64
	for _, c := range counters {
		r.PerReplica = append(r.PerReplica, c.n.Load())
		tookSum += c.tookSum.Load()
		for k, v := range c.outcomes {
			r.Outcomes[k] += v
		}
	}
	if n := r.total(); n > 0 {
		r.MeanCheck = time.Duration(tookSum / n)
	}
	if runErr != nil {
		return r, runErr
	}

	asks := make(map[string]int, r.Domains)
	for _, name := range ownership {
		asks[name] = 0
	}
	authLog := auth.Queries()
	r.DNSQueries = len(authLog) + len(dnsNet.Root().Queries())
	for _, q := range authLog {
		if _, ok := asks[q.Name]; ok && q.Type == dns.TypeTXT {
			asks[q.Name]++
		}
	}
	r.MinChecks, r.MaxChecks = r.Domains, 0
	for name, n := range asks {
		if n%r.AsksPerCheck != 0 {
			return r, fmt.Errorf("scaleout with %d replicas: %s was asked for %d times, not a multiple of the %d times one check asks",
				replicas, name, n, r.AsksPerCheck)
		}
		r.MinChecks = min(r.MinChecks, n/r.AsksPerCheck)
		r.MaxChecks = max(r.MaxChecks, n/r.AsksPerCheck)
	}
	fmt.Fprintf(b.log, "    %d checks in %s: %.0f/s; per replica %v; checks per domain by the DNS log: min %d, max %d; %d UDP datagrams dropped\n",
		r.total(), fmtSeconds(r.Elapsed), r.rate(), r.PerReplica, r.MinChecks, r.MaxChecks, r.UDPDrops)
	switch {
	case r.MaxChecks > 1:
		return r, fmt.Errorf("scaleout with %d replicas: a domain was checked %d times", replicas, r.MaxChecks)
	case r.total() != int64(r.Domains):
		return r, fmt.Errorf("scaleout with %d replicas: %d checks ran for %d domains", replicas, r.total(), r.Domains)
	case r.MinChecks < 1:
		return r, fmt.Errorf("scaleout with %d replicas: some domain's ownership record was never asked for", replicas)
	case r.Outcomes["verified"] != r.Domains:
		return r, fmt.Errorf("scaleout with %d replicas: outcomes %v, want all %d verified", replicas, r.Outcomes, r.Domains)
	}
	if onSQLite {
		path := strings.TrimPrefix(dsn, "sqlite:")
		// What the WAL holds at this moment depends on when SQLite last
		// checkpointed, up to 4 MB: it is copied into the file first, so the
		// size is the data's.
		cp, err := querySQLite(ctx, "file:"+path+"?_pragma=busy_timeout(10000)",
			func(r sqlstore.Row) (n [3]int, err error) { err = r.Scan(&n[0], &n[1], &n[2]); return },
			`PRAGMA wal_checkpoint(TRUNCATE)`)
		if err != nil {
			return r, fmt.Errorf("checkpoint %s: %w", path, err)
		}
		if len(cp) != 1 || cp[0][0] != 0 {
			return r, fmt.Errorf("checkpoint %s: not finished (%v): the storage figure would count the WAL", path, cp)
		}
		var size int64
		for _, suffix := range []string{"", "-wal"} {
			if fi, err := os.Stat(path + suffix); err == nil {
				size += fi.Size()
			}
		}
		r.BytesPerDomain = float64(size) / float64(r.Domains)
		if r.Tables, err = tableBytes(ctx, path); err != nil {
			return r, err
		}
		r.DNSPerf, r.DNSPerfNote = runDNSPerf(ctx, auth.Addr(), ownership, b.cfg.dnsperfDuration, b.log)
		if r.Verify, err = b.runVerifyLoad(ctx, dsn, dnsConfig, ids); err != nil {
			return r, err
		}
	}
	return r, nil
}

// startScaleProfile starts a CPU profile of the bench's process into the file
// named by -scaleout-cpuprofile and name, and returns what stops it; with no
// -scaleout-cpuprofile, or when the profile cannot start, it does nothing.
func (b *bench) startScaleProfile(name string) (stop func()) {
	if b.cfg.scaleProfile == "" {
		return func() {}
	}
	path := fmt.Sprintf("%s-%s.prof", b.cfg.scaleProfile, name)
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintf(b.log, "  warning: profile: %v\n", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		fmt.Fprintf(b.log, "  warning: profile: %v\n", err)
		return func() {}
	}
	// The allocations are counted since the process started: the profile
	// taken now is the base the one taken at the end is read against
	// (go tool pprof -base).
	allocs := strings.TrimSuffix(path, ".prof") + ".allocs"
	b.writeAllocs(allocs + "-base.prof")
	var once sync.Once
	return func() {
		once.Do(func() {
			pprof.StopCPUProfile()
			f.Close()
			b.writeAllocs(allocs + ".prof")
			fmt.Fprintf(b.log, "    CPU profile in %s; allocations in %s.prof (go tool pprof -base %s-base.prof)\n", path, allocs, allocs)
		})
	}
}

// writeAllocs writes the allocation profile to path, or warns.
func (b *bench) writeAllocs(path string) {
	f, err := os.Create(path)
	if err == nil {
		err = pprof.Lookup("allocs").WriteTo(f, 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintf(b.log, "  warning: allocation profile: %v\n", err)
	}
}

// verifyClients is how many clients call POST /v1/domains/{id}/verify at once.
const verifyClients = 32

// runVerifyLoad serves the API of a new application on the checked database
// (its scheduler off, no rate limit, no --verify-min-interval) on loopback, and
// has verifyClients clients call POST /v1/domains/{id}/verify for -verify-duration,
// each going through its own share of the domains.
func (b *bench) runVerifyLoad(ctx context.Context, dsn string, dnsConfig dnscheck.Config, ids []string) (loadResult, error) {
	cfg := app.DefaultConfig()
	cfg.DB, cfg.DNS, cfg.Regions, cfg.MasterKey = dsn, dnsConfig, []string{region}, b.masterKey()
	cfg.NoScheduler, cfg.NoDeliverer = true, true
	// Clients go through the domains in turn, but a small run wraps around
	// within serve's 2s: every verify is to run a check, not answer 429.
	cfg.VerifyMinInterval = 0
	cfg.RateLimit, cfg.AnonRateLimit = ratelimit.Limit{N: 1_000_000_000, Per: time.Second}, ratelimit.Limit{}
	a, err := app.New(ctx, cfg)
	if err != nil {
		return loadResult{}, err
	}
	defer a.Close()
	_, key, err := newAPIKey(ctx, a.Store(), seedProject)
	if err != nil {
		return loadResult{}, err
	}
	srv := httptest.NewServer(a.APIHandler())
	defer srv.Close()
	fmt.Fprintf(b.log, "  %d clients calling POST /v1/domains/{id}/verify for %s\n", verifyClients, b.cfg.verifyDuration)
	stopProfile := b.startScaleProfile("verify")
	defer stopProfile()
	res := load(ctx, newClient(verifyClients), verifyClients, b.cfg.verifyDuration, 0, http.StatusOK, func(c, seq int) (*http.Request, error) {
		id := ids[(c+seq*verifyClients)%len(ids)]
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/domains/"+id+"/verify", nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+key)
		return req, nil
	})
	fmt.Fprintf(b.log, "    %s\n", res.summary())
	return res, nil
}

// publishToVerified runs serve's default re-check schedule (domain.DefaultRecheck,
// through the same Domain.StartWindow, Apply and ScheduleNext the verifier uses)
// under a simulated clock, with no verify call: a domain added at 0 whose records
// are published at each whole 10 seconds of its first hour, and the worst wait from
// publishing to VERIFIED, with the check finding the records at its due time.
func publishToVerified() time.Duration {
	p := domain.DefaultRecheck()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var worst time.Duration
	for at := time.Duration(0); at < time.Hour; at += 10 * time.Second {
		d := &domain.Domain{ID: "000000000000000000000000", CreatedAt: t0, Status: domain.StatusPendingConfiguration}
		for _, k := range domain.SendingKeys {
			d.Records = append(d.Records, domain.Record{Key: k, Status: domain.CheckUnchecked})
		}
		d.StartWindow(p, t0)
		published := t0.Add(at)
		for d.Status != domain.StatusVerified && !d.NextCheckAt.IsZero() {
			now := d.NextCheckAt
			st := domain.CheckMissing
			if !now.Before(published) {
				st = domain.CheckVerified
			}
			var obs []domain.Observation
			for _, k := range domain.SendingKeys {
				obs = append(obs, domain.Observation{Key: k, Status: st})
			}
			d.ScheduleNext(p, d.Apply(obs, now, domain.Rules{DegradeAfter: 1}), now)
		}
		worst = max(worst, d.VerifiedAt.Sub(published))
	}
	return worst
}

// runDNSPerf runs Debian's dnsperf for d (whole seconds, at least one) against
// addr, asking for the names' TXT records, with up to 256 queries outstanding,
// and returns its rate; 0 and why when it cannot.
func runDNSPerf(ctx context.Context, addr string, names []string, d time.Duration, log io.Writer) (float64, string) {
	bin, err := exec.LookPath("dnsperf")
	if err != nil {
		return 0, "dnsperf not installed (apt-get install dnsperf)"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, err.Error()
	}
	f, err := os.CreateTemp("", "dnsperf-*.txt")
	if err != nil {
		return 0, err.Error()
	}
	defer os.Remove(f.Name())
	w := bufio.NewWriter(f)
	for _, n := range names {
		fmt.Fprintf(w, "%s TXT\n", n)
	}
	if err := errors.Join(w.Flush(), f.Close()); err != nil {
		return 0, err.Error()
	}
	out, err := exec.CommandContext(ctx, bin, "-s", host, "-p", port, "-d", f.Name(), "-l", strconv.Itoa(max(int(d.Seconds()), 1)), "-c", "4", "-q", "256").CombinedOutput()
	if err != nil {
		return 0, fmt.Sprintf("dnsperf failed: %v", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Queries per second:"); ok {
			rate, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				fmt.Fprintf(log, "    dnsperf against %s: %.0f queries/s\n", addr, rate)
				return rate, ""
			}
		}
	}
	return 0, "dnsperf printed no rate"
}

// dnsReadBuffer is the UDP receive buffer the scaleout's DNS servers ask for.
const dnsReadBuffer = 4 << 20

// calibrate checks one domain, not stored, and returns how many times the check
// asked the authoritative server for the domain's ownership name: once by the
// walk that finds the zone and once more of every server of the zone.
func calibrate(ctx context.Context, t *template, zone *dnstest.Zone, auth *dnstest.Server, newChecker func() (*dnscheck.Checker, error)) (int, error) {
	now := time.Now()
	d, _, err := t.domain(0, "calibrate."+zoneOrigin, now, now)
	if err != nil {
		return 0, err
	}
	if err := publish(zone, d); err != nil {
		return 0, err
	}
	checker, err := newChecker()
	if err != nil {
		return 0, err
	}
	auth.ResetQueries()
	for _, o := range checker.Check(ctx, dnscheck.ExpectationsOf(d)) {
		if o.Status != domain.CheckVerified {
			return 0, fmt.Errorf("calibration: record %s is %s, not verified: %v", o.Key, o.Status, o.Problems)
		}
	}
	n := auth.Count(d.Record(domain.KeyOwnership).Name+".", dns.TypeTXT, "")
	if n < 1 {
		return 0, errors.New("calibration: the check never asked the authoritative server for the ownership record")
	}
	return n, nil
}

// udpDrops returns the machine's count of UDP datagrams dropped for want of
// buffer space (RcvbufErrors of /proc/net/snmp), or 0 when it cannot be read.
func udpDrops() int64 {
	b, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return 0
	}
	var names []string
	for _, line := range strings.Split(string(b), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 || fields[0] != "Udp:" {
			continue
		}
		if names == nil {
			names = fields
			continue
		}
		for i, f := range fields {
			if i < len(names) && names[i] == "RcvbufErrors" {
				n, _ := strconv.ParseInt(f, 10, 64)
				return n
			}
		}
	}
	return 0
}

// publish adds the domain's records to the zone, as its owner would.
func publish(z *dnstest.Zone, d *domain.Domain) error {
	for _, rec := range d.Records {
		var rr dns.RR
		switch rec.Type {
		case "TXT":
			rr = dnstest.NewTXT(rec.Name+".", dnstest.DefaultTTL, rec.Value)
		case "MX":
			rr = &dns.MX{
				Hdr:        dns.RR_Header{Name: rec.Name + ".", Rrtype: dns.TypeMX, Class: dns.ClassINET, Ttl: dnstest.DefaultTTL},
				Preference: rec.Priority, Mx: rec.Value + ".",
			}
		default:
			return fmt.Errorf("cannot publish a %s record", rec.Type)
		}
		if err := z.AddRR(rr); err != nil {
			return err
		}
	}
	return nil
}
