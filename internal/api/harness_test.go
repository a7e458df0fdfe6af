package api_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/domaind/domaind/internal/app"
	"github.com/domaind/domaind/internal/apptest"
	"github.com/domaind/domaind/internal/dnscheck"
	"github.com/domaind/domaind/internal/dnstest"
	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/domains"
	"github.com/domaind/domaind/internal/ratelimit"
	"github.com/domaind/domaind/internal/store"
	"github.com/domaind/domaind/internal/verify"
)

// env is one domaind API served over real HTTP on loopback, checking DNS against a
// real DNS server on loopback whose zone the test edits.
type env struct {
	t        *testing.T
	url      string
	key      string // an API key of project "acme"
	dns      *dnstest.Server
	zone     *dnstest.Zone // example.com.
	store    store.Store
	verifier *verify.Verifier
	app      *app.App
	cfg      app.Config // what app was built from, for variants
	dbPath   string
	close    func()
}

type envOptions struct {
	rateLimit   string
	minInterval time.Duration
	budget      time.Duration
	dnsTimeout  time.Duration
	dkimBits    int
	dbPath      string
	dnsServer   *dnstest.Server
	// recheck, when set, runs the background scheduler with this policy.
	recheck      *domain.Recheck
	degradeAfter int
	// webhooks allows private webhook URLs and runs a delivery worker with a
	// fast backoff.
	webhooks bool
	// postgres, when set, is the DSN of a PostgreSQL database to use instead of
	// a SQLite file: two envs on one database are two replicas.
	postgres string
	// manualWorker keeps the harness from running the scheduler even with a
	// recheck policy, for tests that run workers themselves.
	manualWorker bool
	// addrLimit, when set, limits requests without a valid key per client
	// address, as serve's --anon-rate-limit does.
	addrLimit string
	// keygen, when set, is the gate the domain adds generate keys under.
	keygen *domains.KeyGate
	// now, when set, is the API's clock.
	now func() time.Time
}

// newEnv serves the application app.New builds, as serve does, with the
// options on top of serve's defaults.
func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	if o.rateLimit == "" {
		o.rateLimit = "10000/m"
	}
	if o.dnsTimeout == 0 {
		o.dnsTimeout = 300 * time.Millisecond
	}
	if o.dbPath == "" {
		o.dbPath = filepath.Join(t.TempDir(), "domaind.db")
	}
	e := &env{t: t, dbPath: o.dbPath}
	if o.dnsServer != nil {
		e.dns = o.dnsServer
		e.zone = o.dnsServer.Zone("example.com.")
	} else {
		e.zone = dnstest.NewZone("example.com.")
		e.dns = dnstest.Start(t, e.zone)
	}
	cfg := apptest.Config(testMasterKey)
	cfg.DB = "sqlite:" + o.dbPath
	if o.postgres != "" {
		cfg.DB = o.postgres
	}
	// Recursive mode: the loopback server stands in for a resolver; the default
	// root hints would take an authoritative walk off loopback.
	cfg.DNS = dnscheck.Config{Resolvers: []string{e.dns.Addr()}, Mode: dnscheck.ModeRecursive, Timeout: o.dnsTimeout, Retries: 1, AllowPrivate: true}
	cfg.Records.DKIMBits = cmp.Or(o.dkimBits, 1024) // fast; one test uses 2048
	cfg.VerifyBudget = cmp.Or(o.budget, 5*time.Second)
	cfg.VerifyMinInterval = o.minInterval
	cfg.DegradeAfter = max(o.degradeAfter, 1)
	if o.recheck != nil {
		cfg.Recheck = *o.recheck
	}
	cfg.NoScheduler = o.recheck == nil || o.manualWorker
	cfg.SchedulerInterval, cfg.SchedulerLease = 10*time.Millisecond, 5*time.Second
	cfg.RateLimit = apptest.Limit(t, o.rateLimit)
	cfg.AnonRateLimit = ratelimit.Limit{}
	if o.addrLimit != "" {
		cfg.AnonRateLimit = apptest.Limit(t, o.addrLimit)
	}
	cfg.Keygen, cfg.Now = o.keygen, o.now
	cfg.WebhookAllowPrivate, cfg.NoDeliverer = o.webhooks, !o.webhooks
	cfg.WebhookTimeout = 2 * time.Second
	// A failing endpoint is parked no longer than its deliveries wait.
	cfg.WebhookBackoff, cfg.WebhookInterval = []time.Duration{50 * time.Millisecond}, 10*time.Millisecond
	cfg.WebhookParkBase, cfg.WebhookParkMax = 50*time.Millisecond, 50*time.Millisecond
	a, srv := startApp(t, cfg)
	a.Start()
	e.app, e.cfg, e.store, e.verifier, e.url = a, cfg, a.Store(), a.Verifier(), srv.URL
	var closed bool
	e.close = func() {
		if closed {
			return
		}
		closed = true
		srv.Close()
		a.Close()
	}
	t.Cleanup(e.close)
	e.key = e.newKey("acme")
	return e
}

// startApp builds the application of cfg and serves its API on loopback.
func startApp(t *testing.T, cfg app.Config) (*app.App, *httptest.Server) {
	t.Helper()
	a := apptest.New(t, cfg)
	return a, httptest.NewServer(a.APIHandler())
}

// variant returns a copy of e served by another application on e's store,
// built from e's configuration changed by change; its workers do not run.
func (e *env) variant(change func(*app.Config)) *env {
	e.t.Helper()
	cfg := e.cfg
	cfg.Store = e.store
	change(&cfg)
	a, srv := startApp(e.t, cfg)
	e.t.Cleanup(func() { srv.Close(); a.Close() })
	v := *e
	v.url = srv.URL
	return &v
}

