// Package testenv is what end-to-end tests need from the machine they run
// on: programs from Debian's packages, and ports on loopback. A missing
// prerequisite skips the test with a loud message, or fails it when the
// environment variable CI is "true", since CI must provide it rather than
// pass without running the test.
//
// It imports testing, so only tests and test harnesses may import it;
// programs never do (cmd/devdns's tests check that no program links testing).
package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// SkipOrFail skips the test with a loud msg about a missing prerequisite,
// or fails it when the environment variable CI is "true": CI must provide
// the prerequisite rather than pass without running the test.
func SkipOrFail(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal("CI=true but " + msg)
	} else {
		t.Skip("SKIPPING: " + msg)
	}
}

// LookBinary returns the path of the program name from the Debian package
// pkg, looking in PATH and then in the sbin directories, which are often not
// in PATH for users other than root. When it is missing the test is
// skipped, or fails when the environment variable CI is "true".
func LookBinary(t testing.TB, name, pkg string) string {
	t.Helper()
	if path, err := exec.LookPath(name); err == nil {
		return path
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/sbin"} {
		path := filepath.Join(dir, name)
		if fi, err := os.Stat(path); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return path
		}
	}
	msg := fmt.Sprintf("%s not found in PATH or /usr/sbin: install the Debian package %q (apt-get install %s) to run this end-to-end test", name, pkg, pkg)
	SkipOrFail(t, msg)
	return ""
}

// FreePort returns a port on which nothing listens over UDP or TCP on any
// of ips (IPv4 loopback addresses; 127.0.0.1 when none is given), for
// servers that must share a port, as authoritative DNS servers all listen on
// port 53. The port is free when FreePort returns; something else may take
// it before a server binds it, which the server's start must report.
func FreePort(t testing.TB, ips ...string) int {
	t.Helper()
	if len(ips) == 0 {
		ips = []string{"127.0.0.1"}
	}
	var lastErr error
	for range 20 {
		port, err := tryPort(t.Context(), ips, 0)
		if err == nil {
			return port
		}
		lastErr = err
	}
	t.Fatalf("testenv: no port free on %v: %v", ips, lastErr)
	return 0
}

// RequirePort checks that port is free for UDP and TCP on every one of ips,
// for tests that need a fixed port. A resolver such as Unbound follows a
// delegation to port 53 of the name server's address whatever port it was
// told for its root, so tests of real delegations put every authoritative
// server on port 53. A port this process may not bind (below 1024 without
// root or CAP_NET_BIND_SERVICE) skips the test, or fails it when the
// environment variable CI is "true"; a port already taken fails it.
func RequirePort(t testing.TB, port int, ips ...string) {
	t.Helper()
	if port <= 0 {
		t.Fatalf("testenv: RequirePort(%d): not a port", port)
	}
	_, err := tryPort(t.Context(), ips, port)
	switch {
	case err == nil:
		return
	case errors.Is(err, syscall.EACCES):
		msg := fmt.Sprintf("cannot bind port %d on %v (%v): run as root, grant CAP_NET_BIND_SERVICE, or set sysctl net.ipv4.ip_unprivileged_port_start=%d", port, ips, err, port)
		SkipOrFail(t, msg)
	case errors.Is(err, syscall.EADDRINUSE):
		t.Fatalf("testenv: port %d is taken on one of %v (%v); a DNS server listening on 0.0.0.0:%d, such as the knot or unbound system service, must be stopped", port, ips, err, port)
	default:
		t.Fatalf("testenv: port %d on %v: %v", port, ips, err)
	}
}

// tryPort binds port for UDP and TCP, or when it is 0 a port the kernel
// picks, on the first ip and the same port on the others, then releases
// them all.
func tryPort(ctx context.Context, ips []string, port int) (int, error) {
	var closers []func() error
	defer func() {
		for _, c := range closers {
			c()
		}
	}()
	var lc net.ListenConfig
	for _, ip := range ips {
		if addr, err := netip.ParseAddr(ip); err != nil || !addr.IsLoopback() || !addr.Is4() {
			return 0, fmt.Errorf("testenv: %q is not an IPv4 loopback address", ip)
		}
		// TCP first: with port 0 the kernel picks a TCP port, and UDP then
		// takes the same number (or reports it taken).
		l, err := lc.Listen(ctx, "tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
		if err != nil {
			return 0, err
		}
		closers = append(closers, l.Close)
		port = l.Addr().(*net.TCPAddr).Port
		pc, err := lc.ListenPacket(ctx, "udp", net.JoinHostPort(ip, strconv.Itoa(port)))
		if err != nil {
			return 0, err
		}
		closers = append(closers, pc.Close)
	}
	return port, nil
}
