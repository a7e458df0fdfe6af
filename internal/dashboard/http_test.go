package dashboard_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/html"

	"github.com/domaind/domaind/internal/apikey"
	"github.com/domaind/domaind/internal/dashboard"
	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/store"
)

func TestSecurityHeadersOnEveryResponse(t *testing.T) {
	e := newEnv(t, envOptions{})
	d := e.addDomain(e.projectID, "example.com")
	anon := e.client()
	c := e.signedIn()
	token := c.csrf()
	fetch := map[string]string{dashboard.CSRFHeader: token, "X-Requested-With": "fetch"}

	cases := []struct {
		name string
		do   func() response
	}{
		{"sign-in page", func() response { return anon.get("/signin") }},
		{"root, signed out", func() response { return anon.get("/") }},
		{"refused sign-in", func() response { return anon.post("/signin", url.Values{"key": {"nope"}}, nil) }},
		{"script", func() response { return anon.get("/assets/app.js") }},
		{"style sheet", func() response { return anon.get("/assets/app.css") }},
		{"missing asset", func() response { return anon.get("/assets/nope.js") }},
		{"unknown path", func() response { return anon.get("/nope") }},
		{"domains", func() response { return c.get("/") }},
		{"domain", func() response { return c.get("/domains/" + d.ID) }},
		{"delete confirmation", func() response { return c.get("/domains/" + d.ID + "/delete") }},
		{"zone file", func() response { return c.get("/domains/" + d.ID + "/zone") }},
		{"CSV", func() response { return c.get("/domains/" + d.ID + "/records.csv") }},
		{"verify from script", func() response { return c.post("/domains/"+d.ID+"/verify", nil, fetch) }},
		{"CSRF refusal", func() response { return c.post("/domains", url.Values{"domain": {"x.example.com"}}, nil) }},
		{"unknown domain", func() response { return c.get("/domains/000000000000000000000000") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.do()
			want := map[string]string{
				"Content-Security-Policy": dashboard.ContentSecurityPolicy,
				"X-Content-Type-Options":  "nosniff",
				"Referrer-Policy":         "same-origin",
			}
			for h, v := range want {
				if got := r.header.Get(h); got != v {
					t.Errorf("status %d: %s = %q, want %q", r.status, h, got, v)
				}
			}
		})
	}

	// The policy itself: scripts only from the dashboard, never inline, and no
	// framing.
	csp := dashboard.ContentSecurityPolicy
	for _, must := range []string{"script-src 'self'", "frame-ancestors 'none'", "default-src 'none'", "base-uri 'none'", "form-action 'self'"} {
		if !strings.Contains(csp, must) {
			t.Errorf("CSP lacks %q: %s", must, csp)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("CSP allows inline or eval'd code: %s", csp)
	}
	// nosniff needs the right types.
	if ct := anon.get("/assets/app.js").header.Get("Content-Type"); !strings.HasPrefix(ct, "text/javascript") {
		t.Errorf("app.js Content-Type = %q", ct)
	}
	if ct := anon.get("/assets/app.css").header.Get("Content-Type"); !strings.HasPrefix(ct, "text/css") {
		t.Errorf("app.css Content-Type = %q", ct)
	}
}

// TestPagesHaveNoInlineCode checks that what the CSP forbids is not there to be
// blocked: no inline script, event handler or style in any page.
func TestPagesHaveNoInlineCode(t *testing.T) {
	e := newEnv(t, envOptions{})
	d := e.addDomain(e.projectID, "example.com")
	e.publish(d)
	if _, err := e.verifier.Verify(context.Background(), e.projectID, d.ID); err != nil {
		t.Fatal(err)
	}
	c := e.client()
	pages := map[string]string{"sign-in": e.client().get("/signin").body}
	c.signIn(e.key)
	pages["domains"] = c.get("/").body
	pages["domain"] = c.get("/domains/" + d.ID).body
	pages["delete"] = c.get("/domains/" + d.ID + "/delete").body
	if _, err := e.domains.EnableInbound(context.Background(), e.projectID, d.ID); err != nil {
		t.Fatal(err)
	}
	pages["domain, receiving"] = c.get("/domains/" + d.ID).body
	pages["not found"] = c.get("/nope").body
	for name, body := range pages {
		doc, err := html.Parse(strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		scripts := 0
		for n := range doc.Descendants() {
			if n.Type != html.ElementNode {
				continue
			}
			if n.Data == "style" {
				t.Errorf("%s page: has a <style> element", name)
			}
			if n.Data == "script" {
				scripts++
				if attr(n, "src") != "/assets/app.js" || n.FirstChild != nil {
					t.Errorf("%s page: inline or foreign script", name)
				}
			}
			for _, a := range n.Attr {
				if a.Key == "style" || strings.HasPrefix(a.Key, "on") {
					t.Errorf("%s page: <%s %s=...> is inline code", name, n.Data, a.Key)
				}
			}
		}
		if scripts != 1 {
			t.Errorf("%s page: %d scripts, want exactly app.js", name, scripts)
		}
	}
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func TestSignInRefused(t *testing.T) {
	e := newEnv(t, envOptions{})
	revoked, _ := e.newKey("acme")
	if _, err := e.store.RevokeAPIKey(context.Background(), apikey.Prefix(revoked), time.Now()); err != nil {
		t.Fatal(err)
	}
	unknown, err := apikey.New()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		key    string
		header map[string]string
		status int
	}{
		{"malformed key", "hello", nil, http.StatusUnauthorized},
		{"wrong key", unknown, nil, http.StatusUnauthorized},
		{"valid key with a flipped letter", flip(e.key), nil, http.StatusUnauthorized},
		{"revoked key", revoked, nil, http.StatusUnauthorized},
		{"no Origin or Referer", e.key, map[string]string{"Origin": ""}, http.StatusForbidden},
		{"another site's Origin", e.key, map[string]string{"Origin": "http://evil.example"}, http.StatusForbidden},
		{"opaque Origin", e.key, map[string]string{"Origin": "null"}, http.StatusForbidden},
		{"another site's Referer", e.key, map[string]string{"Origin": "", "Referer": "http://evil.example/signin"}, http.StatusForbidden},
		{"cross-site fetch", e.key, map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := e.client()
			r := c.post("/signin", url.Values{"key": {tc.key}}, tc.header)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if c.sessionCookie() != "" {
				t.Fatal("a refused sign-in set a session cookie")
			}
			if !strings.Contains(r.body, `role="alert"`) {
				t.Error("the page does not say why the sign-in failed")
			}
			if r := c.get("/"); r.status != http.StatusSeeOther || r.header.Get("Location") != "/signin" {
				t.Errorf("after a refused sign-in / answers %d → %q", r.status, r.header.Get("Location"))
			}
		})
	}

	// The same-origin Referer alone (a browser that sends no Origin) is enough.
	c := e.client()
	r := c.post("/signin", url.Values{"key": {e.key}}, map[string]string{"Origin": "", "Referer": e.url + "/signin"})
	if r.status != http.StatusSeeOther || c.sessionCookie() == "" {
		t.Errorf("same-origin Referer: status %d, cookie %q", r.status, c.sessionCookie())
	}
}

// flip changes the last character of a key, keeping its form valid.
func flip(key string) string {
	last := key[len(key)-1]
	if last == 'A' {
		return key[:len(key)-1] + "B"
	}
	return key[:len(key)-1] + "A"
}

func TestSessionCookie(t *testing.T) {
	for _, secure := range []bool{false, true} {
		t.Run("secure="+map[bool]string{false: "false", true: "true"}[secure], func(t *testing.T) {
			e := newEnv(t, envOptions{secureCookies: secure})
			c := e.client()
			if secure {
				// Secure cookies mean the site is reached over HTTPS, perhaps
				// through a proxy, and the browser's Origin says so.
				c.origin = strings.Replace(e.url, "http://", "https://", 1)
			}
			r := c.post("/signin", url.Values{"key": {e.key}}, nil)
			if r.status != http.StatusSeeOther {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			cookies := (&http.Response{Header: r.header}).Cookies()
			if len(cookies) != 1 {
				t.Fatalf("%d cookies set, want 1", len(cookies))
			}
			ck := cookies[0]
			wantName := "domaind_session"
			if secure {
				wantName = "__Host-domaind_session"
			}
			if ck.Name != wantName || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode ||
				ck.Path != "/" || ck.Domain != "" || ck.Secure != secure {
				t.Errorf("cookie = %+v", ck)
			}
			if ck.MaxAge != int(e.ttl.Seconds()) {
				t.Errorf("Max-Age = %d, want %d", ck.MaxAge, int(e.ttl.Seconds()))
			}
			if len(ck.Value) != 43 {
				t.Errorf("token %q is not the base64 of 32 bytes", ck.Value)
			}
		})
	}
}

// TestSessionStoredHashed checks that the database holds no usable token: the
// session is found by the token's SHA-256, and the token itself appears nowhere
// in the database files.
func TestSessionStoredHashed(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.signedIn()
	token := c.sessionCookie()
	if token == "" {
		t.Fatal("no session cookie")
	}
	s, err := e.store.SessionByHash(context.Background(), sha256Of(token), time.Now())
	if err != nil {
		t.Fatalf("session not found by the token's hash: %v", err)
	}
	if s.ProjectID != e.projectID {
		t.Errorf("session of project %d, want %d", s.ProjectID, e.projectID)
	}
	if !s.ExpiresAt.After(time.Now().Add(e.ttl-time.Minute)) || s.ExpiresAt.After(time.Now().Add(e.ttl+time.Minute)) {
		t.Errorf("session expires at %v, want about %v from now", s.ExpiresAt, e.ttl)
	}
	files, _ := filepath.Glob(e.dbPath + "*")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), token) {
			t.Errorf("%s holds the session token in the clear", filepath.Base(f))
		}
	}
}

