package dashboard_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/domaind/domaind/internal/app"
	"github.com/domaind/domaind/internal/apptest"
	"github.com/domaind/domaind/internal/testenv"

	"github.com/domaind/domaind/internal/dnscheck"
	"github.com/domaind/domaind/internal/dnstest"
	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/domains"
	"github.com/domaind/domaind/internal/ratelimit"
	"github.com/domaind/domaind/internal/store/sqlite"
	"github.com/domaind/domaind/internal/verify"
)

// env is the dashboard served over real HTTP on loopback, with a real SQLite
// store and a real verifier that asks a real DNS server on loopback whose zone
// (example.com.) the test edits.
type env struct {
	t        *testing.T
	url      string
	store    *sqlite.Store
	dbPath   string
	zone     *dnstest.Zone
	app      *app.App
	domains  *domains.Service
	verifier *verify.Verifier
	// clock is the dashboard's clock: real time plus an offset the test
	// moves, so that sessions can be made to expire without waiting.
	clock *testenv.Clock
	ttl   time.Duration

	key       string // an API key of project "acme"
	projectID int64  // acme's id
}

type envOptions struct {
	secureCookies bool
	// minInterval is the verifier's shortest time between two checks.
	minInterval time.Duration
	// rateLimit, when set, is the budget of each API key, and the API is served
	// beside the dashboard (as serve does) spending the same budget.
	rateLimit string
	// addrLimit, when set, limits sign-ins and requests without a live session
	// per client address, as serve's --anon-rate-limit does.
	addrLimit string
	// keygen, when set, is the gate the domain adds generate keys under.
	keygen *domains.KeyGate
}

var testMasterKey = bytes.Repeat([]byte{7}, 32)

// newEnv serves the application app.New builds, as serve does, with the
// options on top of serve's defaults.
func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	e := &env{t: t, dbPath: filepath.Join(t.TempDir(), "domaind.db"), clock: testenv.RealClock(), ttl: time.Hour}
	e.zone = dnstest.NewZone("example.com.")
	dnsServer := dnstest.Start(t, e.zone)

	st, err := sqlite.Open(t.Context(), e.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	// Cleanups run last first: the server, the app, then its store.
	t.Cleanup(func() { st.Close() })
	e.store = st
	cfg := apptest.Config(testMasterKey)
	cfg.Store = st
	// Recursive mode: the loopback server stands in for a resolver, so checks
	// never leave the machine.
	cfg.DNS = dnscheck.Config{
		Resolvers: []string{dnsServer.Addr()}, Mode: dnscheck.ModeRecursive,
		Timeout: 500 * time.Millisecond, Retries: 1, AllowPrivate: true,
	}
	cfg.VerifyMinInterval, cfg.DegradeAfter = o.minInterval, 1
	cfg.Regions = []string{"us-east-1", "eu-central-1"}
	cfg.Keygen, cfg.Now, cfg.SessionTTL, cfg.SecureCookies = o.keygen, e.clock.Now, e.ttl, o.secureCookies
	// Without a rate limit the budget is out of reach.
	cfg.RateLimit, cfg.AnonRateLimit = ratelimit.Limit{N: 1 << 30, Per: time.Second}, ratelimit.Limit{}
	if o.rateLimit != "" {
		cfg.RateLimit = apptest.Limit(t, o.rateLimit)
	}
	if o.addrLimit != "" {
		cfg.AnonRateLimit = apptest.Limit(t, o.addrLimit)
	}
	cfg.NoScheduler, cfg.NoDeliverer = true, true
	a := apptest.New(t, cfg)
	e.app, e.domains, e.verifier = a, a.Domains(), a.Verifier()
	srv := httptest.NewServer(a.Handler())
	e.url = srv.URL
	t.Cleanup(srv.Close)
	e.key, e.projectID = e.newKey("acme")
	return e
}

