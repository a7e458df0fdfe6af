package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/domaind/domaind/internal/api"
	"github.com/domaind/domaind/internal/dashboard"
	"github.com/domaind/domaind/internal/dnscheck"
	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/domains"
	"github.com/domaind/domaind/internal/metrics"
	"github.com/domaind/domaind/internal/milter"
	"github.com/domaind/domaind/internal/ratelimit"
	"github.com/domaind/domaind/internal/records"
	"github.com/domaind/domaind/internal/schedule"
	"github.com/domaind/domaind/internal/signing"
	"github.com/domaind/domaind/internal/store"
	"github.com/domaind/domaind/internal/store/postgres"
	"github.com/domaind/domaind/internal/store/sqlite"
	"github.com/domaind/domaind/internal/verify"
	"github.com/domaind/domaind/internal/webhook"
)

// openStore opens the database a --db value names and migrates it.
func openStore(ctx context.Context, dsn string) (store.Store, error) {
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
	return nil, fmt.Errorf("--db %q must start with sqlite: or postgres://", redactDSN(dsn))
}

func dbFlag(fs *flag.FlagSet) *string {
	return fs.String("db", "sqlite:./domaind.db", "database: sqlite:PATH or postgres://USER:PASSWORD@HOST/DB")
}

func newLogger(format string, w io.Writer) (*slog.Logger, error) {
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, nil)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, nil)), nil
	}
	return nil, fmt.Errorf("--log-format %q must be text or json", format)
}

// dnsFlags are the DNS settings shared by serve and check.
type dnsFlags struct {
	resolvers string
	timeout   time.Duration
	mode      string
	rootHints string
	authPort  int
	serverQPS float64
	// serverConc and allowPrivate: see dnscheck.Config's ServerConcurrency and
	// AllowPrivate.
	serverConc   int
	allowPrivate bool
}

func (d *dnsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&d.resolvers, "resolvers", "", "comma-separated host:port recursive resolvers (default: those of /etc/resolv.conf)")
	fs.DurationVar(&d.timeout, "dns-timeout", 2*time.Second, "timeout of each DNS query attempt")
	fs.StringVar(&d.mode, "dns-mode", "auto", "auto (authoritative, falling back to the resolvers), authoritative or recursive")
	fs.StringVar(&d.rootHints, "root-hints", "", "comma-separated IPs to start delegation walks from (default: the IANA root servers)")
	fs.IntVar(&d.authPort, "authoritative-port", 53, "port of every authoritative server, root included")
	fs.Float64Var(&d.serverQPS, "authoritative-qps", 50, "queries per second to any one authoritative server (0: no bound)")
	fs.IntVar(&d.serverConc, "authoritative-concurrency", dnscheck.DefaultServerConcurrency, "queries in flight to any one authoritative server; a query that finds it full waits at most --dns-timeout, then the record is a temporary failure")
	fs.BoolVar(&d.allowPrivate, "dns-allow-private", false, "query name servers at loopback, private and other non-public addresses learned from DNS, and accept domains outside the public DNS (corp.internal, example.test); for tests and private deployments")
}

func (d *dnsFlags) checker() (*dnscheck.Checker, error) {
	mode, err := dnscheck.ParseMode(d.mode)
	if err != nil {
		return nil, fmt.Errorf("--dns-mode: %w", err)
	}
	if d.authPort < 1 || d.authPort > 65535 {
		return nil, fmt.Errorf("--authoritative-port %d is not a port", d.authPort)
	}
	var hints []string
	if d.rootHints != "" {
		for _, h := range strings.Split(d.rootHints, ",") {
			h = strings.TrimSpace(h)
			if net.ParseIP(h) == nil {
				return nil, fmt.Errorf("--root-hints: %q is not an IP address", h)
			}
			hints = append(hints, h)
		}
	}
	var servers []string
	if d.resolvers == "" && mode == dnscheck.ModeAuthoritative {
		// Resolvers are not needed; leave them out.
	} else if d.resolvers == "" {
		if servers, err = dnscheck.SystemResolvers("/etc/resolv.conf"); err != nil {
			return nil, fmt.Errorf("--resolvers not given and %w", err)
		}
	} else {
		for _, s := range strings.Split(d.resolvers, ",") {
			s = strings.TrimSpace(s)
			if _, _, err := net.SplitHostPort(s); err != nil {
				return nil, fmt.Errorf("--resolvers: %q must be host:port", s)
			}
			servers = append(servers, s)
		}
	}
	if d.timeout <= 0 {
		return nil, errors.New("--dns-timeout must be positive")
	}
	if d.serverConc < 1 {
		return nil, fmt.Errorf("--authoritative-concurrency %d must be at least 1", d.serverConc)
	}
	return dnscheck.New(dnscheck.Config{
		Resolvers: servers, Mode: mode, RootHints: hints, AuthoritativePort: d.authPort,
		Timeout: d.timeout, Retries: 1, ServerQPS: max(d.serverQPS, 0),
		ServerConcurrency: d.serverConc, AllowPrivate: d.allowPrivate,
	})
}

