package agreement

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/domaind/domaind/internal/dnscheck"
	"github.com/domaind/domaind/internal/dnstest"
	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/testenv"
)

// Where the independent verifiers live. Debian's python3 is named by its path, because
// the python3 first on PATH may be another installation without Debian's modules.
const (
	python   = "/usr/bin/python3"
	node     = "/usr/bin/node"
	opendkim = "/usr/sbin/opendkim"
)

// The platform's SPF record, which every case's MAIL FROM record is expected to include,
// as --spf-include names it. The oracle checks the first and last address of each range.
const (
	platformInclude = "_spf.platform.net"
	platformSPF     = "v=spf1 ip4:192.0.2.0/24 ip4:198.51.100.16/28 -all"
	selector        = "sel"
)

// testCase is one published setup of testdata/cases.
type testCase struct {
	kind      string // dkim, spf or dmarc: the file it came from
	name      string // also the label of its zone, <name>.com
	where     string // file:line, for messages
	about     []string
	label     string   // the checked domain is <label>.<name>.com; "" for <name>.com
	verifiers []string // for dkim: which verifiers judge it
	zone      []string
}

func (c testCase) origin() string { return c.name + ".com." }

// domain returns the sending domain the case checks.
func (c testCase) domain() string {
	if c.label != "" {
		return c.label + "." + c.name + ".com"
	}
	return c.name + ".com"
}

var caseName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

// placeholder matches a {placeholder} left unreplaced; SPF macros such as %{d} are not one.
var placeholder = regexp.MustCompile(`(^|[^%])\{[a-z][a-z0-9.]*\}`)

// parseCases reads a case file: cases start with "== name"; "#" lines after it say what
// the case is about; "% domain LABEL" checks LABEL.<name>.com instead of <name>.com;
// "% verifiers A B" names the DKIM verifiers that judge it (default dkimpy and opendkim);
// every other line is a zone-file line of <name>.com, with {placeholders} replaced.
// Lines before the first case are the file's header.
func parseCases(path, kind string, subst map[string]string) ([]testCase, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var cases []testCase
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		where := fmt.Sprintf("%s:%d", filepath.Base(path), i+1)
		if name, ok := strings.CutPrefix(line, "== "); ok {
			if !caseName.MatchString(name) {
				return nil, fmt.Errorf("%s: case name %q is not a DNS label", where, name)
			}
			cases = append(cases, testCase{kind: kind, name: name, where: where})
			continue
		}
		if line == "" || len(cases) == 0 {
			continue
		}
		c := &cases[len(cases)-1]
		switch {
		case strings.HasPrefix(line, "#"):
			c.about = append(c.about, strings.TrimSpace(strings.TrimPrefix(line, "#")))
		case strings.HasPrefix(line, "%"):
			f := strings.Fields(strings.TrimPrefix(line, "%"))
			switch {
			case len(f) == 2 && f[0] == "domain":
				c.label = f[1]
			case len(f) >= 2 && f[0] == "verifiers":
				c.verifiers = f[1:]
			default:
				return nil, fmt.Errorf("%s: unknown directive %q", where, line)
			}
		default:
			for k, v := range subst {
				line = strings.ReplaceAll(line, "{"+k+"}", v)
			}
			if placeholder.MatchString(line) {
				return nil, fmt.Errorf("%s: unknown placeholder in %q", where, line)
			}
			c.zone = append(c.zone, line)
		}
	}
	for i := range cases {
		if len(cases[i].about) == 0 {
			return nil, fmt.Errorf("%s: case %s does not say what it is about", cases[i].where, cases[i].name)
		}
		if kind == "dkim" && len(cases[i].verifiers) == 0 {
			cases[i].verifiers = []string{"dkimpy", "opendkim"}
		}
	}
	return cases, nil
}

