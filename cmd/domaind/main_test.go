package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/domaind/domaind/internal/dnstest"
)

func runCmd(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	err = run(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), err
}

var keyRE = regexp.MustCompile(`^AS_[A-Za-z0-9_-]{43}$`)

func TestAPIKeyCommands(t *testing.T) {
	db := "sqlite:" + filepath.Join(t.TempDir(), "d.db")
	out, errOut, err := runCmd(t, "apikey", "create", "--project", "acme", "--db", db)
	if err != nil {
		t.Fatalf("create: %v %s", err, errOut)
	}
	key := strings.TrimSpace(out)
	if !strings.Contains(errOut, `project "acme"`) {
		t.Errorf("create does not name the project: %s", errOut)
	}
	if !keyRE.MatchString(key) {
		t.Fatalf("printed key %q does not look like AS_ + 43 characters", key)
	}
	if strings.Contains(errOut, key) {
		t.Error("the key was also written to stderr")
	}
	out2, _, err := runCmd(t, "apikey", "create", "--project", "acme", "--db", db)
	if err != nil || strings.TrimSpace(out2) == key {
		t.Fatalf("second create: %v, same key %v", err, strings.TrimSpace(out2) == key)
	}

	list, _, err := runCmd(t, "apikey", "list", "--db", db)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(list, key) || !strings.Contains(list, key[:11]) || strings.Count(list, "acme") != 2 {
		t.Fatalf("list shows the whole key or misses a prefix:\n%s", list)
	}
	// The database holds no key in the clear.
	raw, err := os.ReadFile(strings.TrimPrefix(db, "sqlite:"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(key)) {
		t.Fatal("the API key is stored in the clear")
	}

	if _, _, err := runCmd(t, "apikey", "revoke", "--db", db, "AS_"); err == nil || !strings.Contains(err.Error(), "KEY_PREFIX: Give at least the first 7 characters") {
		t.Errorf("revoke with a too-short prefix: %v", err)
	}
	if _, _, err := runCmd(t, "apikey", "revoke", "--db", db, "AS_zzzzzzzz"); err == nil || !strings.Contains(err.Error(), "No API key starts with") {
		t.Errorf("revoke of an unknown prefix: %v", err)
	}
	out, _, err = runCmd(t, "apikey", "revoke", "--db", db, key[:12])
	if err != nil || !strings.Contains(out, "Revoked") {
		t.Fatalf("revoke: %v %s", err, out)
	}
	list, _, _ = runCmd(t, "apikey", "list", "--db", db)
	if !regexp.MustCompile(regexp.QuoteMeta(key[:11]) + `\s+acme\s+\S+\s+\d{4}-`).MatchString(list) {
		t.Errorf("list does not show the revocation:\n%s", list)
	}

	if _, _, err := runCmd(t, "apikey", "create", "--db", db); err == nil {
		t.Error("create without --project succeeded")
	}
	// The project's rule is the service's, said against the flag that broke it.
	if _, _, err := runCmd(t, "apikey", "create", "--db", db, "--project", "a\x7fb"); err == nil || !strings.Contains(err.Error(), "--project: The project must be a name of 1 to 100 printable characters") {
		t.Errorf("create with a control character in --project: %v", err)
	}
	// Refused input creates no database.
	fresh := filepath.Join(t.TempDir(), "none.db")
	for _, args := range [][]string{
		{"apikey", "create", "--db", "sqlite:" + fresh, "--project", "   "},
		{"apikey", "revoke", "--db", "sqlite:" + fresh, "AS_"},
	} {
		if _, _, err := runCmd(t, args...); err == nil {
			t.Errorf("%v succeeded", args)
		}
		if _, err := os.Stat(fresh); err == nil {
			t.Fatalf("%v created the database", args)
		}
	}
}

func TestEnvironmentVariables(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("DOMAIND_DB", "sqlite:"+filepath.Join(dir, "env.db"))
	t.Setenv("DOMAIND_PROJECT", "from-env")
	if _, errOut, err := runCmd(t, "apikey", "create"); err != nil {
		t.Fatalf("create from env: %v %s", err, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "env.db")); err != nil {
		t.Fatalf("DOMAIND_DB was not used: %v", err)
	}
	// A flag wins over the variable.
	other := "sqlite:" + filepath.Join(dir, "flag.db")
	if _, _, err := runCmd(t, "apikey", "create", "--db", other); err != nil {
		t.Fatal(err)
	}
	list, _, _ := runCmd(t, "apikey", "list", "--db", other)
	if !strings.Contains(list, "from-env") {
		t.Errorf("flag --db did not win over DOMAIND_DB:\n%s", list)
	}
	t.Setenv("DOMAIND_DNS_TIMEOUT", "soon")
	if _, _, err := runCmd(t, "serve", "--dev", "--data-dir", dir); err == nil || !strings.Contains(err.Error(), "DOMAIND_DNS_TIMEOUT") {
		t.Errorf("a bad variable is not named in the error: %v", err)
	}
}

func TestServeRefusesBadSettings(t *testing.T) {
	dir := t.TempDir()
	db := "sqlite:" + filepath.Join(dir, "d.db")
	// devServe is serve with settings that are all good but for flags.
	devServe := func(flags ...string) []string {
		return append([]string{"serve", "--db", db, "--dev", "--data-dir", dir, "--resolvers", "127.0.0.1:53"}, flags...)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--db", db, "--resolvers", "127.0.0.1:53"}, "master-key"},
		{[]string{"serve", "--db", db, "--master-key", "c2hvcnQ="}, "32 bytes"},
		{[]string{"serve", "--db", db, "--dev", "--data-dir", dir, "--rate-limit", "lots"}, "rate-limit"},
		{[]string{"serve", "--db", db, "--dev", "--data-dir", dir, "--dkim-selector", "bad selector"}, "dkim-selector"},
		{[]string{"serve", "--db", "mysql://x", "--dev", "--data-dir", dir, "--resolvers", "127.0.0.1:53"}, "sqlite:"},
		{[]string{"serve", "--db", db, "--dev", "--data-dir", dir, "--resolvers", "nonsense"}, "host:port"},
		{devServe("--anon-rate-limit", "lots"), "anon-rate-limit"},
		{devServe("--anon-rate-limit", "0/m"), "anon-rate-limit"},
		{devServe("--trusted-proxies", "10.0.0.0/8,proxy.example"), "trusted-proxies"},
		{devServe("--keygen-concurrency", "-1"), "keygen-concurrency"},
		// These reach app.New, which judges them: serve only parses.
		{devServe("--regions", " , "), "--regions"},
		{devServe("--check-concurrency", "0"), "--check-concurrency"},
		{devServe("--verify-budget", "0s"), "--verify-budget"},
		{devServe("--dkim-bits", "512"), "--dkim-bits"},
	} {
		_, _, err := runCmd(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want it to mention %q", tc.args, err, tc.want)
		}
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestServeEndToEnd runs the real serve command as an operator would, then a
// customer takes a domain from added to VERIFIED against a loopback DNS server.
func TestServeEndToEnd(t *testing.T) {
	zone := dnstest.NewZone("example.com.")
	dnsSrv := dnstest.Start(t, zone)
	srv := startServe(t, "--resolvers", dnsSrv.Addr(), "--dns-mode", "recursive", "--dkim-bits", "1024", "--verify-min-interval", "0s")
	if _, err := os.Stat(filepath.Join(srv.dir, "domaind-master.key")); err != nil {
		t.Fatalf("--dev did not keep a master key: %v", err)
	}

	call := func(method, path, body string) map[string]any {
		t.Helper()
		m, h := srv.call(t, method, path, body)
		if h.Get("X-RateLimit-Limit") != "120" {
			t.Errorf("default rate limit header = %q", h.Get("X-RateLimit-Limit"))
		}
		return m
	}
	d := call("POST", "/v1/domains", `{"domain":"example.com"}`)["data"].(map[string]any)
	publish(t, zone, d)
	mx := d["dnsRecords"].(map[string]any)["mailFrom"].([]any)[0].(map[string]any)
	zone.MustAdd(mx["name"].(string) + ". 300 IN MX " + strconv.Itoa(int(mx["priority"].(float64))) + " " + mx["value"].(string) + ".")
	v := call("POST", "/v1/domains/"+d["id"].(string)+"/verify", "")["data"].(map[string]any)
	if v["verificationStatus"] != "VERIFIED" {
		t.Fatalf("verify through serve: %v", v)
	}

	srv.wantMetrics(t, `domaind_checks_total{outcome="verified"} 1`, "domaind_check_duration_seconds_count 1", "domaind_queue_lag_seconds")

	srv.stop(t)
	if !strings.Contains(srv.logs.String(), "shutting down") {
		t.Errorf("no shutdown log:\n%s", srv.logs.String())
	}
}

// TestDispatch: domaind and its dkim group answer a missing or unknown
// command with their usage on stderr and status 2, and help with it on stdout.
func TestDispatch(t *testing.T) {
	for _, tc := range []struct {
		args               []string
		err                error
		inStdout, inStderr string
	}{
		{nil, exitCode(2), "", "domaind serve"},
		{[]string{"nope"}, exitCode(2), "", `domaind: unknown command "nope"`},
		{[]string{"help"}, nil, "domaind dkim rotate DOMAIN", ""},
		{[]string{"dkim"}, exitCode(2), "", "domaind dkim export"},
		{[]string{"dkim", "nope"}, exitCode(2), "", `domaind dkim: unknown command "nope"`},
		{[]string{"dkim", "--help"}, nil, "domaind dkim rotate DOMAIN", ""},
	} {
		out, errOut, err := runCmd(t, tc.args...)
		if err != tc.err || (tc.inStdout == "") != (out == "") || !strings.Contains(out, tc.inStdout) ||
			(tc.inStderr == "") != (errOut == "") || !strings.Contains(errOut, tc.inStderr) {
			t.Errorf("%q: err %v, stdout %q, stderr %q; want %v, %q in stdout, %q in stderr", tc.args, err, out, errOut, tc.err, tc.inStdout, tc.inStderr)
		}
	}
}
