package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
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
	dir := t.TempDir()
	db := "sqlite:" + filepath.Join(dir, "d.db")
	zone := dnstest.NewZone("example.com.")
	dnsSrv := dnstest.Start(t, zone)
	addr, milterAddr := freeAddr(t), freeAddr(t)
	out, _, err := runCmd(t, "apikey", "create", "--project", "acme", "--db", db)
	if err != nil {
		t.Fatal(err)
	}
	key := strings.TrimSpace(out)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var logs bytes.Buffer
	go func() {
		done <- run(ctx, []string{"serve", "--listen", addr, "--milter-listen", milterAddr, "--db", db, "--dev", "--data-dir", dir,
			"--resolvers", dnsSrv.Addr(), "--dns-mode", "recursive", "--dkim-bits", "1024", "--verify-min-interval", "0s"}, io.Discard, &logs)
	}()
	t.Cleanup(func() { cancel(); <-done })
	base := "http://" + addr
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", milterAddr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the milter did not come up: %v\n%s", err, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}

	call := func(method, path, body string) map[string]any {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	d := call("POST", "/v1/domains", `{"domain":"example.com"}`)["data"].(map[string]any)
	recs := d["dnsRecords"].(map[string]any)
	for _, k := range []string{"ownership", "dkim"} {
		r := recs[k].(map[string]any)
		if err := zone.AddTXT(r["name"].(string)+".", r["value"].(string)); err != nil {
			t.Fatal(err)
		}
	}
	if v := call("POST", "/v1/domains/"+d["id"].(string)+"/verify", "")["data"].(map[string]any); v["dkimEnabled"] != true {
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

	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`domaind_milter_messages_total{result="signed"} 1`, `domaind_milter_messages_total{result="unsigned_no_key"} 0`, "domaind_milter_sessions 1"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve did not shut down cleanly: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop after its context was cancelled")
	}
	done <- nil // for the cleanup
	if _, err := net.Dial("tcp", milterAddr); err == nil {
		t.Error("the milter still accepts connections after serve stopped")
	}
}
