// Package app builds domaind: the store, the DNS checker, the verifier, the
// services, the API and the dashboard on one handler, the background workers and
// the milter, from one Config. `domaind serve`, the API's and the dashboard's
// tests, the command's tests and the bench all build it here, so a setting added
// to the service reaches every one of them, and what is tested and measured is
// what operators run.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/domaind/domaind/internal/api"
	"github.com/domaind/domaind/internal/apikey"
	"github.com/domaind/domaind/internal/dashboard"
	"github.com/domaind/domaind/internal/dnscheck"
	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/domains"
	"github.com/domaind/domaind/internal/metrics"
	"github.com/domaind/domaind/internal/milter"
	"github.com/domaind/domaind/internal/ratelimit"
	"github.com/domaind/domaind/internal/readcache"
	"github.com/domaind/domaind/internal/records"
	"github.com/domaind/domaind/internal/rotation"
	"github.com/domaind/domaind/internal/schedule"
	"github.com/domaind/domaind/internal/signing"
	"github.com/domaind/domaind/internal/store"
	"github.com/domaind/domaind/internal/store/postgres"
	"github.com/domaind/domaind/internal/store/sqlite"
	"github.com/domaind/domaind/internal/store/watched"
	"github.com/domaind/domaind/internal/verify"
	"github.com/domaind/domaind/internal/webhook"
)

// Config is everything that makes one domaind: what serve's flags set, and a
// few knobs tests and the bench turn. DefaultConfig gives serve's defaults.
type Config struct {
	// DB names the database (sqlite:PATH or postgres://…); it is opened and
	// migrated by New and closed by Close. Store, when set, is used instead
	// and left open.
	DB    string
	Store store.Store
	// MasterKey (32 bytes) seals private DKIM keys and webhook secrets.
	MasterKey []byte
	// DNS is how checks ask DNS.
	DNS dnscheck.Config
	// Records are the templates of generated records; Regions the region keys
	// a domain may use, the first the default.
	Records records.Config
	Regions []string

	// DKIM is how DKIM keys rotate (--dkim-mode, --dkim-zone,
	// --dns-update-server, --dns-update-tsig, --dkim-rotate-every,
	// --dkim-retire-after); Records.DKIMBits is the size of the next key.
	DKIM rotation.Config

	// RateLimit is each API key's budget, shared by the API and the dashboard.
	RateLimit ratelimit.Limit
	// AnonRateLimit limits, per client address, requests without a valid key
	// or session (N 0: no limit); TrustedProxies are the reverse proxies whose
	// X-Forwarded-For names the client.
	AnonRateLimit  ratelimit.Limit
	TrustedProxies []netip.Prefix
	// KeygenConcurrency is how many DKIM keys are generated at once (0:
	// GOMAXPROCS); Keygen, when set, is the gate itself.
	KeygenConcurrency int
	Keygen            *domains.KeyGate

	// VerifyMinInterval, VerifyBudget, Recheck and DegradeAfter: see
	// verify.Config.
	VerifyMinInterval time.Duration
	VerifyBudget      time.Duration
	Recheck           domain.Recheck
	DegradeAfter      int
	// CheckConcurrency automatic checks at once, ProjectShare of them for one
	// project (0: schedule.DefaultShare of CheckConcurrency).
	CheckConcurrency int
	ProjectShare     int

	// SecureCookies and SessionTTL: see dashboard.Config.
	SecureCookies bool
	SessionTTL    time.Duration

	// Listen is the HTTP address Run serves; MilterListen the milter's ("":
	// no milter), with at most MilterMaxConns connections.
	Listen         string
	MilterListen   string
	MilterMaxConns int

	// Webhook settings: see webhook.Service and webhook.Deliverer.
	WebhookAllowPrivate        bool
	WebhookTimeout             time.Duration
	WebhookEndpointConcurrency int
	MaxWebhooks                int

	// The knobs below are not flags; zero values are serve's behaviour.

	// NoScheduler, NoDeliverer and NoRotator keep Start from running the
	// automatic checks, the webhook deliveries or the DKIM rotation steps, for
	// tests that run them themselves.
	NoScheduler, NoDeliverer, NoRotator bool
	// RotationInterval, RotationPoll and RotationRetryBase tune the rotation
	// worker (see rotation.Worker and rotation.Rotator); zero: their defaults.
	RotationInterval, RotationPoll, RotationRetryBase time.Duration
	// SchedulerInterval and SchedulerLease tune the scheduler (see
	// schedule.Worker).
	SchedulerInterval, SchedulerLease time.Duration
	// WebhookBackoff, WebhookInterval, WebhookParkBase and WebhookParkMax tune
	// the deliverer (see webhook.Deliverer).
	WebhookBackoff                  []time.Duration
	WebhookInterval                 time.Duration
	WebhookParkBase, WebhookParkMax time.Duration
	// ReadCache bounds the per-replica cache of GET /v1/domains/{id}'s answers
	// (see package readcache); MaxEntries 0 turns it off. Its clock is Now,
	// and on SQLite it watches the file for other processes' commits.
	ReadCache readcache.Config
	// GCPercent, when positive, is the garbage collector's target that Start
	// sets for the process, as GOGC would, under a soft memory limit, as
	// GOMEMLIMIT would, of gcMemoryLimit; zero leaves both to the runtime, and
	// so does Start when GOGC or GOMEMLIMIT is in the process's environment.
	GCPercent int
	// CheckObserver is told of every check, beside the metrics.
	CheckObserver verify.Observer
	// Now is the clock of the API, the dashboard, the services, the verifier
	// and the scheduler; nil means time.Now.
	Now func() time.Time
	// Log receives the service's log; nil discards it.
	Log *slog.Logger
}