// newKey creates a project if new and returns a fresh API key for it.
func (e *env) newKey(project string) string {
	e.t.Helper()
	key, _, err := e.app.Auth().Create(context.Background(), project, time.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	return key
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response is not a JSON object: %v\n%s", err, r.body)
	}
	return m
}

// do sends a request with the given API key ("" for none) and returns the response.
func (e *env) do(method, path, body, key string) response {
	e.t.Helper()
	return e.doFrom(nil, method, path, body, key)
}

// doFrom is do from the local address ip (any of 127.0.0.0/8), so that the
// server sees a client of that address; nil means the system's choice.
func (e *env) doFrom(ip net.IP, method, path, body, key string) response {
	e.t.Helper()
	client := http.DefaultClient
	if ip != nil {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}}
		client = &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
	}
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, b := apptest.Do(e.t, client, req)
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// domainJSON mirrors the contract's Domain, for tests that read it.
type domainJSON struct {
	ID                      string  `json:"id"`
	DomainName              string  `json:"domainName"`
	VerificationStatus      string  `json:"verificationStatus"`
	OwnershipVerified       bool    `json:"ownershipVerified"`
	DKIMEnabled             bool    `json:"dkimEnabled"`
	MailFromEnabled         bool    `json:"mailFromEnabled"`
	DMARCEnabled            bool    `json:"dmarcEnabled"`
	CreatedAt               string  `json:"createdAt"`
	LastCheckedAt           string  `json:"lastCheckedAt"`
	VerifiedAt              *string `json:"verifiedAt"`
	RegionKey               string  `json:"regionKey"`
	VerificationInProgress  bool    `json:"verificationInProgress"`
	InboundEnabledAt        *string `json:"inboundEnabledAt"`
	InboundDomainVerifiedAt *string `json:"inboundDomainVerifiedAt"`
	DNSRecords              struct {
		Ownership recordJSON   `json:"ownership"`
		DKIM      recordJSON   `json:"dkim"`
		MailFrom  []recordJSON `json:"mailFrom"`
		DMARC     recordJSON   `json:"dmarc"`
		InboundMX *recordJSON  `json:"inboundMx"`
	} `json:"dnsRecords"`
}

type recordJSON struct {
	Name     string  `json:"name"`
	Value    string  `json:"value"`
	Type     string  `json:"type"`
	Purpose  string  `json:"purpose"`
	Priority *uint16 `json:"priority"`
}

// decodeStrict decodes b into v, failing on any field v does not declare.
func decodeStrict(t *testing.T, b []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("response does not match the contract's shape: %v\n%s", err, b)
	}
}

// call runs one request with e.key and fails the test unless it answers want; it
// decodes the body into out strictly, so that a field the contract lacks fails too.
func (e *env) call(method, path, body string, want int, out any) {
	e.t.Helper()
	r := e.do(method, path, body, e.key)
	if r.status != want {
		e.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.status, want, r.body)
	}
	decodeStrict(e.t, r.body, out)
}

// getData GETs path with e.key, fails the test unless it answers 200, and
// returns the answer's data; T may declare only the fields a test reads.
func getData[T any](e *env, path string) T {
	e.t.Helper()
	r := e.do("GET", path, "", e.key)
	if r.status != http.StatusOK {
		e.t.Fatalf("GET %s: %d %s", path, r.status, r.body)
	}
	var env struct {
		Data T `json:"data"`
	}
	if err := json.Unmarshal(r.body, &env); err != nil {
		e.t.Fatalf("GET %s: %v", path, err)
	}
	return env.Data
}

// v1Domain is the v1 answer that carries one domain.
type v1Domain struct {
	Success bool       `json:"success"`
	Data    domainJSON `json:"data"`
}

// addDomain adds name and returns the created domain.
func (e *env) addDomain(name string) domainJSON {
	e.t.Helper()
	var v v1Domain
	e.call("POST", "/v1/domains", `{"domain":"`+name+`"}`, http.StatusCreated, &v)
	return v.Data
}

type verifyJSON struct {
	Success bool   `json:"success"`
	Message string `json:"message"`
	Data    struct {
		Domain                 domainJSON `json:"domain"`
		VerificationInProgress bool       `json:"verificationInProgress"`
		OwnershipVerified      bool       `json:"ownershipVerified"`
		VerificationStatus     string     `json:"verificationStatus"`
		DKIMEnabled            bool       `json:"dkimEnabled"`
		MailFromEnabled        bool       `json:"mailFromEnabled"`
		DMARCEnabled           bool       `json:"dmarcEnabled"`
		UncheckedRecords       []struct {
			Record  string `json:"record"`
			Name    string `json:"name"`
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"uncheckedRecords"`
	} `json:"data"`
}

func (e *env) verify(id string) verifyJSON {
	e.t.Helper()
	var v verifyJSON
	e.call("POST", "/v1/domains/"+id+"/verify", "", http.StatusOK, &v)
	return v
}

func (e *env) get(id string) domainJSON {
	e.t.Helper()
	var v v1Domain
	e.call("GET", "/v1/domains/"+id, "", http.StatusOK, &v)
	return v.Data
}

// publish adds the record to the test zone, as a customer would in a DNS panel.
func (e *env) publish(r recordJSON) {
	e.t.Helper()
	var err error
	switch r.Type {
	case "TXT":
		err = e.zone.AddTXT(r.Name+".", r.Value)
	case "MX":
		err = e.zone.Add(r.Name + ". 300 IN MX " + strconv.Itoa(int(*r.Priority)) + " " + r.Value + ".")
	default:
		e.t.Fatalf("cannot publish type %s", r.Type)
	}
	if err != nil {
		e.t.Fatal(err)
	}
}

// waitFor polls cond every 20ms until it holds or the deadline passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
