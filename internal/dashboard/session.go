package dashboard

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/domaind/domaind/internal/apikey"
	"github.com/domaind/domaind/internal/fault"
	"github.com/domaind/domaind/internal/jsonresp"
)

// CSRFHeader carries the CSRF token of requests the dashboard's script sends.
const CSRFHeader = "X-CSRF-Token"

// session is the signed-in customer of a request.
type session struct {
	apikey.Session
	token string // the cookie's value; only its hash is stored
}

// csrf returns the session's CSRF token. It is derived from the session token, so
// it needs no storage, differs for every sign-in and cannot be guessed without the
// HttpOnly cookie.
func (s *session) csrf() string { return csrfToken(s.token) }

func csrfToken(sessionToken string) string {
	m := hmac.New(sha256.New, []byte(sessionToken))
	m.Write([]byte("csrf"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// cookieName is the session cookie's name. The __Host- prefix makes the browser
// refuse the cookie unless it is Secure, host-only and for the whole site, so a
// sibling subdomain cannot plant one; it needs HTTPS, hence only with
// SecureCookies.
func (h *handler) cookieName() string {
	if h.cfg.SecureCookies {
		return "__Host-domaind_session"
	}
	return "domaind_session"
}

// session returns the request's signed-in session, or nil when there is none or
// it has ended. A client address that has spent its allowance for requests
// without a session gets a *limitedError before the session is looked up.
func (h *handler) session(r *http.Request) (*session, error) {
	c, err := r.Cookie(h.cookieName())
	if err != nil || !apikey.ValidToken(c.Value) {
		return nil, nil
	}
	now := h.cfg.Now()
	if h.cfg.Addrs != nil {
		if v := h.cfg.Addrs.Check(r, now); !v.OK {
			return nil, &limitedError{retryAfter: v.RetryAfter, message: addrLimitMessage}
		}
	}
	s, err := h.cfg.Auth.Session(r.Context(), c.Value, now)
	if fault.CodeOf(err) == fault.Unauthorized {
		// A token that names no session is a guess, or a session that ended:
		// either way it spends the address's allowance.
		if h.cfg.Addrs != nil {
			h.cfg.Addrs.Allow(r, now)
		}
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &session{Session: s, token: c.Value}, nil
}

// sessionOrAnswer is session for a handler: when the session cannot be looked
// up (the client address is over its allowance, or the store failed) it
// answers the request itself and returns false.
func (h *handler) sessionOrAnswer(w http.ResponseWriter, r *http.Request) (*session, bool) {
	s, err := h.session(r)
	var lim *limitedError
	if errors.As(err, &lim) {
		h.limited(w, r, nil, lim)
		return nil, false
	}
	if err != nil {
		h.serverError(w, r, err)
		return nil, false
	}
	return s, true
}

// authed runs next for a signed-in customer, after checking the CSRF token of a
// POST. Without a session a page view goes to the sign-in page, and a request of
// the dashboard's script gets a 401 it understands.
func (h *handler) authed(next func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, ok := h.sessionOrAnswer(w, r)
		if !ok {
			return
		}
		if s == nil {
			target := "/signin"
			if _, err := r.Cookie(h.cookieName()); err == nil {
				h.clearCookie(w)
				target = "/signin?msg=expired"
			}
			if fromScript(r) {
				jsonresp.Write(w, http.StatusUnauthorized, verifyAnswer{Message: "Your session has ended; sign in again."})
				return
			}
			http.Redirect(w, r, target, http.StatusSeeOther)
			return
		}
		if r.Method == http.MethodPost && !validCSRF(r, s) {
			const msg = "This page has expired or did not come from the dashboard. Reload it and try again."
			if fromScript(r) {
				jsonresp.Write(w, http.StatusForbidden, verifyAnswer{Message: msg})
				return
			}
			h.render(w, r, http.StatusForbidden, "message", &page{Title: "Form expired", Error: msg, session: s})
			return
		}
		// Every request of a session spends its API key's budget, the one the
		// API spends too, so that the dashboard is no way around it.
		if h.cfg.Keys != nil {
			if v := h.cfg.Keys.Allow(s.APIKeyID, h.cfg.Now()); !v.OK {
				h.limited(w, r, s, &limitedError{retryAfter: v.RetryAfter, message: fmt.Sprintf(
					"Too many requests for this API key: the limit is %s, shared with the API.", h.cfg.Keys.Limit())})
				return
			}
		}
		next(w, r, s)
	}
}

// validCSRF checks the token of a POST: from the header the script sends, or
// from the hidden field of a form.
func validCSRF(r *http.Request, s *session) bool {
	got := r.Header.Get(CSRFHeader)
	if got == "" {
		got = r.PostFormValue("csrf")
	}
	return got != "" && hmac.Equal([]byte(got), []byte(s.csrf()))
}

// fromScript reports whether the dashboard's script sent the request, and so
// wants JSON rather than a page.
func fromScript(r *http.Request) bool { return r.Header.Get("X-Requested-With") == "fetch" }

// sameOrigin reports whether a request without a session (the sign-in form) came
// from a page of this site. There is no CSRF token yet to check, so the browser's
// Origin header (or, failing that, its Referer) must name this host: otherwise
// another site could sign a visitor in to the attacker's project.
func (h *handler) sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		return false
	}
	src := r.Header.Get("Origin")
	if src == "" {
		src = r.Header.Get("Referer")
	}
	if src == "" {
		return false
	}
	u, err := url.Parse(src)
	if err != nil || u.Host == "" || !strings.EqualFold(u.Host, r.Host) {
		return false
	}
	if h.cfg.SecureCookies {
		return u.Scheme == "https"
	}
	return u.Scheme == "http" || u.Scheme == "https"
}

// signInPage shows the sign-in form, or the domains to a customer signed in.
func (h *handler) signInPage(w http.ResponseWriter, r *http.Request) {
	s, ok := h.sessionOrAnswer(w, r)
	if !ok {
		return
	}
	if s != nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	h.render(w, r, http.StatusOK, "signin", &page{Title: "Sign in", Notice: notice(r)})
}

// signIn exchanges an API key for a session.
func (h *handler) signIn(w http.ResponseWriter, r *http.Request) {
	// A failed attempt spends the address's allowance, and an address that has
	// none left is refused before anything is looked up: guessing keys through
	// the form costs the guesser alone. A successful one spends nothing, so
	// that a customer who mistyped the key is not refused the page after it.
	now := h.cfg.Now()
	if h.cfg.Addrs != nil {
		if v := h.cfg.Addrs.Check(r, now); !v.OK {
			h.limited(w, r, nil, &limitedError{retryAfter: v.RetryAfter, message: addrLimitMessage})
			return
		}
	}
	fail := func(status int, msg string) {
		if h.cfg.Addrs != nil {
			h.cfg.Addrs.Allow(r, now)
		}
		h.render(w, r, status, "signin", &page{Title: "Sign in", Error: msg})
	}
	if !h.sameOrigin(r) {
		fail(http.StatusForbidden, "The sign-in form must be sent from this site. Reload the page and try again.")
		return
	}
	var replace string
	if old, err := r.Cookie(h.cookieName()); err == nil && apikey.ValidToken(old.Value) {
		replace = old.Value
	}
	key := strings.TrimSpace(r.PostFormValue("key"))
	token, sess, err := h.cfg.Auth.SignIn(r.Context(), key, replace, now, h.cfg.SessionTTL)
	if fault.CodeOf(err) == fault.Unauthorized {
		fail(http.StatusUnauthorized, "That API key is not valid or has been revoked.")
		return
	}
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: h.cookieName(), Value: token, Path: "/",
		MaxAge: int(h.cfg.SessionTTL.Seconds()), HttpOnly: true,
		Secure: h.cfg.SecureCookies, SameSite: http.SameSiteStrictMode,
	})
	h.cfg.Log.Info("dashboard sign-in", "project", sess.ProjectID, "key", sess.APIKeyID)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// signOut ends the session.
