package webhook

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/records"
	"github.com/domaind/domaind/internal/store"
	"github.com/domaind/domaind/internal/store/sqlite"
	"github.com/domaind/domaind/internal/testenv"
)

// The test vector published with the Standard Webhooks reference libraries: a
// signature computed by them, so matching it says receivers' libraries accept ours.
const (
	vectorSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorTS     = 1614265330
	vectorBody   = `{"test": 2432232314}`
	vectorSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestSignKnownVector(t *testing.T) {
	for _, secret := range []string{vectorSecret, strings.TrimPrefix(vectorSecret, "whsec_")} {
		got, err := Sign(secret, vectorID, time.Unix(vectorTS, 999_000_000), []byte(vectorBody))
		if err != nil {
			t.Fatalf("Sign(%q): %v", secret, err)
		}
		if got != vectorSig {
			t.Errorf("Sign(%q) = %s, want %s", secret, got, vectorSig)
		}
	}
	for _, bad := range []string{"whsec_", "whsec_not base64!", ""} {
		if _, err := Sign(bad, vectorID, time.Unix(vectorTS, 0), nil); err == nil {
			t.Errorf("Sign(secret %q) succeeded, want an error", bad)
		}
	}
}

func TestVerifySignature(t *testing.T) {
	now := time.Unix(vectorTS, 0)
	header := func(id, ts, sig string) http.Header {
		h := http.Header{}
		h.Set("webhook-id", id)
		h.Set("webhook-timestamp", ts)
		h.Set("webhook-signature", sig)
		return h
	}
	ts := strconv.Itoa(vectorTS)
	otherSecret, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		secret    string
		h         http.Header
		body      string
		now       time.Time
		tolerance time.Duration
		ok        bool
	}{
		{"the vector", vectorSecret, header(vectorID, ts, vectorSig), vectorBody, now, 5 * time.Minute, true},
		{"one of several", vectorSecret, header(vectorID, ts, "v1,AAAA v1a,xyz "+vectorSig), vectorBody, now, 5 * time.Minute, true},
		{"old timestamp without tolerance", vectorSecret, header(vectorID, ts, vectorSig), vectorBody, now.Add(time.Hour), 0, true},
		{"old timestamp", vectorSecret, header(vectorID, ts, vectorSig), vectorBody, now.Add(6 * time.Minute), 5 * time.Minute, false},
		{"future timestamp", vectorSecret, header(vectorID, ts, vectorSig), vectorBody, now.Add(-6 * time.Minute), 5 * time.Minute, false},
		{"body changed", vectorSecret, header(vectorID, ts, vectorSig), `{"test": 2432232315}`, now, 0, false},
		{"id changed", vectorSecret, header(vectorID+"x", ts, vectorSig), vectorBody, now, 0, false},
		{"timestamp changed", vectorSecret, header(vectorID, strconv.Itoa(vectorTS+1), vectorSig), vectorBody, now, 0, false},
		{"other secret", otherSecret, header(vectorID, ts, vectorSig), vectorBody, now, 0, false},
		{"other version", vectorSecret, header(vectorID, ts, "v2,"+strings.TrimPrefix(vectorSig, "v1,")), vectorBody, now, 0, false},
		{"no signature", vectorSecret, header(vectorID, ts, ""), vectorBody, now, 0, false},
		{"timestamp not a number", vectorSecret, header(vectorID, ts+".0", vectorSig), vectorBody, now, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := VerifySignature(tc.secret, tc.h, []byte(tc.body), tc.now, tc.tolerance)
			if tc.ok && err != nil {
				t.Errorf("VerifySignature: %v, want success", err)
			}
			if !tc.ok && !errors.Is(err, ErrInvalidSignature) {
				t.Errorf("VerifySignature error = %v, want ErrInvalidSignature", err)
			}
		})
	}
}

