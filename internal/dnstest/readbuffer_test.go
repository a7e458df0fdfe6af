package dnstest

import (
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/miekg/dns"
)

func TestSetReadBuffer(t *testing.T) {
	const want = 1 << 20
	if b, err := os.ReadFile("/proc/sys/net/core/rmem_max"); err != nil {
		t.Skipf("cannot read net.core.rmem_max (%v); the kernel's cap is unknown", err)
	} else if max, err := strconv.Atoi(strings.TrimSpace(string(b))); err != nil || max < want {
		t.Skipf("net.core.rmem_max is %s, below the %d bytes this test sets", strings.TrimSpace(string(b)), want)
	}
	s := Start(t)
	before := readBuffer(t, s)
	if before >= want {
		t.Fatalf("the default read buffer is already %d bytes; the test cannot tell a change", before)
	}
	if err := s.SetReadBuffer(want); err != nil {
		t.Fatal(err)
	}
	// Linux doubles the size asked for, to leave room for its bookkeeping.
	if got := readBuffer(t, s); got < want {
		t.Fatalf("read buffer is %d bytes after SetReadBuffer(%d), was %d", got, want, before)
	}
	// The server still answers.
	if r := ask(t, s.Addr(), "udp", "example.org.", dns.TypeA, 0); r.Rcode != dns.RcodeRefused {
		t.Fatalf("rcode %d, want REFUSED for a name outside every zone", r.Rcode)
	}
}

func readBuffer(t *testing.T, s *Server) int {
	t.Helper()
	sc, err := s.udp.PacketConn.(*net.UDPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var size int
	var serr error
	if err := sc.Control(func(fd uintptr) {
		size, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF)
	}); err != nil {
		t.Fatal(err)
	}
	if serr != nil {
		t.Fatal(serr)
	}
	return size
}