func (h *handler) signOut(w http.ResponseWriter, r *http.Request, s *session) {
	if err := h.cfg.Auth.SignOut(r.Context(), s.token); err != nil {
		h.serverError(w, r, err)
		return
	}
	h.clearCookie(w)
	http.Redirect(w, r, "/signin?msg=signedout", http.StatusSeeOther)
}

func (h *handler) clearCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{
		Name: h.cookieName(), Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		Secure: h.cfg.SecureCookies, SameSite: http.SameSiteStrictMode,
	})
}

// addrLimitMessage explains a refusal by the per-address limit.
const addrLimitMessage = "Too many failed sign-ins or requests without a valid session from your address."

// limitedError is a request refused by a rate limit.
type limitedError struct {
	retryAfter time.Duration
	message    string // a sentence saying which limit
}

func (e *limitedError) Error() string { return "dashboard: rate limited: " + e.message }

// limited answers 429 with Retry-After: JSON for the dashboard's script, the
// sign-in form again for a sign-in, and a page saying when to try again
// otherwise.
func (h *handler) limited(w http.ResponseWriter, r *http.Request, s *session, e *limitedError) {
	w.Header().Set("Retry-After", strconv.Itoa(fault.RetrySeconds(e.retryAfter)))
	msg := e.message + " Try again in " + seconds(e.retryAfter) + "."
	switch {
	case fromScript(r):
		jsonresp.Write(w, http.StatusTooManyRequests, verifyAnswer{Message: msg})
	case s == nil && r.URL.Path == "/signin":
		h.render(w, r, http.StatusTooManyRequests, "signin", &page{Title: "Sign in", Error: msg})
	default:
		h.render(w, r, http.StatusTooManyRequests, "message", &page{Title: "Too many requests", Error: msg, session: s})
	}
}
