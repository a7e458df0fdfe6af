package main

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-milter"
	"github.com/miekg/dns"

	"github.com/domaind/domaind/internal/apptest"
	"github.com/domaind/domaind/internal/dnstest"
	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/domains"
	"github.com/domaind/domaind/internal/mailtest"
	"github.com/domaind/domaind/internal/signing"
	"github.com/domaind/domaind/internal/testenv"
	"github.com/domaind/domaind/internal/verify"
)

// exportFixture is a real SQLite database of domains added and checked the way a
// customer's are, against a DNS server on loopback that the test publishes into.
type exportFixture struct {
	t       *testing.T
	db      string // the --db value
	key     string // the master key, base64
	dns     *dnstest.Server
	svc     *domains.Service
	v       *verify.Verifier
	project int64
}

var exportMasterKey = bytes.Repeat([]byte{0x5a}, 32)

func newExportFixture(t *testing.T, zones ...string) *exportFixture {
	t.Helper()
	path := filepath.Join(t.TempDir(), "d.db")
	var zs []*dnstest.Zone
	for _, z := range zones {
		zs = append(zs, dnstest.NewZone(z))
	}
	srv := dnstest.Start(t, zs...)
	cfg := apptest.Config(exportMasterKey)
	cfg.DB = "sqlite:" + path
	// The authoritative walk starts at the test's server as the root, which
	// answers for the zones itself, so the check never leaves loopback.
	cfg.DNS = apptest.AuthoritativeDNS([]string{srv.IP()}, srv.Port())
	cfg.Regions = []string{"us-east-1"}
	cfg.VerifyBudget, cfg.VerifyMinInterval = 10*time.Second, 0
	a := apptest.New(t, cfg)
	p, err := a.Store().EnsureProject(t.Context(), "acme", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return &exportFixture{
		t: t, db: cfg.DB, key: base64.StdEncoding.EncodeToString(exportMasterKey), dns: srv,
		svc: a.Domains(), v: a.Verifier(), project: p.ID,
	}
}

// add adds name as a customer does; with publish, its ownership and DKIM records
// go into the zone that holds them, and a check must find the domain VERIFIED.
func (f *exportFixture) add(name string, publish bool) *domain.Domain {
	f.t.Helper()
	d, err := f.svc.Add(f.t.Context(), f.project, name, "")
	if err != nil {
		f.t.Fatal(err)
	}
	if !publish {
		return d
	}
	for _, r := range d.Records {
		if r.Key == domain.KeyOwnership || r.Key == domain.KeyDKIM {
			if err := f.zoneOf(r.Name).AddTXT(r.Name+".", r.Value); err != nil {
				f.t.Fatal(err)
			}
		}
	}
	if d = f.check(d); d.Status != domain.StatusVerified || !d.DKIMEnabled {
		f.t.Fatalf("%s after publishing: status %s, dkimEnabled %v", name, d.Status, d.DKIMEnabled)
	}
	return d
}

func (f *exportFixture) check(d *domain.Domain) *domain.Domain {
	f.t.Helper()
	out, err := f.v.Verify(f.t.Context(), f.project, d.ID)
	if err != nil || out.InProgress {
		f.t.Fatalf("verify %s: %v (in progress: %v)", d.Name, err, out.InProgress)
	}
	return out.Domain
}

// zoneOf returns the served zone holding name.
func (f *exportFixture) zoneOf(name string) *dnstest.Zone {
	for n := name + "."; n != ""; _, n, _ = strings.Cut(n, ".") {
		if z := f.dns.Zone(n); z != nil {
			return z
		}
	}
	f.t.Fatalf("no test zone holds %s", name)
	return nil
}

func (f *exportFixture) export(args ...string) (stdout, stderr string, err error) {
	f.t.Helper()
	var out, errb bytes.Buffer
	err = run(f.t.Context(), append([]string{"dkim", "export", "--db", f.db}, args...), &out, &errb)
	return out.String(), errb.String(), err
}

func dkimRecord(t *testing.T, d *domain.Domain) domain.Record {
	t.Helper()
	i := slices.IndexFunc(d.Records, func(r domain.Record) bool { return r.Key == domain.KeyDKIM })
	if i < 0 {
		t.Fatalf("%s has no DKIM record", d.Name)
	}
	return d.Records[i]
}

// TestDKIMExportSignsWithOpenDKIM exports the keys of verified domains, has
// Debian's OpenDKIM sign with the tables as they are, and has dkimpy verify the
// signatures against the DNS the customer published into.
func TestDKIMExportSignsWithOpenDKIM(t *testing.T) {
	f := newExportFixture(t, "example.com.", "example.net.")
	f.add("example.com", true)
	f.add("news.example.com", true)
	f.add("example.net", false) // added, never published: it must not sign
	dir := filepath.Join(t.TempDir(), "opendkim")

	out, errOut, err := f.export("--dir", dir, "--master-key", f.key)
	if err != nil {
		t.Fatalf("export: %v\n%s", err, errOut)
	}
	if want := "dkim export: 2 keys in " + filepath.Join(dir, "keys") + " for opendkim (2 written, 0 unchanged), 0 removed\n"; out != want {
		t.Errorf("summary = %q, want %q", out, want)
	}
	keyTable := mustRead(t, filepath.Join(dir, "KeyTable"))
	for _, want := range []string{
		"autosend._domainkey.example.com example.com:autosend:" + filepath.Join(dir, "keys", "example.com.autosend.pem") + "\n",
		"autosend._domainkey.news.example.com news.example.com:autosend:" + filepath.Join(dir, "keys", "news.example.com.autosend.pem") + "\n",
	} {
		if !strings.Contains(keyTable, want) {
			t.Errorf("KeyTable lacks %q:\n%s", want, keyTable)
		}
	}
	if strings.Contains(keyTable, "example.net") {
		t.Errorf("KeyTable names the unverified example.net:\n%s", keyTable)
	}
	// Exact lines first, then subdomain lines with the deepest domain first, as
	// OpenDKIM takes the first match.
	wantST := strings.Join([]string{
		"*@example.com autosend._domainkey.example.com",
		"*@news.example.com autosend._domainkey.news.example.com",
		"*@*.news.example.com autosend._domainkey.news.example.com",
		"*@*.example.com autosend._domainkey.example.com",
	}, "\n") + "\n"
	if st := mustRead(t, filepath.Join(dir, "SigningTable")); !strings.HasSuffix(st, "\n"+wantST) {
		t.Errorf("SigningTable =\n%s\nwant it to end with\n%s", st, wantST)
	}
	assertMode(t, dir, fs.ModeDir|0o700)
	assertMode(t, filepath.Join(dir, "keys"), fs.ModeDir|0o700)
	assertMode(t, filepath.Join(dir, "keys", "example.com.autosend.pem"), 0o600)
	assertMode(t, filepath.Join(dir, "keys", "news.example.com.autosend.pem"), 0o600)
	if _, err := os.Stat(filepath.Join(dir, "keys", "example.net.autosend.pem")); err == nil {
		t.Error("the unverified example.net has a key file")
	}

	milterAddr := startOpenDKIM(t, dir)
	for _, tc := range []struct {
		from   string
		domain string // d= of the signature; "" for no signature
	}{
		{"alice@example.com", "example.com"},
		{"bob@news.example.com", "news.example.com"},
		// A subdomain without a key of its own signs with its closest parent's.
		{"carol@x.news.example.com", "news.example.com"},
		{"dave@shop.example.com", "example.com"},
		{"erin@example.net", ""},
		// The subdomain pattern is anchored at a dot: not a suffix match.
		{"frank@badexample.com", ""},
	} {
		t.Run(tc.from, func(t *testing.T) {
			msg, signed := signWithMilter(t, milterAddr, tc.from)
			if tc.domain == "" {
				if signed {
					t.Fatalf("OpenDKIM signed mail from %s:\n%s", tc.from, msg)
				}
				return
			}
			if !signed {
				t.Fatalf("OpenDKIM did not sign mail from %s", tc.from)
			}
			res := mailtest.VerifyDKIM(t, msg, f.dns.Addr())
			if !res.OK || res.Domain != tc.domain || res.Selector != "autosend" {
				t.Fatalf("dkimpy: ok %v d=%s s=%s error %s\n%s\n%s", res.OK, res.Domain, res.Selector, res.Error, strings.Join(res.Log, "\n"), msg)
			}
		})
	}
}

// TestDKIMExportRerun runs the export again as a timer would: a domain that lost
// its DKIM record loses its key file and table lines, unchanged keys are left
// as they are, nothing else in the folder is touched and no temporary file stays.
func TestDKIMExportRerun(t *testing.T) {
	f := newExportFixture(t, "example.com.", "example.org.")
	com := f.add("example.com", true)
	org := f.add("example.org", true)
	dir := filepath.Join(t.TempDir(), "export")
	keyFile := filepath.Join(t.TempDir(), "master.key")
	if err := os.WriteFile(keyFile, []byte(f.key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The master key from a file, as a service manager's credential gives it.
	args := []string{"--dir", dir, "--master-key-file", keyFile}
	if out, errOut, err := f.export(args...); err != nil || !strings.Contains(out, "2 keys") {
		t.Fatalf("first export: %v %q %s", err, out, errOut)
	}
	// Files of the operator's own: one even has the shape of an exported key.
	foreign := map[string]string{
		"README":                         "keys of our own live here too\n",
		"legacy.example.com.default.pem": "not domaind's\n",
	}
	for name, content := range foreign {
		if err := os.WriteFile(filepath.Join(dir, "keys", name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	comKey := filepath.Join(dir, "keys", "example.com.autosend.pem")
	before, err := os.Stat(comKey)
	if err != nil {
		t.Fatal(err)
	}

	// example.org's DKIM record disappears; one definite check stops its signing.
	dk := dkimRecord(t, org)
	f.zoneOf(dk.Name).Remove(dk.Name+".", dns.TypeTXT)
	if d := f.check(org); d.Records[slices.IndexFunc(d.Records, func(r domain.Record) bool { return r.Key == domain.KeyDKIM })].Status == domain.CheckVerified {
		t.Fatal("test setup: the DKIM record is still found")
	}
	// The reload command runs once the tables no longer name example.org and
	// before its key is removed, so a signer never names a missing key file.
	marker := filepath.Join(t.TempDir(), "reloaded")
	reload := fmt.Sprintf("test -e %s/keys/example.org.autosend.pem && ! grep -q example.org %s/KeyTable && touch %s", dir, dir, marker)
	out, errOut, err := f.export(append(args, "--reload-command", reload)...)
	if err != nil {
		t.Fatalf("re-export: %v %s", err, errOut)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("the reload command did not run between the new tables and the removal: %v", err)
	}
	if !strings.Contains(out, "1 keys in") || !strings.Contains(out, "(0 written, 1 unchanged), 1 removed") {
		t.Errorf("summary = %q, want 1 key, none written, 1 removed", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "keys", "example.org.autosend.pem")); err == nil {
		t.Error("the key of example.org, which lost its DKIM record, is still exported")
	}
	for _, table := range []string{"KeyTable", "SigningTable"} {
		if s := mustRead(t, filepath.Join(dir, table)); strings.Contains(s, "example.org") || !strings.Contains(s, "example.com") {
			t.Errorf("%s after the re-export:\n%s", table, s)
		}
	}
	for name, content := range foreign {
		if got := mustRead(t, filepath.Join(dir, "keys", name)); got != content {
			t.Errorf("the operator's %s = %q, want it untouched", name, got)
		}
	}
	after, err := os.Stat(comKey)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) {
		t.Error("the unchanged key of example.com was rewritten")
	}
	assertMode(t, comKey, 0o600)
	// Nothing else: no temporary file left behind by the atomic replacements.
	wantNames := []string{".domaind-export-keys", ".domaind-export.lock", "KeyTable", "SigningTable", "keys",
		"keys/README", "keys/example.com.autosend.pem", "keys/legacy.example.com.default.pem"}
	if got := tree(t, dir); !slices.Equal(got, wantNames) {
		t.Errorf("folder holds %q, want %q", got, wantNames)
	}

	// The JSON format, for other signers, into a folder of its own.
	jdir := filepath.Join(t.TempDir(), "json")
	if _, errOut, err := f.export("--dir", jdir, "--format", "json", "--master-key", f.key); err != nil {
		t.Fatalf("json export: %v %s", err, errOut)
	}
	var entries []signing.JSONKey
	if err := json.Unmarshal([]byte(mustRead(t, filepath.Join(jdir, "signing-keys.json"))), &entries); err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("signing-keys.json has %d entries, want example.com only: %+v", len(entries), entries)
	}
	e := entries[0]
	if e.Domain != "example.com" || e.Selector != "autosend" || e.KeyFile != filepath.Join(jdir, "keys", "example.com.autosend.pem") ||
		e.Algorithm != "rsa-sha256" || e.Canonicalization != "relaxed/relaxed" || !e.Subdomains ||
		!slices.Equal(e.OverSign, []string{"From"}) || !slices.Contains(e.Headers, "Subject") || slices.Contains(e.Headers, "Received") {
		t.Errorf("signing-keys.json entry = %+v", e)
	}
	// The key file holds the private half of the key the DKIM record publishes.
	block, _ := pem.Decode([]byte(mustRead(t, e.KeyFile)))
	if block == nil || block.Type != "PRIVATE KEY" {
		t.Fatalf("%s is not a PEM private key", e.KeyFile)
	}
	priv, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	spki, err := x509.MarshalPKIXPublicKey(&priv.(*rsa.PrivateKey).PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if rec := dkimRecord(t, com).Value; !strings.HasSuffix(rec, "p="+base64.StdEncoding.EncodeToString(spki)) {
		t.Errorf("the exported key does not match the DKIM record %q", rec)
	}
	assertMode(t, e.KeyFile, 0o600)
}

// TestDKIMExportOwner gives the exported files to another user, as an operator
// running the export as root gives them to OpenDKIM's user.
func TestDKIMExportOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("giving files to another user needs root")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	f := newExportFixture(t, "example.com.")
	f.add("example.com", true)
	dir := filepath.Join(t.TempDir(), "export")
	if _, errOut, err := f.export("--dir", dir, "--master-key", f.key, "--owner", "nobody"); err != nil {
		t.Fatalf("export: %v %s", err, errOut)
	}
	for _, rel := range []string{".", "keys", "keys/example.com.autosend.pem", "KeyTable", "SigningTable"} {
		fi, err := os.Lstat(filepath.Join(dir, rel))
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if strconv.Itoa(int(st.Uid)) != nobody.Uid || strconv.Itoa(int(st.Gid)) != nobody.Gid {
			t.Errorf("%s is owned by %d:%d, want nobody (%s:%s)", rel, st.Uid, st.Gid, nobody.Uid, nobody.Gid)
		}
	}
	assertMode(t, filepath.Join(dir, "keys", "example.com.autosend.pem"), 0o600)
	// Run again as root without --owner: the keys change hands back, since
	// ownership is part of what an unchanged key file must have.
	out, _, err := f.export("--dir", dir, "--master-key", f.key)
	if err != nil || !strings.Contains(out, "(0 written, 1 unchanged)") {
		t.Errorf("re-export without --owner: %v %q", err, out)
	}
}

// TestDKIMExportRefuses checks that bad input stops the export with a message
// that names the problem, and that the folder is left as it was.
func TestDKIMExportRefuses(t *testing.T) {
	f := newExportFixture(t, "example.com.")
	f.add("example.com", true)
	dir := filepath.Join(t.TempDir(), "export")
	if _, errOut, err := f.export("--dir", dir, "--master-key", f.key); err != nil {
		t.Fatalf("export: %v %s", err, errOut)
	}
	snapshot := contents(t, dir)
	wrongKey := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
	fresh := filepath.Join(t.TempDir(), "never")
	missingDB := "sqlite:" + filepath.Join(t.TempDir(), "typo.db")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no dir", []string{"--master-key", f.key}, "--dir is required"},
		{"unknown format", []string{"--dir", dir, "--master-key", f.key, "--format", "postfix"}, `unknown format "postfix"`},
		{"no master key", []string{"--dir", dir}, "no --master-key"},
		{"wrong master key", []string{"--dir", dir, "--master-key", wrongKey}, "master key does not open the DKIM keys"},
		{"wrong master key, new folder", []string{"--dir", fresh, "--master-key", wrongKey}, "master key does not open the DKIM keys"},
		{"both key flags", []string{"--dir", dir, "--master-key", f.key, "--master-key-file", "/nonexistent"}, "both given"},
		{"dev key missing", []string{"--dir", dir, "--dev", "--data-dir", fresh}, "no master key at"},
		{"missing database", []string{"--dir", dir, "--master-key", f.key, "--db", missingDB}, "no database at"},
		{"arguments", []string{"--dir", dir, "--master-key", f.key, "extra"}, "takes no arguments"},
		{"unknown owner", []string{"--dir", dir, "--master-key", f.key, "--owner", "no-such-user-here"}, `no user "no-such-user-here"`},
		{"table-breaking folder", []string{"--dir", filepath.Join(t.TempDir(), "a b"), "--master-key", f.key}, "white space"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := f.export(tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to say %q", err, tc.want)
			}
			if got := contents(t, dir); !maps.Equal(got, snapshot) {
				t.Errorf("the folder changed:\n%v\nwant\n%v", got, snapshot)
			}
			if _, err := os.Stat(fresh); err == nil {
				t.Errorf("a failed export created %s", fresh)
			}
		})
	}
	if _, err := os.Stat(strings.TrimPrefix(missingDB, "sqlite:")); err == nil {
		t.Error("export created the database it was pointed at by mistake")
	}
	if err := run(t.Context(), []string{"dkim", "rotate"}, io.Discard, io.Discard); err != exitCode(2) {
		t.Errorf("unknown dkim command: %v, want exit status 2", err)
	}
}

// startOpenDKIM runs Debian's opendkim in the foreground as a signing milter on
// loopback, with the KeyTable and SigningTable of dir as the export wrote them,
// and returns its address once it accepts connections.
func startOpenDKIM(t *testing.T, dir string) string {
	t.Helper()
	bin := testenv.LookBinary(t, "opendkim", "opendkim")
	port := testenv.FreePort(t, "127.0.0.1")
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	conf := filepath.Join(t.TempDir(), "opendkim.conf")
	// Syslog is off so nothing leaves the test. InternalHosts says mail from
	// loopback is ours to sign. OpenDKIM's own defaults do the rest, so the test
	// proves the tables work as an operator's configuration would use them.
	text := fmt.Sprintf(`Mode s
Syslog no
Socket inet:%d@127.0.0.1
KeyTable %s
SigningTable refile:%s
Canonicalization relaxed/relaxed
InternalHosts 127.0.0.1
`, port, filepath.Join(dir, "KeyTable"), filepath.Join(dir, "SigningTable"))
	// OpenDKIM refuses a key when any folder above it may be written by others,
	// as /tmp may. The test's temporary folder may sit there; when it does not
	// (TMPDIR elsewhere), the default check runs and passes.
	if p := writableByOthers(dir); p != "" {
		t.Logf("%s may be written by others: RequireSafeKeys off for this run", p)
		text += "RequireSafeKeys no\n"
	}
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	cmd := exec.Command(bin, "-f", "-x", conf)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-exited:
			t.Fatalf("opendkim exited: %v\n%s", err, logs.String())
		default:
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("opendkim does not listen on %s: %v\n%s", addr, err, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// signWithMilter passes a message from the address from through the milter at
// addr as an MTA would, and returns the message with the header fields the
// milter added, and whether one of them is a DKIM-Signature.
func signWithMilter(t *testing.T, addr, from string) ([]byte, bool) {
	t.Helper()
	c := milter.NewClientWithOptions("tcp", addr, milter.ClientOptions{
		ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second,
		ActionMask: milter.OptAddHeader | milter.OptChangeHeader,
	})
	s, err := c.Session()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	headers := [][2]string{
		{"From", "Sender <" + from + ">"},
		{"To", "Receiver <rcpt@example.org>"},
		{"Subject", "Exported keys sign"},
		{"Date", "Mon, 05 Jan 2026 10:00:00 +0000"},
		{"Message-ID", "<" + strconv.FormatInt(time.Now().UnixNano(), 36) + "@example.test>"},
		{"MIME-Version", "1.0"},
		{"Content-Type", "text/plain; charset=utf-8"},
	}
	body := "Hello,\r\n\r\nthis message is signed by OpenDKIM with a key domaind exported.\r\n"
	steps := []func() (*milter.Action, error){
		func() (*milter.Action, error) {
			return s.Conn("client.example.test", milter.FamilyInet, 40000, "127.0.0.1")
		},
		func() (*milter.Action, error) { return s.Helo("client.example.test") },
		func() (*milter.Action, error) { return s.Mail("<"+from+">", nil) },
		func() (*milter.Action, error) { return s.Rcpt("<rcpt@example.org>", nil) },
	}
	for _, h := range headers {
		steps = append(steps, func() (*milter.Action, error) { return s.HeaderField(h[0], h[1]) })
	}
	steps = append(steps, s.HeaderEnd, func() (*milter.Action, error) { return s.BodyChunk([]byte(body)) })
	for i, step := range steps {
		act, err := step()
		if err != nil {
			t.Fatalf("milter step %d: %v", i, err)
		}
		if act.Code == milter.ActAccept {
			// The milter has nothing to do with this message: it signs nothing.
			return nil, false
		}
		if act.Code != milter.ActContinue {
			t.Fatalf("milter step %d answered %c, want continue", i, act.Code)
		}
	}
	mods, act, err := s.End()
	if err != nil {
		t.Fatal(err)
	}
	if act.Code != milter.ActAccept && act.Code != milter.ActContinue {
		t.Fatalf("milter end answered %c, want accept", act.Code)
	}
	var msg bytes.Buffer
	signed := false
	for _, m := range mods {
		if (m.Code == milter.ActInsertHeader || m.Code == milter.ActAddHeader) && strings.EqualFold(m.HeaderName, "DKIM-Signature") {
			signed = true
			// Milters fold with bare LF; a message on the wire uses CRLF.
			v := strings.ReplaceAll(strings.ReplaceAll(m.HeaderValue, "\r\n", "\n"), "\n", "\r\n")
			msg.WriteString(m.HeaderName + ": " + v + "\r\n")
		}
	}
	for _, h := range headers {
		msg.WriteString(h[0] + ": " + h[1] + "\r\n")
	}
	msg.WriteString("\r\n" + body)
	return msg.Bytes(), signed
}

// writableByOthers returns the first folder at or above dir that users other
// than its owner may write to, or "".
func writableByOthers(dir string) string {
	for p := dir; ; p = filepath.Dir(p) {
		if fi, err := os.Stat(p); err == nil && fi.Mode().Perm()&0o022 != 0 {
			return p
		}
		if p == filepath.Dir(p) {
			return ""
		}
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func assertMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode() & (fs.ModeType | fs.ModePerm); got != want {
		t.Errorf("%s has mode %v, want %v", path, got, want)
	}
}

// tree lists every file and folder under dir, relative and sorted.
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		out = append(out, filepath.ToSlash(rel))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// contents maps every regular file under dir to its bytes, and folders to "".
func contents(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, rel := range tree(t, dir) {
		path := filepath.Join(dir, rel)
		fi, err := os.Lstat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().IsRegular() {
			out[rel] = fmt.Sprintf("%v %s", fi.Mode(), mustRead(t, path))
		} else {
			out[rel] = fi.Mode().String()
		}
	}
	return out
}
