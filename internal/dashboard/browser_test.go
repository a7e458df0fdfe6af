package dashboard_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/domaind/domaind/internal/domain"
)

// The browser tests drive Debian's Chromium (apt-get install chromium), never a
// downloaded browser. Without it they are skipped with a loud message, except
// in CI (CI=true), where they fail.

// screenshotPath is where DOMAIND_UPDATE_SCREENSHOT=1 makes the browser test
// write the README's picture of the domain page.
const screenshotPath = "../../docs/dashboard-domain.png"

// stepTimeout bounds each browser step, so a broken page fails fast.
const stepTimeout = 10 * time.Second

func chromiumPath() string {
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	return ""
}

// browser is one headless Chromium with one tab, and what the tab reported.
type browser struct {
	t   *testing.T
	ctx context.Context

	mu       sync.Mutex
	dialogs  []string // messages of JavaScript dialogs (alert, confirm, prompt)
	problems []string // console errors, exceptions and CSP violations
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	path := chromiumPath()
	if path == "" {
		const msg = "Chromium is not installed: install Debian's package (apt-get install chromium) to run the dashboard's browser tests"
		if os.Getenv("CI") == "true" {
			t.Fatal("CI: " + msg)
		}
		t.Skip("!!! SKIPPING BROWSER TEST !!! " + msg)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1200, 900),
		// Without these Chromium reaches for the internet (updates, sync,
		// field trials); the tests must stay on loopback.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.Flag("no-pings", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		// Any name lookup but the loopback address fails, as a last guard.
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// The first Do starts the browser; its context must not carry a step's
	// timeout, or the browser would end with the step.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	b := &browser{t: t, ctx: ctx}

	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.dialogs = append(b.dialogs, ev.Message)
			b.mu.Unlock()
			// Dismiss it, or the page would hang behind it.
			chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
		}
	}()
	console := chromedp.Console(ctx)
	go func() {
		for m, err := range console {
			if err != nil {
				return
			}
			// The refused sign-in is answered 401 on purpose; the tests
			// check statuses themselves.
			expected := m.Source == "network" && strings.Contains(m.Text, "status of 401")
			if (m.Type == chromedp.ConsoleError || m.IsException()) && !expected {
				b.mu.Lock()
				b.problems = append(b.problems, m.String())
				b.mu.Unlock()
			}
		}
	}()
	return b
}

