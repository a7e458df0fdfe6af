package testenv

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// prereqRecorder records how a helper reports a missing prerequisite,
// instead of ending the test.
type prereqRecorder struct {
	testing.TB
	skipped, failed string
}

func (r *prereqRecorder) Helper()                   {}
func (r *prereqRecorder) Skip(args ...any)          { r.skipped = fmt.Sprint(args...) }
func (r *prereqRecorder) Fatal(args ...any)         { r.failed = fmt.Sprint(args...) }
func (r *prereqRecorder) Fatalf(f string, a ...any) { r.failed = fmt.Sprintf(f, a...) }

func TestLookBinaryMissing(t *testing.T) {
	tests := []struct {
		ci       string
		wantFail bool
	}{
		{"", false},
		{"false", false},
		{"true", true},
	}
	for _, tt := range tests {
		t.Run("CI="+tt.ci, func(t *testing.T) {
			t.Setenv("CI", tt.ci)
			rec := &prereqRecorder{TB: t}
			if path := LookBinary(rec, "testenv-no-such-program", "no-such-package"); path != "" {
				t.Errorf("path %q for a missing program", path)
			}
			got, other, want := rec.skipped, rec.failed, "a skip"
			if tt.wantFail {
				got, other, want = rec.failed, rec.skipped, "a failure"
			}
			if got == "" || other != "" {
				t.Fatalf("skipped %q, failed %q; want %s only", rec.skipped, rec.failed, want)
			}
			if !strings.Contains(got, `"no-such-package"`) {
				t.Errorf("message %q does not name the Debian package", got)
			}
		})
	}
	if path := LookBinary(t, "sh", "dash"); path == "" {
		t.Error("sh not found in PATH")
	}
}

func TestFreePort(t *testing.T) {
	port := FreePort(t, "127.0.0.1", "127.0.0.2")
	for _, ip := range []string{"127.0.0.1", "127.0.0.2"} {
		addr := net.JoinHostPort(ip, strconv.Itoa(port))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("TCP port %d is not free on %s: %v", port, ip, err)
		}
		l.Close()
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			t.Fatalf("UDP port %d is not free on %s: %v", port, ip, err)
		}
		pc.Close()
	}
}

func TestRequirePortTaken(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	rec := &prereqRecorder{TB: t}
	RequirePort(rec, l.Addr().(*net.TCPAddr).Port, "127.0.0.1")
	if !strings.Contains(rec.failed, "is taken") || rec.skipped != "" {
		t.Errorf("a taken port: failed %q, skipped %q; want a failure saying it is taken", rec.failed, rec.skipped)
	}
}

// TestRace checks that Race calls f once for each index and returns after the last.
func TestRace(t *testing.T) {
	const n = 16
	var calls [n]atomic.Int32
	Race(n, func(i int) { calls[i].Add(1) })
	for i := range calls {
		if got := calls[i].Load(); got != 1 {
			t.Errorf("f(%d) called %d times, want once", i, got)
		}
	}
}