func TestNewSecret(t *testing.T) {
	a, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^whsec_[A-Za-z0-9+/]{32}$`).MatchString(a) {
		t.Errorf("NewSecret() = %q, want whsec_ and 32 base64 characters", a)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(a, "whsec_"))
	if err != nil || len(key) != 24 {
		t.Errorf("NewSecret() key decodes to %d bytes (%v), want 24", len(key), err)
	}
	if a == b {
		t.Errorf("two NewSecret() calls both gave %q", a)
	}
}

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

func TestCheckURL(t *testing.T) {
	var lookups []string
	lookup := func(_ context.Context, host string) ([]netip.Addr, error) {
		lookups = append(lookups, host)
		switch host {
		case "hooks.example.com", "xn--bcher-kva.example":
			return addrs("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"), nil
		case "internal.example.com":
			return addrs("10.0.0.5"), nil
		case "mixed.example.com":
			return addrs("93.184.216.34", "127.0.0.1"), nil
		case "metadata.example.com":
			return addrs("::ffff:169.254.169.254"), nil
		case "empty.example.com":
			return nil, nil
		}
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	long := "https://hooks.example.com/" + strings.Repeat("a", MaxURLLength-len("https://hooks.example.com/"))
	tests := []struct {
		raw          string
		allowPrivate bool
		want         string // the normalized URL, when accepted
		wantErr      string // part of the error, when refused
	}{
		{raw: "https://hooks.example.com/webhooks?x=1", want: "https://hooks.example.com/webhooks?x=1"},
		{raw: "  HTTPS://Hooks.Example.COM:8443/Path ", want: "https://hooks.example.com:8443/Path"},
		{raw: "https://bücher.example/hook", want: "https://xn--bcher-kva.example/hook"},
		{raw: "https://hooks.example.com./x", want: "https://hooks.example.com/x"},
		{raw: "https://93.184.216.34/x", want: "https://93.184.216.34/x"},
		{raw: "https://[2606:4700:0::1111]:443/", want: "https://[2606:4700::1111]:443/"},
		{raw: "https://100.128.0.1/", want: "https://100.128.0.1/"}, // just past 100.64.0.0/10
		{raw: "https://172.32.0.1/", want: "https://172.32.0.1/"},   // just past 172.16.0.0/12
		{raw: long, want: long},
		{raw: long + "a", wantErr: "at most 2048 characters"},
		{raw: "", wantErr: "must not be empty"},
		{raw: "http://hooks.example.com/", wantErr: "must use https"},
		{raw: "http://hooks.example.com/", allowPrivate: true, want: "http://hooks.example.com/"},
		{raw: "ftp://hooks.example.com/", wantErr: "absolute http or https URL"},
		{raw: "hooks.example.com/x", wantErr: "absolute http or https URL"},
		{raw: "/x", wantErr: "absolute http or https URL"},
		{raw: "https:hooks.example.com", wantErr: "absolute http or https URL"},
		{raw: "https:///x", wantErr: "absolute http or https URL"},
		{raw: "https://user:pw@hooks.example.com/", wantErr: "user name or password"},
		{raw: "http://user@127.0.0.1/", allowPrivate: true, wantErr: "user name or password"},
		{raw: "https://hooks.example.com/#top", wantErr: "fragment"},
		{raw: "https://hooks.example.com/#", wantErr: "fragment"},
		{raw: "https://hooks.example.com:0/", wantErr: "port"},
		{raw: "https://hooks.example.com:70000/", wantErr: "port"},
		{raw: "https://under_score.example/", wantErr: "not a valid host name"},
		{raw: "https://127.0.0.1/", wantErr: "127.0.0.1 is a loopback address"},
		{raw: "https://127.8.9.10:8443/", wantErr: "loopback"},
		{raw: "https://[::1]/", wantErr: "::1 is a loopback address"},
		{raw: "https://10.1.2.3/", wantErr: "a private address"},
		{raw: "https://172.16.0.1/", wantErr: "a private address"},
		{raw: "https://192.168.1.1/", wantErr: "a private address"},
		{raw: "https://[fd00::1]/", wantErr: "a private address"},
		{raw: "https://169.254.169.254/", wantErr: "a link-local address"},
		{raw: "https://[fe80::1]/", wantErr: "a link-local address"},
		{raw: "https://[fe80::1%25eth0]/", wantErr: "zone"},
		{raw: "https://0.0.0.0/", wantErr: "an unspecified address"},
		{raw: "https://0.1.2.3/", wantErr: "an unspecified address"},
		{raw: "https://[::]/", wantErr: "an unspecified address"},
		{raw: "https://224.0.0.1/", wantErr: "a multicast address"},
		{raw: "https://[ff02::1]/", wantErr: "a multicast address"},
		{raw: "https://100.64.0.1/", wantErr: "a carrier-grade NAT address"},
		{raw: "https://255.255.255.255/", wantErr: "a reserved address"},
		{raw: "https://[::ffff:127.0.0.1]/", wantErr: "a loopback address"},
		{raw: "https://[::FFFF:A00:1]/", wantErr: "a private address"},
		{raw: "https://[64:ff9b::a9fe:a9fe]/", wantErr: "a link-local address"},
		{raw: "https://[2002:7f00:1::1]/", wantErr: "a loopback address"}, // 6to4 of 127.0.0.1
		{raw: "https://[::10.0.0.1]/", wantErr: "a private address"},      // IPv4-compatible
		{raw: "https://[fec0::1]/", wantErr: "a private address"},         // site-local
		{raw: "https://internal.example.com/", wantErr: "internal.example.com resolves to 10.0.0.5, a private address"},
		{raw: "https://mixed.example.com/", wantErr: "resolves to 127.0.0.1, a loopback address"},
		{raw: "https://metadata.example.com/", wantErr: "a link-local address"},
		{raw: "https://unknown.example.com/", wantErr: "could not be resolved"},
		{raw: "https://empty.example.com/", wantErr: "has no addresses"},
		{raw: "http://127.0.0.1:8080/hook", allowPrivate: true, want: "http://127.0.0.1:8080/hook"},
		{raw: "http://internal.example.com/", allowPrivate: true, want: "http://internal.example.com/"},
	}
	sentence := regexp.MustCompile(`^url[^\n]*\.$`)
	for _, tc := range tests {
		name := tc.raw
		if len(name) > 60 {
			name = name[:60] + "..."
		}
		t.Run(name, func(t *testing.T) {
			got, err := CheckURL(t.Context(), tc.raw, tc.allowPrivate, lookup)
			if tc.wantErr == "" {
				if err != nil || got != tc.want {
					t.Errorf("CheckURL(%q, %v) = %q, %v; want %q", tc.raw, tc.allowPrivate, got, err, tc.want)
				}
				return
			}
			var ue *URLError
			if !errors.As(err, &ue) {
				t.Fatalf("CheckURL(%q, %v) = %q, %v; want a *URLError containing %q", tc.raw, tc.allowPrivate, got, err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) || !sentence.MatchString(err.Error()) {
				t.Errorf("CheckURL(%q) error %q, want one sentence about url containing %q", tc.raw, err, tc.wantErr)
			}
		})
	}
	// Names are resolved only when their addresses matter.
	lookups = nil
	if _, err := CheckURL(t.Context(), "http://localhost:8080/", true, lookup); err != nil || len(lookups) != 0 {
		t.Errorf("CheckURL(localhost, allowPrivate) = %v after lookups %v; want success without a lookup", err, lookups)
	}
	// The cause of a failed lookup stays reachable, for logs.
	_, err := CheckURL(t.Context(), "https://unknown.example.com/", false, lookup)
	var dnsErr *net.DNSError
	if !errors.As(err, &dnsErr) {
		t.Errorf("CheckURL(unknown host) error %v does not wrap the *net.DNSError", err)
	}
}

// hitCounter is an endpoint that counts its requests.
type hitCounter struct {
	mu   sync.Mutex
	hits int
}

func (h *hitCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.hits++
	h.mu.Unlock()
}

func (h *hitCounter) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.hits
}

func TestClientRefusesLoopback(t *testing.T) {
	target := &hitCounter{}
	srv := httptest.NewServer(target)
	defer srv.Close()

	resp, err := NewClient(false, 5*time.Second).Get(srv.URL)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("GET %s with !allowPrivate succeeded with %s, want a refusal", srv.URL, resp.Status)
	}
	if !errors.Is(err, ErrRefusedAddress) || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("GET %s error = %v, want ErrRefusedAddress naming loopback", srv.URL, err)
	}
	if n := target.count(); n != 0 {
		t.Errorf("the refused request reached the server (%d hits)", n)
	}

	resp, err = NewClient(true, 5*time.Second).Get(srv.URL)
	if err != nil {
		t.Fatalf("GET %s with allowPrivate: %v", srv.URL, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || target.count() != 1 {
		t.Errorf("GET with allowPrivate: %s and %d hits, want 200 and 1", resp.Status, target.count())
	}

	// A redirect comes back as it is, and its target is not asked.
	redirector := httptest.NewServer(http.RedirectHandler(srv.URL+"/elsewhere", http.StatusFound))
	defer redirector.Close()
	resp, err = NewClient(true, 5*time.Second).Get(redirector.URL)
	if err != nil {
		t.Fatalf("GET redirector: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || target.count() != 1 {
		t.Errorf("GET redirector: %s and %d hits on the target, want 302 and the target left alone", resp.Status, target.count())
	}
}

func TestNextState(t *testing.T) {
	created := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return created.Add(d) }
	short := []time.Duration{time.Second, 2 * time.Second}
	tests := []struct {
		name    string
		backoff []time.Duration
		now     time.Time
		want    store.DeliveryState
		outcome string
	}{
		{"first attempt", short, at(0), store.DeliveryState{Status: "pending", NextAttemptAt: at(time.Second)}, OutcomeRetry},
		{"second attempt", short, at(time.Second), store.DeliveryState{Status: "pending", NextAttemptAt: at(3 * time.Second)}, OutcomeRetry},
		{"last step repeats", short, at(3 * time.Second), store.DeliveryState{Status: "pending", NextAttemptAt: at(5 * time.Second)}, OutcomeRetry},
		{"late attempt", short, at(2500 * time.Millisecond), store.DeliveryState{Status: "pending", NextAttemptAt: at(3 * time.Second)}, OutcomeRetry},
		{"much later", short, at(100*time.Second + time.Millisecond), store.DeliveryState{Status: "pending", NextAttemptAt: at(101 * time.Second)}, OutcomeRetry},
		{"capped at the window's end", short, at(time.Hour - time.Second), store.DeliveryState{Status: "pending", NextAttemptAt: at(time.Hour)}, OutcomeRetry},
		{"at the window's end", short, at(time.Hour), store.DeliveryState{Status: "failed"}, OutcomeFailed},
		{"past the window", short, at(2 * time.Hour), store.DeliveryState{Status: "failed"}, OutcomeFailed},
		{"default schedule", DefaultBackoff(), at(0), store.DeliveryState{Status: "pending", NextAttemptAt: at(5 * time.Second)}, OutcomeRetry},
		{"default schedule, third", DefaultBackoff(), at(35 * time.Second), store.DeliveryState{Status: "pending", NextAttemptAt: at(155 * time.Second)}, OutcomeRetry},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, outcome := nextState(tc.backoff, time.Hour, created, tc.now)
			if got != tc.want || outcome != tc.outcome {
				t.Errorf("nextState(now %v) = %+v %s, want %+v %s", tc.now.Sub(created), got, outcome, tc.want, tc.outcome)
			}
		})
	}
}

func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"0123456789abc", 10, "0123456…"},
		{"ééééé", 8, "éé…"}, // never cuts a character in half
		{"bad \xff byte", 20, "bad \uFFFD byte"},
	} {
		if got := truncate(tc.in, tc.n); got != tc.want || len(got) > tc.n {
			t.Errorf("truncate(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

// received is one request an endpoint got.
type received struct {
	method, path string
	header       http.Header
	body         []byte
}

// receiver is a webhook endpoint on loopback that answers with the given status
// codes in turn, the last one repeating (200 when none are given).
type receiver struct {
	*httptest.Server
	mu    sync.Mutex
	codes []int
	got   []received
}

func newReceiver(t *testing.T, codes ...int) *receiver {
	r := &receiver{codes: codes}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		code := http.StatusOK
		if n := len(r.got); n < len(r.codes) {
			code = r.codes[n]
		} else if len(r.codes) > 0 {
			code = r.codes[len(r.codes)-1]
		}
		r.got = append(r.got, received{req.Method, req.URL.Path, req.Header.Clone(), body})
		r.mu.Unlock()
		if code >= 300 && code <= 399 {
			w.Header().Set("Location", "/elsewhere")
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// counter is an Observer that counts outcomes.
type counter struct{ testenv.Counter }

func (c *counter) Delivery(outcome string) { c.Add(outcome) }

var masterKey = bytes.Repeat([]byte{7}, 32)

// fixture is a SQLite store on a temporary file with one project and one domain.
type fixture struct {
	t      *testing.T
	path   string
	st     *sqlite.Store
	sealer *records.Sealer
	now    func() time.Time
	clock  *testenv.Clock
	proj   store.Project
	dom    *domain.Domain
}

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, path: filepath.Join(t.TempDir(), "domaind.db"), clock: testenv.NewClock(t0)}
	f.now = f.clock.Now
	f.open()
	sealer, err := records.NewSealer(masterKey)
	if err != nil {
		t.Fatal(err)
	}
	f.sealer = sealer
	ctx := t.Context()
	if f.proj, err = f.st.EnsureProject(ctx, "acme", t0); err != nil {
		t.Fatal(err)
	}
	id, err := domain.NewID(t0)
	if err != nil {
		t.Fatal(err)
	}
	f.dom = &domain.Domain{
		ID: id, ProjectID: f.proj.ID, Name: "example.com", Region: "us-east-1",
		Status: domain.StatusPendingConfiguration, CreatedAt: t0, LastCheckedAt: t0,
		Records: []domain.Record{{
			Key: domain.KeyOwnership, Name: "_autosend-verify.example.com", Type: "TXT",
			Value: "autosend-verify-0123", Purpose: "Proves that you own the domain.",
			Status: domain.CheckUnchecked, CreatedAt: t0, UpdatedAt: t0,
		}},
	}
	if err := f.st.CreateDomain(ctx, f.dom, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	return f
}

// open opens the store at f.path, closing any open one first, as a restart does.
func (f *fixture) open() {
	f.t.Helper()
	if f.st != nil {
		if err := f.st.Close(); err != nil {
			f.t.Fatal(err)
		}
	}
	st, err := sqlite.Open(context.Background(), f.path)
	if err != nil {
		f.t.Fatal(err)
	}
	f.st = st
	f.t.Cleanup(func() { st.Close() })
}

// addWebhook registers url for the project and returns the webhook and its secret.
func (f *fixture) addWebhook(url string) (store.Webhook, string) {
	f.t.Helper()
	return f.addWebhookIn(f.proj.ID, url, 0)
}

// addWebhookIn registers url for project, which may hold at most limit
// webhooks (0: the store sets none), and returns the webhook and its secret.
func (f *fixture) addWebhookIn(project int64, url string, limit int) (store.Webhook, string) {
	f.t.Helper()
	id, err := store.NewID("wh_")
	if err != nil {
		f.t.Fatal(err)
	}
	secret, err := NewSecret()
	if err != nil {
		f.t.Fatal(err)
	}
	sealed, err := f.sealer.Seal([]byte(secret), id)
	if err != nil {
		f.t.Fatal(err)
	}
	w := store.Webhook{ID: id, ProjectID: project, URL: url, SealedSecret: sealed, CreatedAt: f.now()}
	if err := f.st.CreateWebhook(f.t.Context(), w, limit); err != nil {
		f.t.Fatal(err)
	}
	return w, secret
}

// emit stores an event of the domain, as a check does, which queues its deliveries.
func (f *fixture) emit(typ domain.EventType) store.Event {
	f.t.Helper()
	id, err := store.NewID("evt_")
	if err != nil {
		f.t.Fatal(err)
	}
	payload, err := json.Marshal(map[string]any{
		"type": typ, "timestamp": f.now().UTC().Format(time.RFC3339Nano),
		"data": map[string]any{"eventId": id, "domainId": f.dom.ID, "domain": f.dom.Name, "note": "ünïcode & <tags>"},
	})
	if err != nil {
		f.t.Fatal(err)
	}
	e := store.Event{ID: id, ProjectID: f.proj.ID, DomainID: f.dom.ID, Type: typ, Payload: payload, CreatedAt: f.now()}
	if err := f.st.SaveCheck(f.t.Context(), f.dom, []store.Event{e}); err != nil {
		f.t.Fatal(err)
	}
	return e
}

// deliveries lists a webhook's deliveries by event id.
func (f *fixture) deliveries(webhookID string) map[string]store.Delivery {
	f.t.Helper()
	ds, _, err := f.st.Deliveries(f.t.Context(), f.proj.ID, webhookID, store.Page{})
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[string]store.Delivery{}
	for _, d := range ds {
		out[d.EventID] = d
	}
	return out
}

// deliverer returns a Deliverer on the fixture's clock whose endpoint parking is
// a millisecond, so that the delivery schedule alone decides when attempts come;
// the parking has tests of its own.
func (f *fixture) deliverer(obs *counter, backoff ...time.Duration) *Deliverer {
	d := &Deliverer{
		Store: f.st, Sealer: f.sealer, Client: NewClient(true, 5*time.Second), Now: f.now,
		Backoff: backoff, Concurrency: 2, ParkBase: time.Millisecond, ParkMax: time.Millisecond,
	}
	if obs != nil {
		d.Observer = obs // not a typed nil, which would not be a nil Observer
	}
	return d
}

func runOnce(t *testing.T, d *Deliverer, want int) {
	t.Helper()
	n, err := d.RunOnce(t.Context())
	if err != nil || n != want {
		t.Fatalf("RunOnce = %d, %v; want %d, nil", n, err, want)
	}
}

func TestDeliverOnce(t *testing.T) {
	f := newFixture(t)
	r := newReceiver(t)
	wh, secret := f.addWebhook(r.URL + "/hooks/domaind")
	events := []store.Event{f.emit(domain.EventVerified), f.emit(domain.EventRecordChanged), f.emit(domain.EventRecordChanged)}
	obs := &counter{}
	d := f.deliverer(obs)

	// One endpoint gets one delivery at a time.
	for range 3 {
		runOnce(t, d, 1)
	}
	runOnce(t, d, 0)
	ds := f.deliveries(wh.ID)
	byMsg := map[string]store.Event{}
	for _, e := range events {
		del, ok := ds[e.ID]
		if !ok {
			t.Fatalf("no delivery of event %s", e.ID)
		}
		byMsg[del.ID] = e
		if del.Status != store.DeliveryDelivered || !del.NextAttemptAt.IsZero() || len(del.Attempts) != 1 {
			t.Fatalf("delivery of %s = %+v, want delivered after one attempt", e.ID, del)
		}
		if a := del.Attempts[0]; a.StatusCode != 200 || a.Error != "" || !a.At.Equal(t0) {
			t.Errorf("attempt of %s = %+v, want status 200, no error, at %v", e.ID, a, t0)
		}
	}

	got := r.requests()
	if len(got) != 3 {
		t.Fatalf("endpoint got %d requests, want 3", len(got))
	}
	seen := map[string]bool{}
	for _, req := range got {
		id := req.header.Get("webhook-id")
		e, ok := byMsg[id]
		if !ok || seen[id] {
			t.Fatalf("webhook-id %q is not a delivery id, or came twice", id)
		}
		seen[id] = true
		if req.method != "POST" || req.path != "/hooks/domaind" {
			t.Errorf("request %s %s, want POST /hooks/domaind", req.method, req.path)
		}
		if !bytes.Equal(req.body, e.Payload) {
			t.Errorf("body %s, want the stored payload exactly: %s", req.body, e.Payload)
		}
		if ct, ua := req.header.Get("Content-Type"), req.header.Get("User-Agent"); ct != "application/json" || ua != "domaind" {
			t.Errorf("Content-Type %q, User-Agent %q; want application/json and domaind", ct, ua)
		}
		if ts := req.header.Get("webhook-timestamp"); ts != strconv.FormatInt(t0.Unix(), 10) {
			t.Errorf("webhook-timestamp %q, want %d", ts, t0.Unix())
		}
		if err := VerifySignature(secret, req.header, req.body, t0, 5*time.Minute); err != nil {
			t.Errorf("signature of %s does not verify with the webhook's secret: %v (header %q)", id, err, req.header.Get("webhook-signature"))
		}
	}

	runOnce(t, d, 0)
	f.clock.Advance(48 * time.Hour)
	runOnce(t, d, 0)
	if n := len(r.requests()); n != 3 {
		t.Errorf("after more rounds the endpoint got %d requests, want still 3", n)
	}
	if c := obs.Counts(); c[OutcomeDelivered] != 3 || len(c) != 1 {
		t.Errorf("observed %v, want 3 delivered", c)
	}
}

func TestRetryThenDelivered(t *testing.T) {
	f := newFixture(t)
	r := newReceiver(t, 500, 500, 200)
	wh, secret := f.addWebhook(r.URL)
	e := f.emit(domain.EventVerified)
	obs := &counter{}
	d := f.deliverer(obs, 10*time.Millisecond)

	runOnce(t, d, 1)
	del := f.deliveries(wh.ID)[e.ID]
	if del.Status != store.DeliveryPending || !del.NextAttemptAt.Equal(t0.Add(10*time.Millisecond)) {
		t.Fatalf("after a 500: %s next %v, want pending until %v", del.Status, del.NextAttemptAt, t0.Add(10*time.Millisecond))
	}
	runOnce(t, d, 0) // not due before the backoff has passed
	f.clock.Advance(10 * time.Millisecond)
	runOnce(t, d, 1)
	f.clock.Advance(10 * time.Millisecond)
	runOnce(t, d, 1)
	f.clock.Advance(time.Hour)
	runOnce(t, d, 0)

	del = f.deliveries(wh.ID)[e.ID]
	if del.Status != store.DeliveryDelivered || !del.NextAttemptAt.IsZero() {
		t.Errorf("delivery = %s next %v, want delivered", del.Status, del.NextAttemptAt)
	}
	var codes []int
	var ats []time.Duration
	for _, a := range del.Attempts {
		codes = append(codes, a.StatusCode)
		ats = append(ats, a.At.Sub(t0))
		if (a.StatusCode == 500) != strings.Contains(a.Error, "500") {
			t.Errorf("attempt %+v: the error should name the 500 exactly when it failed", a)
		}
	}
	if want := []int{500, 500, 200}; !slices.Equal(codes, want) {
		t.Errorf("attempt status codes %v, want %v", codes, want)
	}
	if want := []time.Duration{0, 10 * time.Millisecond, 20 * time.Millisecond}; !slices.Equal(ats, want) {
		t.Errorf("attempts at %v after the event, want %v", ats, want)
	}
	got := r.requests()
	if len(got) != 3 {
		t.Fatalf("endpoint got %d requests, want 3", len(got))
	}
	for _, req := range got {
		if id := req.header.Get("webhook-id"); id != del.ID {
			t.Errorf("retry sent webhook-id %q, want the same %q every time", id, del.ID)
		}
		if err := VerifySignature(secret, req.header, req.body, t0, time.Minute); err != nil {
			t.Errorf("signature: %v", err)
		}
	}
	if c := obs.Counts(); c[OutcomeRetry] != 2 || c[OutcomeDelivered] != 1 || len(c) != 2 {
		t.Errorf("observed %v, want 2 retry and 1 delivered", c)
	}
}

func TestGiveUp(t *testing.T) {
	f := newFixture(t)
	r := newReceiver(t, 503)
	wh, _ := f.addWebhook(r.URL)
	e := f.emit(domain.EventDegraded)
	obs := &counter{}
	d := f.deliverer(obs, 10*time.Millisecond)
	d.GiveUpAfter = 30 * time.Millisecond

	for i := range 4 {
		runOnce(t, d, 1)
		if i < 3 {
			f.clock.Advance(10 * time.Millisecond)
		}
	}
	del := f.deliveries(wh.ID)[e.ID]
	if del.Status != store.DeliveryFailed || !del.NextAttemptAt.IsZero() || len(del.Attempts) != 4 {
		t.Fatalf("delivery = %s next %v with %d attempts, want failed after 4", del.Status, del.NextAttemptAt, len(del.Attempts))
	}
	f.clock.Advance(time.Hour)
	runOnce(t, d, 0)
	if n := len(r.requests()); n != 4 {
		t.Errorf("endpoint got %d requests, want 4 and none after failing", n)
	}
	if c := obs.Counts(); c[OutcomeRetry] != 3 || c[OutcomeFailed] != 1 || len(c) != 2 {
		t.Errorf("observed %v, want 3 retry and 1 failed", c)
	}

	// A delivery first attempted after its window closed (the service was down)
	// still gets one attempt.
	e2 := f.emit(domain.EventFailed)
	f.clock.Advance(time.Hour)
	runOnce(t, d, 1)
	if del := f.deliveries(wh.ID)[e2.ID]; del.Status != store.DeliveryFailed || len(del.Attempts) != 1 {
		t.Errorf("late delivery = %s with %d attempts, want failed after 1", del.Status, len(del.Attempts))
	}
}

func TestEndpointAnswers(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()
	tests := []struct {
		name    string
		code    int    // the receiver's answer; 0 for the closed server
		status  string // the delivery's status after one attempt
		errPart string
	}{
		{"204", 204, store.DeliveryDelivered, ""},
		{"302", 302, store.DeliveryPending, "redirects are not followed"},
		{"404", 404, store.DeliveryPending, "404 Not Found"},
		{"410", 410, store.DeliveryPending, "410 Gone"},
		{"connection refused", 0, store.DeliveryPending, "refused"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			url := closedURL
			if tc.code != 0 {
				url = newReceiver(t, tc.code).URL
			}
			wh, _ := f.addWebhook(url)
			e := f.emit(domain.EventVerified)
			runOnce(t, f.deliverer(nil), 1)
			del := f.deliveries(wh.ID)[e.ID]
			if del.Status != tc.status || len(del.Attempts) != 1 {
				t.Fatalf("delivery = %s with %d attempts, want %s after 1", del.Status, len(del.Attempts), tc.status)
			}
			a := del.Attempts[0]
			if a.StatusCode != tc.code || !strings.Contains(a.Error, tc.errPart) || (tc.errPart == "") != (a.Error == "") {
				t.Errorf("attempt = %+v, want status %d and an error containing %q", a, tc.code, tc.errPart)
			}
			if strings.HasPrefix(a.Error, "Post ") {
				t.Errorf("attempt error %q repeats the method and URL", a.Error)
			}
		})
	}
}

// TestDeliveryRefusesPrivate stores a loopback URL directly, as a name that
// resolved to a public address at registration and to loopback now would: the
// client refuses it when connecting.
func TestDeliveryRefusesPrivate(t *testing.T) {
	f := newFixture(t)
	r := newReceiver(t)
	wh, _ := f.addWebhook(r.URL)
	e := f.emit(domain.EventVerified)
	obs := &counter{}
	d := f.deliverer(obs)
	d.Client = nil // the default client refuses non-public addresses

	runOnce(t, d, 1)
	del := f.deliveries(wh.ID)[e.ID]
	if del.Status != store.DeliveryPending || len(del.Attempts) != 1 || !strings.Contains(del.Attempts[0].Error, "loopback") {
		t.Fatalf("delivery = %+v, want pending after one attempt refused as loopback", del)
	}
	if n := len(r.requests()); n != 0 {
		t.Errorf("the refused delivery reached the endpoint (%d requests)", n)
	}
	if c := obs.Counts(); c[OutcomeRetry] != 1 {
		t.Errorf("observed %v, want 1 retry", c)
	}
}

func TestWrongMasterKey(t *testing.T) {
	f := newFixture(t)
	r := newReceiver(t)
	wh, _ := f.addWebhook(r.URL)
	e := f.emit(domain.EventVerified)
	d := f.deliverer(nil)
	other, err := records.NewSealer(bytes.Repeat([]byte{8}, 32))
	if err != nil {
		t.Fatal(err)
	}
	d.Sealer = other
	runOnce(t, d, 1)
	del := f.deliveries(wh.ID)[e.ID]
	if del.Status != store.DeliveryPending || len(del.Attempts) != 1 || !strings.Contains(del.Attempts[0].Error, "signing secret") {
		t.Fatalf("delivery = %+v, want pending after one attempt that names the signing secret", del)
	}
	if n := len(r.requests()); n != 0 {
		t.Errorf("an unsigned delivery reached the endpoint (%d requests)", n)
	}
}

// TestRestart stops a Deliverer with deliveries pending, one waiting for a retry
// and one claimed by a Deliverer that died mid-attempt, and checks that a new
// Deliverer on the same database file delivers both.
func TestRestart(t *testing.T) {
	f := newFixture(t)
	r := newReceiver(t, 500, 200)
	wh, secret := f.addWebhook(r.URL)
	retried := f.emit(domain.EventVerified)
	runOnce(t, f.deliverer(nil, 10*time.Millisecond), 1) // 500: pending until t0+10ms
	f.clock.Advance(time.Millisecond)                    // and the endpoint parked for 1ms

	crashed := f.emit(domain.EventRecordChanged)
	claimed, err := f.st.ClaimDeliveries(t.Context(), f.now(), DefaultLease, 10, 1)
	if err != nil || len(claimed) != 1 || claimed[0].EventID != crashed.ID {
		t.Fatalf("claiming as the Deliverer that dies: %v, %v; want the delivery of %s", claimed, err, crashed.ID)
	}

	f.open() // the restart: a new connection to the same file, a new Deliverer
	sealer, err := records.NewSealer(masterKey)
	if err != nil {
		t.Fatal(err)
	}
	f.sealer = sealer
	d := f.deliverer(nil, 10*time.Millisecond)
	// Two in flight per endpoint: the dead Deliverer's claim holds one until its
	// lease runs out, and the retry is not kept waiting for that.
	d.EndpointConcurrency = 2
	f.clock.Advance(10 * time.Millisecond)
	runOnce(t, d, 1) // the retry; the other is still leased
	if del := f.deliveries(wh.ID)[retried.ID]; del.Status != store.DeliveryDelivered || len(del.Attempts) != 2 {
		t.Fatalf("retried delivery after the restart = %s with %d attempts, want delivered after 2", del.Status, len(del.Attempts))
	}
	f.clock.Advance(DefaultLease)
	runOnce(t, d, 1) // the lease of the dead Deliverer has run out
	if del := f.deliveries(wh.ID)[crashed.ID]; del.Status != store.DeliveryDelivered || len(del.Attempts) != 1 {
		t.Fatalf("delivery claimed before the restart = %s with %d attempts, want delivered after 1", del.Status, len(del.Attempts))
	}
	got := r.requests()
	if len(got) != 3 {
		t.Fatalf("endpoint got %d requests, want 3", len(got))
	}
	for _, req := range got {
		if err := VerifySignature(secret, req.header, req.body, f.now(), time.Hour); err != nil {
			t.Errorf("signature after restart: %v", err)
		}
	}
}

func TestRun(t *testing.T) {
	f := newFixture(t)
	f.now = time.Now // Run on the real clock, with a tiny schedule
	r := newReceiver(t, 500, 200)
	wh, _ := f.addWebhook(r.URL)
	e := f.emit(domain.EventVerified)
	d := f.deliverer(nil, 10*time.Millisecond)
	d.Now, d.Interval = nil, 5*time.Millisecond

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()

	deadline := time.Now().Add(10 * time.Second)
	for {
		del := f.deliveries(wh.ID)[e.ID]
		if del.Status == store.DeliveryDelivered {
			if len(del.Attempts) != 2 {
				t.Errorf("delivered after %d attempts, want 2", len(del.Attempts))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not delivered within 10s: %+v", del)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := testenv.Receive(t, done, "Run's return after cancel"); err != nil {
		t.Errorf("Run returned %v after cancel, want nil", err)
	}
}

func TestValidID(t *testing.T) {
	for _, tc := range []struct {
		id   string
		want bool
	}{
		{"wh_0123456789abcdef01234567", true},
		{"0123456789abcdef01234567", false},     // a domain id
		{"wh_0123456789ABCDEF01234567", false},  // upper case
		{"wh_0123456789abcdef0123456", false},   // 23
		{"wh_0123456789abcdef012345678", false}, // 25
		{"WH_0123456789abcdef01234567", false},
		{"wh_", false},
	} {
		if got := ValidID(tc.id); got != tc.want {
			t.Errorf("ValidID(%q) = %v, want %v", tc.id, got, tc.want)
		}
	}
}