// DefaultConfig returns serve's defaults; the master key and the store are for
// the caller to give.
func DefaultConfig() Config {
	return Config{
		DB:                         "sqlite:./domaind.db",
		DNS:                        dnscheck.Config{Mode: dnscheck.ModeAuto, Timeout: 2 * time.Second, Retries: 1, AuthoritativePort: 53, ServerQPS: 50, ServerConcurrency: dnscheck.DefaultServerConcurrency},
		Records:                    records.DefaultConfig(),
		DKIM:                       rotation.DefaultConfig(),
		Regions:                    []string{"us-east-1", "us-east-2", "ap-south-1", "eu-central-1"},
		RateLimit:                  ratelimit.Limit{N: 120, Per: time.Minute},
		AnonRateLimit:              ratelimit.Limit{N: 30, Per: time.Minute},
		VerifyMinInterval:          2 * time.Second,
		VerifyBudget:               5 * time.Second,
		Recheck:                    domain.DefaultRecheck(),
		DegradeAfter:               3,
		GCPercent:                  defaultGCPercent,
		CheckConcurrency:           schedule.DefaultConcurrency,
		SessionTTL:                 dashboard.DefaultSessionTTL,
		Listen:                     "127.0.0.1:8080",
		MilterMaxConns:             milter.DefaultMaxConns,
		WebhookTimeout:             webhook.DefaultTimeout,
		WebhookEndpointConcurrency: webhook.DefaultEndpointConcurrency,
		MaxWebhooks:                webhook.DefaultMaxWebhooks,
		ReadCache:                  readcache.Config{MaxEntries: readcache.DefaultMaxEntries, MaxBytes: readcache.DefaultMaxBytes},
	}
}

// validate checks what New cannot build from. Messages name serve's flags,
// which set these.
func (c *Config) validate() error {
	switch {
	case len(c.Regions) == 0:
		return errors.New("--regions names no region")
	case c.KeygenConcurrency < 0:
		return errors.New("--keygen-concurrency must not be negative (0 means GOMAXPROCS)")
	case c.VerifyBudget <= 0 || c.VerifyMinInterval < 0:
		return errors.New("--verify-budget must be positive and --verify-min-interval not negative")
	case c.WebhookTimeout <= 0 || c.WebhookEndpointConcurrency < 1 || c.MaxWebhooks < 1:
		return errors.New("--webhook-timeout must be positive, --webhook-endpoint-concurrency and --max-webhooks at least 1")
	case c.MilterMaxConns < 1:
		return errors.New("--milter-max-conns must be at least 1")
	case c.Recheck.GiveUpAfter <= 0 || c.Recheck.ReverifyEvery <= 0 || c.DegradeAfter < 1 || c.CheckConcurrency < 1:
		return errors.New("--give-up-after and --reverify-every must be positive, --degrade-after and --check-concurrency at least 1")
	}
	if err := c.DKIM.Validate(); err != nil {
		return err
	}
	return c.Records.Validate()
}

// App is one domaind, built and ready to serve.
type App struct {
	cfg      Config
	log      *slog.Logger
	store    store.Store
	ownStore bool
	sealer   *records.Sealer
	metrics  *metrics.Metrics
	verifier *verify.Verifier
	checker  *dnscheck.Checker
	auth     *apikey.Service
	domains  *domains.Service
	webhooks *webhook.Service
	rotator  *rotation.Rotator
	handler  http.Handler
	api      *api.Server

	stopWorkers context.CancelFunc
	workers     sync.WaitGroup
	closeOnce   sync.Once
}

