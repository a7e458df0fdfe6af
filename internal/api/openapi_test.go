package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/domaind/domaind/internal/apptest"
)

// apiDoc is the OpenAPI document as the server serves it, and a router that
// finds the documented operation a request is for.
type apiDoc struct {
	doc    *openapi3.T
	router routers.Router
}

// loadAPIDoc fetches GET /openapi.json from e without a key, checks that it is
// the repository's openapi.json, and loads and validates it.
func loadAPIDoc(t *testing.T, e *env) *apiDoc {
	t.Helper()
	r := e.do("GET", "/openapi.json", "", "")
	if r.status != http.StatusOK {
		t.Fatalf("GET /openapi.json without a key: status %d: %s", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("GET /openapi.json: Content-Type %q, want application/json", ct)
	}
	file, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r.body, file) {
		t.Fatal("GET /openapi.json does not serve internal/api/openapi.json")
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(r.body)
	if err != nil {
		t.Fatalf("openapi.json does not load: %v", err)
	}
	if !doc.IsOpenAPI31OrLater() || doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi.json is OpenAPI %q, want 3.1.0", doc.OpenAPI)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("openapi.json is not a valid OpenAPI document: %v", err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return &apiDoc{doc: doc, router: router}
}

// strict makes kin-openapi fail on a status the operation does not list, and
// report every mismatch rather than the first.
func strict() *openapi3filter.Options {
	return &openapi3filter.Options{
		IncludeResponseStatus: true,
		MultiError:            true,
		AuthenticationFunc:    bearerPresent,
	}
}

// bearerPresent stands in for the server's own key check when requests are
// validated: the document's scheme is a bearer token, and the request must carry one.
func bearerPresent(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	if !strings.HasPrefix(in.RequestValidationInput.Request.Header.Get("Authorization"), "Bearer ") {
		return errors.New("no bearer token")
	}
	return nil
}

// validate checks r, the answer to method path with key and body, against the
// document: the path and method must be a documented operation, the status
// listed for it, and the headers and body as it says. A 2xx answer's request
// must be one the document accepts too. It returns the operation's path
// template.
func (a *apiDoc) validate(method, path, key, body string, r response) (string, error) {
	req, err := http.NewRequest(method, "http://domaind.test"+path, strings.NewReader(body))
	if err != nil {
		return "", err
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	route, params, err := a.router.FindRoute(req)
	if err != nil {
		return "", fmt.Errorf("%s %s is not a documented operation: %w", method, path, err)
	}
	reqIn := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: strict()}
	if r.status/100 == 2 {
		if err := openapi3filter.ValidateRequest(context.Background(), reqIn); err != nil {
			return route.Path, fmt.Errorf("the document rejects a request the server accepted: %w", err)
		}
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: reqIn, Status: r.status, Header: r.header, Options: strict(),
	}
	in.SetBodyBytes(r.body)
	return route.Path, openapi3filter.ValidateResponse(context.Background(), in)
}

// validateUnrouted checks r, a 404 on a path that is no route or a 405 for a
// method a path does not take, against the error envelope with the code and
// status pinned, and for a 405 a non-empty Allow header. No operation gives
// these answers, so the document describes them in prose only (a response
// component that nothing references is dead to every tool, and linters flag
// it); they are held to its ErrorEnvelope schema here.
func (a *apiDoc) validateUnrouted(r response) error {
	code := map[int]string{http.StatusNotFound: "NOT_FOUND", http.StatusMethodNotAllowed: "METHOD_NOT_ALLOWED"}[r.status]
	if code == "" {
		return fmt.Errorf("status %d is not an answer of no operation", r.status)
	}
	envelope := a.doc.Components.Schemas["ErrorEnvelope"]
	if envelope == nil {
		return errors.New("the document has no ErrorEnvelope schema")
	}
	var pin openapi3.Schema
	if err := json.Unmarshal(fmt.Appendf(nil, `{"properties": {"error": {"properties": {"code": {"enum": [%q]}, "status": {"enum": [%d]}}}}}`, code, r.status), &pin); err != nil {
		return err
	}
	resp := openapi3.NewResponse().WithDescription(code).WithJSONSchema(openapi3.NewAllOfSchema(envelope.Value, &pin))
	if r.status == http.StatusMethodNotAllowed {
		resp.Headers = openapi3.Headers{"Allow": {Value: &openapi3.Header{Parameter: openapi3.Parameter{
			Required: true, Schema: openapi3.NewStringSchema().WithMinLength(1).NewRef(),
		}}}}
	}
	op := openapi3.NewOperation()
	op.Responses = openapi3.NewResponses(openapi3.WithStatus(r.status, &openapi3.ResponseRef{Value: resp}))
	req := httptest.NewRequest("GET", "/", nil)
	route := &routers.Route{Spec: a.doc, Path: "/", PathItem: &openapi3.PathItem{Get: op}, Method: "GET", Operation: op}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, Route: route},
		Status:                 r.status, Header: r.header, Options: strict(),
	}
	in.SetBodyBytes(r.body)
	return openapi3filter.ValidateResponse(context.Background(), in)
}

