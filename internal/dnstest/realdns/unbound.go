package realdns

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/domaind/domaind/internal/testenv"
	"github.com/miekg/dns"
)

// Unbound is an Unbound recursive resolver whose stub zones point at test
// servers, for end-to-end tests against a real resolver and its cache. It is
// started by [StartUnbound] and stopped when the test ends.
type Unbound struct {
	ip      string
	port    int
	conf    string
	control string // path of unbound-control
	proc    *daemon
}

// StartUnbound starts unbound listening on ip and port (UDP and TCP), with a
// stub zone for each entry of stubs, which maps a zone name to the
// "ip@port" of an authoritative server for it; a stub for "." makes the
// whole tree start at a test root server, such as a [Knot] serving the root
// zone. With port 0 a port free on ip is picked. Unbound runs in the
// foreground as the current user, without chroot, without DNSSEC validation
// (module-config "iterator"), answering only 127.0.0.0/8, with its default
// negative caching (NXDOMAIN and NODATA cached for the SOA minimum, at most
// an hour), and with remote control on a Unix socket in a temporary
// directory for [Unbound.Flush]. StartUnbound returns once unbound answers,
// and stops it when the test ends.
//
// When unbound is not installed the test is skipped, or fails if the
// environment variable CI is "true", since CI must install it.
func StartUnbound(t testing.TB, ip string, port int, stubs map[string]string) *Unbound {
	t.Helper()
	bin := testenv.LookBinary(t, "unbound", "unbound")
	control := testenv.LookBinary(t, "unbound-control", "unbound")
	if err := checkLoopback(ip); err != nil {
		t.Fatal(err)
	}
	for zone, addr := range stubs {
		if err := checkStub(addr); err != nil {
			t.Fatalf("realdns: stub zone %s: %v", zone, err)
		}
	}
	dir := t.TempDir()
	u := &Unbound{ip: ip, conf: filepath.Join(dir, "unbound.conf"), control: control}
	sock := socketPath(t, dir, "unbound.ctl")

	u.proc, u.port = startServer(t, "unbound", ip, port, func(port int) (*daemon, error) {
		u.port = port
		conf := unboundConfig(dir, sock, ip, port, stubs)
		if err := os.WriteFile(u.conf, []byte(conf), 0o644); err != nil {
			return nil, fmt.Errorf("realdns: write unbound.conf: %w", err)
		}
		proc, err := startDaemon(bin, "-d", "-c", u.conf)
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(t.Context(), readyTimeout)
		defer cancel()
		return proc, waitLocalhost(ctx, proc, u.Addr())
	})
	return u
}

// Addr returns the address unbound listens on, as "ip:port".
func (u *Unbound) Addr() string { return net.JoinHostPort(u.ip, strconv.Itoa(u.port)) }

// IP returns the IP address unbound listens on.
func (u *Unbound) IP() string { return u.ip }

// Port returns the port unbound listens on, for both UDP and TCP.
func (u *Unbound) Port() int { return u.port }

// Log returns what unbound has logged so far.
func (u *Unbound) Log() string { return u.proc.log() }

// Flush empties unbound's cache of everything at or below the root, the
// negative answers included, as an operator would with
// "unbound-control flush_zone .".
func (u *Unbound) Flush(ctx context.Context) error {
	args := []string{"-c", u.conf, "flush_zone", "."}
	out, err := exec.CommandContext(ctx, u.control, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("realdns: unbound-control %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// checkStub checks that addr is "ip@port" with a loopback ip, so that
// unbound never asks a server off the machine.
func checkStub(addr string) error {
	ip, port, ok := strings.Cut(addr, "@")
	if !ok {
		return fmt.Errorf("address %q is not ip@port", addr)
	}
	if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
		return fmt.Errorf("address %q has no valid port", addr)
	}
	return checkLoopback(ip)
}

// unboundConfig returns unbound.conf for one test.
func unboundConfig(dir, sock, ip string, port int, stubs map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `# Written by realdns.StartUnbound for one test.
server:
    interface: %[1]s@%[2]d
    port: %[2]d
    interface-automatic: no
    # Queries to the stubs leave from the same loopback address.
    outgoing-interface: %[1]s
    do-ip4: yes
    do-ip6: no
    do-udp: yes
    do-tcp: yes
    # Another unbound on the same address and port must be an error, not a
    # silent share of the queries.
    so-reuseport: no
    num-threads: 1
    do-daemonize: no
    username: ""
    chroot: ""
    directory: %[3]q
    pidfile: %[4]q
    use-syslog: no
    logfile: ""
    verbosity: 1
    # The stubs are on 127.0.0.0/8, which unbound refuses to ask by default.
    do-not-query-localhost: no
    # No validator module and no trust anchor: the test zones are unsigned.
    module-config: "iterator"
    access-control: 0.0.0.0/0 refuse
    access-control: 127.0.0.0/8 allow
    # Negative answers are cached for the SOA minimum, up to this bound;
    # these are unbound's defaults, spelled out because tests rely on them.
    cache-max-negative-ttl: 3600
    neg-cache-size: 1m
remote-control:
    control-enable: yes
    control-interface: %[5]q
`, ip, port, dir, filepath.Join(dir, "unbound.pid"), sock)
	zones := make([]string, 0, len(stubs))
	for zone := range stubs {
		zones = append(zones, zone)
	}
	slices.Sort(zones)
	for _, zone := range zones {
		fmt.Fprintf(&b, "stub-zone:\n    name: %q\n    stub-addr: %s\n", dns.Fqdn(zone), stubs[zone])
	}
	return b.String()
}

// waitLocalhost polls unbound at addr until it answers localhost's A record,
// which it holds itself, so that readiness does not depend on the stubs.
func waitLocalhost(ctx context.Context, proc *daemon, addr string) error {
	var last string
	err := poll(ctx, proc, func() bool {
		resp, err := query(addr, "localhost.", dns.TypeA, pollInterval*5)
		switch {
		case err != nil:
			last = err.Error()
		case resp.Rcode != dns.RcodeSuccess || len(resp.Answer) == 0:
			last = fmt.Sprintf("rcode %s, %d answers", dns.RcodeToString[resp.Rcode], len(resp.Answer))
		default:
			return true
		}
		return false
	})
	if err != nil {
		return fmt.Errorf("realdns: unbound on %s does not answer (last: %s): %w", addr, last, err)
	}
	return nil
}
