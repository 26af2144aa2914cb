package main

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/svcnet/svcnet/internal/kubeproxy"
)

// kubeProxyFlags are kube-proxy's flags that `svcnet agent` takes with the
// same meaning, so a kube-proxy DaemonSet's command line carries over.
type kubeProxyFlags struct {
	config          string
	cleanup         bool
	nodePortAddress []string
}

func (k *kubeProxyFlags) add(fs *pflag.FlagSet, f *agentFlags) {
	fs.StringVar(&k.config, "config", "", "kube-proxy's KubeProxyConfiguration file (kubeproxy.config.k8s.io/v1alpha1): clientConnection.kubeconfig, hostnameOverride, clusterCIDR, mode, nodePortAddresses, metricsBindAddress, healthzBindAddress and the mode's minSyncPeriod and syncPeriod are honoured (flags given on the command line win); other set fields are named in a warning")
	fs.Func("hostname-override", "kube-proxy's name for --node-name: the Node this agent serves", func(s string) error {
		f.o.NodeName = strings.ToLower(strings.TrimSpace(s))
		return nil
	})
	fs.StringSliceVar(&k.nodePortAddress, "nodeport-addresses", nil, "kube-proxy's: CIDRs whose local addresses serve node ports (userspace mode; the nftables mode serves them on every local address)")
	fs.BoolVar(&k.cleanup, "cleanup-kube-proxy", false, "before starting, remove what kube-proxy left on this node (nftables tables ip/ip6 kube-proxy, iptables KUBE-* chains but the kubelet's); stop kube-proxy first")
}

// kubeProxyMode maps kube-proxy's --proxy-mode values onto svcnet's.
func kubeProxyMode(m string) (string, string) {
	switch m {
	case "", "auto":
		return "auto", ""
	case "ipvs":
		return "nftables", fmt.Sprintf("--proxy-mode %s: svcnet programs nftables for it", m)
	}
	return m, ""
}

// apply takes the configuration file's settings for the flags not given on
// the command line, then maps kube-proxy's values; kubeconfig is --kubeconfig.
func (k *kubeProxyFlags) apply(cmd *cobra.Command, f *agentFlags, kubeconfig *string) error {
	if k.config != "" {
		s, err := kubeproxy.ReadFile(k.config)
		if err != nil {
			return err
		}
		if w := s.Warning(); w != "" {
			slog.Warn(w)
		}
		fs := cmd.Flags()
		set := func(flag, v string, to *string) {
			if v != "" && !fs.Changed(flag) {
				*to = v
			}
		}
		set("kubeconfig", s.Kubeconfig, kubeconfig)
		if s.HostnameOverride != "" && !fs.Changed("hostname-override") && !fs.Changed("node-name") {
			f.o.NodeName = strings.ToLower(s.HostnameOverride)
		}
		set("cluster-cidr", s.ClusterCIDR, &f.o.ClusterCIDR)
		set("proxy-mode", s.Mode, &f.proxyMode)
		set("metrics-bind-address", s.MetricsBindAddress, &f.o.MetricsAddress)
		set("healthz-bind-address", s.HealthzBindAddress, &f.o.HealthzAddress)
		if s.EnableProfiling && !fs.Changed("profiling") {
			f.o.Profiling = true
		}
		if s.MinSyncPeriod > 0 && !fs.Changed("min-sync-period") {
			f.o.MinSyncPeriod = s.MinSyncPeriod
		}
		if s.SyncPeriod > 0 && !fs.Changed("sync-period") {
			f.o.SyncPeriod = s.SyncPeriod
		}
		if len(s.NodePortAddresses) > 0 && !fs.Changed("nodeport-addresses") {
			k.nodePortAddress = s.NodePortAddresses
		}
	}
	mode, note := kubeProxyMode(f.proxyMode)
	if note != "" {
		slog.Info(note)
	}
	f.proxyMode = mode
	f.o.NodePortAddresses = k.nodePortAddress
	if k.cleanup {
		removed, err := kubeproxy.Cleanup()
		if err != nil {
			return fmt.Errorf("--cleanup-kube-proxy: %w", err)
		}
		for _, r := range removed {
			slog.Info("removed kube-proxy's rules", "what", r)
		}
	}
	return nil
}
