// Package realdns runs real DNS server software for end-to-end tests: Knot
// DNS as an authoritative server and Unbound as a recursive resolver, as
// child processes on loopback, each in a test's temporary directory and
// stopped when the test ends. Where they are not installed the tests that
// use them are skipped, or fail with CI=true (see package testenv).
//
// It is kept apart from package dnstest, whose in-process server programs
// such as cmd/devdns use, because everything here takes a testing.TB.
package realdns

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/domaind/domaind/internal/testenv"
	"github.com/miekg/dns"
)

// This file runs Knot DNS, and holds what it shares with unbound.go: starting
// a server on a free port, running it as a child process, and waiting for it.

// readyTimeout bounds how long a real server may take to start serving, or to
// serve an edited zone.
const readyTimeout = 15 * time.Second

// ednsSize is the UDP payload size the readiness queries advertise.
const ednsSize = 1232

// pollInterval is how often a starting server is asked whether it is ready.
const pollInterval = 20 * time.Millisecond

// maxSocketPath is the longest Unix socket path Linux accepts (sun_path is
// 108 bytes with its terminating NUL).
const maxSocketPath = 107

// Knot is a Knot DNS server (knotd) serving zones from zone files in a
// test's temporary directory, for end-to-end tests against a real
// authoritative server. It is started by [StartKnot] and stopped when the
// test ends. All methods are safe for concurrent use.
type Knot struct {
	ip    string
	port  int
	dir   string
	conf  string
	sock  string
	knotc string
	proc  *daemon

	mu    sync.Mutex     // serialises zone edits and config rewrites
	zones map[string]int // canonical origin -> order of addition

	// update, when its Name is set, is the TSIG key that may change the
	// zones in updatable by RFC 2136 dynamic update.
	update    UpdateKey
	updatable map[string]bool
}

// UpdateKey is a TSIG key (RFC 8945) that knotd accepts dynamic updates
// signed with: the algorithm as Knot names it (hmac-sha256), the key name
// (fully qualified) and the base64 secret.
type UpdateKey struct {
	Algorithm, Name, Secret string
}

// StartKnotWithUpdates is StartKnot with RFC 2136 dynamic updates signed with
// key allowed to the zones named in updatable; updates without the key, or
// signed with another, are refused (NOTAUTH). Updated zones live in knotd's
// memory: SetZone on one of them starts it afresh from the text given.
func StartKnotWithUpdates(t testing.TB, ip string, port int, zones map[string]string, key UpdateKey, updatable ...string) *Knot {
	t.Helper()
	up := make(map[string]bool, len(updatable))
	for _, z := range updatable {
		up[dns.CanonicalName(z)] = true
	}
	return startKnot(t, ip, port, zones, key, up)
}

// StartKnot starts knotd listening on ip and port (UDP and TCP), serving
// zones, which maps each origin ("." for the root zone) to the text of its
// zone file. The text is read with the origin as $ORIGIN, so relative names
// and "@" work; it must hold an SOA record, and should hold the apex NS
// records. With port 0 a port free on ip is picked. The config, zone files,
// databases and control socket live in a temporary directory; knotd runs as
// the current user, with zone files loaded whole on every reload and never
// written back, and without DNSSEC. StartKnot returns once every zone is
// served with its SOA serial, and stops knotd when the test ends.
//
// When knotd is not installed the test is skipped, or fails if the
// environment variable CI is "true", since CI must install it.
func StartKnot(t testing.TB, ip string, port int, zones map[string]string) *Knot {
	t.Helper()
	return startKnot(t, ip, port, zones, UpdateKey{}, nil)
}