func TestCSRF(t *testing.T) {
	e := newEnv(t, envOptions{})
	d := e.addDomain(e.projectID, "example.com")
	c := e.signedIn()
	other := e.signedIn()
	otherToken := other.csrf()
	if otherToken == c.csrf() {
		t.Fatal("two sessions share a CSRF token")
	}

	cases := []struct {
		name   string
		path   string
		form   url.Values
		header map[string]string
	}{
		{"add without token", "/domains", url.Values{"domain": {"new.example.com"}}, nil},
		{"add with another session's token", "/domains", url.Values{"domain": {"new.example.com"}, "csrf": {otherToken}}, nil},
		{"add with a forged token", "/domains", url.Values{"domain": {"new.example.com"}, "csrf": {"AAAA"}}, nil},
		{"delete without token", "/domains/" + d.ID + "/delete", nil, nil},
		{"verify from script with another session's token", "/domains/" + d.ID + "/verify", nil,
			map[string]string{dashboard.CSRFHeader: otherToken, "X-Requested-With": "fetch"}},
		{"sign out without token", "/signout", nil, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := c.post(tc.path, tc.form, tc.header)
			if r.status != http.StatusForbidden {
				t.Fatalf("status %d, want 403: %s", r.status, r.body)
			}
		})
	}
	// Nothing happened: the domain is there, no other was added, the session
	// lives and no check ran.
	list, total, err := e.store.Domains(context.Background(), e.projectID, store.Page{})
	if err != nil {
		t.Fatal(err)
	}
	if total != 1 || list[0].ID != d.ID {
		t.Errorf("after refused requests the project has %d domains", total)
	}
	if got, _ := e.store.Domain(context.Background(), e.projectID, d.ID); got.Records[0].Status != domain.CheckUnchecked {
		t.Error("a refused verify ran a check")
	}
	if r := c.get("/"); r.status != http.StatusOK {
		t.Errorf("a refused sign-out ended the session: %d", r.status)
	}

	// With the session's own token the same requests work.
	token := c.csrf()
	if r := c.post("/domains", url.Values{"domain": {"new.example.com"}, "csrf": {token}}, nil); r.status != http.StatusSeeOther {
		t.Errorf("add with the token: status %d: %s", r.status, r.body)
	}
	if r := c.post("/domains/"+d.ID+"/verify", nil, map[string]string{dashboard.CSRFHeader: token, "X-Requested-With": "fetch"}); r.status != http.StatusOK {
		t.Errorf("verify with the token: status %d: %s", r.status, r.body)
	}
}

