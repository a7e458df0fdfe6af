package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/domaind/domaind/internal/api"
	"github.com/domaind/domaind/internal/apikey"
	"github.com/domaind/domaind/internal/dnscheck"
	"github.com/domaind/domaind/internal/dnstest"
	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/domains"
	"github.com/domaind/domaind/internal/ratelimit"
	"github.com/domaind/domaind/internal/records"
	"github.com/domaind/domaind/internal/schedule"
	"github.com/domaind/domaind/internal/store"
	"github.com/domaind/domaind/internal/store/postgres"
	"github.com/domaind/domaind/internal/store/sqlite"
	"github.com/domaind/domaind/internal/verify"
	"github.com/domaind/domaind/internal/webhook"
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

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	if o.rateLimit == "" {
		o.rateLimit = "10000/m"
	}
	if o.budget == 0 {
		o.budget = 5 * time.Second
	}
	if o.dnsTimeout == 0 {
		o.dnsTimeout = 300 * time.Millisecond
	}
	if o.dkimBits == 0 {
		o.dkimBits = 1024 // fast; one test uses 2048
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

	ctx := context.Background()
	var st store.Store
	var err error
	if o.postgres != "" {
		st, err = postgres.Open(ctx, o.postgres)
	} else {
		st, err = sqlite.Open(ctx, o.dbPath)
	}
	if err != nil {
		t.Fatal(err)
	}
	e.store = st
	// Recursive mode: the loopback server stands in for a resolver; the default
	// root hints would take an authoritative walk off loopback.
	checker, err := dnscheck.New(dnscheck.Config{Resolvers: []string{e.dns.Addr()}, Mode: dnscheck.ModeRecursive, Timeout: o.dnsTimeout, Retries: 1, AllowPrivate: true})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	recheck := domain.DefaultRecheck()
	if o.recheck != nil {
		recheck = *o.recheck
	}
	v := verify.New(st, checker, verify.Config{
		Budget: o.budget, MinInterval: o.minInterval, Rules: domain.Rules{DegradeAfter: max(o.degradeAfter, 1)},
		Recheck: recheck,
	}, nil, log)
	workerCtx, stopWorker := context.WithCancel(context.Background())
	workerDone := make(chan struct{})
	e.verifier = v
	if o.recheck != nil && !o.manualWorker {
		w := &schedule.Worker{Store: st, Checker: v, Log: log, Interval: 10 * time.Millisecond, Lease: 5 * time.Second}
		go func() { defer close(workerDone); w.Run(workerCtx) }()
	} else {
		close(workerDone)
	}
	limit, err := api.ParseLimit(o.rateLimit)
	if err != nil {
		t.Fatal(err)
	}
	var addrs *ratelimit.Addrs
	if o.addrLimit != "" {
		l, err := ratelimit.ParseLimit(o.addrLimit)
		if err != nil {
			t.Fatal(err)
		}
		addrs = ratelimit.NewAddrs(l, 0, nil)
	}
	rc := records.DefaultConfig()
	rc.DKIMBits = o.dkimBits
	sealer, err := records.NewSealer(testMasterKey)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(api.Config{
		Store: st, Verifier: v, Sealer: sealer,
		Domains: &domains.Service{
			Store: st, Verifier: v, Records: rc, Sealer: sealer,
			Regions: []string{"us-east-1", "us-east-2", "ap-south-1", "eu-central-1"}, Keygen: o.keygen,
			AllowPrivateNames: true,
		},
		RateLimit: limit, Addrs: addrs, Now: o.now, Log: log, WebhookAllowPrivate: o.webhooks,
	}))
	deliveriesDone := make(chan struct{})
	if o.webhooks {
		d := &webhook.Deliverer{
			Store: st, Sealer: sealer, Client: webhook.NewClient(true, 2*time.Second), Log: log,
			Backoff: []time.Duration{50 * time.Millisecond}, Interval: 10 * time.Millisecond,
			// A failing endpoint is parked no longer than its deliveries wait.
			ParkBase: 50 * time.Millisecond, ParkMax: 50 * time.Millisecond,
		}
		go func() { defer close(deliveriesDone); d.Run(workerCtx) }()
	} else {
		close(deliveriesDone)
	}
	e.url = srv.URL
	var closed bool
	e.close = func() {
		if closed {
			return
		}
		closed = true
		srv.Close()
		stopWorker()
		<-workerDone
		<-deliveriesDone
		v.Close()
		st.Close()
	}
	t.Cleanup(e.close)
	e.key = e.newKey("acme")
	return e
}

// newKey creates a project if new and returns a fresh API key for it.
func (e *env) newKey(project string) string {
	e.t.Helper()
	ctx := context.Background()
	p, err := e.store.EnsureProject(ctx, project, time.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	key, err := apikey.New()
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.store.CreateAPIKey(ctx, store.APIKey{ProjectID: p.ID, Prefix: apikey.Prefix(key), Hash: apikey.Hash(key), CreatedAt: time.Now()}); err != nil {
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
	resp, err := client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
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

// addDomain adds name and returns the created domain.
func (e *env) addDomain(name string) domainJSON {
	e.t.Helper()
	r := e.do("POST", "/v1/domains", `{"domain":"`+name+`"}`, e.key)
	if r.status != http.StatusCreated {
		e.t.Fatalf("add %s: status %d: %s", name, r.status, r.body)
	}
	var env struct {
		Success bool       `json:"success"`
		Data    domainJSON `json:"data"`
	}
	decodeStrict(e.t, r.body, &env)
	return env.Data
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
	r := e.do("POST", "/v1/domains/"+id+"/verify", "", e.key)
	if r.status != http.StatusOK {
		e.t.Fatalf("verify %s: status %d: %s", id, r.status, r.body)
	}
	var v verifyJSON
	decodeStrict(e.t, r.body, &v)
	return v
}

func (e *env) get(id string) domainJSON {
	e.t.Helper()
	r := e.do("GET", "/v1/domains/"+id, "", e.key)
	if r.status != http.StatusOK {
		e.t.Fatalf("get %s: status %d: %s", id, r.status, r.body)
	}
	var env struct {
		Success bool       `json:"success"`
		Data    domainJSON `json:"data"`
	}
	decodeStrict(e.t, r.body, &env)
	return env.Data
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