// keySubst returns the placeholders of the DKIM cases: the domain's public key in its
// forms and another key.
func keySubst(t *testing.T) map[string]string {
	t.Helper()
	pub := func(file string) *rsa.PublicKey {
		b, err := os.ReadFile(filepath.Join("testdata", "keys", file))
		if err != nil {
			t.Fatal(err)
		}
		blk, _ := pem.Decode(b)
		if blk == nil {
			t.Fatalf("%s: no PEM block", file)
		}
		k, err := x509.ParsePKCS1PrivateKey(blk.Bytes)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		return &k.PublicKey
	}
	spkiOf := func(k *rsa.PublicKey) string {
		der, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return base64.StdEncoding.EncodeToString(der)
	}
	k := pub("domain.pem")
	spki := spkiOf(k)
	var spaced []string
	for s := spki; s != ""; {
		n := min(64, len(s))
		spaced = append(spaced, s[:n])
		s = s[n:]
	}
	return map[string]string{
		"spki":        spki,
		"spki.1":      spki[:200],
		"spki.2":      spki[200:],
		"spki.spaced": strings.Join(spaced, " "),
		"pkcs1":       base64.StdEncoding.EncodeToString(x509.MarshalPKCS1PublicKey(k)),
		"other":       spkiOf(pub("other.pem")),
	}
}

// platformAddrs returns the first and last address of every ip4: range of platformSPF:
// the addresses the platform sends from, which every MAIL FROM record must pass.
func platformAddrs(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, f := range strings.Fields(platformSPF) {
		cidr, ok := strings.CutPrefix(f, "ip4:")
		if !ok {
			continue
		}
		p, err := netip.ParsePrefix(cidr)
		if err != nil {
			t.Fatal(err)
		}
		first := p.Masked().Addr().As4()
		v := uint32(first[0])<<24 | uint32(first[1])<<16 | uint32(first[2])<<8 | uint32(first[3])
		v |= uint32(uint64(1)<<(32-p.Bits()) - 1)
		last := [4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
		out = append(out, netip.AddrFrom4(first).String(), netip.AddrFrom4(last).String())
	}
	return out
}

// expectation returns what domaind checks for the case, as records.Generate shapes it.
func expectation(c testCase, dkimRecord string) dnscheck.Expectation {
	d := c.domain()
	switch c.kind {
	case "dkim":
		return dnscheck.Expectation{Key: domain.KeyDKIM, Domain: d, Name: selector + "._domainkey." + d, Type: "TXT", Value: dkimRecord}
	case "spf":
		return dnscheck.Expectation{Key: domain.KeyMailFromSPF, Domain: d, Name: "mail." + d, Type: "TXT", Value: "v=spf1 include:" + platformInclude + " ~all"}
	}
	return dnscheck.Expectation{Key: domain.KeyDMARC, Domain: d, Name: "_dmarc." + d, Type: "TXT", Value: "v=DMARC1; p=none;"}
}

// oracle is one long-lived verifier process speaking JSON lines.
type oracle struct {
	name   string
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *bufio.Scanner
	stderr bytes.Buffer
}

// verdict is an oracle's answer.
type verdict struct {
	Pass   bool   `json:"pass"`
	Detail string `json:"detail"`
	Error  string `json:"error"`
}

func startOracle(t *testing.T, name, dir string, argv ...string) *oracle {
	t.Helper()
	o := &oracle{name: name, cmd: exec.Command(argv[0], argv[1:]...)}
	o.cmd.Dir = dir
	o.cmd.Stderr = &o.stderr
	var err error
	if o.in, err = o.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := o.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	o.out = bufio.NewScanner(stdout)
	o.out.Buffer(make([]byte, 0, 64<<10), 4<<20)
	if err := o.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		o.in.Close()
		if err := o.cmd.Wait(); err != nil {
			t.Logf("%s exited: %v\n%s", name, err, o.stderr.String())
		}
	})
	return o
}

func (o *oracle) ask(req map[string]any) (verdict, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return verdict{}, err
	}
	if _, err := o.in.Write(append(b, '\n')); err != nil {
		return verdict{}, fmt.Errorf("%s: write: %w (stderr: %s)", o.name, err, o.stderr.String())
	}
	if !o.out.Scan() {
		return verdict{}, fmt.Errorf("%s: no answer: %v (stderr: %s)", o.name, o.out.Err(), o.stderr.String())
	}
	var v verdict
	if err := json.Unmarshal(o.out.Bytes(), &v); err != nil {
		return verdict{}, fmt.Errorf("%s: answer %q: %w", o.name, o.out.Text(), err)
	}
	if v.Error != "" {
		return v, fmt.Errorf("%s: %s", o.name, v.Error)
	}
	return v, nil
}

