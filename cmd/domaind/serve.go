package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/domaind/domaind/internal/app"
	"github.com/domaind/domaind/internal/dnscheck"
	"github.com/domaind/domaind/internal/ratelimit"
	"github.com/domaind/domaind/internal/schedule"
)

func dbFlag(fs *flag.FlagSet) *string {
	return fs.String("db", app.DefaultConfig().DB, "database: sqlite:PATH or postgres://USER:PASSWORD@HOST/DB")
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
	def := app.DefaultConfig().DNS
	fs.StringVar(&d.resolvers, "resolvers", "", "comma-separated host:port recursive resolvers (default: those of /etc/resolv.conf)")
	fs.DurationVar(&d.timeout, "dns-timeout", def.Timeout, "timeout of each DNS query attempt")
	fs.StringVar(&d.mode, "dns-mode", string(def.Mode), "auto (authoritative, falling back to the resolvers), authoritative or recursive")
	fs.StringVar(&d.rootHints, "root-hints", "", "comma-separated IPs to start delegation walks from (default: the IANA root servers)")
	fs.IntVar(&d.authPort, "authoritative-port", def.AuthoritativePort, "port of every authoritative server, root included")
	fs.Float64Var(&d.serverQPS, "authoritative-qps", def.ServerQPS, "queries per second to any one authoritative server (0: no bound)")
	fs.IntVar(&d.serverConc, "authoritative-concurrency", def.ServerConcurrency, "queries in flight to any one authoritative server; a query that finds it full waits at most --dns-timeout, then the record is a temporary failure")
	fs.BoolVar(&d.allowPrivate, "dns-allow-private", false, "query name servers at loopback, private and other non-public addresses learned from DNS, and accept domains outside the public DNS (corp.internal, example.test); for tests and private deployments")
}

func (d *dnsFlags) checker() (*dnscheck.Checker, error) {
	cfg, err := d.config()
	if err != nil {
		return nil, err
	}
	return dnscheck.New(cfg)
}

// config returns the checker's configuration the flags give.
func (d *dnsFlags) config() (dnscheck.Config, error) {
	mode, err := dnscheck.ParseMode(d.mode)
	if err != nil {
		return dnscheck.Config{}, fmt.Errorf("--dns-mode: %w", err)
	}
	if d.authPort < 1 || d.authPort > 65535 {
		return dnscheck.Config{}, fmt.Errorf("--authoritative-port %d is not a port", d.authPort)
	}
	var hints []string
	if d.rootHints != "" {
		for _, h := range strings.Split(d.rootHints, ",") {
			h = strings.TrimSpace(h)
			if net.ParseIP(h) == nil {
				return dnscheck.Config{}, fmt.Errorf("--root-hints: %q is not an IP address", h)
			}
			hints = append(hints, h)
		}
	}
	var servers []string
	if d.resolvers == "" && mode == dnscheck.ModeAuthoritative {
		// Resolvers are not needed; leave them out.
	} else if d.resolvers == "" {
		if servers, err = dnscheck.SystemResolvers("/etc/resolv.conf"); err != nil {
			return dnscheck.Config{}, fmt.Errorf("--resolvers not given and %w", err)
		}
	} else {
		for _, s := range strings.Split(d.resolvers, ",") {
			s = strings.TrimSpace(s)
			if _, _, err := net.SplitHostPort(s); err != nil {
				return dnscheck.Config{}, fmt.Errorf("--resolvers: %q must be host:port", s)
			}
			servers = append(servers, s)
		}
	}
	if d.timeout <= 0 {
		return dnscheck.Config{}, errors.New("--dns-timeout must be positive")
	}
	if d.serverConc < 1 {
		return dnscheck.Config{}, fmt.Errorf("--authoritative-concurrency %d must be at least 1", d.serverConc)
	}
	cfg := app.DefaultConfig().DNS
	cfg.Resolvers, cfg.Mode, cfg.RootHints, cfg.AuthoritativePort = servers, mode, hints, d.authPort
	cfg.Timeout, cfg.ServerQPS, cfg.ServerConcurrency, cfg.AllowPrivate = d.timeout, max(d.serverQPS, 0), d.serverConc, d.allowPrivate
	return cfg, nil
}