// do runs steps within stepTimeout.
func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression and decodes its value into T.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitJS polls expr until it is true. chromedp.Poll would compile the
// predicate with new Function, which the dashboard's CSP rightly forbids, so
// the polling is done from here.
func (b *browser) waitJS(what, expr string) {
	b.t.Helper()
	deadline := time.Now().Add(stepTimeout)
	for {
		ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("timed out waiting for %s (last error: %v)", what, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func (b *browser) location() string {
	b.t.Helper()
	return eval[string](b, "location.pathname + location.search")
}

// checkClean fails the test if the page raised a dialog or logged an error.
func (b *browser) checkClean() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.dialogs) > 0 {
		b.t.Errorf("JavaScript dialogs fired: %q", b.dialogs)
	}
	if len(b.problems) > 0 {
		b.t.Errorf("the browser console reported: %q", b.problems)
	}
}

// signIn signs in from the sign-in page with the keyboard alone: type the key,
// press Enter.
func (b *browser) signIn(url, key string) {
	b.t.Helper()
	b.do("open the sign-in page",
		chromedp.Navigate(url+"/"),
		chromedp.WaitVisible(chromedp.ID("key")),
		chromedp.SendKeys(chromedp.ID("key"), key+"\n"),
		chromedp.WaitVisible(chromedp.ID("add-button")),
	)
}

// addDomain adds a domain with the form and returns its id.
func (b *browser) addDomain(name string) string {
	b.t.Helper()
	b.do("add "+name,
		chromedp.SendKeys(chromedp.ID("domain"), name),
		chromedp.Click(chromedp.ID("add-button")),
		chromedp.WaitVisible(chromedp.ID("verify-button")),
	)
	loc := b.location()
	id, ok := strings.CutPrefix(strings.TrimSuffix(loc, "?msg=added"), "/domains/")
	if !ok || !domain.ValidID(id) {
		b.t.Fatalf("after adding, the browser is at %q", loc)
	}
	return id
}

// verifyNow presses "Verify now" from the keyboard and waits for the answer.
func (b *browser) verifyNow() string {
	b.t.Helper()
	b.do("clear the status line", chromedp.Evaluate[chromedp.Void](`document.getElementById("verify-status").textContent = ""`))
	b.do("press Verify now",
		chromedp.Focus(chromedp.ID("verify-button")),
		chromedp.KeyEvent("\r"),
	)
	b.waitJS("the verify answer", `(function () {
		var s = document.getElementById("verify-status").textContent;
		return s !== "" && s !== "Checking DNS…";
	})()`)
	return eval[string](b, `document.getElementById("verify-status").textContent`)
}

func TestBrowserSignInVerifySignOut(t *testing.T) {
	b := newBrowser(t)
	e := newEnv(t, envOptions{})

	// A wrong key is refused, and the page says so.
	wrong := flip(e.key)
	b.do("sign in with a wrong key",
		chromedp.Navigate(e.url+"/"),
		chromedp.WaitVisible(chromedp.ID("key")),
		chromedp.SendKeys(chromedp.ID("key"), wrong+"\n"),
		chromedp.WaitVisible(chromedp.ID("signin-error")),
	)
	if msg := eval[string](b, `document.getElementById("signin-error").textContent`); !strings.Contains(msg, "not valid") {
		t.Errorf("wrong key: the page says %q", msg)
	}
	if loc := b.location(); loc != "/signin" {
		t.Errorf("after a wrong key the browser is at %q", loc)
	}

	b.signIn(e.url, e.key)
	id := b.addDomain("example.com")
	if n := eval[int](b, `document.querySelectorAll('#live .record').length`); n != 5 {
		t.Fatalf("the domain page shows %d records, want 5", n)
	}
	if st := eval[string](b, `document.querySelector('#domain-status .badge').dataset.state`); st != "pending_configuration" {
		t.Errorf("a new domain's badge is %q", st)
	}

	d, err := e.store.Domain(context.Background(), e.projectID, id)
	if err != nil {
		t.Fatal(err)
	}
	e.publish(d)

	// A marker on window survives only if the page is not reloaded.
	b.do("mark the page", chromedp.Evaluate[chromedp.Void](`window.__notReloaded = true`))
	msg := b.verifyNow()
	if msg != "Checked just now: every record is verified." {
		t.Errorf("the status line says %q", msg)
	}
	if !eval[bool](b, `window.__notReloaded === true`) {
		t.Error("Verify now reloaded the page")
	}
	states := eval[[]string](b, `Array.from(document.querySelectorAll('#live .badge'), function (b) { return b.dataset.state; })`)
	if len(states) < 6 {
		t.Fatalf("%d badges on the page, want the domain's and five records' at least", len(states))
	}
	for i, s := range states {
		if s != "verified" {
			t.Errorf("badge %d is %q after publishing every record", i, s)
		}
	}
	// Each badge says it in words too, not just in colour.
	if texts := eval[[]string](b, `Array.from(document.querySelectorAll('#live .badge'), function (b) { return b.textContent.trim(); })`); !allEqual(texts, "✓ Verified") {
		t.Errorf("badge texts %q", texts)
	}
	// Keyboard focus stays on the button after the update.
	if f := eval[string](b, `document.activeElement.id`); f != "verify-button" {
		t.Errorf("after Verify now the focus is on %q", f)
	}

	// Open the propagation view of the DKIM record for the picture.
	b.do("open the propagation view", chromedp.Click(chromedp.CSS(`#record-dkim summary`)))
	if os.Getenv("DOMAIND_UPDATE_SCREENSHOT") == "1" {
		ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(screenshotPath), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(screenshotPath, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", screenshotPath)
	}

	// Copying, both ways: with the Clipboard API, and, where the browser
	// refuses it, by selecting the text for the customer to copy by hand.
	for _, perm := range []string{"clipboard-read", "clipboard-write"} {
		if _, err := chromedp.CallBrowser(b.ctx, cdpbrowser.SetPermission, cdpbrowser.SetPermissionParams{
			Permission: &cdpbrowser.PermissionDescriptor{Name: perm}, Setting: cdpbrowser.PermissionSettingGranted, Origin: e.url,
		}); err != nil {
			t.Fatal(err)
		}
	}
	dkim := d.Record(domain.KeyDKIM)
	b.do("copy the DKIM value", chromedp.Click(chromedp.CSS(`button[data-copy="dkim-value"]`)))
	b.waitJS("the copy status", `document.querySelector('button[data-copy="dkim-value"] + .copy-status').textContent !== ""`)
	if st := eval[string](b, `document.querySelector('button[data-copy="dkim-value"] + .copy-status').textContent`); st != "Copied." {
		t.Errorf("copy status %q", st)
	}
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	clip, err := chromedp.Run(ctx, chromedp.Evaluate[string](`navigator.clipboard.readText()`, chromedp.EvalAwaitPromise))
	cancel()
	if err != nil || clip != dkim.Value {
		t.Errorf("the clipboard holds %q (%v), want the DKIM value", clip, err)
	}
	b.do("refuse the clipboard", chromedp.Evaluate[chromedp.Void](
		`navigator.clipboard.writeText = function () { return Promise.reject(new Error("denied")); }`))
	b.do("copy the DKIM name", chromedp.Click(chromedp.CSS(`button[data-copy="dkim-name"]`)))
	b.waitJS("the copy fallback", `document.querySelector('button[data-copy="dkim-name"] + .copy-status').textContent.indexOf("Selected") === 0`)
	if sel := eval[string](b, `window.getSelection().toString()`); sel != dkim.Name {
		t.Errorf("the copy fallback selected %q, want %q", sel, dkim.Name)
	}

	// On a phone-sized screen nothing runs off the side.
	b.do("emulate a phone", chromedp.EmulateViewport(375, 812, chromedp.EmulateMobile), chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("verify-button")))
	if w := eval[[]int](b, `[document.documentElement.scrollWidth, window.innerWidth]`); w[0] > w[1] {
		t.Errorf("on a phone the page is %dpx wide in a %dpx window", w[0], w[1])
	}
	b.do("back to a desktop", chromedp.ResetViewport())

	// Signing out ends the session: the domain page is no longer reachable.
	b.do("sign out",
		chromedp.Click(chromedp.ID("signout")),
		chromedp.WaitVisible(chromedp.ID("key")),
	)
	if n := eval[string](b, `document.querySelector('.notice').textContent`); n != "You have signed out." {
		t.Errorf("after sign-out the page says %q", n)
	}
	b.do("open the domain page again",
		chromedp.Navigate(e.url+"/domains/"+id),
		chromedp.WaitVisible(chromedp.ID("key")),
	)
	if loc := b.location(); !strings.HasPrefix(loc, "/signin") {
		t.Errorf("after sign-out the domain page answered at %q", loc)
	}
	b.checkClean()
}

func TestBrowserHostileTXTRendersAsText(t *testing.T) {
	b := newBrowser(t)
	e := newEnv(t, envOptions{})
	b.signIn(e.url, e.key)
	id := b.addDomain("example.com")
	d, err := e.store.Domain(context.Background(), e.projectID, id)
	if err != nil {
		t.Fatal(err)
	}
	own := d.Record(domain.KeyOwnership)
	for _, v := range hostile {
		if err := e.zone.AddTXT(own.Name+".", v); err != nil {
			t.Fatal(err)
		}
	}

	// Once as "Verify now" renders it in place, once as the server renders the
	// whole page.
	check := func(how string) {
		t.Helper()
		injected := eval[int](b, `document.querySelectorAll('img, [onerror], script:not([src="/assets/app.js"])').length`)
		if injected != 0 {
			t.Errorf("%s: %d injected elements exist", how, injected)
		}
		shown := eval[[]string](b, `Array.from(document.querySelectorAll('#record-ownership .values .found-value'), function (c) { return c.textContent; })`)
		for _, v := range hostile {
			if !contains(shown, domain.Printable(v)) {
				t.Errorf("%s: %q is not shown as text; shown: %s", how, v, quoteAll(shown))
			}
		}
	}
	if msg := b.verifyNow(); !strings.HasPrefix(msg, "Checked just now: 0 of 5") {
		t.Errorf("the status line says %q", msg)
	}
	check("after Verify now")
	b.do("reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("verify-button")))
	check("after a reload")
	if st := eval[string](b, `document.querySelector('#record-ownership .badge').dataset.state`); st != "mismatch" {
		t.Errorf("ownership badge %q, want mismatch", st)
	}
	b.checkClean()
}

func allEqual(s []string, v string) bool {
	for _, x := range s {
		if x != v {
			return false
		}
	}
	return len(s) > 0
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func quoteAll(s []string) string {
	j, _ := json.Marshal(s)
	return string(j)
}
