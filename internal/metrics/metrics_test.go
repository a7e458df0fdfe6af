package metrics

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// scrape returns what the operator's scraper reads from m.
func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("/metrics answered %d", rec.Code)
	}
	return rec.Body.String()
}

// TestMetrics: each observation reaches the scrape under its documented name
// and label, the series alerts depend on show from zero, and a lag cannot go
// negative.
func TestMetrics(t *testing.T) {
	m := New()
	before := scrape(t, m)
	for _, want := range []string{
		// Every rotation event type has a series before its first event.
		`domaind_dkim_rotation_events_total{type="domain.dkim.update_failed"} 0`,
		`domaind_dkim_rotation_events_total{type="domain.dkim.rotation.started"} 0`,
		"domaind_queue_lag_seconds 0",
		"go_goroutines ",
	} {
		if !strings.Contains(before, want) {
			t.Errorf("a fresh scrape lacks %q", want)
		}
	}
	if strings.Contains(before, "domaind_milter_messages_total{") {
		t.Error("milter results show before the milter says which")
	}

	m.CheckDone("verified", 1500*time.Millisecond)
	m.CheckDone("verified", 10*time.Millisecond)
	m.CheckDone("timeout", 30*time.Second)
	m.QueueLag(-time.Second) // a clock step back is no lag
	m.Delivery("retry")
	m.MilterResults("signed", "tempfail")
	m.MilterMessage("signed")
	m.MilterSessions(3)
	m.RotationEvent("domain.dkim.rotation.started")
	got := scrape(t, m)
	for _, want := range []string{
		`domaind_checks_total{outcome="verified"} 2`,
		`domaind_checks_total{outcome="timeout"} 1`,
		"domaind_check_duration_seconds_count 3",
		`domaind_check_duration_seconds_bucket{le="0.01"} 1`,
		`domaind_check_duration_seconds_bucket{le="2.5"} 2`,
		"domaind_queue_lag_seconds 0",
		`domaind_webhook_deliveries_total{outcome="retry"} 1`,
		`domaind_milter_messages_total{result="signed"} 1`,
		`domaind_milter_messages_total{result="tempfail"} 0`,
		"domaind_milter_sessions 3",
		`domaind_dkim_rotation_events_total{type="domain.dkim.rotation.started"} 1`,
	} {
		if !strings.Contains(got, want+"\n") {
			t.Errorf("scrape lacks %q", want)
		}
	}
	m.QueueLag(90 * time.Second)
	if !strings.Contains(scrape(t, m), "domaind_queue_lag_seconds 90\n") {
		t.Error("queue lag of 90s not shown")
	}
	// Each Metrics has its own registry, so two in one process (tests, the
	// bench's replicas) count apart.
	if other := scrape(t, New()); strings.Contains(other, `outcome="verified"`) {
		t.Error("a second Metrics shares the first one's counts")
	}
}