func startKnot(t testing.TB, ip string, port int, zones map[string]string, key UpdateKey, updatable map[string]bool) *Knot {
	t.Helper()
	knotd := testenv.LookBinary(t, "knotd", "knot")
	knotc := testenv.LookBinary(t, "knotc", "knot")
	if err := checkLoopback(ip); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	k := &Knot{
		ip:    ip,
		dir:   dir,
		conf:  filepath.Join(dir, "knot.conf"),
		sock:  socketPath(t, dir, "knot.sock"),
		knotc: knotc,
		zones: make(map[string]int),

		update: key, updatable: updatable,
	}
	for _, sub := range []string{"zones", "db"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	serials := make(map[string]uint32)
	origins := make([]string, 0, len(zones))
	for origin := range zones {
		origins = append(origins, origin)
	}
	slices.Sort(origins)
	for _, origin := range origins {
		canon := dns.CanonicalName(origin)
		serial, err := k.writeZone(canon, zones[origin])
		if err != nil {
			t.Fatal(err)
		}
		serials[canon] = serial
		k.zones[canon] = len(k.zones)
	}

	k.proc, k.port = startServer(t, "knotd", ip, port, func(port int) (*daemon, error) {
		k.port = port
		if err := k.writeConfig(); err != nil {
			return nil, err
		}
		proc, err := startDaemon(knotd, "-c", k.conf)
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(t.Context(), readyTimeout)
		defer cancel()
		for origin, serial := range serials {
			if err := waitSerial(ctx, proc, k.Addr(), origin, serial); err != nil {
				return proc, err
			}
		}
		return proc, nil
	})
	return k
}

// Addr returns the address knotd listens on, as "ip:port".
func (k *Knot) Addr() string { return net.JoinHostPort(k.ip, strconv.Itoa(k.port)) }

// IP returns the IP address knotd listens on.
func (k *Knot) IP() string { return k.ip }

// Port returns the port knotd listens on, for both UDP and TCP.
func (k *Knot) Port() int { return k.port }

// Log returns what knotd has logged so far.
func (k *Knot) Log() string { return k.proc.log() }

// SetZone replaces the zone file of origin with text (read as for
// [StartKnot]), makes knotd load it, and returns once knotd serves the SOA
// serial text holds. Give an edited zone a new serial, as real zone edits
// do: the serial is how SetZone knows the new text is served. A zone knotd
// does not serve yet is added to its configuration. ctx bounds the wait.
func (k *Knot) SetZone(ctx context.Context, origin, text string) error {
	origin = dns.CanonicalName(origin)
	k.mu.Lock()
	defer k.mu.Unlock()
	serial, err := k.writeZone(origin, text)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	if _, ok := k.zones[origin]; ok {
		// -b waits until the zone is loaded; the serial check below then
		// proves the new text is what is served.
		err = k.control(ctx, "-b", "zone-reload", origin)
	} else {
		k.zones[origin] = len(k.zones)
		if err = k.writeConfig(); err == nil {
			err = k.control(ctx, "-b", "reload")
		}
	}
	if err != nil {
		return err
	}
	return waitSerial(ctx, k.proc, k.Addr(), origin, serial)
}

// control runs knotc with args against this knotd.
func (k *Knot) control(ctx context.Context, args ...string) error {
	args = append([]string{"-c", k.conf, "-s", k.sock}, args...)
	out, err := exec.CommandContext(ctx, k.knotc, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("realdns: knotc %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// zoneFile returns the path of the zone file for the canonical origin:
// "example.com.zone" for "example.com.", and ".zone" for the root, a name
// no other zone can have.
func (k *Knot) zoneFile(origin string) string {
	return filepath.Join(k.dir, "zones", origin+"zone")
}

// writeZone checks text and writes it as the zone file of origin, through a
// rename so that knotd never reads half a file. It returns the SOA serial.
func (k *Knot) writeZone(origin, text string) (uint32, error) {
	serial, err := zoneSerial(origin, text)
	if err != nil {
		return 0, err
	}
	path := k.zoneFile(origin)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		return 0, fmt.Errorf("realdns: write zone %s: %w", origin, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return 0, fmt.Errorf("realdns: write zone %s: %w", origin, err)
	}
	return serial, nil
}

// zoneSerial parses text as a zone file for origin and returns the serial of
// its SOA record, so that a mistake in a test's zone is reported with the
// line it is on rather than as a zone knotd silently refuses to load.
func zoneSerial(origin, text string) (uint32, error) {
	zp := dns.NewZoneParser(strings.NewReader(text), origin, "")
	var soa *dns.SOA
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		if s, isSOA := rr.(*dns.SOA); isSOA {
			if dns.CanonicalName(s.Hdr.Name) != origin {
				return 0, fmt.Errorf("realdns: zone %s: SOA record at %s, not at the apex", origin, s.Hdr.Name)
			}
			if soa != nil {
				return 0, fmt.Errorf("realdns: zone %s: more than one SOA record", origin)
			}
			soa = s
		}
	}
	if err := zp.Err(); err != nil {
		return 0, fmt.Errorf("realdns: zone %s: %w", origin, err)
	}
	if soa == nil {
		return 0, fmt.Errorf("realdns: zone %s has no SOA record", origin)
	}
	return soa.Serial, nil
}

// writeConfig writes knot.conf for the current port and zones.
func (k *Knot) writeConfig() error {
	owner, err := currentUser()
	if err != nil {
		return err
	}
	origins := make([]string, 0, len(k.zones))
	for origin := range k.zones {
		origins = append(origins, origin)
	}
	slices.SortFunc(origins, func(a, b string) int { return k.zones[a] - k.zones[b] })

	var b strings.Builder
	fmt.Fprintf(&b, "# Written by realdns.StartKnot for one test.\n")
	fmt.Fprintf(&b, "server:\n")
	fmt.Fprintf(&b, "    rundir: %q\n", k.dir)
	fmt.Fprintf(&b, "    pidfile: %q\n", filepath.Join(k.dir, "knot.pid"))
	fmt.Fprintf(&b, "    user: %q\n", owner)
	fmt.Fprintf(&b, "    listen: %s@%d\n", k.ip, k.port)
	fmt.Fprintf(&b, "    udp-workers: 1\n    tcp-workers: 1\n    background-workers: 1\n")
	fmt.Fprintf(&b, "database:\n    storage: %q\n", filepath.Join(k.dir, "db"))
	fmt.Fprintf(&b, "control:\n    listen: %q\n", k.sock)
	fmt.Fprintf(&b, "log:\n  - target: stderr\n    any: info\n")
	if k.update.Name != "" {
		fmt.Fprintf(&b, "key:\n  - id: %q\n    algorithm: %s\n    secret: %s\n", dns.Fqdn(k.update.Name), k.update.Algorithm, k.update.Secret)
		fmt.Fprintf(&b, "acl:\n  - id: update\n    key: %q\n    action: update\n", dns.Fqdn(k.update.Name))
	}
	// Zone files are the only source of truth: loaded whole on every
	// reload, never written back, with no journal to replay over them.
	fmt.Fprintf(&b, "template:\n  - id: default\n")
	fmt.Fprintf(&b, "    storage: %q\n", filepath.Join(k.dir, "zones"))
	fmt.Fprintf(&b, "    zonefile-sync: -1\n    zonefile-load: whole\n    journal-content: none\n")
	fmt.Fprintf(&b, "    semantic-checks: off\n    dnssec-signing: off\n")
	fmt.Fprintf(&b, "zone:\n")
	for _, origin := range origins {
		fmt.Fprintf(&b, "  - domain: %q\n    file: %q\n", origin, k.zoneFile(origin))
		if k.updatable[origin] {
			fmt.Fprintf(&b, "    acl: update\n")
		}
	}
	if err := os.WriteFile(k.conf, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("realdns: write knot.conf: %w", err)
	}
	return nil
}

// currentUser returns "user:group" for the process, which knotd and unbound
// would otherwise try to change to their packages' service accounts.
func currentUser() (string, error) {
	u, err := user.Current()
	if err != nil {
		return "", fmt.Errorf("realdns: current user: %w", err)
	}
	g, err := user.LookupGroupId(u.Gid)
	if err != nil {
		return "", fmt.Errorf("realdns: group of %s: %w", u.Username, err)
	}
	return u.Username + ":" + g.Name, nil
}

func checkLoopback(ip string) error {
	if addr, err := netip.ParseAddr(ip); err != nil || !addr.IsLoopback() || !addr.Is4() {
		return fmt.Errorf("realdns: %q is not an IPv4 loopback address", ip)
	}
	return nil
}

// socketPath returns dir/name, or the same name in a shorter temporary
// directory when dir is too deep for a Unix socket path, as t.TempDir is
// for tests with long names.
func socketPath(t testing.TB, dir, name string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if len(path) <= maxSocketPath {
		return path
	}
	short, err := os.MkdirTemp("", "realdns")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(short) })
	return filepath.Join(short, name)
}

// startServer starts a server with start on port, or on a free port of ip
// when port is 0. A server that could not bind its free port, because
// something took it in the meantime, is tried again on another one. It
// fails the test when the server does not start, and stops the server when
// the test ends.
func startServer(t testing.TB, what, ip string, port int, start func(port int) (*daemon, error)) (*daemon, int) {
	t.Helper()
	attempts := 1
	if port == 0 {
		attempts = 5
	}
	for attempt := 1; ; attempt++ {
		p := port
		if p == 0 {
			p = testenv.FreePort(t, ip)
		}
		proc, err := start(p)
		if err == nil {
			// Stopped before the test's temporary directories go, and its log shown
			// when the test failed, which is when it explains something.
			t.Cleanup(func() {
				if err := proc.stop(); err != nil {
					t.Errorf("stop %s: %v", what, err)
				}
				if t.Failed() {
					t.Logf("%s on %s log:\n%s", what, net.JoinHostPort(ip, strconv.Itoa(p)), proc.log())
				}
			})
			return proc, p
		}
		var log string
		if proc != nil {
			proc.stop()
			log = proc.log()
		}
		lower := strings.ToLower(log)
		inUse := strings.Contains(lower, "address already in use")
		if !inUse || attempt >= attempts {
			hint := ""
			if strings.Contains(lower, "permission denied") {
				// Ubuntu enforces an AppArmor profile for /usr/sbin/unbound
				// that denies files outside /etc/unbound.
				hint = "\n(permission denied: if AppArmor confines " + what + ", put its profile in complain mode, e.g. aa-complain /usr/sbin/" + what + ")"
			}
			t.Fatalf("realdns: start %s on %s@%d: %v%s\n%s log:\n%s", what, ip, p, err, hint, what, log)
		}
	}
}

// waitSerial polls addr until it answers authoritatively for the SOA of
// origin with serial, or until ctx ends or the server exits.
func waitSerial(ctx context.Context, proc *daemon, addr, origin string, serial uint32) error {
	var last string
	err := poll(ctx, proc, func() bool {
		resp, err := query(addr, origin, dns.TypeSOA, pollInterval*5)
		switch {
		case err != nil:
			last = err.Error()
		case resp.Rcode != dns.RcodeSuccess || !resp.Authoritative || len(resp.Answer) == 0:
			last = fmt.Sprintf("rcode %s, AA %v, %d answers", dns.RcodeToString[resp.Rcode], resp.Authoritative, len(resp.Answer))
		default:
			soa, ok := resp.Answer[0].(*dns.SOA)
			if ok && soa.Serial == serial {
				return true
			}
			last = fmt.Sprintf("answer %v", resp.Answer[0])
		}
		return false
	})
	if err != nil {
		return fmt.Errorf("realdns: %s does not serve %s with serial %d (last: %s): %w", addr, origin, serial, last, err)
	}
	return nil
}

// poll calls ready every pollInterval until it reports true, ctx ends, or
// proc exits.
func poll(ctx context.Context, proc *daemon, ready func() bool) error {
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		if ready() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-proc.done:
			return fmt.Errorf("%s exited: %v", filepath.Base(proc.cmd.Path), proc.waitErr)
		case <-tick.C:
		}
	}
}

