package main

import "testing"

func TestLastSyncRE(t *testing.T) {
	for _, tc := range []struct{ name, metrics, want string }{
		{"kube-proxy labels by family", "kubeproxy_sync_proxy_rules_last_timestamp_seconds{ip_family=\"IPv6\"} 2e+09\n" +
			"kubeproxy_sync_proxy_rules_last_timestamp_seconds{ip_family=\"IPv4\"} 1.7959888326813807e+09\n", "1.7959888326813807e+09"},
		{"svcnet unlabelled", "# TYPE x gauge\nkubeproxy_sync_proxy_rules_last_timestamp_seconds 1.7e+09\n", "1.7e+09"},
		{"no sync yet", "kubeproxy_sync_proxy_rules_duration_seconds_count 0\n", ""},
	} {
		got := ""
		if m := lastSyncRE.FindStringSubmatch(tc.metrics); m != nil {
			got = m[1]
		}
		if got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestParseDNSPerf(t *testing.T) {
	out := `Statistics:

  Queries sent:         289330
  Queries completed:    289255 (99.97%)
  Queries lost:         75 (0.03%)

  Response codes:       NOERROR 245000 (84.70%), NXDOMAIN 44255 (15.30%)
  Average packet size:  request 48, response 110
  Run time (s):         5.000123
  Queries per second:   57850.6

  Average Latency (s):  0.001713 (min 0.000041, max 0.101217)
`
	qps, avg, lost := parseDNSPerf(out)
	if qps != 57850.6 || avg < 1.712 || avg > 1.714 || lost != "75 (0.03%)" {
		t.Errorf("parseDNSPerf = %v qps, %v ms, lost %q", qps, avg, lost)
	}
}

func TestEndpointIP(t *testing.T) {
	for i, want := range map[int]string{0: "10.250.0.1", 249: "10.250.0.250", 250: "10.250.1.1", 20001: "10.250.80.2"} {
		if got := endpointIP(i); got != want {
			t.Errorf("endpointIP(%d) = %s, want %s", i, got, want)
		}
	}
}
