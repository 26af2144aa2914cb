package apiserver

import (
	"bufio"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the API server's Prometheus metrics, named as kube-apiserver names them.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	watches  *prometheus.GaugeVec
	// watchList times the initial events of WatchList watches (sendInitialEvents):
	// with the list requests, the count of full relists clients made.
	watchList *prometheus.HistogramVec
	// websocketStreams counts websocket exec, attach and port-forward requests
	// by subresource and proxy_type (translated_at_apiserver, proxied_to_kubelet).
	websocketStreams *prometheus.CounterVec
}

func newMetrics(s *Server) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "apiserver_request_total",
		Help: "Counter of API requests by verb, group, resource, subresource and HTTP code."},
		[]string{"verb", "group", "resource", "subresource", "code"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "apiserver_request_duration_seconds",
		Help:    "Response latency of API requests (watches excluded) by verb, group and resource.",
		Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}},
		[]string{"verb", "group", "resource"})
	m.watches = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "apiserver_longrunning_requests",
		Help: "Open watch requests by group and resource."}, []string{"group", "resource"})
	m.watchList = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "apiserver_watch_list_duration_seconds",
		Help:    "Response latency distribution in seconds for watch list requests broken by group, version, resource and scope.",
		Buckets: []float64{0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300}},
		[]string{"group", "version", "resource", "scope"})
	m.websocketStreams = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "apiserver_websocket_streaming_requests_total",
		Help: "Websocket exec, attach and port-forward requests: translated to SPDY here, or proxied to the node agent as they are."},
		[]string{"subresource", "proxy_type"})
	free := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "svcnet_service_cluster_ips_free",
		Help: "Cluster IPs left in --service-cluster-ip-range (this server's index)."}, func() float64 {
		s.alloc.mu.Lock()
		defer s.alloc.mu.Unlock()
		return float64(s.alloc.ips.Free())
	})
	freePorts := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "svcnet_service_node_ports_free",
		Help: "Node ports left in --service-node-port-range (this server's index)."}, func() float64 {
		s.alloc.mu.Lock()
		defer s.alloc.mu.Unlock()
		return float64(s.alloc.ports.Free())
	})
	m.reg.MustRegister(m.requests, m.latency, m.watches, m.watchList, m.websocketStreams, free, freePorts,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// statusRecorder remembers the response code; Unwrap keeps Flush working for watches.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Hijack hands the connection to an upgraded stream (exec, attach,
// port-forward); websocket libraries assert http.Hijacker and do not unwrap.
func (r *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if r.code == 0 {
		r.code = http.StatusSwitchingProtocols
	}
	return http.NewResponseController(r.ResponseWriter).Hijack()
}

// observe records one finished resource request.
func (m *metrics) observe(q *request, code int, start time.Time) {
	m.requests.WithLabelValues(q.verb, q.res.Group, q.res.Resource, q.sub, strconv.Itoa(code)).Inc()
	if q.verb != "watch" {
		m.latency.WithLabelValues(q.verb, q.res.Group, q.res.Resource).Observe(time.Since(start).Seconds())
	}
}
