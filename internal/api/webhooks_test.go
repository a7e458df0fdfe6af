package api_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/domaind/domaind/internal/app"
	"github.com/domaind/domaind/internal/records"
	"github.com/domaind/domaind/internal/testenv"
	"github.com/domaind/domaind/internal/webhook"
)

var (
	webhookKeys    = sorted("id", "url", "events", "createdAt")
	newWebhookKeys = sorted("id", "url", "events", "secret", "createdAt")
	deliveryKeys   = sorted("id", "eventId", "eventType", "status", "nextAttemptAt", "createdAt", "attempts")
	attemptKeys    = sorted("at", "statusCode", "error", "durationMs")
	eventKeys      = sorted("id", "type", "createdAt", "data")
	webhookIDForm  = regexp.MustCompile(`^wh_[0-9a-f]{24}$`)
	secretForm     = regexp.MustCompile(`^whsec_[A-Za-z0-9+/]{32}$`)
	// fieldSentence is one line ending in a full stop; like v1's, the messages
	// about a field start with the field's name, in its case.
	fieldSentence = regexp.MustCompile(`^[^\n]+\.$`)
)

// testMasterKey is the master key the harness seals with.
var testMasterKey = bytes.Repeat([]byte{7}, 32)

// withWebhookOptions returns a copy of e whose requests go to a second API server
// on the same store that allows private webhook URLs, which the harness's server
// refuses. The copy serves the webhook and event routes; routes that check
// domains need the harness's server, which has the verifier.
func withWebhookOptions(e *env) *env {
	e.t.Helper()
	return e.variant(func(c *app.Config) { c.WebhookAllowPrivate = true })
}

// createWebhook POSTs body to /api/v2/webhooks, wants 201 and returns the data.
func (e *env) createWebhook(body, key string) map[string]any {
	e.t.Helper()
	r := e.do("POST", "/api/v2/webhooks", body, key)
	if r.status != http.StatusCreated {
		e.t.Fatalf("POST /api/v2/webhooks %s: status %d: %s", body, r.status, r.body)
	}
	m := r.json(e.t)
	if got := keysOf(m); !slices.Equal(got, []string{"data", "success"}) || m["success"] != true {
		e.t.Fatalf("create webhook: keys %v success %v, want data and success true", got, m["success"])
	}
	return m["data"].(map[string]any)
}

func strs(v any) []string {
	var out []string
	for _, s := range v.([]any) {
		out = append(out, s.(string))
	}
	return out
}

