package ingress

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestMetricsObserve(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	for range 3 {
		m.observe("80", "web.test", "ingress default/web rule 0 path 0", 200, time.Millisecond)
	}
	m.observe("80", "web.test", "ingress default/web rule 0 path 0", 503, time.Millisecond)
	if got := testutil.ToFloat64(m.requests.WithLabelValues("80", "web.test", "ingress default/web rule 0 path 0", "200")); got != 3 {
		t.Errorf("200s counted %v, want 3", got)
	}
	if got := testutil.ToFloat64(m.requests.WithLabelValues("80", "web.test", "ingress default/web rule 0 path 0", "503")); got != 1 {
		t.Errorf("503s counted %v, want 1", got)
	}
	if got := testutil.CollectAndCount(m.duration); got != 1 {
		t.Errorf("%d duration series, want 1", got)
	}
	var nilMetrics *Metrics
	nilMetrics.observe("80", "", "", 404, 0) // records nothing, does not panic
}
