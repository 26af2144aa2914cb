package ingress

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the edge's Prometheus metrics; a nil *Metrics records nothing.
type Metrics struct {
	requests       *prometheus.CounterVec
	duration       *prometheus.HistogramVec
	upstreamErrors *prometheus.CounterVec
	syncs          prometheus.Histogram
	// children caches the per-request series by their labels (the label
	// lookup hashes every value under the vector's lock on each request).
	children sync.Map // requestLabels -> *requestSeries
}

type requestLabels struct {
	port, host, route string
	code              int
}

type requestSeries struct {
	count    prometheus.Counter
	duration prometheus.Observer
}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "svcnet_ingress_requests_total",
			Help: "Requests answered by the ingress, by port, host pattern, route (its source object) and status code."},
			[]string{"port", "host", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "svcnet_ingress_request_duration_seconds",
			Help: "Time from a request's headers to the end of its answer, by route.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)},
			[]string{"route"}),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "svcnet_ingress_upstream_errors_total",
			Help: "Failed attempts to reach an endpoint, by route and reason (connect, timeout, connection)."},
			[]string{"route", "reason"}),
		syncs: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "svcnet_ingress_sync_duration_seconds",
			Help: "Time to build and swap the routing table.", Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}),
	}
	reg.MustRegister(m.requests, m.duration, m.upstreamErrors, m.syncs)
	return m
}

func (m *Metrics) observe(port, host, route string, code int, d time.Duration) {
	if m == nil {
		return
	}
	k := requestLabels{port: port, host: host, route: route, code: code}
	v, ok := m.children.Load(k)
	if !ok {
		v, _ = m.children.LoadOrStore(k, &requestSeries{count: m.requests.WithLabelValues(port, host, route, strconv.Itoa(code)),
			duration: m.duration.WithLabelValues(route)})
	}
	rs := v.(*requestSeries)
	rs.count.Inc()
	rs.duration.Observe(d.Seconds())
}

func (m *Metrics) upstreamError(route, reason string) {
	if m == nil {
		return
	}
	m.upstreamErrors.WithLabelValues(route, reason).Inc()
}

func (m *Metrics) synced(d time.Duration) {
	if m == nil {
		return
	}
	m.syncs.Observe(d.Seconds())
}