func TestWebhooksCreateListDelete(t *testing.T) {
	e := newEnv(t, envOptions{})
	ew := withWebhookOptions(e)

	first := ew.createWebhook(`{"url":"http://127.0.0.1:9/hooks?x=1","events":["domain.failed","domain.verified"]}`, e.key)
	if got := keysOf(first); !slices.Equal(got, newWebhookKeys) {
		t.Fatalf("created webhook keys %v, want %v", got, newWebhookKeys)
	}
	id, secret := first["id"].(string), first["secret"].(string)
	if !webhookIDForm.MatchString(id) || first["url"] != "http://127.0.0.1:9/hooks?x=1" ||
		!slices.Equal(strs(first["events"]), []string{"domain.failed", "domain.verified"}) {
		t.Errorf("created webhook %v", first)
	}
	if s, _ := first["createdAt"].(string); !millisUTC.MatchString(s) {
		t.Errorf("createdAt %v is not RFC 3339 UTC with milliseconds", first["createdAt"])
	}
	if !secretForm.MatchString(secret) {
		t.Errorf("secret %q, want whsec_ and the base64 of 24 bytes", secret)
	}
	if key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_")); err != nil || len(key) < 24 {
		t.Errorf("secret key decodes to %d bytes (%v), want 24 or more", len(key), err)
	}

	second := ew.createWebhook(`{"url":"HTTP://LocalHost:9/Hook","events":null}`, e.key)
	if second["url"] != "http://localhost:9/Hook" || len(second["events"].([]any)) != 0 || second["secret"] == secret {
		t.Errorf("second webhook %v, want the normalized URL, events [] and another secret", second)
	}

	// The secret is stored sealed, bound to the webhook's id.
	stored, err := e.store.Webhooks(t.Context(), projectID(t, e, "acme"))
	if err != nil || len(stored) != 2 {
		t.Fatalf("stored webhooks %v, %v", stored, err)
	}
	// Two webhooks made in one millisecond are listed by id, so find the first.
	sealedFirst := stored[0].SealedSecret
	if stored[0].ID != id {
		sealedFirst = stored[1].SealedSecret
	}
	sealer, _ := records.NewSealer(testMasterKey)
	if bytes.Contains(sealedFirst, []byte(secret)) {
		t.Error("the secret is stored in the clear")
	}
	if plain, err := sealer.Open(sealedFirst, id); err != nil || string(plain) != secret {
		t.Errorf("the sealed secret opened with the webhook id gives %q, %v; want the secret shown at creation", plain, err)
	}
	if _, err := sealer.Open(sealedFirst, second["id"].(string)); err == nil {
		t.Error("the sealed secret opens under another webhook's id")
	}

	// Lists never show a secret again.
	r := e.do("GET", "/api/v2/webhooks", "", e.key)
	if r.status != http.StatusOK {
		t.Fatalf("GET /api/v2/webhooks: %d %s", r.status, r.body)
	}
	if bytes.Contains(r.body, []byte(secret)) || bytes.Contains(r.body, []byte("whsec_")) {
		t.Errorf("the list shows a secret: %s", r.body)
	}
	list := r.json(t)
	if got := keysOf(list); !slices.Equal(got, []string{"data"}) {
		t.Fatalf("list keys %v, want data", got)
	}
	items := list["data"].([]any)
	if len(items) != 2 {
		t.Fatalf("list has %d webhooks, want 2", len(items))
	}
	// Oldest first; webhooks made in the same millisecond by id.
	wantOrder := []map[string]any{first, second}
	if first["createdAt"] == second["createdAt"] && first["id"].(string) > second["id"].(string) {
		wantOrder = []map[string]any{second, first}
	}
	for i, want := range wantOrder {
		item := items[i].(map[string]any)
		if got := keysOf(item); !slices.Equal(got, webhookKeys) {
			t.Fatalf("list item keys %v, want %v", got, webhookKeys)
		}
		if item["id"] != want["id"] || item["url"] != want["url"] || item["createdAt"] != want["createdAt"] ||
			!slices.Equal(strs(item["events"]), strs(want["events"])) {
			t.Errorf("list item %d = %v, want (oldest first) %v", i, item, want)
		}
	}

	// Another project sees none of them and can delete none of them.
	beta := e.newKey("beta")
	if r := e.do("GET", "/api/v2/webhooks", "", beta); r.status != http.StatusOK || len(r.json(t)["data"].([]any)) != 0 {
		t.Errorf("beta's list: %d %s, want 200 and no webhooks", r.status, r.body)
	}
	errorOf(t, e.do("DELETE", "/api/v2/webhooks/"+id, "", beta), http.StatusNotFound, "NOT_FOUND")
	errorOf(t, e.do("GET", "/api/v2/webhooks/"+id+"/deliveries", "", beta), http.StatusNotFound, "NOT_FOUND")

	r = e.do("DELETE", "/api/v2/webhooks/"+id, "", e.key)
	if r.status != http.StatusNoContent || len(r.body) != 0 {
		t.Fatalf("DELETE: %d %q, want 204 and no body", r.status, r.body)
	}
	if items := e.v2Get("/api/v2/webhooks")["data"].([]any); len(items) != 1 || items[0].(map[string]any)["id"] != second["id"] {
		t.Errorf("after DELETE the list is %v, want only the second webhook", items)
	}
	errorOf(t, e.do("DELETE", "/api/v2/webhooks/"+id, "", e.key), http.StatusNotFound, "NOT_FOUND")
	errorOf(t, e.do("GET", "/api/v2/webhooks/"+id+"/deliveries", "", e.key), http.StatusNotFound, "NOT_FOUND")
	errorOf(t, e.do("DELETE", "/api/v2/webhooks/wh_"+strings.Repeat("0", 24), "", e.key), http.StatusNotFound, "NOT_FOUND")

	bad := errorOf(t, e.do("DELETE", "/api/v2/webhooks/wh_XYZ", "", e.key), http.StatusBadRequest, "VALIDATION_FAILED")
	if f := detailFields(t, bad); !slices.Equal(f, []string{"webhookId"}) {
		t.Errorf("malformed id: details name %v, want webhookId", f)
	}
	r = e.do("PUT", "/api/v2/webhooks", `{}`, e.key)
	errorOf(t, r, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED")
	if allow := r.header.Get("Allow"); allow != "GET, POST" {
		t.Errorf("Allow %q, want GET, POST", allow)
	}
	errorOf(t, e.do("GET", "/api/v2/webhooks", "", ""), http.StatusUnauthorized, "UNAUTHORIZED")
	errorOf(t, e.do("POST", "/api/v2/webhooks", `{"url":"https://93.184.216.34/"}`, ""), http.StatusUnauthorized, "UNAUTHORIZED")
}