// apiCase is one request whose answer is validated against the document.
type apiCase struct {
	name   string
	method string
	path   string
	body   string
	key    string
	want   int
	// unrouted answers are checked with validateUnrouted instead of against
	// an operation's responses.
	unrouted bool
}

// coverage records which operations ("GET /v1/domains") had a successful
// answer validated.
type coverage map[string]bool

func opKey(method, template string) string { return method + " " + template }

// run sends each case's request and validates its answer, in order: later
// cases may depend on what earlier ones did.
func (a *apiDoc) run(t *testing.T, e *env, cov coverage, cases []apiCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.do(c.method, c.path, c.body, c.key)
			if r.status != c.want {
				t.Fatalf("%s %s: status %d, want %d: %s", c.method, c.path, r.status, c.want, truncate(r.body))
			}
			if c.unrouted {
				if err := a.validateUnrouted(r); err != nil {
					t.Fatalf("%s %s: the answer is not the error envelope for %d: %v\n%s", c.method, c.path, r.status, err, r.body)
				}
				return
			}
			tmpl, err := a.validate(c.method, c.path, c.key, c.body, r)
			if err != nil {
				t.Fatalf("%s %s: status %d: the answer does not match the document: %v\n%s", c.method, c.path, r.status, err, truncate(r.body))
			}
			if r.status/100 == 2 {
				cov[opKey(c.method, tmpl)] = true
			}
		})
	}
}

func truncate(b []byte) []byte {
	if len(b) > 2000 {
		return append(b[:2000:2000], "…"...)
	}
	return b
}

// hookReceiver is a webhook endpoint that keeps every request it receives and
// answers 500 to the first, so that a delivery has a failed attempt too.
type hookReceiver struct {
	mu   sync.Mutex
	reqs []capturedRequest
}

type capturedRequest struct {
	header http.Header
	body   []byte
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	h.reqs = append(h.reqs, capturedRequest{header: r.Header.Clone(), body: body})
	n := len(h.reqs)
	h.mu.Unlock()
	if n == 1 {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *hookReceiver) received() []capturedRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.reqs)
}