func serve(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "address to listen on")
	db := dbFlag(fs)
	var dnsf dnsFlags
	dnsf.register(fs)
	var mk masterKeyFlags
	mk.register(fs)
	regions := fs.String("regions", "us-east-1,us-east-2,ap-south-1,eu-central-1", "region keys; the first is the default")
	rc := records.DefaultConfig()
	fs.StringVar(&rc.MailFromSubdomain, "mail-from-subdomain", rc.MailFromSubdomain, "label of the MAIL FROM domain")
	fs.StringVar(&rc.DKIMSelector, "dkim-selector", rc.DKIMSelector, "DKIM selector")
	fs.StringVar(&rc.OwnershipPrefix, "ownership-prefix", rc.OwnershipPrefix, "ownership record label and token prefix")
	fs.StringVar(&rc.MXTemplate, "mx-template", rc.MXTemplate, "MAIL FROM MX host; {region} is replaced")
	fs.StringVar(&rc.SPFInclude, "spf-include", rc.SPFInclude, "domain the MAIL FROM SPF record includes")
	fs.StringVar(&rc.DMARCValue, "dmarc-value", rc.DMARCValue, "DMARC record value")
	fs.StringVar(&rc.InboundMXTemplate, "inbound-mx-template", rc.InboundMXTemplate, "inbound MX host; {region} is replaced")
	fs.IntVar(&rc.DKIMBits, "dkim-bits", rc.DKIMBits, "RSA key size of generated DKIM keys")
	rateLimit := fs.String("rate-limit", "120/m", "requests per API key: N/s, N/m or N/h")
	anonRateLimit := fs.String("anon-rate-limit", "30/m", "requests without a valid API key or session, and sign-in attempts, per client address (IPv6: per /64)")
	trustedProxies := fs.String("trusted-proxies", "", "comma-separated IPs or CIDRs of reverse proxies whose X-Forwarded-For names the client (default: none; the client is the peer address)")
	keygenConcurrency := fs.Int("keygen-concurrency", 0, "DKIM keys generated at once, machine-wide; more adds wait (0: GOMAXPROCS)")
	minInterval := fs.Duration("verify-min-interval", 2*time.Second, "shortest time between two checks of one domain")
	budget := fs.Duration("verify-budget", 5*time.Second, "how long verify waits for DNS before answering")
	logFormat := fs.String("log-format", "text", "text or json")
	recheck := domain.DefaultRecheck()
	steps := fs.String("recheck-schedule", "30s,1m,2m,5m,10m,30m,1h,2h,4h,8h,12h", "waits between automatic checks of an unverified domain; the last repeats")
	fs.DurationVar(&recheck.GiveUpAfter, "give-up-after", recheck.GiveUpAfter, "stop automatic checks of a domain unverified this long after its add or last verify")
	fs.DurationVar(&recheck.ReverifyEvery, "reverify-every", recheck.ReverifyEvery, "re-check verified domains this often (jittered by 10%)")
	degradeAfter := fs.Int("degrade-after", 3, "consecutive definite failures before a verified record is reported lost")
	concurrency := fs.Int("check-concurrency", 64, "automatic checks running at once")
	projectShare := fs.String("check-project-share", "25%", "automatic checks of one project running at once: a count, or a percentage of --check-concurrency (at least 1)")
	secureCookies := fs.Bool("secure-cookies", false, "the dashboard is reached over HTTPS: mark its session cookie Secure, with the __Host- prefix")
	sessionTTL := fs.Duration("session-ttl", dashboard.DefaultSessionTTL, "how long a dashboard sign-in lasts")
	milterListen := fs.String("milter-listen", "", "HOST:PORT for the DKIM-signing milter the MTA passes outgoing mail to (smtpd_milters = inet:HOST:PORT); off when empty")
	milterMaxConns := fs.Int("milter-max-conns", milter.DefaultMaxConns, "milter connections served at once; more wait, and the MTA defers their mail after milter_connect_timeout")
	allowPrivate := fs.Bool("webhook-allow-private", false, "allow webhook URLs on loopback, private and link-local addresses (for tests; never on a shared network)")
	webhookTimeout := fs.Duration("webhook-timeout", webhook.DefaultTimeout, "how long a webhook request may take in all (connecting and the TLS handshake: at most 5s each)")
	endpointConc := fs.Int("webhook-endpoint-concurrency", webhook.DefaultEndpointConcurrency, "webhook deliveries in flight to one endpoint at most, across replicas")
	maxWebhooks := fs.Int("max-webhooks", webhook.DefaultMaxWebhooks, "webhooks a project may register")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("serve takes no arguments, got %q", fs.Args())
	}

	log, err := newLogger(*logFormat, stderr)
	if err != nil {
		return err
	}
	if err := rc.Validate(); err != nil {
		return err
	}
	limit, err := api.ParseLimit(*rateLimit)
	if err != nil {
		return fmt.Errorf("--rate-limit: %w", err)
	}
	// One budget per key, spent by the API and the dashboard alike.
	keys := ratelimit.NewKeys(limit)
	addrs, err := parseAddrLimit(*anonRateLimit, *trustedProxies)
	if err != nil {
		return err
	}
	if *keygenConcurrency < 0 {
		return errors.New("--keygen-concurrency must not be negative (0 means GOMAXPROCS)")
	}
	regionList, err := parseRegions(*regions)
	if err != nil {
		return err
	}
	if *budget <= 0 || *minInterval < 0 {
		return errors.New("--verify-budget must be positive and --verify-min-interval not negative")
	}
	if recheck.Steps, err = parseSchedule(*steps); err != nil {
		return err
	}
	if *webhookTimeout <= 0 || *endpointConc < 1 || *maxWebhooks < 1 {
		return errors.New("--webhook-timeout must be positive, --webhook-endpoint-concurrency and --max-webhooks at least 1")
	}
	if *milterMaxConns < 1 {
		return errors.New("--milter-max-conns must be at least 1")
	}
	if recheck.GiveUpAfter <= 0 || recheck.ReverifyEvery <= 0 || *degradeAfter < 1 || *concurrency < 1 {
		return errors.New("--give-up-after and --reverify-every must be positive, --degrade-after and --check-concurrency at least 1")
	}
	share, err := schedule.ParseShare(*projectShare, *concurrency)
	if err != nil {
		return fmt.Errorf("--check-project-share: %w", err)
	}
	key, err := mk.load(log, true)
	if err != nil {
		return err
	}
	sealer, err := records.NewSealer(key)
	if err != nil {
		return err
	}
	checker, err := dnsf.checker()
	if err != nil {
		return err
	}
	st, err := openStore(ctx, *db)
	if err != nil {
		return err
	}
	defer st.Close()

	m := metrics.New()
	verifier := verify.New(st, checker, verify.Config{
		Budget: *budget, MinInterval: *minInterval, Rules: domain.Rules{DegradeAfter: *degradeAfter},
		Recheck: recheck,
	}, nil, log)
	verifier.Observer = m
	defer verifier.Close()

	// Background work stops before the verifier and the store close (defers run
	// last-in, first-out).
	bg, stopBG := context.WithCancel(context.Background())
	var bgWG sync.WaitGroup
	defer bgWG.Wait()
	defer stopBG()
	worker := &schedule.Worker{Store: st, Checker: verifier, Log: log, Concurrency: *concurrency, ProjectShare: share, Lag: m.QueueLag}
	bgWG.Go(func() { worker.Run(bg) })
	deliverer := &webhook.Deliverer{
		Store: st, Sealer: sealer, Client: webhook.NewClient(*allowPrivate, *webhookTimeout), Log: log, Observer: m,
		EndpointConcurrency: *endpointConc,
	}
	bgWG.Go(func() { deliverer.Run(bg) })

	// /metrics is for the operator's scraper and carries no customer data, so it
	// sits beside the API without a key; keep the listener off the internet.
	svc := &domains.Service{Store: st, Verifier: verifier, Records: rc, Sealer: sealer, Regions: regionList, Log: log,
		AllowPrivateNames: dnsf.allowPrivate, Keygen: domains.NewKeyGate(*keygenConcurrency, 0)}
	apiHandler := api.New(api.Config{
		Store: st, Verifier: verifier, Sealer: sealer, Domains: svc,
		Keys: keys, Addrs: addrs, Log: log, WebhookAllowPrivate: *allowPrivate, MaxWebhooks: *maxWebhooks,
	})
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.Handler())
	for _, p := range []string{"/v1/", "/api/", "/healthz", "/openapi.json"} {
		mux.Handle(p, apiHandler)
	}
	// Everything else is the dashboard, whose sign-in page is public.
	mux.Handle("/", dashboard.New(dashboard.Config{
		Store: st, Sessions: st, Domains: svc, Verifier: verifier, Log: log,
		SessionTTL: *sessionTTL, SecureCookies: *secureCookies, Keys: keys, Addrs: addrs,
	}))
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      *budget + 30*time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	log.Info("domaind serving", "addr", ln.Addr().String(), "db", redactDSN(*db))
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()

	// The milter signs the platform's outgoing mail with the keys of domains
	// whose DKIM record verified; it shares the store and the sealer.
	var signer *milter.Server
	if *milterListen != "" {
		mln, err := net.Listen("tcp", *milterListen)
		if err != nil {
			srv.Close()
			return fmt.Errorf("--milter-listen: %w", err)
		}
		m.MilterResults(milterResults()...)
		// go-milter reports connection errors through the standard log
		// package; send them to domaind's log.
		slog.SetDefault(log)
		signer = milter.New(milter.Config{
			Keys: signing.New(st, sealer), Observer: m, Log: log, MaxConns: *milterMaxConns,
		})
		log.Info("milter signing", "addr", mln.Addr().String())
		go func() { errc <- signer.Serve(mln) }()
	}
	select {
	case err := <-errc:
		shutCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		srv.Shutdown(shutCtx)
		if signer != nil {
			signer.Shutdown(shutCtx)
		}
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
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
	if err := errors.Join(httpErr, <-milterErr); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
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

// parseAddrLimit builds the per-address limiter of --anon-rate-limit and
// --trusted-proxies.
func parseAddrLimit(limit, proxies string) (*ratelimit.Addrs, error) {
	l, err := ratelimit.ParseLimit(limit)
	if err != nil {
		return nil, fmt.Errorf("--anon-rate-limit: %w", err)
	}
	trusted, err := ratelimit.ParseProxies(proxies)
	if err != nil {
		return nil, fmt.Errorf("--trusted-proxies: %w", err)
	}
	return ratelimit.NewAddrs(l, 0, trusted), nil
}

// parseSchedule parses --recheck-schedule: comma-separated positive durations.
func parseSchedule(s string) ([]time.Duration, error) {
	var out []time.Duration
	for _, f := range strings.Split(s, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(f))
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("--recheck-schedule: %q is not a positive duration such as 30s or 2h", strings.TrimSpace(f))
		}
		out = append(out, d)
	}
	return out, nil
}