func projectID(t *testing.T, e *env, name string) int64 {
	t.Helper()
	p, err := e.store.EnsureProject(t.Context(), name, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return p.ID
}

func TestWebhookValidation(t *testing.T) {
	e := newEnv(t, envOptions{}) // the harness's server refuses private URLs
	long := "https://93.184.216.34/" + strings.Repeat("a", 2048)
	for _, tc := range []struct {
		name, body string
		fields     []string
		inMessage  string
	}{
		{"empty body", ``, []string{"body"}, "JSON object"},
		{"not an object", `["https://93.184.216.34/"]`, []string{"body"}, "JSON object"},
		{"malformed", `{"url":`, []string{"body"}, "JSON"},
		{"trailing garbage", `{"url":"https://93.184.216.34/"} {}`, []string{"body"}, ""},
		{"url missing", `{}`, []string{"url"}, "required"},
		{"url null", `{"url":null}`, []string{"url"}, "required"},
		{"url not a string", `{"url":5}`, []string{"url"}, "string"},
		{"unknown field", `{"url":"https://93.184.216.34/","secret":"whsec_x"}`, []string{"secret"}, "url and events"},
		{"relative", `{"url":"/hooks"}`, []string{"url"}, "absolute http or https"},
		{"ftp", `{"url":"ftp://93.184.216.34/"}`, []string{"url"}, "absolute http or https"},
		{"http", `{"url":"http://93.184.216.34/"}`, []string{"url"}, "https"},
		{"userinfo", `{"url":"https://u:p@93.184.216.34/"}`, []string{"url"}, "user name or password"},
		{"too long", `{"url":"` + long + `"}`, []string{"url"}, "2048"},
		{"loopback", `{"url":"https://127.0.0.1/hooks"}`, []string{"url"}, "loopback"},
		{"loopback v6", `{"url":"https://[::1]:8443/hooks"}`, []string{"url"}, "loopback"},
		{"private", `{"url":"https://10.0.0.1/hooks"}`, []string{"url"}, "private"},
		{"private mapped", `{"url":"https://[::ffff:192.168.0.1]/"}`, []string{"url"}, "private"},
		{"link-local", `{"url":"https://169.254.169.254/latest/meta-data"}`, []string{"url"}, "link-local"},
		{"events not an array", `{"url":"https://93.184.216.34/","events":"domain.verified"}`, []string{"events"}, "array"},
		{"events of numbers", `{"url":"https://93.184.216.34/","events":[1]}`, []string{"events"}, "array"},
		{"events empty", `{"url":"https://93.184.216.34/","events":[]}`, []string{"events"}, "at least one"},
		{"unknown event", `{"url":"https://93.184.216.34/","events":["domain.created"]}`, []string{"events"}, "domain.verified"},
		{"duplicate event", `{"url":"https://93.184.216.34/","events":["domain.verified","domain.failed","domain.verified"]}`, []string{"events"}, "twice"},
		{"both wrong", `{"url":"https://10.0.0.1/","events":["nope"]}`, []string{"events", "url"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errObj := errorOf(t, e.do("POST", "/api/v2/webhooks", tc.body, e.key), http.StatusBadRequest, "VALIDATION_FAILED")
			fields := detailFields(t, errObj)
			if !slices.Equal(fields, tc.fields) {
				t.Errorf("details name %v, want %v", fields, tc.fields)
			}
			msg := errObj["message"].(string)
			if !strings.Contains(msg, tc.inMessage) || !fieldSentence.MatchString(msg) {
				t.Errorf("message %q: want one sentence mentioning %q", msg, tc.inMessage)
			}
		})
	}
	// None of them stored a webhook.
	if items := e.v2Get("/api/v2/webhooks")["data"].([]any); len(items) != 0 {
		t.Fatalf("bad requests stored webhooks: %v", items)
	}

	// A public address is accepted without the option (no request is ever sent
	// to it here), and a private one with it.
	if got := e.createWebhook(`{"url":"https://93.184.216.34/hooks"}`, e.key); got["url"] != "https://93.184.216.34/hooks" {
		t.Errorf("public URL stored as %v", got["url"])
	}
	ew := withWebhookOptions(e)
	if got := ew.createWebhook(`{"url":"http://127.0.0.1:8080/hooks","events":["domain.status.changed"]}`, e.key); got["url"] != "http://127.0.0.1:8080/hooks" {
		t.Errorf("private URL with the option stored as %v", got["url"])
	}
}

// eventsPage GETs a page of a domain's events and checks the list's shape.
func (e *env) eventsPage(domainID, query string) (items []map[string]any, pagination map[string]any) {
	e.t.Helper()
	m := e.v2Get("/api/v2/domains/" + domainID + "/events" + query)
	if got := keysOf(m); !slices.Equal(got, []string{"data", "pagination"}) {
		e.t.Fatalf("events keys %v", got)
	}
	for _, it := range m["data"].([]any) {
		item := it.(map[string]any)
		if got := keysOf(item); !slices.Equal(got, eventKeys) {
			e.t.Fatalf("event keys %v, want %v", got, eventKeys)
		}
		items = append(items, item)
	}
	return items, m["pagination"].(map[string]any)
}

func typesOf(items []map[string]any, key string) []string {
	var out []string
	for _, it := range items {
		out = append(out, it[key].(string))
	}
	return out
}

func wantPagination(t *testing.T, p map[string]any, limit, offset, total int, hasMore bool) {
	t.Helper()
	want := map[string]any{"limit": float64(limit), "offset": float64(offset), "total": float64(total), "hasMore": hasMore}
	if fmt.Sprint(p) != fmt.Sprint(want) {
		t.Errorf("pagination %v, want %v", p, want)
	}
}

func TestDomainEvents(t *testing.T) {
	e := newEnv(t, envOptions{})
	d := e.addDomain("example.com")

	items, p := e.eventsPage(d.ID, "")
	if len(items) != 0 {
		t.Fatalf("events before any check: %v", items)
	}
	wantPagination(t, p, 20, 0, 0, false)

	e.publish(d.DNSRecords.Ownership)
	e.verify(d.ID) // PENDING_CONFIGURATION -> PENDING, ownership flips
	e.publish(d.DNSRecords.DKIM)
	e.verify(d.ID) // PENDING -> VERIFIED, dkim flips
	e.verify(d.ID) // nothing changes: no event

	items, p = e.eventsPage(d.ID, "")
	wantTypes := []string{"domain.record.changed", "domain.verified", "domain.record.changed", "domain.status.changed"}
	if got := typesOf(items, "type"); !slices.Equal(got, wantTypes) {
		t.Fatalf("event types %v, want newest first %v", got, wantTypes)
	}
	wantPagination(t, p, 20, 0, 4, false)
	evtID := regexp.MustCompile(`^evt_[0-9a-f]{24}$`)
	for i, ev := range items {
		data, ok := ev["data"].(map[string]any)
		if !ok || !evtID.MatchString(ev["id"].(string)) || !millisUTC.MatchString(ev["createdAt"].(string)) {
			t.Fatalf("event %d = %v", i, ev)
		}
		if data["eventId"] != ev["id"] || data["domainId"] != d.ID || data["domain"] != "example.com" {
			t.Errorf("event %d data %v: want eventId %v, domainId %s, domain example.com", i, data, ev["id"], d.ID)
		}
	}
	recordOf := func(ev map[string]any) any {
		recs := ev["data"].(map[string]any)["records"].([]any)
		if len(recs) != 1 {
			t.Fatalf("record.changed with %d records: %v", len(recs), ev)
		}
		return recs[0].(map[string]any)["type"]
	}
	if r0, r2 := recordOf(items[0]), recordOf(items[2]); r0 != "dkim" || r2 != "ownership" {
		t.Errorf("record.changed events name %v and %v, want dkim (newest) and ownership", r0, r2)
	}
	if data := items[1]["data"].(map[string]any); data["verificationStatus"] != "VERIFIED" || data["previousStatus"] != "PENDING" {
		t.Errorf("domain.verified data %v, want VERIFIED from PENDING", data)
	}

	page1, p := e.eventsPage(d.ID, "?limit=2")
	wantPagination(t, p, 2, 0, 4, true)
	page2, p2 := e.eventsPage(d.ID, "?limit=2&offset=2")
	wantPagination(t, p2, 2, 2, 4, false)
	if got, want := typesOf(append(page1, page2...), "id"), typesOf(items, "id"); !slices.Equal(got, want) {
		t.Errorf("two pages give %v, want the whole list %v", got, want)
	}
	if rest, p := e.eventsPage(d.ID, "?offset=4"); len(rest) != 0 {
		t.Errorf("past the end: %v", rest)
	} else {
		wantPagination(t, p, 20, 4, 4, false)
	}

	for _, q := range []string{"?limit=0", "?limit=101", "?offset=-1", "?limit=x"} {
		errObj := errorOf(t, e.do("GET", "/api/v2/domains/"+d.ID+"/events"+q, "", e.key), http.StatusBadRequest, "VALIDATION_FAILED")
		if f := detailFields(t, errObj); len(f) != 1 || !strings.Contains(q, f[0]) {
			t.Errorf("%s: details name %v", q, f)
		}
	}
	errorOf(t, e.do("GET", "/api/v2/domains/"+d.ID+"/events", "", e.newKey("beta")), http.StatusNotFound, "DOMAIN_NOT_FOUND")
	errorOf(t, e.do("GET", "/api/v2/domains/"+strings.Repeat("0", 24)+"/events", "", e.key), http.StatusNotFound, "DOMAIN_NOT_FOUND")
	errorOf(t, e.do("GET", "/api/v2/domains/nothex/events", "", e.key), http.StatusBadRequest, "VALIDATION_FAILED")
}

// endpoint is a webhook receiver on loopback that keeps what it got and answers
// with status.
type endpoint struct {
	*httptest.Server
	mu     sync.Mutex
	status int
	got    []http.Header
	bodies [][]byte
}

func newEndpoint(t *testing.T, status int) *endpoint {
	ep := &endpoint{status: status}
	ep.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ep.mu.Lock()
		defer ep.mu.Unlock()
		ep.got = append(ep.got, r.Header.Clone())
		ep.bodies = append(ep.bodies, body)
		w.WriteHeader(ep.status)
	}))
	t.Cleanup(ep.Close)
	return ep
}

