// Package metrics holds domaind's Prometheus metrics, on a registry of its own
// rather than the global one, so tests and several servers in one process do not
// share counters.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the service's counters and gauges.
type Metrics struct {
	reg        *prometheus.Registry
	checks     *prometheus.CounterVec
	checkTime  prometheus.Histogram
	queueLag   prometheus.Gauge
	deliveries *prometheus.CounterVec
}

// New registers the metrics on a fresh registry.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "domaind_checks_total",
			Help: "Domain checks by outcome: the status they left (verified, pending, pending_configuration) or error.",
		}, []string{"outcome"}),
		checkTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "domaind_check_duration_seconds",
			Help:    "Time one domain check took, DNS and storage included.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		queueLag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "domaind_queue_lag_seconds",
			Help: "How overdue the oldest due automatic check is; 0 when none is overdue.",
		}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "domaind_webhook_deliveries_total",
			Help: "Webhook delivery attempts by outcome: delivered, retry or failed.",
		}, []string{"outcome"}),
	}
	m.reg.MustRegister(m.checks, m.checkTime, m.queueLag, m.deliveries,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
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

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