// serve parses its flags into an app.Config and runs the one application
// app.New builds; every default is app.DefaultConfig's, and every rule of
// what may be set is app.New's (whose errors name the flags).
func serve(ctx context.Context, args []string, stderr io.Writer) error {
	cfg := app.DefaultConfig()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Listen, "listen", cfg.Listen, "address to listen on")
	db := dbFlag(fs)
	var dnsf dnsFlags
	dnsf.register(fs)
	var mk masterKeyFlags
	mk.register(fs)
	regions := fs.String("regions", strings.Join(cfg.Regions, ","), "region keys; the first is the default")
	rc := &cfg.Records
	fs.StringVar(&rc.MailFromSubdomain, "mail-from-subdomain", rc.MailFromSubdomain, "label of the MAIL FROM domain")
	fs.StringVar(&rc.DKIMSelector, "dkim-selector", rc.DKIMSelector, "DKIM selector")
	fs.StringVar(&rc.OwnershipPrefix, "ownership-prefix", rc.OwnershipPrefix, "ownership record label and token prefix")
	fs.StringVar(&rc.MXTemplate, "mx-template", rc.MXTemplate, "MAIL FROM MX host; {region} is replaced")
	fs.StringVar(&rc.SPFInclude, "spf-include", rc.SPFInclude, "domain the MAIL FROM SPF record includes")
	fs.StringVar(&rc.DMARCValue, "dmarc-value", rc.DMARCValue, "DMARC record value")
	fs.StringVar(&rc.InboundMXTemplate, "inbound-mx-template", rc.InboundMXTemplate, "inbound MX host; {region} is replaced")
	fs.IntVar(&rc.DKIMBits, "dkim-bits", rc.DKIMBits, "RSA key size of generated DKIM keys: new domains' and the next key of every rotation, so a rotation upgrades 1024-bit keys")
	var rf rotationFlags
	rf.register(fs)
	rateLimit := fs.String("rate-limit", cfg.RateLimit.String(), "requests per API key: N/s, N/m or N/h")
	anonRateLimit := fs.String("anon-rate-limit", cfg.AnonRateLimit.String(), "requests without a valid API key or session, and sign-in attempts, per client address (IPv6: per /64)")
	trustedProxies := fs.String("trusted-proxies", "", "comma-separated IPs or CIDRs of reverse proxies whose X-Forwarded-For names the client (default: none; the client is the peer address)")
	fs.IntVar(&cfg.KeygenConcurrency, "keygen-concurrency", cfg.KeygenConcurrency, "DKIM keys generated at once, machine-wide; more adds wait (0: GOMAXPROCS)")
	fs.DurationVar(&cfg.VerifyMinInterval, "verify-min-interval", cfg.VerifyMinInterval, "shortest time between two checks of one domain")
	fs.DurationVar(&cfg.VerifyBudget, "verify-budget", cfg.VerifyBudget, "how long verify waits for DNS before answering")
	logFormat := fs.String("log-format", "text", "text or json")
	steps := fs.String("recheck-schedule", formatSchedule(cfg.Recheck.Steps), "waits between automatic checks of an unverified domain; the last repeats")
	fs.DurationVar(&cfg.Recheck.GiveUpAfter, "give-up-after", cfg.Recheck.GiveUpAfter, "stop automatic checks of a domain unverified this long after its add or last verify")
	fs.DurationVar(&cfg.Recheck.ReverifyEvery, "reverify-every", cfg.Recheck.ReverifyEvery, "re-check verified domains this often (jittered by 10%)")
	fs.IntVar(&cfg.DegradeAfter, "degrade-after", cfg.DegradeAfter, "consecutive definite failures before a verified record is reported lost")
	fs.IntVar(&cfg.CheckConcurrency, "check-concurrency", cfg.CheckConcurrency, "automatic checks running at once")
	projectShare := fs.String("check-project-share", strconv.Itoa(schedule.DefaultShare)+"%", "automatic checks of one project running at once: a count, or a percentage of --check-concurrency (at least 1)")
	fs.BoolVar(&cfg.SecureCookies, "secure-cookies", cfg.SecureCookies, "the dashboard is reached over HTTPS: mark its session cookie Secure, with the __Host- prefix")
	fs.DurationVar(&cfg.SessionTTL, "session-ttl", cfg.SessionTTL, "how long a dashboard sign-in lasts")
	fs.StringVar(&cfg.MilterListen, "milter-listen", "", "HOST:PORT for the DKIM-signing milter the MTA passes outgoing mail to (smtpd_milters = inet:HOST:PORT); off when empty")
	fs.IntVar(&cfg.MilterMaxConns, "milter-max-conns", cfg.MilterMaxConns, "milter connections served at once; more wait, and the MTA defers their mail after milter_connect_timeout")
	fs.BoolVar(&cfg.WebhookAllowPrivate, "webhook-allow-private", false, "allow webhook URLs on loopback, private and link-local addresses (for tests; never on a shared network)")
	fs.DurationVar(&cfg.WebhookTimeout, "webhook-timeout", cfg.WebhookTimeout, "how long a webhook request may take in all (connecting and the TLS handshake: at most 5s each)")
	fs.IntVar(&cfg.WebhookEndpointConcurrency, "webhook-endpoint-concurrency", cfg.WebhookEndpointConcurrency, "webhook deliveries in flight to one endpoint at most, across replicas")
	fs.IntVar(&cfg.MaxWebhooks, "max-webhooks", cfg.MaxWebhooks, "webhooks a project may register")
	readCacheMiB := fs.Int64("read-cache-mib", cfg.ReadCache.MaxBytes>>20, "MiB of GET /v1/domains/{id} answers kept in memory, at most "+fmt.Sprint(cfg.ReadCache.MaxEntries)+" domains (0: none)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case *readCacheMiB < 0 || *readCacheMiB > 1<<20:
		return errors.New("--read-cache-mib must be from 0 to 1048576")
	case *readCacheMiB == 0:
		cfg.ReadCache.MaxEntries = 0
	default:
		cfg.ReadCache.MaxBytes = *readCacheMiB << 20
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("serve takes no arguments, got %q", fs.Args())
	}
	log, err := newLogger(*logFormat, stderr)
	if err != nil {
		return err
	}
	cfg.Log, cfg.DB = log, *db
	// Only parsing happens here; whether the settings go together (and
	// every --dkim-*, --keygen-concurrency, --check-concurrency rule) is
	// app.New's to say, in the one place tests and the bench reach too.
	if cfg.DKIM, err = rf.config(); err != nil {
		return err
	}
	if cfg.RateLimit, err = ratelimit.ParseLimit(*rateLimit); err != nil {
		return fmt.Errorf("--rate-limit: %w", err)
	}
	if cfg.AnonRateLimit, err = ratelimit.ParseLimit(*anonRateLimit); err != nil {
		return fmt.Errorf("--anon-rate-limit: %w", err)
	}
	if cfg.TrustedProxies, err = ratelimit.ParseProxies(*trustedProxies); err != nil {
		return fmt.Errorf("--trusted-proxies: %w", err)
	}
	if cfg.Regions, err = parseRegions(*regions); err != nil {
		return err
	}
	if cfg.Recheck.Steps, err = parseSchedule(*steps); err != nil {
		return err
	}
	if cfg.ProjectShare, err = schedule.ParseShare(*projectShare, cfg.CheckConcurrency); err != nil {
		return fmt.Errorf("--check-project-share: %w", err)
	}
	if cfg.MasterKey, err = mk.load(log, true); err != nil {
		return err
	}
	if cfg.DNS, err = dnsf.config(); err != nil {
		return err
	}
	a, err := app.New(ctx, cfg)
	if err != nil {
		return err
	}
	return a.Run(ctx)
}

// formatSchedule is the --recheck-schedule form of steps.
func formatSchedule(steps []time.Duration) string {
	out := make([]string, len(steps))
	for i, d := range steps {
		out[i] = formatDuration(d)
	}
	return strings.Join(out, ",")
}

// formatDuration writes d as people write schedules: 30s, 1m, 2h.
func formatDuration(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return d.String()
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
	return out, nil
}