// New builds the application of cfg: it opens the store (unless cfg gives one)
// and wires every part, but starts nothing; Start runs the workers, Run serves.
func New(ctx context.Context, cfg Config) (*App, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sealer, err := records.NewSealer(cfg.MasterKey)
	if err != nil {
		return nil, err
	}
	// One infrastructure cache for every check of the process: a delegation one
	// check walked, the next takes from there (dnscheck.Cache).
	if cfg.DNS.Cache == nil {
		cfg.DNS.Cache = dnscheck.NewCache(dnscheck.CacheOptions{})
	}
	checker, err := dnscheck.New(cfg.DNS)
	if err != nil {
		return nil, err
	}
	a := &App{cfg: cfg, log: log, store: cfg.Store, sealer: sealer, metrics: metrics.New(), checker: checker}
	if a.store == nil {
		if a.store, err = OpenStore(ctx, cfg.DB); err != nil {
			return nil, err
		}
		a.ownStore = true
	}
	// Every service writes through the watched store, which tells the read
	// caches of each write to a domain once it is made.
	watchedStore := watched.New(a.store)
	a.store = watchedStore
	a.verifier = verify.New(a.store, checker, verify.Config{
		Budget: cfg.VerifyBudget, MinInterval: cfg.VerifyMinInterval,
		Rules: domain.Rules{DegradeAfter: cfg.DegradeAfter}, Recheck: cfg.Recheck,
	}, cfg.Now, log)
	a.verifier.Observer = observers{a.metrics, cfg.CheckObserver}
	keygen := cfg.Keygen
	if keygen == nil {
		keygen = domains.NewKeyGate(cfg.KeygenConcurrency, 0)
	}
	a.auth = &apikey.Service{Store: a.store, Now: cfg.Now}
	recs := cfg.Records
	if cfg.DKIM.Mode == domain.DKIMModeCNAME {
		recs.DKIMZone = cfg.DKIM.Zone
	}
	a.rotator = &rotation.Rotator{
		Store: a.store, Checker: checker, Sealer: sealer, Records: recs, Config: cfg.DKIM,
		Updater: rotation.NewUpdater(cfg.DKIM), Keygen: keygen, Now: cfg.Now, Log: log,
		Poll: cfg.RotationPoll, RetryBase: cfg.RotationRetryBase, Observer: a.metrics,
	}
	a.domains = &domains.Service{
		Store: a.store, Verifier: a.verifier, Records: recs, Sealer: sealer, Regions: cfg.Regions,
		Log: log, AllowPrivateNames: cfg.DNS.AllowPrivate, Keygen: keygen, Now: cfg.Now, Rotator: a.rotator,
	}
	a.webhooks = &webhook.Service{
		Store: a.store, Sealer: sealer, AllowPrivate: cfg.WebhookAllowPrivate, Max: cfg.MaxWebhooks,
		Now: cfg.Now, Log: log,
	}
	// One budget per key, spent by the API and the dashboard alike.
	keys := ratelimit.NewKeys(cfg.RateLimit)
	var addrs *ratelimit.Addrs
	if cfg.AnonRateLimit.N > 0 {
		addrs = ratelimit.NewAddrs(cfg.AnonRateLimit, 0, cfg.TrustedProxies)
	}
	getCache := cfg.ReadCache
	if ev, ok := unwrap(watchedStore).(epochStore); ok {
		getCache.Epoch = ev.DataVersion
	}
	apiHandler := api.New(api.Config{
		Auth: a.auth, Domains: a.domains, Webhooks: a.webhooks, Keys: keys, Addrs: addrs, Now: cfg.Now, Log: log,
		GetCache: getCache,
	})
	watchedStore.Watch(apiHandler.GetCache())
	a.api = apiHandler
	mux := http.NewServeMux()
	// /metrics is for the operator's scraper and carries no customer data, so
	// it sits beside the API without a key; keep the listener off the internet.
	mux.Handle("/metrics", a.metrics.Handler())
	for _, p := range []string{"/v1/", "/api/", "/healthz", "/openapi.json"} {
		mux.Handle(p, apiHandler)
	}
	// Everything else is the dashboard, whose sign-in page is public.
	mux.Handle("/", dashboard.New(dashboard.Config{
		Auth: a.auth, Domains: a.domains, Now: cfg.Now, Log: log,
		SessionTTL: cfg.SessionTTL, SecureCookies: cfg.SecureCookies, Keys: keys, Addrs: addrs,
	}))
	a.handler = mux
	return a, nil
}