func TestSessionExpiry(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.signedIn()
	e.clock.Advance(e.ttl - time.Minute)
	if r := c.get("/"); r.status != http.StatusOK {
		t.Fatalf("a minute before expiry: status %d", r.status)
	}
	e.clock.Advance(2 * time.Minute)
	r := c.get("/")
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/signin?msg=expired" {
		t.Fatalf("after expiry: status %d → %q", r.status, r.header.Get("Location"))
	}
	if c.sessionCookie() != "" {
		t.Error("the expired cookie was not cleared")
	}
	// The script is told in a way it understands.
	c2 := e.signedIn()
	e.clock.Advance(e.ttl + time.Minute)
	d := e.addDomain(e.projectID, "example.com")
	r = c2.post("/domains/"+d.ID+"/verify", nil, map[string]string{"X-Requested-With": "fetch", dashboard.CSRFHeader: "x"})
	if r.status != http.StatusUnauthorized || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		t.Errorf("expired session, script: status %d, %s", r.status, r.header.Get("Content-Type"))
	}
}

func TestSignOut(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.signedIn()
	token := c.sessionCookie()
	r := c.post("/signout", url.Values{"csrf": {c.csrf()}}, nil)
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/signin?msg=signedout" {
		t.Fatalf("sign out: status %d → %q", r.status, r.header.Get("Location"))
	}
	if c.sessionCookie() != "" {
		t.Error("sign-out left the cookie in the browser")
	}
	if _, err := e.store.SessionByHash(context.Background(), sha256Of(token), time.Now()); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("session still stored after sign-out: %v", err)
	}
	// A copy of the old cookie is worth nothing.
	replay := e.client()
	u, _ := url.Parse(e.url)
	replay.http.Jar.SetCookies(u, []*http.Cookie{{Name: "domaind_session", Value: token, Path: "/"}})
	if r := replay.get("/"); r.status != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), "/signin") {
		t.Errorf("old cookie after sign-out: status %d → %q", r.status, r.header.Get("Location"))
	}
	if r := e.client().get("/signin?msg=signedout"); !strings.Contains(r.body, "You have signed out.") {
		t.Error("the sign-in page does not confirm the sign-out")
	}
}

