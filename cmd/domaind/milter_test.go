package main

import (
	"net"
	"strings"
	"testing"
	"time"

	gomilter "github.com/emersion/go-milter"

	"github.com/domaind/domaind/internal/dnstest"
)

// TestServeMilter runs serve with --milter-listen: a domain verified through the
// API is signed by the milter, the counters show on /metrics, and the milter
// stops with serve.
func TestServeMilter(t *testing.T) {
	zone := dnstest.NewZone("example.com.")
	dnsSrv := dnstest.Start(t, zone)
	milterAddr := freeAddr(t)
	srv := startServe(t, "--milter-listen", milterAddr,
		"--resolvers", dnsSrv.Addr(), "--dns-mode", "recursive", "--dkim-bits", "1024", "--verify-min-interval", "0s")
	srv.waitUntil(t, "the milter", func() error {
		c, err := net.Dial("tcp", milterAddr)
		if err == nil {
			c.Close()
		}
		return err
	})

	added, _ := srv.call(t, "POST", "/v1/domains", `{"domain":"example.com"}`)
	d := added["data"].(map[string]any)
	publish(t, zone, d)
	verified, _ := srv.call(t, "POST", "/v1/domains/"+d["id"].(string)+"/verify", "")
	if v := verified["data"].(map[string]any); v["dkimEnabled"] != true {
		t.Fatalf("verify: %v", v)
	}

	s, err := gomilter.NewClientWithOptions("tcp", milterAddr, gomilter.ClientOptions{
		ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second, ActionMask: gomilter.OptAddHeader,
	}).Session()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, h := range [][2]string{{"From", "a@example.com"}, {"Subject", "hi"}} {
		if _, err := s.HeaderField(h[0], h[1]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.HeaderEnd(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.BodyChunk([]byte("hello\r\n")); err != nil {
		t.Fatal(err)
	}
	mods, act, err := s.End()
	if err != nil || act.Code != gomilter.ActAccept || len(mods) != 1 || !strings.Contains(mods[0].HeaderValue, "d=example.com;") {
		t.Fatalf("end of message: %v %+v %v", act, mods, err)
	}

	srv.wantMetrics(t, `domaind_milter_messages_total{result="signed"} 1`, `domaind_milter_messages_total{result="unsigned_no_key"} 0`, "domaind_milter_sessions 1")

	srv.stop(t)
	if _, err := net.Dial("tcp", milterAddr); err == nil {
		t.Error("the milter still accepts connections after serve stopped")
	}
}
