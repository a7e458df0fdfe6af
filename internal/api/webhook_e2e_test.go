package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/domaind/domaind/internal/webhook"
)

// receiver is a webhook endpoint that records what it receives, answering 500 to
// the first failFirst requests.
type receiver struct {
	mu        sync.Mutex
	failFirst int
	secret    string
	requests  int
	got       []received
}

type received struct {
	id, eventType string
	valid         bool
}

func (rc *receiver) setSecret(s string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.secret = s
}

func (rc *receiver) handler() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		defer rc.mu.Unlock()
		rc.requests++
		if rc.requests <= rc.failFirst {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		var p struct {
			Type string `json:"type"`
		}
		json.Unmarshal(body, &p)
		err := webhook.VerifySignature(rc.secret, r.Header, body, time.Now(), 5*time.Minute)
		rc.got = append(rc.got, received{id: r.Header.Get("webhook-id"), eventType: p.Type, valid: err == nil})
		w.WriteHeader(http.StatusNoContent)
	}
}

func (rc *receiver) types() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []string
	for _, g := range rc.got {
		out = append(out, g.eventType)
	}
	return out
}

// TestWebhooksEndToEnd registers an endpoint, lets the scheduler verify a domain
// and then watch it degrade, and checks the endpoint gets each event once, signed,
// after retries through its first failures.
func TestWebhooksEndToEnd(t *testing.T) {
	e := newEnv(t, envOptions{recheck: fastRecheck(time.Hour), degradeAfter: 2, webhooks: true})
	rc := &receiver{failFirst: 2}
	hook := httptest.NewServer(rc.handler())
	t.Cleanup(hook.Close)

	r := e.do("POST", "/api/v2/webhooks", `{"url":"`+hook.URL+`/hooks"}`, e.key)
	if r.status != http.StatusCreated {
		t.Fatalf("register webhook: %d %s", r.status, r.body)
	}
	rc.setSecret(r.json(t)["data"].(map[string]any)["secret"].(string))

	d := e.addDomain("example.com")
	e.publish(d.DNSRecords.Ownership)
	e.publish(d.DNSRecords.DKIM)
	waitFor(t, 10*time.Second, "domain.verified to be delivered", func() bool {
		return slices.Contains(rc.types(), "domain.verified")
	})
	e.zone.Remove(d.DNSRecords.DKIM.Name+".", dns.TypeTXT)
	// The degrade and the record change of that check are delivered one after
	// the other (one delivery in flight per endpoint), in either order.
	waitFor(t, 10*time.Second, "domain.degraded and the third record change to be delivered", func() bool {
		types := rc.types()
		changes := 0
		for _, typ := range types {
			if typ == "domain.record.changed" {
				changes++
			}
		}
		return slices.Contains(types, "domain.degraded") && changes >= 3
	})

	rc.mu.Lock()
	defer rc.mu.Unlock()
	seen := map[string]bool{}
	count := map[string]int{}
	for _, g := range rc.got {
		if !g.valid {
			t.Errorf("delivery %s (%s) has an invalid signature", g.id, g.eventType)
		}
		if seen[g.id] {
			t.Errorf("delivery %s (%s) received twice", g.id, g.eventType)
		}
		seen[g.id] = true
		count[g.eventType]++
	}
	// Verified once; ownership and DKIM flags on, then DKIM off: three record
	// changes; one degrade. The degrading phase's status change is not sent to
	// an endpoint that did not ask for it.
	if count["domain.verified"] != 1 || count["domain.degraded"] != 1 || count["domain.record.changed"] != 3 || count["domain.status.changed"] != 0 {
		t.Errorf("events received: %v", count)
	}
	if rc.requests < len(rc.got)+2 {
		t.Errorf("%d requests for %d deliveries: the two 500s were not retried", rc.requests, len(rc.got))
	}
}