func TestRevokedKeyEndsSession(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.signedIn()
	if _, err := e.store.RevokeAPIKey(context.Background(), apikey.Prefix(e.key), time.Now()); err != nil {
		t.Fatal(err)
	}
	if r := c.get("/"); r.status != http.StatusSeeOther {
		t.Errorf("session of a revoked key: status %d", r.status)
	}
}

func TestOtherProjectsDomainIsNotFound(t *testing.T) {
	e := newEnv(t, envOptions{})
	_, otherProject := e.newKey("globex")
	theirs := e.addDomain(otherProject, "example.com")
	c := e.signedIn()
	token := c.csrf()
	cases := []struct {
		name string
		do   func() response
	}{
		{"page", func() response { return c.get("/domains/" + theirs.ID) }},
		{"zone", func() response { return c.get("/domains/" + theirs.ID + "/zone") }},
		{"CSV", func() response { return c.get("/domains/" + theirs.ID + "/records.csv") }},
		{"delete page", func() response { return c.get("/domains/" + theirs.ID + "/delete") }},
		{"delete", func() response { return c.post("/domains/"+theirs.ID+"/delete", url.Values{"csrf": {token}}, nil) }},
		{"verify", func() response { return c.post("/domains/"+theirs.ID+"/verify", url.Values{"csrf": {token}}, nil) }},
		{"verify from script", func() response {
			return c.post("/domains/"+theirs.ID+"/verify", nil, map[string]string{dashboard.CSRFHeader: token, "X-Requested-With": "fetch"})
		}},
		{"malformed id", func() response { return c.get("/domains/not-an-id") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.do()
			if r.status != http.StatusNotFound {
				t.Fatalf("status %d, want 404: %s", r.status, r.body)
			}
			if strings.Contains(r.body, "example.com") {
				t.Error("the 404 reveals the other project's domain")
			}
		})
	}
	got, err := e.store.Domain(context.Background(), otherProject, theirs.ID)
	if err != nil {
		t.Fatalf("the other project's domain is gone: %v", err)
	}
	if got.Records[0].Status != domain.CheckUnchecked {
		t.Error("a check of the other project's domain ran")
	}
}