// epochStore is a store that can tell when another process wrote it
// (sqlite.Store's PRAGMA data_version).
type epochStore interface {
	DataVersion(ctx context.Context) (uint64, error)
}

// unwrap returns the store st wraps, through every layer that says what it
// wraps.
func unwrap(st store.Store) store.Store {
	for {
		u, ok := st.(interface{ Unwrap() store.Store })
		if !ok {
			return st
		}
		st = u.Unwrap()
	}
}

// observers tells every observer of a check.
type observers []verify.Observer

func (o observers) CheckDone(outcome string, took time.Duration) {
	for _, ob := range o {
		if ob != nil {
			ob.CheckDone(outcome, took)
		}
	}
}

// Handler serves the API, the dashboard and /metrics.
func (a *App) Handler() http.Handler { return a.handler }

// APIHandler serves the API alone, as Handler mounts it: for tests of the API
// that mean every path, unknown ones too, to be the API's.
func (a *App) APIHandler() http.Handler { return a.api }

// Store, Verifier, Domains, Auth and Webhooks are the parts New built, for the
// commands and tests that drive them directly.
func (a *App) Store() store.Store         { return a.store }
func (a *App) Verifier() *verify.Verifier { return a.verifier }
func (a *App) Domains() *domains.Service  { return a.domains }
func (a *App) Auth() *apikey.Service      { return a.auth }
func (a *App) Webhooks() *webhook.Service { return a.webhooks }
func (a *App) Sealer() *records.Sealer    { return a.sealer }

// GetCache is the API's cache of GET /v1/domains/{id}'s answers, for tests
// and the bench to look into.
func (a *App) GetCache() api.GetCache { return a.api.GetCache() }

// Rotator takes domains through their DKIM key rotations; RotationWorker is
// the worker Start runs over it, for tests that run steps themselves.
func (a *App) Rotator() *rotation.Rotator { return a.rotator }
func (a *App) RotationWorker() *rotation.Worker {
	return &rotation.Worker{Rotator: a.rotator, Interval: a.cfg.RotationInterval, Log: a.log}
}

// Start runs the background workers, the automatic checks and the webhook
// deliveries, until Close; each can be left out by the Config.
func (a *App) Start() {
	// An operator's own GOGC or GOMEMLIMIT wins over these defaults.
	if a.cfg.GCPercent > 0 && os.Getenv("GOGC") == "" && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetGCPercent(a.cfg.GCPercent)
		debug.SetMemoryLimit(gcMemoryLimit(a.cfg.ReadCache))
	}
	bg, stop := context.WithCancel(context.Background())
	a.stopWorkers = stop
	if !a.cfg.NoScheduler {
		worker := &schedule.Worker{
			Store: a.store, Checker: a.verifier, Log: a.log, Concurrency: a.cfg.CheckConcurrency,
			ProjectShare: a.cfg.ProjectShare, Lag: a.metrics.QueueLag,
			Interval: a.cfg.SchedulerInterval, Lease: a.cfg.SchedulerLease, Now: a.cfg.Now,
		}
		a.workers.Go(func() { worker.Run(bg) })
	}
	if !a.cfg.NoRotator {
		w := a.RotationWorker()
		a.workers.Go(func() { w.Run(bg) })
	}
	if !a.cfg.NoDeliverer {
		d := &webhook.Deliverer{
			Store: a.store, Sealer: a.sealer, Client: webhook.NewClient(a.cfg.WebhookAllowPrivate, a.cfg.WebhookTimeout),
			Log: a.log, Observer: a.metrics, EndpointConcurrency: a.cfg.WebhookEndpointConcurrency,
			Backoff: a.cfg.WebhookBackoff, Interval: a.cfg.WebhookInterval,
			ParkBase: a.cfg.WebhookParkBase, ParkMax: a.cfg.WebhookParkMax,
		}
		a.workers.Go(func() { d.Run(bg) })
	}
}

// defaultGCPercent is serve's garbage collector target. What a replica keeps
// live in Go's heap is small (SQLite's page cache is not in it), and a busy
// replica allocates some 85 KB a check, so with the runtime's default of 100
// it collected garbage several times a second and spent 10-15% of its CPU
// doing so; letting the heap grow to five times what is live gave 15-20% more
// background checks a second in the bench's scale-out section.
const defaultGCPercent = 400

