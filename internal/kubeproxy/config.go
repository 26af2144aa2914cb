// Package kubeproxy lets the svcnet agent take kube-proxy's place on a node:
// it reads kube-proxy's configuration file (KubeProxyConfiguration, the
// fields whose meaning svcnet shares) and removes what kube-proxy left in the
// kernel (its nftables tables and iptables chains) when the agent takes over.
package kubeproxy

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	kpv1alpha1 "k8s.io/kube-proxy/config/v1alpha1"
	"sigs.k8s.io/yaml"
)

// Settings are the KubeProxyConfiguration fields the agent honours; empty
// (zero) means the file does not set it.
type Settings struct {
	Kubeconfig         string // clientConnection.kubeconfig
	HostnameOverride   string
	ClusterCIDR        string
	Mode               string
	NodePortAddresses  []string
	MetricsBindAddress string
	HealthzBindAddress string
	EnableProfiling    bool          // pprof on the metrics address
	MinSyncPeriod      time.Duration // <mode>.minSyncPeriod
	SyncPeriod         time.Duration // <mode>.syncPeriod
	// Ignored names the fields the file sets that svcnet does not honour.
	Ignored []string
}

// honoured are the field paths Settings takes (minSyncPeriod and syncPeriod:
// of the mode's block).
var honoured = map[string]bool{
	"apiVersion": true, "kind": true,
	"clientConnection.kubeconfig": true, "hostnameOverride": true, "clusterCIDR": true, "mode": true,
	"nodePortAddresses": true, "metricsBindAddress": true, "healthzBindAddress": true,
	"enableProfiling": true,
}

// ReadFile reads a KubeProxyConfiguration file (kube-proxy --config).
func ReadFile(path string) (*Settings, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--config: %w", err)
	}
	s, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("--config %s: %w", path, err)
	}
	return s, nil
}

// Parse decodes a KubeProxyConfiguration strictly (as kube-proxy does:
// unknown fields and wrong types are errors) and returns the fields svcnet
// honours, naming the other fields that hold a non-default value.
func Parse(data []byte) (*Settings, error) {
	var c kpv1alpha1.KubeProxyConfiguration
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		return nil, err
	}
	if want := kpv1alpha1.SchemeGroupVersion.String(); c.APIVersion != want {
		return nil, fmt.Errorf("apiVersion: %q, want %q", c.APIVersion, want)
	}
	if c.Kind != "KubeProxyConfiguration" {
		return nil, fmt.Errorf("kind: %q, want KubeProxyConfiguration", c.Kind)
	}
	s := &Settings{Kubeconfig: c.ClientConnection.Kubeconfig, HostnameOverride: c.HostnameOverride, ClusterCIDR: c.ClusterCIDR,
		Mode: string(c.Mode), NodePortAddresses: c.NodePortAddresses, MetricsBindAddress: c.MetricsBindAddress,
		HealthzBindAddress: c.HealthzBindAddress, EnableProfiling: c.EnableProfiling}
	block := "nftables"
	switch c.Mode {
	case "", "iptables": // kube-proxy's default mode on Linux
		s.MinSyncPeriod, s.SyncPeriod, block = c.IPTables.MinSyncPeriod.Duration, c.IPTables.SyncPeriod.Duration, "iptables"
	case "ipvs":
		s.MinSyncPeriod, s.SyncPeriod, block = c.IPVS.MinSyncPeriod.Duration, c.IPVS.SyncPeriod.Duration, "ipvs"
	default:
		s.MinSyncPeriod, s.SyncPeriod = c.NFTables.MinSyncPeriod.Duration, c.NFTables.SyncPeriod.Duration
	}
	var generic map[string]any
	if err := yaml.Unmarshal(data, &generic); err != nil {
		return nil, err
	}
	setFields(generic, "", func(path string) {
		if !honoured[path] && path != block+".minSyncPeriod" && path != block+".syncPeriod" {
			s.Ignored = append(s.Ignored, path)
		}
	})
	sort.Strings(s.Ignored)
	return s, nil
}

// setFields calls f with the path of every leaf of v holding a non-default
// value (kubeadm writes every field, most of them empty).
func setFields(v any, path string, f func(string)) {
	switch x := v.(type) {
	case map[string]any:
		for k, sub := range x {
			p := k
			if path != "" {
				p = path + "." + k
			}
			setFields(sub, p, f)
		}
	case nil:
	case string:
		if x != "" && x != "0s" {
			f(path)
		}
	case bool:
		if x {
			f(path)
		}
	case float64:
		if x != 0 {
			f(path)
		}
	case []any:
		if len(x) > 0 {
			f(path)
		}
	default:
		f(path)
	}
}

// Warning is the message for the fields the agent ignores ("" when none).
func (s *Settings) Warning() string {
	if len(s.Ignored) == 0 {
		return ""
	}
	return "--config: svcnet ignores these KubeProxyConfiguration fields: " + strings.Join(s.Ignored, ", ")
}
