// Package api serves domaind's HTTP API: v1, wire-compatible with AutoSend's Domains
// API, and v2, domaind's per-record view. It only translates HTTP to calls of the
// services (domains, webhook, apikey) and their results and faults to the
// contract's JSON; it never reads the store itself.
package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/domaind/domaind/internal/apikey"
	"github.com/domaind/domaind/internal/domains"
	"github.com/domaind/domaind/internal/fault"
	"github.com/domaind/domaind/internal/jsonresp"
	"github.com/domaind/domaind/internal/ratelimit"
	"github.com/domaind/domaind/internal/readcache"
	"github.com/domaind/domaind/internal/webhook"
)

// MaxBodyBytes bounds every request body.
const MaxBodyBytes = 1 << 20

// Config holds a Server's dependencies.
type Config struct {
	// Auth tells who an API key is, as it does for the dashboard's sign-in.
	Auth *apikey.Service
	// Domains is the domain service the dashboard calls too.
	Domains *domains.Service
	// Webhooks registers and lists webhooks.
	Webhooks *webhook.Service
	// Keys is the budget of each API key, shared with the dashboard so that a
	// key has one budget however it is used. Nil means a budget of RateLimit
	// for this server alone.
	Keys *ratelimit.Keys
	// RateLimit is the per-key allowance when Keys is nil.
	RateLimit Limit
	// Addrs limits, per client address, requests without a valid API key; it
	// is asked before the key is looked up. Nil means no such limit.
	Addrs *ratelimit.Addrs
	// GetCache bounds the cache of GET /v1/domains/{id}'s answers (see
	// package readcache); MaxEntries 0 means none. Its clock is Now.
	GetCache readcache.Config
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	Log *slog.Logger
}

// Server is the HTTP API.
type Server struct {
	cfg  Config
	mux  http.Handler
	gets *readcache.Cache[getView]
}

// New returns a Server for cfg.
func New(cfg Config) *Server {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Keys == nil {
		cfg.Keys = ratelimit.NewKeys(cfg.RateLimit)
	}
	gc := cfg.GetCache
	gc.Now = cfg.Now
	s := &Server{cfg: cfg, gets: readcache.New[getView](gc)}
	s.mux = s.routes()
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	// Paths are registered without methods and dispatched by methods{}, so that a
	// wrong method gets the contract's JSON 405 with Allow rather than the mux's
	// plain-text one.
	mux.Handle("/healthz", methods{"GET": http.HandlerFunc(s.healthz)})
	mux.Handle("/openapi.json", methods{"GET": openAPIHandler()})
	// The routes that answer for an API key's project.
	for path, m := range map[string]methods{
		"/v1/domains":                             {"GET": s.fn(s.listDomains), "POST": s.fn(s.addDomain)},
		"/v1/domains/{domainId}":                  {"GET": s.fn(s.getDomain), "DELETE": s.fn(s.deleteDomain)},
		"/v1/domains/{domainId}/verify":           {"POST": s.fn(s.verifyDomain)},
		"/v1/domains/{domainId}/inbound/enable":   {"POST": s.fn(s.inbound(true))},
		"/v1/domains/{domainId}/inbound/disable":  {"POST": s.fn(s.inbound(false))},
		"/api/v2/domains":                         {"GET": s.fn(s.v2ListDomains)},
		"/api/v2/domains/{domainId}":              {"GET": s.fn(s.v2GetDomain)},
		"/api/v2/domains/{domainId}/dns-records":  {"GET": s.fn(s.v2DNSRecords)},
		"/api/v2/domains/{domainId}/events":       {"GET": s.fn(s.v2DomainEvents)},
		"/api/v2/domains/{domainId}/zone":         {"GET": s.fn(s.v2Zone)},
		"/api/v2/domains/{domainId}/records.csv":  {"GET": s.fn(s.v2RecordsCSV)},
		"/api/v2/domains/{domainId}/dkim":         {"GET": s.fn(s.v2DKIM)},
		"/api/v2/domains/{domainId}/dkim/rotate":  {"POST": s.fn(s.v2RotateDKIM)},
		"/api/v2/webhooks":                        {"GET": s.fn(s.v2ListWebhooks), "POST": s.fn(s.v2CreateWebhook)},
		"/api/v2/webhooks/{webhookId}":            {"DELETE": s.fn(s.v2DeleteWebhook)},
		"/api/v2/webhooks/{webhookId}/deliveries": {"GET": s.fn(s.v2WebhookDeliveries)},
	} {
		mux.Handle(path, s.authed(m))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, codeNotFound, "No route matches "+r.Method+" "+r.URL.Path+".")
	})
	return s.logged(limitBody(mux))
}

// methods dispatches on the request method and answers 405 with Allow otherwise.
type methods map[string]http.Handler

func (m methods) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h, ok := m[r.Method]; ok {
		h.ServeHTTP(w, r)
		return
	}
	if r.Method == http.MethodHead {
		if h, ok := m["GET"]; ok {
			h.ServeHTTP(w, r)
			return
		}
	}
	allow := make([]string, 0, len(m))
	for k := range m {
		allow = append(allow, k)
	}
	slices.Sort(allow)
	w.Header().Set("Allow", strings.Join(allow, ", "))
	writeError(w, http.StatusMethodNotAllowed, codeMethodNotAllowed,
		"Method "+r.Method+" is not allowed here; use "+strings.Join(allow, " or ")+".")
}

