package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/domaind/domaind/internal/dnstest"
)

// TestServeRefusesPrivateNames adds corp.internal through the real serve command:
// a 400 naming the domain field and the rule without --dns-allow-private, a 201
// with it.
func TestServeRefusesPrivateNames(t *testing.T) {
	for _, allow := range []bool{false, true} {
		dnsSrv := dnstest.Start(t, dnstest.NewZone("internal."))
		args := []string{"--resolvers", dnsSrv.Addr(), "--dns-mode", "recursive", "--dkim-bits", "1024"}
		if allow {
			args = append(args, "--dns-allow-private")
		}
		srv := startServe(t, args...)
		req, _ := http.NewRequest("POST", srv.base+"/v1/domains", strings.NewReader(`{"domain":"corp.internal"}`))
		req.Header.Set("Authorization", "Bearer "+srv.key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Error struct {
				Code    string `json:"code"`
				Details []struct{ Field, Message string }
			} `json:"error"`
		}
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		srv.stop(t)
		if allow {
			if resp.StatusCode != http.StatusCreated {
				t.Errorf("with --dns-allow-private: status %d, want 201", resp.StatusCode)
			}
			continue
		}
		if resp.StatusCode != http.StatusBadRequest || body.Error.Code != "VALIDATION_FAILED" || len(body.Error.Details) != 1 ||
			body.Error.Details[0].Field != "domain" || !strings.Contains(body.Error.Details[0].Message, ".internal is reserved") {
			t.Errorf("without --dns-allow-private: status %d, %+v; want 400 naming the domain field and the rule", resp.StatusCode, body.Error)
		}
	}
}

// TestCheckRefusesPrivateNames runs `domaind check corp.internal`: a usage error
// naming the rule without --dns-allow-private, a check with it.
func TestCheckRefusesPrivateNames(t *testing.T) {
	srv := dnstest.Start(t, dnstest.NewZone("internal."))
	_, errOut, err := runCmd(t, "check", "--resolvers", srv.Addr(), "--dns-mode", "recursive", "corp.internal")
	if err == nil || !strings.Contains(errOut, "not_public") {
		t.Errorf("check corp.internal = %v, %q; want a usage error naming rule not_public", err, errOut)
	}
	_, errOut, _ = runCmd(t, "check", "--resolvers", srv.Addr(), "--dns-mode", "recursive", "--dns-allow-private", "corp.internal")
	if strings.Contains(errOut, "not_public") {
		t.Errorf("check --dns-allow-private corp.internal: %q, want the name accepted", errOut)
	}
}