func TestAddDomain(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.signedIn()
	token := c.csrf()

	r := c.post("/domains", url.Values{"domain": {"Example.COM"}, "region": {"eu-central-1"}, "csrf": {token}}, nil)
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), "/domains/") {
		t.Fatalf("add: status %d → %q", r.status, r.header.Get("Location"))
	}
	list, _, err := e.store.Domains(context.Background(), e.projectID, store.Page{})
	if err != nil || len(list) != 1 || list[0].Name != "example.com" || list[0].Region != "eu-central-1" {
		t.Fatalf("stored domains: %v %+v", err, list)
	}
	page := c.get(r.header.Get("Location"))
	if !strings.Contains(page.body, "Domain added.") || !strings.Contains(page.body, list[0].Records[0].Value) {
		t.Error("the new domain's page does not confirm the add or show its records")
	}
	if home := c.get("/"); !strings.Contains(home.body, `href="/domains/`+list[0].ID+`"`) || !strings.Contains(home.body, `data-state="pending_configuration"`) {
		t.Error("the domain list does not link the new domain with its status")
	}

	cases := []struct {
		name, domain, region string
		status               int
		says                 string
	}{
		{"not a domain name", "not a domain", "", http.StatusBadRequest, "aria-invalid"},
		{"unknown region", "other.example.com", "mars-1", http.StatusBadRequest, "mars-1"},
		{"already added", "example.com", "", http.StatusConflict, "already exists in this project"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := c.post("/domains", url.Values{"domain": {tc.domain}, "region": {tc.region}, "csrf": {token}}, nil)
			if r.status != tc.status || !strings.Contains(r.body, tc.says) || !strings.Contains(r.body, `role="alert"`) {
				t.Fatalf("status %d (want %d), page says %q: %v", r.status, tc.status, tc.says, strings.Contains(r.body, tc.says))
			}
		})
	}
}

func TestDeleteDomain(t *testing.T) {
	e := newEnv(t, envOptions{})
	d := e.addDomain(e.projectID, "example.com")
	c := e.signedIn()
	confirm := c.get("/domains/" + d.ID + "/delete")
	if confirm.status != http.StatusOK || !strings.Contains(confirm.body, `action="/domains/`+d.ID+`/delete"`) {
		t.Fatalf("confirmation page: status %d", confirm.status)
	}
	if _, err := e.store.Domain(context.Background(), e.projectID, d.ID); err != nil {
		t.Fatal("showing the confirmation deleted the domain")
	}
	r := c.post("/domains/"+d.ID+"/delete", url.Values{"csrf": {c.csrf()}}, nil)
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/?msg=deleted" {
		t.Fatalf("delete: status %d → %q", r.status, r.header.Get("Location"))
	}
	if _, err := e.store.Domain(context.Background(), e.projectID, d.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("domain still stored: %v", err)
	}
}

// verifyAnswer mirrors the JSON the dashboard's script receives.
type verifyAnswer struct {
	Message string `json:"message"`
	HTML    string `json:"html"`
}

func TestVerifyNow(t *testing.T) {
	e := newEnv(t, envOptions{minInterval: time.Hour})
	d := e.addDomain(e.projectID, "example.com")
	e.publish(d)
	c := e.signedIn()
	fetch := map[string]string{dashboard.CSRFHeader: c.csrf(), "X-Requested-With": "fetch"}

	r := c.post("/domains/"+d.ID+"/verify", nil, fetch)
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		t.Fatalf("verify: status %d %s: %s", r.status, r.header.Get("Content-Type"), r.body)
	}
	var a verifyAnswer
	if err := json.Unmarshal([]byte(r.body), &a); err != nil {
		t.Fatal(err)
	}
	if a.Message != "Checked just now: every record is verified." {
		t.Errorf("message = %q", a.Message)
	}
	// The fragment shows the domain and each of its records verified.
	if n := strings.Count(a.HTML, `data-state="verified"`); n < 1+len(d.Records) {
		t.Errorf("fragment has %d verified badges, want at least %d", n, 1+len(d.Records))
	}
	if strings.Contains(a.HTML, `data-state="unchecked"`) || strings.Contains(a.HTML, "<html") {
		t.Error("the fragment is stale or a whole page")
	}

	// A second press right away is refused, kindly.
	r = c.post("/domains/"+d.ID+"/verify", nil, fetch)
	if err := json.Unmarshal([]byte(r.body), &a); err != nil {
		t.Fatal(err)
	}
	if r.status != http.StatusTooManyRequests || !strings.HasPrefix(a.Message, "This domain was checked moments ago. Try again in ") || a.HTML == "" {
		t.Errorf("too soon: status %d, %+v", r.status, a.Message)
	}

	// Without the script the form posts and comes back to the page with a notice.
	r = c.post("/domains/"+d.ID+"/verify", url.Values{"csrf": {c.csrf()}}, nil)
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/domains/"+d.ID+"?msg=toosoon" {
		t.Fatalf("form fallback: status %d → %q", r.status, r.header.Get("Location"))
	}
	if page := c.get(r.header.Get("Location")); !strings.Contains(page.body, "checked moments ago") {
		t.Error("the page after the fallback does not say why nothing happened")
	}
}