func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > MaxBodyBytes {
			writeError(w, http.StatusRequestEntityTooLarge, codeTooLarge, "The request body is larger than 1 MiB.")
			return
		}
		// A request without a body (the server gives it http.NoBody) has
		// nothing to limit.
		if r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
		}
		next.ServeHTTP(w, r)
	})
}

// statusRecorder remembers the status a handler wrote, for the access log.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (sr *statusRecorder) WriteHeader(code int) {
	if sr.status == 0 {
		sr.status = code
	}
	sr.ResponseWriter.WriteHeader(code)
}

func (sr *statusRecorder) Write(b []byte) (int, error) {
	if sr.status == 0 {
		sr.status = http.StatusOK
	}
	return sr.ResponseWriter.Write(b)
}

// logged logs each request and turns a panic into a 500 that reveals nothing.
func (s *Server) logged(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Asked first, and given typed attributes, so that a request whose
		// log line is not wanted allocates nothing for it and reads no clock.
		ctx := r.Context()
		logging := s.cfg.Log.Enabled(ctx, slog.LevelInfo)
		var start time.Time
		if logging {
			start = s.cfg.Now()
		}
		sr := &statusRecorder{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.cfg.Log.Error("panic serving request", "method", r.Method, "path", r.URL.Path, "panic", p)
				if sr.status == 0 {
					writeError(sr, http.StatusInternalServerError, codeInternal, "Something went wrong on our side.")
				}
			}
			if logging {
				s.cfg.Log.LogAttrs(ctx, slog.LevelInfo, "request", slog.String("method", r.Method),
					slog.String("path", r.URL.Path), slog.Int("status", sr.status),
					slog.Duration("took", s.cfg.Now().Sub(start).Round(time.Microsecond)))
			}
		}()
		next.ServeHTTP(sr, r)
	})
}

type ctxKey struct{}

// caller is the authenticated API key of a request.
type caller struct {
	keyID     int64
	projectID int64
}

func callerOf(ctx context.Context) caller { return ctx.Value(ctxKey{}).(caller) }

// authed requires a valid API key, applies the key's rate limit and sets the
// X-RateLimit headers on every response after it. A request without a valid key
// spends its client address's allowance instead, and an address that has spent
// it is refused before its key is looked up.
func (s *Server) authed(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := s.cfg.Now()
		if s.cfg.Addrs != nil {
			if v := s.cfg.Addrs.Check(r, now); !v.OK {
				s.addrLimited(w, v)
				return
			}
		}
		unauthorized := func(msg string) {
			if s.cfg.Addrs != nil {
				if v := s.cfg.Addrs.Allow(r, now); !v.OK {
					s.addrLimited(w, v)
					return
				}
			}
			writeError(w, http.StatusUnauthorized, codeUnauthorized, msg)
		}
		key, ok := bearer(r.Header.Get("Authorization"))
		if !ok || !apikey.Valid(key) {
			unauthorized("A valid API key is required in the Authorization header as: Bearer AS_...")
			return
		}
		k, err := s.cfg.Auth.Authenticate(r.Context(), key)
		if f := fault.As(err); f != nil && f.Code == fault.Unauthorized {
			unauthorized(f.Message)
			return
		}
		if err != nil {
			s.internal(w, r, err)
			return
		}
		v := s.cfg.Keys.Allow(k.ID, now)
		setRateLimitHeaders(w.Header(), s.cfg.Keys.Limit(), v)
		if !v.OK {
			writeRateLimited(w, v.RetryAfter, "Too many requests for this API key; the limit is "+s.cfg.Keys.Limit().String()+
				", shared with the dashboard.")
			return
		}
		ctx := context.WithValue(r.Context(), ctxKey{}, caller{keyID: k.ID, projectID: k.ProjectID})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// addrLimited refuses a request from a client address that has spent its
// allowance for requests without a valid key.
func (s *Server) addrLimited(w http.ResponseWriter, v ratelimit.Verdict) {
	writeRateLimited(w, v.RetryAfter, "Too many requests without a valid API key from your address; the limit is "+
		s.cfg.Addrs.Limit().String()+".")
}

// bearer extracts the token of an "Authorization: Bearer <token>" header.
func bearer(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// fn adapts a handler that returns an error: a service's fault is answered from
// the errorStatus table, and any other error becomes a 500 that reveals nothing,
// and is logged.
func (s *Server) fn(fn func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := fn(w, r); err != nil {
			if !writeFault(w, err) {
				s.internal(w, r, err)
			}
		}
	})
}

func (s *Server) internal(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return // the client went away
	}
	s.cfg.Log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	writeError(w, http.StatusInternalServerError, codeInternal, "Something went wrong on our side; please try again.")
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.cfg.Auth.Ready(ctx); err != nil {
		jsonresp.Write(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable"})
		return
	}
	jsonresp.Write(w, http.StatusOK, map[string]string{"status": "ok"})
}