// newKey creates the project if new and returns a fresh API key of it.
func (e *env) newKey(project string) (string, int64) {
	e.t.Helper()
	key, k, err := e.app.Auth().Create(context.Background(), project, time.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	return key, k.ProjectID
}

// addDomain adds a domain to a project the way the dashboard does.
func (e *env) addDomain(projectID int64, name string) *domain.Domain {
	e.t.Helper()
	d, err := e.domains.Add(context.Background(), projectID, name, "")
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

// publish puts every record of d into the test zone, as a customer would at a
// DNS provider.
func (e *env) publish(d *domain.Domain) {
	e.t.Helper()
	for _, r := range d.Records {
		var err error
		switch r.Type {
		case "TXT":
			err = e.zone.AddTXT(r.Name+".", r.Value)
		case "MX":
			err = e.zone.Add(r.Name + ". 300 IN MX " + strconv.Itoa(int(r.Priority)) + " " + r.Value + ".")
		}
		if err != nil {
			e.t.Fatal(err)
		}
	}
}

// client is a browser as far as HTTP goes: it keeps cookies and does not
// follow redirects, so that tests see them.
type client struct {
	e    *env
	http *http.Client
	// origin is sent as the Origin header of every POST, as browsers do.
	origin string
}

func (e *env) client() *client { return e.clientFrom(nil) }

// signedIn is a new client signed in with the project's key.
func (e *env) signedIn() *client {
	e.t.Helper()
	c := e.client()
	c.signIn(e.key)
	return c
}

// clientFrom is a client whose connections come from the local address ip (any
// of 127.0.0.0/8), so that the server sees a browser of that address; nil means
// the system's choice.
func (e *env) clientFrom(ip net.IP) *client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		e.t.Fatal(err)
	}
	var transport http.RoundTripper
	if ip != nil {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}}
		transport = &http.Transport{DialContext: d.DialContext}
	}
	return &client{e: e, origin: e.url, http: &http.Client{
		Jar:           jar,
		Transport:     transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

type response struct {
	status int
	header http.Header
	body   string
}

func (c *client) do(req *http.Request) response {
	c.e.t.Helper()
	resp, b := apptest.Do(c.e.t, c.http, req)
	return response{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

func (c *client) get(path string) response {
	c.e.t.Helper()
	req, err := http.NewRequest("GET", c.e.url+path, nil)
	if err != nil {
		c.e.t.Fatal(err)
	}
	return c.do(req)
}

// post sends a form; header adds or overrides headers.
func (c *client) post(path string, form url.Values, header map[string]string) response {
	c.e.t.Helper()
	req, err := http.NewRequest("POST", c.e.url+path, strings.NewReader(form.Encode()))
	if err != nil {
		c.e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if c.origin != "" {
		req.Header.Set("Origin", c.origin)
	}
	for k, v := range header {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	return c.do(req)
}

// signIn signs the client in with key and fails the test if that does not work.
func (c *client) signIn(key string) {
	c.e.t.Helper()
	r := c.post("/signin", url.Values{"key": {key}}, nil)
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/" {
		c.e.t.Fatalf("sign in: status %d, Location %q: %s", r.status, r.header.Get("Location"), r.body)
	}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf returns the CSRF token of the client's session, read from a page as a
// browser would.
func (c *client) csrf() string {
	c.e.t.Helper()
	r := c.get("/")
	m := csrfField.FindStringSubmatch(r.body)
	if r.status != http.StatusOK || m == nil {
		c.e.t.Fatalf("no CSRF token on the domains page (status %d)", r.status)
	}
	return m[1]
}

// sessionCookie returns the value of the client's session cookie, or "".
func (c *client) sessionCookie() string {
	u, _ := url.Parse(c.e.url)
	for _, ck := range c.http.Jar.Cookies(u) {
		if ck.Name == "domaind_session" {
			return ck.Value
		}
	}
	return ""
}

// sha256Of is how the dashboard stores a session token.
func sha256Of(token string) [32]byte { return sha256.Sum256([]byte(token)) }
