package proxy

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are kube-proxy's, with its names (subsystem kubeproxy).
type Metrics struct {
	syncDuration, fullDuration, partialDuration, programming prometheus.Histogram
	lastSync                                                 prometheus.Gauge
	endpointPending, servicePending                          prometheus.Gauge
	endpointChanges, serviceChanges                          prometheus.Counter
	drift                                                    prometheus.Counter
}

// NewMetrics registers the proxy metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	buckets := prometheus.ExponentialBuckets(0.0001, 2, 20)
	h := func(name, help string) prometheus.Histogram {
		return prometheus.NewHistogram(prometheus.HistogramOpts{Subsystem: "kubeproxy", Name: name, Help: help, Buckets: buckets})
	}
	m := &Metrics{
		syncDuration:    h("sync_proxy_rules_duration_seconds", "SyncProxyRules latency in seconds"),
		fullDuration:    h("sync_full_proxy_rules_duration_seconds", "SyncProxyRules latency in seconds for full resyncs"),
		partialDuration: h("sync_partial_proxy_rules_duration_seconds", "SyncProxyRules latency in seconds for partial resyncs"),
		programming: prometheus.NewHistogram(prometheus.HistogramOpts{Subsystem: "kubeproxy", Name: "network_programming_duration_seconds",
			Help: "In Cluster Network Programming Latency in seconds", Buckets: prometheus.ExponentialBuckets(0.001, 2, 20)}),
		lastSync: prometheus.NewGauge(prometheus.GaugeOpts{Subsystem: "kubeproxy", Name: "sync_proxy_rules_last_timestamp_seconds",
			Help: "The last time proxy rules were successfully synced"}),
		endpointPending: prometheus.NewGauge(prometheus.GaugeOpts{Subsystem: "kubeproxy", Name: "sync_proxy_rules_endpoint_changes_pending",
			Help: "Pending proxy rules Endpoint changes"}),
		servicePending: prometheus.NewGauge(prometheus.GaugeOpts{Subsystem: "kubeproxy", Name: "sync_proxy_rules_service_changes_pending",
			Help: "Pending proxy rules Service changes"}),
		endpointChanges: prometheus.NewCounter(prometheus.CounterOpts{Subsystem: "kubeproxy", Name: "sync_proxy_rules_endpoint_changes_total",
			Help: "Cumulative proxy rules Endpoint changes"}),
		serviceChanges: prometheus.NewCounter(prometheus.CounterOpts{Subsystem: "kubeproxy", Name: "sync_proxy_rules_service_changes_total",
			Help: "Cumulative proxy rules Service changes"}),
		drift: prometheus.NewCounter(prometheus.CounterOpts{Subsystem: "kubeproxy", Name: "sync_proxy_rules_drift_repairs_total",
			Help: "Periodic checks that found the kernel's rules changed behind the proxy's back (svcnet's own; each repaired by a full sync)"}),
	}
	reg.MustRegister(m.syncDuration, m.fullDuration, m.partialDuration, m.programming, m.lastSync,
		m.endpointPending, m.servicePending, m.endpointChanges, m.serviceChanges, m.drift)
	return m
}

func (m *Metrics) observeSync(d time.Duration, full bool) {
	m.syncDuration.Observe(d.Seconds())
	if full {
		m.fullDuration.Observe(d.Seconds())
	} else {
		m.partialDuration.Observe(d.Seconds())
	}
}

// pending sets the pending gauges (-1 leaves one as it is).
func (m *Metrics) pending(services, endpoints int) {
	m.servicePending.Set(float64(services))
	m.endpointPending.Set(float64(endpoints))
}