// prerequisite reports why a verifier cannot run here, or "" when it can.
func prerequisite(kind string) string {
	py := func(mods string) string {
		if err := exec.Command(python, "-c", "import "+mods).Run(); err != nil {
			return fmt.Sprintf("%s cannot import %s (apt-get install python3-dkim python3-spf python3-dnspython): %v", python, mods, err)
		}
		return ""
	}
	switch kind {
	case "dkimpy", "spf":
		return py("dkim, spf, dns.resolver")
	case "opendkim":
		if _, err := os.Stat(opendkim); err != nil {
			return "OpenDKIM is not installed (apt-get install opendkim): " + err.Error()
		}
		return py("dkim, dns.resolver")
	case "dmarc":
		if _, err := os.Stat(node); err != nil {
			return "node is not installed at " + node + ": " + err.Error()
		}
		if _, err := os.Stat(filepath.Join("testdata", "mailauth", "node_modules", "mailauth")); err != nil {
			return "mailauth is not installed: run npm ci in internal/agreement/testdata/mailauth"
		}
	}
	return ""
}

// TestAgreement serves every case of testdata/cases over DNS on loopback and fails
// where domaind's verdict differs from the independent verifiers'.
func TestAgreement(t *testing.T) {
	subst := keySubst(t)
	dkimRecord := "v=DKIM1; k=rsa; p=" + subst["spki"]
	var cases []testCase
	seen := map[string]string{}
	for _, kind := range []string{"dkim", "spf", "dmarc"} {
		cs, err := parseCases(filepath.Join("testdata", "cases", kind+".txt"), kind, subst)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			if prev, ok := seen[c.name]; ok {
				t.Fatalf("%s: case name %s is taken by %s", c.where, c.name, prev)
			}
			seen[c.name] = c.where
		}
		cases = append(cases, cs...)
	}

	// Every zone on one server, so that a resolver forwarding to it answers for all of
	// them; domaind still walks the delegations from the root.
	n := dnstest.StartNet(t, 1)
	srv := n.Servers()[0]
	for _, z := range []string{"com.", "net."} {
		if _, err := n.AddZone(z, srv); err != nil {
			t.Fatal(err)
		}
	}
	shared := map[string]*dnstest.Zone{}
	for _, z := range []string{"platform.net.", "provider.net."} {
		zone, err := n.AddZone(z, srv)
		if err != nil {
			t.Fatal(err)
		}
		shared[z] = zone
	}
	shared["platform.net."].MustAdd(platformInclude + `. 300 IN TXT "` + platformSPF + `"`)
	for _, c := range cases {
		z, err := n.AddZone(c.origin(), srv)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range c.zone {
			target := z
			for origin, sz := range shared {
				if owner, _, _ := strings.Cut(l, " "); strings.HasSuffix(strings.ToLower(owner), origin) {
					target = sz
				}
			}
			if err := target.Add(l); err != nil {
				t.Fatalf("%s: %v", c.where, err)
			}
		}
	}
	res := dnstest.StartCachingResolver(t, srv.Addr())
	resHost, resPort, err := net.SplitHostPort(res.Addr())
	if err != nil {
		t.Fatal(err)
	}

	// domaind's verdicts: each case is one check, as each domain is one check in
	// domaind (a check's work budget is per check), several at a time.
	checker, err := dnscheck.New(dnscheck.Config{
		Mode: dnscheck.ModeAuthoritative, RootHints: n.RootIPs(), AuthoritativePort: n.Port(), Timeout: time.Second,
		AllowPrivate: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	exps := make([]dnscheck.Expectation, len(cases))
	for i, c := range cases {
		exps[i] = expectation(c, dkimRecord)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	obs := make([]domain.Observation, len(exps))
	var wg sync.WaitGroup
	slots := make(chan struct{}, 8)
	for i, e := range exps {
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			obs[i] = checker.Check(ctx, []dnscheck.Expectation{e})[0]
		})
	}
	wg.Wait()

	// The verifiers, each a process fed every case.
	work := t.TempDir()
	unbound := filepath.Join(work, "unbound.conf")
	conf := fmt.Sprintf("server:\n  do-not-query-localhost: no\n  module-config: \"iterator\"\n  verbosity: 0\nforward-zone:\n  name: \".\"\n  forward-addr: %s@%s\n", resHost, resPort)
	if err := os.WriteFile(unbound, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	key, err := filepath.Abs(filepath.Join("testdata", "keys", "domain.pem"))
	if err != nil {
		t.Fatal(err)
	}
	port := 0
	fmt.Sscan(resPort, &port)
	setup := map[string]any{"op": "setup", "resolver": resHost, "port": port, "key": key, "workdir": work, "unbound": unbound, "opendkim": opendkim}
	// missing says, by verifier, why it cannot run ("" when it can): asked
	// once, not by every case, as each question starts a Python.
	missing := map[string]string{}
	for _, kind := range []string{"dkimpy", "spf", "opendkim", "dmarc"} {
		missing[kind] = prerequisite(kind)
	}
	// setUp starts an oracle and sends it the setup, if what it needs is here
	// (nil if not), logging the verifiers it reports as verifies.
	setUp := func(needs, name, dir, bin, script, verifies string) *oracle {
		if missing[needs] != "" {
			return nil
		}
		o := startOracle(t, name, filepath.Join("testdata", dir), bin, script)
		v, err := o.ask(setup)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %s", verifies, v.Detail)
		return o
	}
	py := setUp("spf", "python oracle", "oracle", python, "oracle.py", "DKIM and SPF verifiers")
	js := setUp("dmarc", "mailauth oracle", "mailauth", node, "oracle.js", "DMARC verifier")

	counts := map[string]int{}
	for i, c := range cases {
		counts[c.kind]++
		t.Run(c.kind+"/"+c.name, func(t *testing.T) {
			var req map[string]any
			var o *oracle
			switch c.kind {
			case "dkim":
				for _, v := range c.verifiers {
					if why := missing[v]; why != "" {
						testenv.SkipOrFail(t, why)
					}
				}
				o, req = py, map[string]any{"op": "dkim", "domain": c.domain(), "selector": selector, "verifiers": c.verifiers}
			case "spf":
				if why := missing["spf"]; why != "" {
					testenv.SkipOrFail(t, why)
				}
				mailFrom := "mail." + c.domain()
				o, req = py, map[string]any{"op": "spf", "sender": "bounce@" + mailFrom, "helo": mailFrom, "ips": platformAddrs(t)}
			case "dmarc":
				if why := missing["dmarc"]; why != "" {
					testenv.SkipOrFail(t, why)
				}
				o, req = js, map[string]any{"op": "dmarc", "from": c.domain()}
			}
			want, err := o.ask(req)
			if err != nil {
				t.Fatalf("%s: %v", c.where, err)
			}
			got := obs[i]
			if (got.Status == domain.CheckVerified) != want.Pass {
				var probs []string
				for _, p := range got.Problems {
					probs = append(probs, string(p.Code)+": "+p.Message)
				}
				t.Errorf("%s disagrees (%s)\n  about: %s\n  domaind: %s %s\n  verifier: %s\n  verifier detail: %s",
					c.name, c.where, strings.Join(c.about, " "), got.Status, strings.Join(probs, " | "), passFail(want.Pass), want.Detail)
			}
		})
	}
	t.Logf("cases: %d DKIM, %d SPF, %d DMARC", counts["dkim"], counts["spf"], counts["dmarc"])
	if len(cases) < 45 {
		t.Errorf("the corpus has %d cases, fewer than the 45 it promises", len(cases))
	}
}

func passFail(pass bool) string {
	if pass {
		return "pass"
	}
	return "fail"
}

// TestParseCases checks the case format's errors, so that a typo in a case file is
// reported rather than silently publishing something else.
func TestParseCases(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"== Bad_Name\n# x\n", "not a DNS label"},
		{"== ok\nsel TXT \"{nope}\"\n", "unknown placeholder"},
		{"== ok\n% frobnicate\n", "unknown directive"},
		{"== ok\nsel TXT \"x\"\n", "does not say what it is about"},
	} {
		path := filepath.Join(t.TempDir(), "cases.txt")
		if err := os.WriteFile(path, []byte(tc.text), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := parseCases(path, "dkim", nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseCases(%q) = %v, want an error about %q", tc.text, err, tc.want)
		}
	}
	if _, err := parseCases("testdata/cases/none.txt", "dkim", nil); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing file: %v", err)
	}
}