// hostile are TXT values whoever controls a zone could publish.
var hostile = []string{
	`<script>alert(1)</script>`,
	`"><img src=x onerror=alert(1)>`,
	`=cmd|' /C calc'!A0`,
	"@SUM(1+1)*cmd|' /C calc'!A0",
	"x\n$INCLUDE /etc/passwd\nevil.example.com. 300 IN A 192.0.2.1",
	"\x1b[2J\x1b[31mterminal escapes",
	"invoice\u202efdp.exe", // a right-to-left override shows it as "invoiceexe.pdf"
}

// hostileDomain adds a domain whose ownership name publishes every hostile value
// (and not the right token), checks it, and returns it as stored.
func hostileDomain(t *testing.T, e *env) *domain.Domain {
	t.Helper()
	d := e.addDomain(e.projectID, "example.com")
	own := d.Record(domain.KeyOwnership)
	for _, v := range hostile {
		if err := e.zone.AddTXT(own.Name+".", v); err != nil {
			t.Fatal(err)
		}
	}
	out, err := e.verifier.Verify(context.Background(), e.projectID, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	got := out.Domain.Record(domain.KeyOwnership)
	for _, v := range hostile {
		if !slices.Contains(got.Found, v) {
			t.Fatalf("the check did not return %q; found %q", v, got.Found)
		}
	}
	return out.Domain
}

func TestHostileValuesStayText(t *testing.T) {
	e := newEnv(t, envOptions{})
	d := hostileDomain(t, e)
	c := e.signedIn()

	t.Run("HTML", func(t *testing.T) {
		token := c.csrf()
		page := c.get("/domains/" + d.ID).body
		// The fragment "Verify now" swaps in is rendered by the same template;
		// check it too. The domain was just checked, so this is a refusal that
		// still carries the fragment.
		r := c.post("/domains/"+d.ID+"/verify", nil, map[string]string{dashboard.CSRFHeader: token, "X-Requested-With": "fetch"})
		var a verifyAnswer
		if err := json.Unmarshal([]byte(r.body), &a); err != nil || a.HTML == "" {
			t.Fatalf("verify answer: %v %q", err, r.body)
		}
		for name, body := range map[string]string{"page": page, "fragment": a.HTML} {
			doc, err := html.Parse(strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			var texts []string
			for n := range doc.Descendants() {
				if n.Type != html.ElementNode {
					continue
				}
				if n.Data == "img" || (n.Data == "script" && attr(n, "src") != "/assets/app.js") {
					t.Errorf("%s: an injected <%s> element exists", name, n.Data)
				}
				if attr(n, "onerror") != "" {
					t.Errorf("%s: an injected onerror attribute exists", name)
				}
				if slices.Contains(strings.Fields(attr(n, "class")), "found-value") && n.FirstChild != nil {
					texts = append(texts, n.FirstChild.Data)
				}
			}
			// Each value is shown, whole, as text, with control and
			// bidirectional characters as visible escapes.
			for _, v := range hostile {
				if !slices.Contains(texts, domain.Printable(v)) {
					t.Errorf("%s: %q is not shown as text; shown: %q", name, v, texts)
				}
			}
		}
	})

	t.Run("CSV", func(t *testing.T) {
		r := c.get("/domains/" + d.ID + "/records.csv")
		if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/csv") ||
			!strings.HasPrefix(r.header.Get("Content-Disposition"), "attachment") {
			t.Fatalf("status %d, %s, %s", r.status, r.header.Get("Content-Type"), r.header.Get("Content-Disposition"))
		}
		rows, err := csv.NewReader(strings.NewReader(r.body)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 1+len(d.Records) {
			t.Fatalf("%d rows, want a header and %d records", len(rows), len(d.Records))
		}
		col, recordCol := slices.Index(rows[0], "dns_returned"), slices.Index(rows[0], "record")
		var ownership []string
		for _, row := range rows[1:] {
			for _, cell := range row {
				if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
					t.Errorf("cell %q would be read as a formula", cell)
				}
			}
			if row[recordCol] == "ownership" {
				ownership = strings.Split(row[col], "\n")
			}
		}
		for _, want := range []string{`'=cmd|' /C calc'!A0`, `'@SUM(1+1)*cmd|' /C calc'!A0`, `<script>alert(1)</script>`,
			`\x1b[2J\x1b[31mterminal escapes`, `invoice\u202efdp.exe`, `x\x0a$INCLUDE /etc/passwd\x0aevil.example.com. 300 IN A 192.0.2.1`} {
			if !slices.Contains(ownership, want) {
				t.Errorf("dns_returned lacks %q: %q", want, ownership)
			}
		}
	})

	t.Run("zone file", func(t *testing.T) {
		r := c.get("/domains/" + d.ID + "/zone")
		if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") ||
			!strings.Contains(r.header.Get("Content-Disposition"), `filename=example.com.zone`) {
			t.Fatalf("status %d, %s, %s", r.status, r.header.Get("Content-Type"), r.header.Get("Content-Disposition"))
		}
		rrs := parseZone(t, r.body)
		// Exactly the records to publish: the hostile values stayed in their
		// comments and added nothing.
		checkZoneRecords(t, rrs, d)
		if strings.Contains(r.body, "evil.example.com") || strings.Contains(r.body, "$INCLUDE") {
			t.Error("a value DNS returned reached the zone file")
		}
	})
}

func TestZoneFileParses(t *testing.T) {
	e := newEnv(t, envOptions{})
	d := e.addDomain(e.projectID, "example.com")
	e.publish(d)
	out, err := e.verifier.Verify(context.Background(), e.projectID, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	c := e.signedIn()
	r := c.get("/domains/" + d.ID + "/zone")
	if r.status != http.StatusOK {
		t.Fatalf("status %d", r.status)
	}
	checkZoneRecords(t, parseZone(t, r.body), out.Domain)
	// The zone file publishes what the check verifies: load it into a fresh
	// zone and the domain verifies from it alone.
	e.zone.RemoveName("_autosend-verify.example.com.")
	e.zone.RemoveName("autosend._domainkey.example.com.")
	e.zone.RemoveName("mail.example.com.")
	e.zone.RemoveName("_dmarc.example.com.")
	if err := e.zone.Add(stripComments(r.body)); err != nil {
		t.Fatalf("the exported zone does not load: %v", err)
	}
	d2, err := e.verifier.Verify(context.Background(), e.projectID, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range d2.Domain.Records {
		if !rec.Verified {
			t.Errorf("%s does not verify from the exported zone: %+v", rec.Key, rec.Problems)
		}
	}
}

func parseZone(t *testing.T, text string) []dns.RR {
	t.Helper()
	zp := dns.NewZoneParser(strings.NewReader(text), "", "")
	var rrs []dns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		rrs = append(rrs, rr)
	}
	if err := zp.Err(); err != nil {
		t.Fatalf("the zone file does not parse: %v\n%s", err, text)
	}
	return rrs
}

// checkZoneRecords checks that rrs are exactly d's records.
func checkZoneRecords(t *testing.T, rrs []dns.RR, d *domain.Domain) {
	t.Helper()
	if len(rrs) != len(d.Records) {
		t.Fatalf("the zone file has %d records, want %d: %v", len(rrs), len(d.Records), rrs)
	}
	for i, rr := range rrs {
		want := d.Records[i]
		if rr.Header().Name != want.Name+"." {
			t.Errorf("record %d: name %q, want %q", i, rr.Header().Name, want.Name+".")
		}
		switch rr := rr.(type) {
		case *dns.TXT:
			if want.Type != "TXT" || strings.Join(rr.Txt, "") != want.Value {
				t.Errorf("record %d: TXT %q, want %s %q", i, rr.Txt, want.Type, want.Value)
			}
			for _, s := range rr.Txt {
				if len(s) > 255 {
					t.Errorf("record %d: a character-string of %d bytes", i, len(s))
				}
			}
		case *dns.MX:
			if want.Type != "MX" || rr.Mx != want.Value+"." || rr.Preference != want.Priority {
				t.Errorf("record %d: MX %d %s, want %s %d %s", i, rr.Preference, rr.Mx, want.Type, want.Priority, want.Value)
			}
		default:
			t.Errorf("record %d: unexpected %s", i, rr)
		}
	}
}

func stripComments(zone string) string {
	var lines []string
	for _, l := range strings.Split(zone, "\n") {
		if l != "" && !strings.HasPrefix(l, ";") {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n")
}