func (ep *endpoint) answer(status int) {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	ep.status = status
}

// deliveriesPage GETs a page of a webhook's deliveries and checks the list's shape.
func (e *env) deliveriesPage(webhookID, query string) ([]map[string]any, map[string]any) {
	e.t.Helper()
	m := e.v2Get("/api/v2/webhooks/" + webhookID + "/deliveries" + query)
	if got := keysOf(m); !slices.Equal(got, []string{"data", "pagination"}) {
		e.t.Fatalf("deliveries keys %v", got)
	}
	var items []map[string]any
	for _, it := range m["data"].([]any) {
		item := it.(map[string]any)
		if got := keysOf(item); !slices.Equal(got, deliveryKeys) {
			e.t.Fatalf("delivery keys %v, want %v", got, deliveryKeys)
		}
		for _, a := range item["attempts"].([]any) {
			if got := keysOf(a); !slices.Equal(got, attemptKeys) {
				e.t.Fatalf("attempt keys %v, want %v", got, attemptKeys)
			}
		}
		items = append(items, item)
	}
	return items, m["pagination"].(map[string]any)
}

func TestWebhookDeliveries(t *testing.T) {
	e := newEnv(t, envOptions{})
	ew := withWebhookOptions(e)
	ep := newEndpoint(t, http.StatusInternalServerError)
	wh := ew.createWebhook(`{"url":"`+ep.URL+`/in"}`, e.key)
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	dead := ew.createWebhook(`{"url":"`+closed.URL+`"}`, e.key)
	id, secret := wh["id"].(string), wh["secret"].(string)

	items, p := e.deliveriesPage(id, "")
	if len(items) != 0 {
		t.Fatalf("deliveries before any event: %v", items)
	}
	wantPagination(t, p, 20, 0, 0, false)

	d := e.addDomain("example.com")
	e.publish(d.DNSRecords.Ownership)
	e.publish(d.DNSRecords.DKIM)
	e.verify(d.ID) // verified, and two records changed
	events, _ := e.eventsPage(d.ID, "")

	items, p = e.deliveriesPage(id, "")
	wantPagination(t, p, 20, 0, 3, false)
	if got, want := typesOf(items, "eventType"), typesOf(events, "type"); !slices.Equal(got, want) {
		t.Fatalf("delivery event types %v, want the events' %v, newest first", got, want)
	}
	if got, want := typesOf(items, "eventId"), typesOf(events, "id"); !slices.Equal(got, want) {
		t.Fatalf("delivery event ids %v, want %v", got, want)
	}
	for _, it := range items {
		if it["status"] != "pending" || len(it["attempts"].([]any)) != 0 || !millisUTC.MatchString(it["nextAttemptAt"].(string)) {
			t.Errorf("queued delivery %v, want pending with nextAttemptAt and no attempts", it)
		}
	}

	sealer, err := records.NewSealer(testMasterKey)
	if err != nil {
		t.Fatal(err)
	}
	var offset time.Duration
	// Three in flight per endpoint and a short parking, so that each round
	// attempts every delivery; fairness has tests of its own.
	deliverer := &webhook.Deliverer{
		Store: e.store, Sealer: sealer, Client: webhook.NewClient(true, 5*time.Second),
		Now:                 func() time.Time { return time.Now().Add(offset) },
		EndpointConcurrency: 3, ParkBase: time.Millisecond, ParkMax: time.Millisecond,
	}
	if n, err := deliverer.RunOnce(t.Context()); n != 6 || err != nil {
		t.Fatalf("first round: %d, %v; want 6 deliveries (3 events, 2 webhooks)", n, err)
	}
	ep.answer(http.StatusNoContent)
	offset = time.Minute // past the first backoff step
	if n, err := deliverer.RunOnce(t.Context()); n != 6 || err != nil {
		t.Fatalf("second round: %d, %v; want 6", n, err)
	}

	items, _ = e.deliveriesPage(id, "")
	for _, it := range items {
		if it["status"] != "delivered" || it["nextAttemptAt"] != nil {
			t.Errorf("delivery %v, want delivered with nextAttemptAt null", it)
		}
		attempts := it["attempts"].([]any)
		if len(attempts) != 2 {
			t.Fatalf("delivery %v has %d attempts, want 2", it["id"], len(attempts))
		}
		failed, ok := attempts[0].(map[string]any), attempts[1].(map[string]any)
		if failed["statusCode"] != float64(500) || !strings.Contains(fmt.Sprint(failed["error"]), "500") {
			t.Errorf("first attempt %v, want status 500 with an error", failed)
		}
		if ok["statusCode"] != float64(204) || ok["error"] != nil {
			t.Errorf("second attempt %v, want status 204 and error null", ok)
		}
		for _, a := range attempts {
			am := a.(map[string]any)
			if d, _ := am["durationMs"].(float64); !millisUTC.MatchString(am["at"].(string)) || d < 0 || d != float64(int(d)) {
				t.Errorf("attempt at %v durationMs %v", am["at"], am["durationMs"])
			}
		}
	}
	// What the endpoint got is signed with the secret shown at creation.
	ep.mu.Lock()
	for i, h := range ep.got {
		if err := webhook.VerifySignature(secret, h, ep.bodies[i], time.Now().Add(offset), time.Hour); err != nil {
			t.Errorf("request %d: %v", i, err)
		}
	}
	ep.mu.Unlock()

	deadItems, _ := e.deliveriesPage(dead["id"].(string), "?limit=1&offset=1")
	if len(deadItems) != 1 {
		t.Fatalf("page of one: %v", deadItems)
	}
	it := deadItems[0]
	if it["status"] != "pending" || it["nextAttemptAt"] == nil || len(it["attempts"].([]any)) != 2 {
		t.Errorf("delivery to a closed port %v, want pending with 2 attempts", it)
	}
	for _, a := range it["attempts"].([]any) {
		if am := a.(map[string]any); am["statusCode"] != nil || am["error"] == nil {
			t.Errorf("attempt without an answer %v, want statusCode null and an error", am)
		}
	}
	_, p = e.deliveriesPage(dead["id"].(string), "?limit=1&offset=1")
	wantPagination(t, p, 1, 1, 3, true)
}

