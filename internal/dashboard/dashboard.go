// Package dashboard is the customer dashboard: server-rendered pages, embedded in
// the binary, where a customer signs in with an API key and looks after the
// project's domains. It calls the same services as the API (apikey for who a key
// is, domains for everything about a domain) and never reads the store itself.
//
// Everything untrusted is rendered as text: html/template escapes every value, the
// pages run no inline script (the Content-Security-Policy forbids it), the zone
// file escapes what DNS returned, and the CSV neutralizes spreadsheet formulas.
package dashboard

import (
	"embed"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/domaind/domaind/internal/apikey"
	"github.com/domaind/domaind/internal/domains"
	"github.com/domaind/domaind/internal/ratelimit"
)

// assets holds the templates and the static files; the binary needs nothing
// else to serve the dashboard.
//
//go:embed assets
var assets embed.FS

// DefaultSessionTTL is how long a sign-in lasts when Config.SessionTTL is zero.
const DefaultSessionTTL = 12 * time.Hour

// ContentSecurityPolicy is sent with every response of the dashboard. Scripts and
// styles come only from the dashboard's own files, never inline, so that a value
// that slipped past escaping still could not run.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// maxBody bounds a request body: the dashboard's forms are a few short fields.
const maxBody = 64 << 10

// Config is what the dashboard needs.
type Config struct {
	// Auth tells who an API key is and keeps sign-ins.
	Auth *apikey.Service
	// Domains is the domain service the API calls too.
	Domains *domains.Service
	// Now is the clock of sessions; nil means time.Now.
	Now func() time.Time
	// Log receives server errors; nil discards them.
	Log *slog.Logger
	// SessionTTL is how long a sign-in lasts; zero means DefaultSessionTTL.
	SessionTTL time.Duration
	// SecureCookies marks the session cookie Secure and gives it the __Host-
	// prefix. Set it whenever the dashboard is reached over HTTPS.
	SecureCookies bool
	// Keys is the budget of each API key, the same one the API spends: every
	// request of a session spends from its key's budget. Nil means no limit.
	Keys *ratelimit.Keys
	// Addrs limits, per client address, sign-in attempts and requests with a
	// session cookie that names no live session; it is asked before the key
	// or session is looked up. Nil means no such limit.
	Addrs *ratelimit.Addrs
}

// handler serves the dashboard.
type handler struct {
	cfg    Config
	pages  pages
	static fs.FS
}

// New returns the dashboard's handler, meant to be mounted at "/" beside the API.
// It panics if the embedded templates do not parse, which a test would catch.
func New(cfg Config) http.Handler {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	ps, err := parsePages()
	if err != nil {
		panic(err)
	}
	static, err := fs.Sub(assets, "assets/static")
	if err != nil {
		panic(err)
	}
	h := &handler{cfg: cfg, pages: ps, static: static}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", h.authed(h.domainsPage))
	mux.HandleFunc("GET /signin", h.signInPage)
	mux.HandleFunc("POST /signin", h.signIn)
	mux.HandleFunc("POST /signout", h.authed(h.signOut))
	mux.HandleFunc("GET /assets/{file}", h.asset)
	mux.HandleFunc("GET /domains", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})
	mux.HandleFunc("POST /domains", h.authed(h.addDomain))
	mux.HandleFunc("GET /domains/{id}", h.authed(h.domainPage))
	mux.HandleFunc("POST /domains/{id}/verify", h.authed(h.verifyDomain))
	mux.HandleFunc("GET /domains/{id}/delete", h.authed(h.deletePage))
	mux.HandleFunc("POST /domains/{id}/delete", h.authed(h.deleteDomain))
	mux.HandleFunc("GET /domains/{id}/zone", h.authed(h.zoneFile))
	mux.HandleFunc("GET /domains/{id}/records.csv", h.authed(h.recordsCSV))
	mux.HandleFunc("POST /domains/{id}/inbound/enable", h.authed(h.inbound(true)))
	mux.HandleFunc("POST /domains/{id}/inbound/disable", h.authed(h.inbound(false)))
	mux.HandleFunc("/", h.notFound)
	return secure(mux)
}

// secure sets the security headers on every response and bounds request bodies.
func secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		// For browsers that predate frame-ancestors.
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		next.ServeHTTP(w, r)
	})
}

// asset serves one of the embedded static files.
func (h *handler) asset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	st, err := fs.Stat(h.static, name)
	if err != nil || st.IsDir() {
		h.notFound(w, r)
		return
	}
	// The files change only with the binary; no-cache revalidates them
	// cheaply after an upgrade instead of serving a stale script.
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeFileFS(w, r, h.static, name)
}