// TestOpenAPIResponses validates real answers of every documented route, and
// the representative errors, against the served OpenAPI document, so that the
// document and the server cannot drift apart: an undocumented field, status,
// header or route fails here, and so does a documented operation no case
// answers successfully.
func TestOpenAPIResponses(t *testing.T) {
	e := newEnv(t, envOptions{webhooks: true})
	a := loadAPIDoc(t, e)
	cov := coverage{}

	// State for the lists to be non-empty: a verified domain with events, and a
	// webhook with a delivery that failed once and then succeeded.
	hook := &hookReceiver{}
	hookSrv := httptest.NewServer(hook)
	t.Cleanup(hookSrv.Close)
	r := e.do("POST", "/api/v2/webhooks", `{"url":"`+hookSrv.URL+`/hooks"}`, e.key)
	if r.status != http.StatusCreated {
		t.Fatalf("register webhook: %d %s", r.status, r.body)
	}
	webhookID := r.json(t)["data"].(map[string]any)["id"].(string)
	d := e.addDomain("example.com")
	for _, rec := range []recordJSON{d.DNSRecords.Ownership, d.DNSRecords.DKIM, d.DNSRecords.MailFrom[0], d.DNSRecords.MailFrom[1], d.DNSRecords.DMARC} {
		e.publish(rec)
	}
	if v := e.verify(d.ID); v.Data.VerificationStatus != "VERIFIED" {
		t.Fatalf("setup: domain not verified: %+v", v.Data)
	}
	waitFor(t, 10*time.Second, "a webhook delivery to succeed after a failed attempt", func() bool {
		return len(hook.received()) >= 2
	})
	unverified := e.addDomain("second.example").ID
	r = e.do("GET", "/api/v2/domains?limit=1", "", e.key)
	cursor, _ := r.json(t)["pagination"].(map[string]any)["nextCursor"].(string)
	if cursor == "" {
		t.Fatalf("setup: no nextCursor on the first of two pages: %s", r.body)
	}

	other := e.newKey("other")
	bogusID := "0123456789abcdef01234567"
	bogusHook := "wh_0123456789abcdef01234567"
	tooLarge := `{"domain":"` + strings.Repeat("a", 1<<20) + `"}`
	id := d.ID

	cases := []apiCase{
		{name: "healthz", method: "GET", path: "/healthz", want: 200},
		{name: "healthz/405", method: "POST", path: "/healthz", want: 405, unrouted: true},
		{name: "openapi", method: "GET", path: "/openapi.json", want: 200},
		{name: "openapi/413", method: "GET", path: "/openapi.json", body: tooLarge, want: 413},
		{name: "healthz/413", method: "GET", path: "/healthz", body: tooLarge, want: 413},
		{name: "no route", method: "GET", path: "/v3/nothing", key: e.key, want: 404, unrouted: true},

		{name: "v1 add", method: "POST", path: "/v1/domains", body: `{"domain":"third.example","regionKey":"eu-central-1"}`, key: e.key, want: 201},
		{name: "v1 add/400", method: "POST", path: "/v1/domains", body: `{"domain":"not a domain"}`, key: e.key, want: 400},
		{name: "v1 add/400 unknown field", method: "POST", path: "/v1/domains", body: `{"domain":"x.example","region":"us-east-1"}`, key: e.key, want: 400},
		{name: "v1 add/401", method: "POST", path: "/v1/domains", body: `{"domain":"x.example"}`, want: 401},
		{name: "v1 add/409", method: "POST", path: "/v1/domains", body: `{"domain":"example.com"}`, key: e.key, want: 409},
		{name: "v1 add/413", method: "POST", path: "/v1/domains", body: tooLarge, key: e.key, want: 413},
		{name: "v1 domains/405", method: "PUT", path: "/v1/domains", body: `{}`, key: e.key, want: 405, unrouted: true},
		{name: "v1 list", method: "GET", path: "/v1/domains", key: e.key, want: 200},
		{name: "v1 list paged", method: "GET", path: "/v1/domains?limit=1&offset=1", key: e.key, want: 200},
		{name: "v1 list/400", method: "GET", path: "/v1/domains?limit=0", key: e.key, want: 400},
		{name: "v1 list/401 bad key", method: "GET", path: "/v1/domains", key: "AS_" + strings.Repeat("x", 40), want: 401},
		{name: "v1 get", method: "GET", path: "/v1/domains/" + id, key: e.key, want: 200},
		{name: "v1 get/400", method: "GET", path: "/v1/domains/not-an-id", key: e.key, want: 400},
		{name: "v1 get/404", method: "GET", path: "/v1/domains/" + bogusID, key: e.key, want: 404},
		{name: "v1 get/404 other project", method: "GET", path: "/v1/domains/" + id, key: other, want: 404},
		{name: "v1 verify", method: "POST", path: "/v1/domains/" + id + "/verify", key: e.key, want: 200},
		{name: "v1 verify/404", method: "POST", path: "/v1/domains/" + bogusID + "/verify", key: e.key, want: 404},
		{name: "v1 verify/405", method: "GET", path: "/v1/domains/" + id + "/verify", key: e.key, want: 405, unrouted: true},

		{name: "v1 inbound enable", method: "POST", path: "/v1/domains/" + id + "/inbound/enable", key: e.key, want: 200},
		{name: "v1 get with inbound", method: "GET", path: "/v1/domains/" + id, key: e.key, want: 200},
		{name: "v2 records with inbound", method: "GET", path: "/api/v2/domains/" + id + "/dns-records", key: e.key, want: 200},
		{name: "v1 inbound enable/400", method: "POST", path: "/v1/domains/not-an-id/inbound/enable", key: e.key, want: 400},
		{name: "v1 inbound enable/400 unverified", method: "POST", path: "/v1/domains/" + unverified + "/inbound/enable", key: e.key, want: 400},
		{name: "v1 inbound enable/404", method: "POST", path: "/v1/domains/" + bogusID + "/inbound/enable", key: e.key, want: 404},
		{name: "v1 inbound enable/401", method: "POST", path: "/v1/domains/" + id + "/inbound/enable", want: 401},
		{name: "v1 inbound disable", method: "POST", path: "/v1/domains/" + id + "/inbound/disable", key: e.key, want: 200},
		{name: "v1 inbound disable/404", method: "POST", path: "/v1/domains/" + bogusID + "/inbound/disable", key: e.key, want: 404},

		{name: "v2 list", method: "GET", path: "/api/v2/domains", key: e.key, want: 200},
		{name: "v2 list paged", method: "GET", path: "/api/v2/domains?limit=1&offset=1", key: e.key, want: 200},
		{name: "v2 list cursor", method: "GET", path: "/api/v2/domains?limit=1&cursor=" + cursor, key: e.key, want: 200},
		{name: "v2 list/400", method: "GET", path: "/api/v2/domains?limit=101", key: e.key, want: 400},
		{name: "v2 list/400 cursor and offset", method: "GET", path: "/api/v2/domains?offset=1&cursor=" + cursor, key: e.key, want: 400},
		{name: "v2 list/401", method: "GET", path: "/api/v2/domains", want: 401},
		{name: "v2 get", method: "GET", path: "/api/v2/domains/" + id, key: e.key, want: 200},
		{name: "v2 get check", method: "GET", path: "/api/v2/domains/" + id + "?check=true", key: e.key, want: 200},
		{name: "v2 get/400", method: "GET", path: "/api/v2/domains/" + id + "?check=maybe", key: e.key, want: 400},
		{name: "v2 get/404", method: "GET", path: "/api/v2/domains/" + bogusID, key: e.key, want: 404},
		{name: "v2 dns-records", method: "GET", path: "/api/v2/domains/" + id + "/dns-records", key: e.key, want: 200},
		{name: "v2 dns-records/404", method: "GET", path: "/api/v2/domains/" + bogusID + "/dns-records", key: e.key, want: 404},
		{name: "v2 events", method: "GET", path: "/api/v2/domains/" + id + "/events", key: e.key, want: 200},
		{name: "v2 events/400", method: "GET", path: "/api/v2/domains/" + id + "/events?offset=-1", key: e.key, want: 400},
		{name: "v2 events/404", method: "GET", path: "/api/v2/domains/" + bogusID + "/events", key: e.key, want: 404},
		{name: "v2 zone", method: "GET", path: "/api/v2/domains/" + id + "/zone", key: e.key, want: 200},
		{name: "v2 zone/400", method: "GET", path: "/api/v2/domains/x/zone", key: e.key, want: 400},
		{name: "v2 zone/401", method: "GET", path: "/api/v2/domains/" + id + "/zone", want: 401},
		{name: "v2 zone/404", method: "GET", path: "/api/v2/domains/" + id + "/zone", key: other, want: 404},
		{name: "v2 zone/405", method: "POST", path: "/api/v2/domains/" + id + "/zone", key: e.key, want: 405, unrouted: true},
		{name: "v2 records.csv", method: "GET", path: "/api/v2/domains/" + id + "/records.csv", key: e.key, want: 200},
		{name: "v2 records.csv/404", method: "GET", path: "/api/v2/domains/" + bogusID + "/records.csv", key: e.key, want: 404},
		{name: "v2 dkim", method: "GET", path: "/api/v2/domains/" + id + "/dkim", key: e.key, want: 200},
		{name: "v2 dkim/404", method: "GET", path: "/api/v2/domains/" + bogusID + "/dkim", key: e.key, want: 404},
		{name: "v2 dkim rotate", method: "POST", path: "/api/v2/domains/" + id + "/dkim/rotate", key: e.key, want: 202},
		{name: "v2 dkim after rotate", method: "GET", path: "/api/v2/domains/" + id + "/dkim", key: e.key, want: 200},
		{name: "v1 get while rotating", method: "GET", path: "/v1/domains/" + id, key: e.key, want: 200},
		{name: "v2 dkim rotate/409", method: "POST", path: "/api/v2/domains/" + id + "/dkim/rotate", key: e.key, want: 409},
		{name: "v2 dkim rotate/404", method: "POST", path: "/api/v2/domains/" + bogusID + "/dkim/rotate", key: e.key, want: 404},
		{name: "v2 dkim rotate/405", method: "GET", path: "/api/v2/domains/" + id + "/dkim/rotate", key: e.key, want: 405, unrouted: true},

		{name: "webhooks create", method: "POST", path: "/api/v2/webhooks", body: `{"url":"` + hookSrv.URL + `/second","events":["domain.verified"]}`, key: e.key, want: 201},
		{name: "webhooks create/400", method: "POST", path: "/api/v2/webhooks", body: `{"url":"ftp://x","events":["nope"]}`, key: e.key, want: 400},
		{name: "webhooks create/413", method: "POST", path: "/api/v2/webhooks", body: tooLarge, key: e.key, want: 413},
		{name: "webhooks list", method: "GET", path: "/api/v2/webhooks", key: e.key, want: 200},
		{name: "webhooks list/401", method: "GET", path: "/api/v2/webhooks", want: 401},
		{name: "webhook deliveries", method: "GET", path: "/api/v2/webhooks/" + webhookID + "/deliveries", key: e.key, want: 200},
		{name: "webhook deliveries/400", method: "GET", path: "/api/v2/webhooks/wh_x/deliveries", key: e.key, want: 400},
		{name: "webhook deliveries/404", method: "GET", path: "/api/v2/webhooks/" + bogusHook + "/deliveries", key: e.key, want: 404},
		{name: "webhook delete/404", method: "DELETE", path: "/api/v2/webhooks/" + bogusHook, key: e.key, want: 404},
		{name: "webhook delete/400", method: "DELETE", path: "/api/v2/webhooks/nope", key: e.key, want: 400},
		{name: "webhook delete", method: "DELETE", path: "/api/v2/webhooks/" + webhookID, key: e.key, want: 204},
		{name: "webhook/405", method: "GET", path: "/api/v2/webhooks/" + webhookID, key: e.key, want: 405, unrouted: true},

		{name: "v1 delete", method: "DELETE", path: "/v1/domains/" + id, key: e.key, want: 200},
		{name: "v1 delete/404", method: "DELETE", path: "/v1/domains/" + id, key: e.key, want: 404},
		{name: "v1 delete/400", method: "DELETE", path: "/v1/domains/ABC", key: e.key, want: 400},
	}
	a.run(t, e, cov, cases)

	t.Run("webhook payload", func(t *testing.T) {
		for _, got := range hook.received() {
			if err := a.validateWebhook(got); err != nil {
				t.Errorf("a delivered webhook does not match webhooks/domainEvent: %v\n%s", err, got.body)
			}
		}
	})

	t.Run("429 rate limit", func(t *testing.T) {
		e := newEnv(t, envOptions{rateLimit: "1/h"})
		a.run(t, e, cov, []apiCase{
			{name: "first", method: "GET", path: "/v1/domains", key: e.key, want: 200},
			{name: "second", method: "GET", path: "/api/v2/domains", key: e.key, want: 429},
		})
	})
	t.Run("429 verify too soon", func(t *testing.T) {
		e := newEnv(t, envOptions{minInterval: time.Hour})
		id := e.addDomain("example.com").ID
		a.run(t, e, cov, []apiCase{
			{name: "first", method: "POST", path: "/v1/domains/" + id + "/verify", key: e.key, want: 200},
			{name: "second", method: "POST", path: "/v1/domains/" + id + "/verify", key: e.key, want: 429},
		})
	})
	t.Run("500 and 503", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		e.store.Close() // every query fails from now on
		a.run(t, e, cov, []apiCase{
			{name: "healthz", method: "GET", path: "/healthz", want: 503},
			{name: "v1 list", method: "GET", path: "/v1/domains", key: e.key, want: 500},
			{name: "v2 zone", method: "GET", path: "/api/v2/domains/" + bogusID + "/zone", key: e.key, want: 500},
		})
	})

	// Every documented operation must have been answered successfully.
	for path, item := range a.doc.Paths.Map() {
		for method := range item.Operations() {
			k := opKey(method, path)
			if !cov[k] {
				t.Errorf("no case validates a successful answer of %s", k)
			}
		}
	}
}

