package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// TestKubeProxyConfigFile: --config fills what the command line does not
// give; flags on the command line win; kube-proxy's mode names map.
func TestKubeProxyConfigFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.conf")
	if err := os.WriteFile(path, []byte(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: /var/lib/kube-proxy/kubeconfig.conf
hostnameOverride: Node1
clusterCIDR: 10.244.0.0/16
mode: iptables
iptables:
  minSyncPeriod: 2s
metricsBindAddress: 0.0.0.0:10249
nodePortAddresses: [primary]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := &cobra.Command{}
	var f agentFlags
	var kp kubeProxyFlags
	kubeconfig := "/root/.kube/config"
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", kubeconfig, "")
	cmd.Flags().StringVar(&f.o.ClusterCIDR, "cluster-cidr", "10.244.0.0/16", "")
	f.add(cmd.Flags())
	kp.add(cmd.Flags(), &f)
	if err := cmd.ParseFlags([]string{"--config", path, "--cluster-cidr", "10.32.0.0/12"}); err != nil {
		t.Fatal(err)
	}
	if err := kp.apply(cmd, &f, &kubeconfig); err != nil {
		t.Fatal(err)
	}
	if kubeconfig != "/var/lib/kube-proxy/kubeconfig.conf" || f.o.NodeName != "node1" || f.o.ClusterCIDR != "10.32.0.0/12" ||
		f.proxyMode != "iptables" || f.o.MinSyncPeriod != 2*time.Second || f.o.MetricsAddress != "0.0.0.0:10249" ||
		f.o.HealthzAddress != "0.0.0.0:10256" || len(f.o.NodePortAddresses) != 1 {
		t.Errorf("kubeconfig %s, options %+v, mode %s", kubeconfig, f.o, f.proxyMode)
	}
}