// query sends one non-recursive query over UDP with EDNS0.
func query(addr, name string, qtype uint16, timeout time.Duration) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = false
	m.SetEdns0(ednsSize, false)
	c := &dns.Client{Net: "udp", Timeout: timeout}
	resp, _, err := c.Exchange(m, addr)
	return resp, err
}

// daemon is a server program running in the foreground as a child process,
// its output kept for failure messages.
type daemon struct {
	cmd     *exec.Cmd
	out     *testenv.Buffer
	done    chan struct{} // closed when the process has exited
	waitErr error         // what Wait returned; set before done is closed

	stopOnce sync.Once
	stopErr  error
}

// startDaemon starts path with args, its stdout and stderr captured.
func startDaemon(path string, args ...string) (*daemon, error) {
	d := &daemon{out: new(testenv.Buffer), done: make(chan struct{})}
	d.cmd = exec.Command(path, args...)
	d.cmd.Stdout = d.out
	d.cmd.Stderr = d.out
	if err := d.cmd.Start(); err != nil {
		return nil, fmt.Errorf("realdns: start %s: %w", path, err)
	}
	go func() {
		d.waitErr = d.cmd.Wait()
		close(d.done)
	}()
	return d, nil
}

// stop asks the process to end with SIGTERM and kills it if it has not
// ended within a few seconds. A process that exited by itself is not an
// error here; its exit is in the log.
func (d *daemon) stop() error {
	d.stopOnce.Do(func() {
		select {
		case <-d.done:
			return
		default:
		}
		if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			d.stopErr = err
		}
		select {
		case <-d.done:
		case <-time.After(5 * time.Second):
			d.cmd.Process.Kill()
			<-d.done
			d.stopErr = fmt.Errorf("realdns: %s ignored SIGTERM and was killed", filepath.Base(d.cmd.Path))
		}
	})
	return d.stopErr
}

func (d *daemon) log() string { return d.out.String() }