// validateWebhook checks a request a webhook endpoint received against the
// document's webhooks/domainEvent.
func (a *apiDoc) validateWebhook(got capturedRequest) error {
	item := a.doc.Webhooks["domainEvent"]
	if item == nil || item.Post == nil {
		return errors.New("the document has no POST webhooks/domainEvent")
	}
	req := httptest.NewRequest("POST", "/hooks", bytes.NewReader(got.body))
	req.Header = got.header.Clone()
	route := &routers.Route{Spec: a.doc, Path: "domainEvent", PathItem: item, Method: "POST", Operation: item.Post}
	return openapi3filter.ValidateRequest(context.Background(), &openapi3filter.RequestValidationInput{
		Request: req, Route: route, Options: strict(),
	})
}

// TestOpenAPIValidationIsStrict shows that the validation above would catch
// drift: answers that differ from the server's real one in ways the document
// forbids are each rejected.
func TestOpenAPIValidationIsStrict(t *testing.T) {
	e := newEnv(t, envOptions{})
	a := loadAPIDoc(t, e)
	d := e.addDomain("example.com")
	path := "/v1/domains/" + d.ID
	real := e.do("GET", path, "", e.key)
	if _, err := a.validate("GET", path, e.key, "", real); err != nil {
		t.Fatalf("the real answer does not validate: %v", err)
	}
	realV2 := e.do("GET", "/api/v2/domains/"+d.ID, "", e.key)
	if _, err := a.validate("GET", "/api/v2/domains/"+d.ID, e.key, "", realV2); err != nil {
		t.Fatalf("the real v2 answer does not validate: %v", err)
	}

	// edit returns a copy of r whose JSON body has had f applied to its data object.
	edit := func(r response, f func(data map[string]any)) response {
		var body map[string]any
		if err := json.Unmarshal(r.body, &body); err != nil {
			t.Fatal(err)
		}
		f(body["data"].(map[string]any))
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		return response{status: r.status, header: r.header.Clone(), body: b}
	}
	cases := []struct {
		name string
		path string
		r    response
	}{
		{"a required field missing", path, edit(real, func(d map[string]any) { delete(d, "domainName") })},
		{"a field the document does not have", path, edit(real, func(d map[string]any) { d["region"] = "us-east-1" })},
		{"a value outside the enum", path, edit(real, func(d map[string]any) { d["verificationStatus"] = "FAILED" })},
		{"a malformed id", path, edit(real, func(d map[string]any) { d["id"] = "ABC" })},
		{"a timestamp without milliseconds", path, edit(real, func(d map[string]any) { d["createdAt"] = "2026-01-05T10:00:00Z" })},
		{"null where v1 never sends null", path, edit(real, func(d map[string]any) { d["lastCheckedAt"] = nil })},
		{"a nullable field left out", path, edit(real, func(d map[string]any) { delete(d, "inboundEnabledAt") })},
		{"a record without its purpose", path, edit(real, func(d map[string]any) {
			delete(d["dnsRecords"].(map[string]any)["dkim"].(map[string]any), "purpose")
		})},
		{"v2: a nullable field of the wrong type", "/api/v2/domains/" + d.ID, edit(realV2, func(d map[string]any) { d["verifiedAt"] = 0 })},
		{"v2: a record's priority as a string", "/api/v2/domains/" + d.ID, edit(realV2, func(d map[string]any) {
			d["records"].([]any)[0].(map[string]any)["priority"] = "10"
		})},
		{"a status the operation does not list", path, response{status: http.StatusTeapot, header: real.header, body: real.body}},
		{"a rate-limit header missing", path, func() response {
			r := response{status: real.status, header: real.header.Clone(), body: real.body}
			r.header.Del("X-RateLimit-Remaining")
			return r
		}()},
		{"another media type", path, func() response {
			r := response{status: real.status, header: real.header.Clone(), body: real.body}
			r.header.Set("Content-Type", "text/html")
			return r
		}()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := a.validate("GET", c.path, e.key, "", c.r); err == nil {
				t.Errorf("validation accepted it:\n%s", c.r.body)
			}
		})
	}

	// An error envelope with the wrong code for its status is rejected too.
	nf := e.do("GET", "/v1/domains/0123456789abcdef01234567", "", e.key)
	wrong := response{status: nf.status, header: nf.header, body: bytes.Replace(nf.body, []byte("DOMAIN_NOT_FOUND"), []byte("NOT_FOUND"), 1)}
	if _, err := a.validate("GET", "/v1/domains/0123456789abcdef01234567", e.key, "", nf); err != nil {
		t.Fatalf("the real 404 does not validate: %v", err)
	}
	if _, err := a.validate("GET", "/v1/domains/0123456789abcdef01234567", e.key, "", wrong); err == nil {
		t.Error("a 404 with code NOT_FOUND on a domain route validated")
	}
	// The answers no operation gives are held to the envelope as strictly.
	noRoute := e.do("GET", "/v3/nothing", "", e.key)
	notAllowed := e.do("PUT", "/v1/domains", "{}", e.key)
	for _, r := range []response{noRoute, notAllowed} {
		if err := a.validateUnrouted(r); err != nil {
			t.Fatalf("the real %d does not validate: %v", r.status, err)
		}
	}
	noAllow := response{status: notAllowed.status, header: notAllowed.header.Clone(), body: notAllowed.body}
	noAllow.header.Del("Allow")
	if err := a.validateUnrouted(noAllow); err == nil {
		t.Error("a 405 without Allow validated")
	}
	wrongCode := response{status: noRoute.status, header: noRoute.header, body: bytes.Replace(noRoute.body, []byte(`"NOT_FOUND"`), []byte(`"DOMAIN_NOT_FOUND"`), 1)}
	if err := a.validateUnrouted(wrongCode); err == nil {
		t.Error("a 404 with code DOMAIN_NOT_FOUND on no route validated")
	}
	extra := response{status: noRoute.status, header: noRoute.header, body: bytes.Replace(noRoute.body, []byte(`"success"`), []byte(`"extra":1,"success"`), 1)}
	if err := a.validateUnrouted(extra); err == nil {
		t.Error("a 404 with a field the envelope does not have validated")
	}

	// A request the document does not describe is no operation.
	if _, err := a.validate("PATCH", path, e.key, "", real); err == nil {
		t.Error("PATCH on a domain validated as an operation")
	}
}

// TestOpenAPIDocumentServed checks the document is served without a key, can be
// revalidated with its ETag, and takes GET only.
func TestOpenAPIDocumentServed(t *testing.T) {
	e := newEnv(t, envOptions{})
	r := e.do("GET", "/openapi.json", "", "")
	etag := r.header.Get("ETag")
	if r.status != http.StatusOK || etag == "" {
		t.Fatalf("GET /openapi.json: status %d, ETag %q", r.status, etag)
	}
	if r.header.Get("X-RateLimit-Limit") != "" {
		t.Error("the public document went through the API key's rate limit")
	}
	req, err := http.NewRequest("GET", e.url+"/openapi.json", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("If-None-Match", etag)
	resp, _ := apptest.Do(t, http.DefaultClient, req)
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("GET with If-None-Match of the ETag: status %d, want 304", resp.StatusCode)
	}
	errorOf(t, e.do("POST", "/openapi.json", "{}", ""), http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED")
}
