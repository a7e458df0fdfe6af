// Package metrics holds domaind's Prometheus metrics, on a registry of its own
// rather than the global one, so tests and several servers in one process do not
// share counters.
package metrics

import (
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/domaind/domaind/internal/domain"
)

// Metrics are the service's counters and gauges.
type Metrics struct {
	reg        *prometheus.Registry
	checks     *prometheus.CounterVec
	checkTime  prometheus.Histogram
	queueLag   prometheus.Gauge
	deliveries *prometheus.CounterVec
	milterMsgs *prometheus.CounterVec
	milterConn prometheus.Gauge
	rotations  *prometheus.CounterVec
}

// New registers the metrics on a fresh registry.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		checks: counterVec("domaind_checks_total",
			"Domain checks by outcome: the status they left (verified, pending, pending_configuration), timeout (saved as a result) or error.",
			"outcome"),
		checkTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "domaind_check_duration_seconds",
			Help:    "Time one domain check took, DNS and storage included.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		queueLag: gauge("domaind_queue_lag_seconds",
			"How overdue the oldest due automatic check is; 0 when none is overdue."),
		deliveries: counterVec("domaind_webhook_deliveries_total",
			"Webhook delivery attempts by outcome: delivered, retry or failed.",
			"outcome"),
		// The result is one of a fixed few (see package milter); there is no
		// domain label, so the series stay few however many domains sign.
		milterMsgs: counterVec("domaind_milter_messages_total",
			"Messages the milter handled, by result: signed, tempfail, or unsigned_<why> (no_key, no_from, multiple_from, bad_from, too_large).",
			"result"),
		milterConn: gauge("domaind_milter_sessions", "Milter connections open now."),
		rotations: counterVec("domaind_dkim_rotation_events_total",
			"Steps of DKIM key rotations, by the type of the event each raised (domain.dkim.rotation.started, ….retired, domain.dkim.update_failed).",
			"type"),
	}
	// Every rotation event type shows from zero, so that an alert on failed
	// updates has a series before the first failure.
	for _, t := range domain.EventTypes {
		if strings.HasPrefix(string(t), "domain.dkim.") {
			m.rotations.WithLabelValues(string(t))
		}
	}
	m.reg.MustRegister(m.checks, m.checkTime, m.queueLag, m.deliveries, m.milterMsgs, m.milterConn, m.rotations,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// counterVec and gauge build New's metrics: each of domaind's counters has one label,
// whose values the callers keep to a fixed few.
func counterVec(name, help, label string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{label})
}

func gauge(name, help string) prometheus.Gauge {
	return prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
}

// CheckDone counts a finished check; it implements verify.Observer.
func (m *Metrics) CheckDone(outcome string, took time.Duration) {
	m.checks.WithLabelValues(outcome).Inc()
	m.checkTime.Observe(took.Seconds())
}

// QueueLag sets how overdue the oldest due check is.
func (m *Metrics) QueueLag(lag time.Duration) { m.queueLag.Set(max(lag, 0).Seconds()) }

// Delivery counts a webhook delivery attempt by outcome.
func (m *Metrics) Delivery(outcome string) { m.deliveries.WithLabelValues(outcome).Inc() }

// MilterResults makes each of results show in the milter's message counter from
// zero, before the first message of that result.
func (m *Metrics) MilterResults(results ...string) {
	for _, r := range results {
		m.milterMsgs.WithLabelValues(r)
	}
}

// MilterMessage counts a message the milter handled, by result.
func (m *Metrics) MilterMessage(result string) { m.milterMsgs.WithLabelValues(result).Inc() }

// MilterSessions sets how many milter connections are open.
func (m *Metrics) MilterSessions(open int) { m.milterConn.Set(float64(open)) }

// RotationEvent counts a step of a DKIM key rotation by the type of its event;
// it implements rotation.Observer.
func (m *Metrics) RotationEvent(eventType string) { m.rotations.WithLabelValues(eventType).Inc() }

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