func parseRegions(s string) ([]string, error) {
	var out []string
	for _, r := range strings.Split(s, ",") {
		r = strings.TrimSpace(r)
		if r == "" {
			continue
		}
		if strings.ContainsAny(r, "./ ") || len(r) > 32 {
			return nil, fmt.Errorf("--regions: %q is not a region key such as us-east-1", r)
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil, errors.New("--regions names no region")
	}
	return out, nil
}

// loadMasterKey decodes --master-key, or in --dev mode reads (creating it on first
// use) a key file in the data folder.
func loadMasterKey(b64 string, dev bool, dataDir string, log *slog.Logger) ([]byte, error) {
	if b64 != "" {
		key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
		if err != nil || len(key) != 32 {
			return nil, errors.New("--master-key must be the base64 of exactly 32 bytes (try: head -c 32 /dev/urandom | base64)")
		}
		return key, nil
	}
	if !dev {
		return nil, errors.New("no --master-key (or DOMAIND_MASTER_KEY) given; generate one with 'head -c 32 /dev/urandom | base64', or pass --dev for local use")
	}
	path := filepath.Join(dataDir, "domaind-master.key")
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return nil, fmt.Errorf("--data-dir: %w", err)
		}
		if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("write dev master key: %w", err)
		}
		log.Warn("dev mode: generated a master key; do not use --dev in production", "file", path)
		return key, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read dev master key: %w", err)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data)))
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("%s does not hold the base64 of 32 bytes", path)
	}
	log.Warn("dev mode: using the master key file; do not use --dev in production", "file", path)
	return key, nil
}

// redactDSN hides a password in a database URL for logs.
func redactDSN(dsn string) string {
	if i := strings.Index(dsn, "@"); i > 0 && strings.Contains(dsn, "://") {
		return dsn[:strings.Index(dsn, "://")+3] + "…" + dsn[i:]
	}
	return dsn
}
