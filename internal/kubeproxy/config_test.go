package kubeproxy

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// kubeadmConfig is the config.conf of kubeadm's kube-proxy ConfigMap (v1.34),
// with mode nftables and a few values changed.
const kubeadmConfig = `apiVersion: kubeproxy.config.k8s.io/v1alpha1
bindAddress: 0.0.0.0
bindAddressHardFail: false
clientConnection:
  acceptContentTypes: ""
  burst: 0
  contentType: ""
  kubeconfig: /var/lib/kube-proxy/kubeconfig.conf
  qps: 0
clusterCIDR: 10.244.0.0/16
configSyncPeriod: 0s
conntrack:
  maxPerCore: null
  min: null
  tcpBeLiberal: false
  tcpCloseWaitTimeout: null
  tcpEstablishedTimeout: null
  udpStreamTimeout: 0s
  udpTimeout: 0s
detectLocal:
  bridgeInterface: ""
  interfaceNamePrefix: ""
detectLocalMode: ""
enableProfiling: false
healthzBindAddress: ""
hostnameOverride: ""
iptables:
  localhostNodePorts: null
  masqueradeAll: false
  masqueradeBit: null
  minSyncPeriod: 0s
  syncPeriod: 0s
ipvs:
  excludeCIDRs: null
  minSyncPeriod: 0s
  scheduler: ""
  strictARP: false
  syncPeriod: 0s
  tcpFinTimeout: 0s
  tcpTimeout: 0s
  udpTimeout: 0s
kind: KubeProxyConfiguration
logging:
  flushFrequency: 0
  options:
    json:
      infoBufferSize: "0"
    text:
      infoBufferSize: "0"
  verbosity: 0
metricsBindAddress: 0.0.0.0:10249
mode: nftables
nftables:
  masqueradeAll: true
  masqueradeBit: null
  minSyncPeriod: 2s
  syncPeriod: 30s
nodePortAddresses:
- 192.168.1.0/24
oomScoreAdj: null
portRange: ""
showHiddenMetricsForVersion: ""
winkernel:
  enableDSR: false
  forwardHealthCheckVip: false
  networkName: ""
  rootHnsEndpointName: ""
  sourceVip: ""
`

func TestParseEnableProfiling(t *testing.T) {
	s, err := Parse([]byte(strings.Replace(kubeadmConfig, "enableProfiling: false", "enableProfiling: true", 1)))
	if err != nil || !s.EnableProfiling || slices.Contains(s.Ignored, "enableProfiling") {
		t.Errorf("enableProfiling: true: %+v, %v; want it taken", s, err)
	}
}

func TestParse(t *testing.T) {
	s, err := Parse([]byte(kubeadmConfig))
	if err != nil {
		t.Fatal(err)
	}
	if s.Kubeconfig != "/var/lib/kube-proxy/kubeconfig.conf" || s.ClusterCIDR != "10.244.0.0/16" || s.Mode != "nftables" ||
		s.MetricsBindAddress != "0.0.0.0:10249" || s.HealthzBindAddress != "" || s.MinSyncPeriod != 2*time.Second ||
		s.SyncPeriod != 30*time.Second || len(s.NodePortAddresses) != 1 || s.NodePortAddresses[0] != "192.168.1.0/24" {
		t.Errorf("settings %+v", s)
	}
	if s.EnableProfiling {
		t.Error("enableProfiling: false read as true")
	}
	// Only what is set to something else than the default is named.
	want := "bindAddress, logging.options.json.infoBufferSize, logging.options.text.infoBufferSize, nftables.masqueradeAll"
	if got := strings.Join(s.Ignored, ", "); got != want {
		t.Errorf("ignored %q, want %q", got, want)
	}
	if w := s.Warning(); !strings.Contains(w, "nftables.masqueradeAll") {
		t.Errorf("warning %q", w)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ name, doc, want string }{
		{"wrong kind", "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeletConfiguration\n", "kind"},
		{"wrong version", "apiVersion: kubeproxy.config.k8s.io/v1beta1\nkind: KubeProxyConfiguration\n", "apiVersion"},
		{"unknown field", "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmodee: nftables\n", `unknown field "modee"`},
		{"wrong type", "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nnodePortAddresses: primary\n", "nodePortAddresses"},
	} {
		_, err := Parse([]byte(tc.doc))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error naming %s", tc.name, err, tc.want)
		}
	}
}

func TestModeMinSyncPeriod(t *testing.T) {
	doc := "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\niptables:\n  minSyncPeriod: 1s\n  syncPeriod: 10s\nnftables:\n  minSyncPeriod: 3s\n  syncPeriod: 20s\n"
	s, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if s.MinSyncPeriod != time.Second || s.SyncPeriod != 10*time.Second || strings.Join(s.Ignored, ",") != "nftables.minSyncPeriod,nftables.syncPeriod" {
		t.Errorf("mode \"\" (iptables): %v %v, ignored %v", s.MinSyncPeriod, s.SyncPeriod, s.Ignored)
	}
}