// gcMemoryLimit is the soft memory limit that goes with defaultGCPercent:
// where much is live (a full read cache), the collector runs as the heap nears
// it, so the heap stays within it rather than at five times the cache: twice
// the read cache's bound and 256 MiB more (768 MiB for serve's default cache;
// with the runtime's defaults, a full one took about 600 MiB).
func gcMemoryLimit(c readcache.Config) int64 {
	return 256<<20 + 2*c.MaxBytes
}

// Close stops the workers, then the verifier's checks, then closes the store
// if New opened it. It may be called more than once.
func (a *App) Close() error {
	var err error
	a.closeOnce.Do(func() {
		if a.stopWorkers != nil {
			a.stopWorkers()
		}
		a.workers.Wait()
		a.verifier.Close()
		a.checker.Close()
		if a.ownStore {
			err = a.store.Close()
		}
	})
	return err
}

// Run serves HTTP on cfg.Listen and the milter on cfg.MilterListen, with the
// workers running, until ctx ends or a server fails; then it shuts down within
// 15 seconds and closes the App.
func (a *App) Run(ctx context.Context) error {
	defer a.Close()
	srv := &http.Server{
		Handler:           a.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      a.cfg.VerifyBudget + 30*time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", a.cfg.Listen)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	a.Start()
	a.log.Info("domaind serving", "addr", ln.Addr().String(), "db", RedactDSN(a.cfg.DB))
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()

	// The milter signs the platform's outgoing mail with the keys of domains
	// whose DKIM record verified; it shares the store and the sealer.
	var signer *milter.Server
	if a.cfg.MilterListen != "" {
		mln, err := net.Listen("tcp", a.cfg.MilterListen)
		if err != nil {
			srv.Close()
			return fmt.Errorf("--milter-listen: %w", err)
		}
		// go-milter reports connection errors through the standard log
		// package; send them to domaind's log.
		slog.SetDefault(a.log)
		signer = a.Milter()
		a.log.Info("milter signing", "addr", mln.Addr().String())
		go func() { errc <- signer.Serve(mln) }()
	}
	var served error
	select {
	case served = <-errc:
	case <-ctx.Done():
		a.log.Info("shutting down")
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	// The HTTP server and the milter wind down together, within one deadline.
	milterErr := make(chan error, 1)
	go func() {
		if signer == nil {
			milterErr <- nil
			return
		}
		milterErr <- signer.Shutdown(shutCtx)
	}()
	httpErr := srv.Shutdown(shutCtx)
	if served != nil {
		return served
	}
	if err := errors.Join(httpErr, <-milterErr); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// Milter builds the DKIM-signing milter Run serves on cfg.MilterListen: it
// signs with the keys of domains whose DKIM record verified, from the store
// and the sealer the services use, and counts its results in /metrics.
func (a *App) Milter() *milter.Server {
	a.metrics.MilterResults(milterResults()...)
	return milter.New(milter.Config{
		Keys: signing.New(a.store, a.sealer), Observer: a.metrics, Log: a.log, MaxConns: a.cfg.MilterMaxConns,
	})
}

// milterResults returns every result the milter counts, for /metrics to show
// from zero.
func milterResults() []string {
	out := make([]string, len(milter.Results))
	for i, r := range milter.Results {
		out[i] = string(r)
	}
	return out
}

// OpenStore opens the database a --db value names and migrates it.
func OpenStore(ctx context.Context, dsn string) (store.Store, error) {
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		path := strings.TrimPrefix(dsn, "sqlite:")
		if path == "" {
			return nil, fmt.Errorf("--db %q names no file; use sqlite:./domaind.db", dsn)
		}
		return sqlite.Open(ctx, path)
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return postgres.Open(ctx, dsn)
	}
	return nil, fmt.Errorf("--db %q must start with sqlite: or postgres://", RedactDSN(dsn))
}

// RedactDSN hides a password in a database URL for logs.
func RedactDSN(dsn string) string {
	if i := strings.Index(dsn, "@"); i > 0 && strings.Contains(dsn, "://") {
		return dsn[:strings.Index(dsn, "://")+3] + "…" + dsn[i:]
	}
	return dsn
}

// Discard is a logger that drops everything, or logs to w when verbose; tests
// pass testing.Verbose().
func Discard(verbose bool, w io.Writer) *slog.Logger {
	if verbose {
		return slog.New(slog.NewTextHandler(w, nil))
	}
	return slog.New(slog.DiscardHandler)
}