// TestWebhookLimit registers webhooks up to the project's cap, sequentially and
// then concurrently: the one past the cap is refused with a sentence naming the
// limit, other projects are not affected, and racing registrations never pass
// the cap.
func TestWebhookLimit(t *testing.T) {
	e := newEnv(t, envOptions{})
	ew := withWebhookOptions(e)
	for i := range webhook.DefaultMaxWebhooks {
		ew.createWebhook(fmt.Sprintf(`{"url":"http://127.0.0.1:9/h%d"}`, i), e.key)
	}
	r := ew.do("POST", "/api/v2/webhooks", `{"url":"http://127.0.0.1:9/one-too-many"}`, e.key)
	m := r.json(t)
	errObj, _ := m["error"].(map[string]any)
	if r.status != http.StatusBadRequest || errObj["code"] != "VALIDATION_FAILED" ||
		!strings.Contains(fmt.Sprint(errObj["message"]), fmt.Sprintf("already has %d webhooks", webhook.DefaultMaxWebhooks)) {
		t.Fatalf("webhook %d: status %d %s; want 400 VALIDATION_FAILED naming the limit of %d",
			webhook.DefaultMaxWebhooks+1, r.status, r.body, webhook.DefaultMaxWebhooks)
	}
	if msg := fmt.Sprint(errObj["message"]); !fieldSentence.MatchString(msg) {
		t.Errorf("message %q is not one sentence", msg)
	}
	other := e.newKey("globex")
	ew.createWebhook(`{"url":"http://127.0.0.1:9/other"}`, other)

	// After a delete there is room for one more.
	list := ew.do("GET", "/api/v2/webhooks", "", e.key).json(t)["data"].([]any)
	first := list[0].(map[string]any)["id"].(string)
	if r := ew.do("DELETE", "/api/v2/webhooks/"+first, "", e.key); r.status != http.StatusNoContent {
		t.Fatalf("DELETE: %d %s", r.status, r.body)
	}
	ew.createWebhook(`{"url":"http://127.0.0.1:9/again"}`, e.key)

	// Racing registrations of a fresh project, on a server with a cap of 3.
	capped := *e.variant(func(c *app.Config) { c.WebhookAllowPrivate, c.MaxWebhooks = true, 3 })
	racer := e.newKey("racer")
	const racers = 12
	statuses := make([]int, racers)
	testenv.Race(racers, func(i int) {
		statuses[i] = capped.do("POST", "/api/v2/webhooks", fmt.Sprintf(`{"url":"http://127.0.0.1:9/r%d"}`, i), racer).status
	})
	created := 0
	for _, s := range statuses {
		switch s {
		case http.StatusCreated:
			created++
		case http.StatusBadRequest:
		default:
			t.Errorf("racing registration answered %d", s)
		}
	}
	stored, err := e.store.Webhooks(t.Context(), projectID(t, e, "racer"))
	if err != nil || created != 3 || len(stored) != 3 {
		t.Errorf("%d racing registrations with a cap of 3: %d created, %d stored (%v); want 3", racers, created, len(stored), err)
	}
}
