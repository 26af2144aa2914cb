package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/svcnet/svcnet/internal/auth"
	"github.com/svcnet/svcnet/internal/system"
)

// defaultDataDir is /var/lib/svcnet for root, ~/.svcnet otherwise.
func defaultDataDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/svcnet"
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".svcnet")
	}
	return ".svcnet"
}

func serverFlags(fs *pflag.FlagSet, o *system.ServerOptions, bind string) *string {
	var etcd string
	fs.StringVar(&o.DataDir, "data-dir", defaultDataDir(), "directory for embedded etcd data, the cluster CA, certificates, tokens and the kubeconfig")
	fs.StringVar(&etcd, "etcd-servers", "", "comma-separated external etcd endpoints (e.g. http://10.0.0.1:2379); empty = embedded etcd in --data-dir")
	fs.StringVar(&o.Etcd.Name, "etcd-name", "", "this server's member name in --etcd-initial-cluster")
	fs.StringVar(&o.Etcd.InitialCluster, "etcd-initial-cluster", "", "run the embedded etcd as one member of a cluster: every member's name=http://host:peerport (e.g. a=http://10.0.0.1:2380,b=http://10.0.0.2:2380,c=http://10.0.0.3:2380), one svcnet server per member")
	fs.StringVar(&o.Etcd.ClientURL, "etcd-client-url", "", "with --etcd-initial-cluster: where this member serves etcd clients such as etcdctl (default: a free loopback port)")
	fs.StringVar(&o.EtcdPrefix, "etcd-prefix", "/registry", "prefix of every key svcnet writes to etcd")
	fs.StringVar(&o.BindAddress, "bind-address", bind, "IP address the API server listens on")
	fs.IntVar(&o.SecurePort, "secure-port", 6443, "HTTPS port of the API server")
	fs.StringVar(&o.AdvertiseAddress, "advertise-address", "", "IP address published in the kubernetes Service's endpoints (default: bind address or first non-loopback IPv4)")
	fs.StringVar(&o.ServiceCIDR, "service-cluster-ip-range", "10.96.0.0/12", "CIDR cluster IPs are allocated from")
	fs.StringVar(&o.NodePortRange, "service-node-port-range", "30000-32767", "port range node ports are allocated from")
	fs.StringVar(&o.ClusterCIDR, "cluster-cidr", "10.244.0.0/16", "pod network: every node gets a piece of it as spec.podCIDR (empty: off)")
	fs.IntVar(&o.NodeCIDRMaskSize, "node-cidr-mask-size", 24, "prefix length of each node's pod CIDR")
	fs.DurationVar(&o.NodeMonitorGracePeriod, "node-monitor-grace-period", 5*time.Second, "how long a node may miss heartbeats before it and its pods are marked not ready")
	fs.DurationVar(&o.ClusterSigningDuration, "cluster-signing-duration", 365*24*time.Hour, "lifetime of the node client certificates the control plane signs (nodes renew them at 70-90% of it)")
	fs.StringSliceVar(&o.LoadBalancerPool, "load-balancer-pool", nil, "addresses LoadBalancer Services get (ranges a-b or CIDRs, comma separated), kept as the LoadBalancerPool \"default\"")
	fs.BoolVar(&o.IsolateNamespaces, "isolate-namespaces", false, "write a NetworkPolicy svcnet-isolate-namespace into every namespace (but kube-*): pods accept traffic only from pods of their own namespace; opt a namespace out with the annotation svcnet.io/isolate-namespace=false")
	return &etcd
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// controlPlaneCmd builds a command that runs the control plane until interrupted;
// started says what to do once it serves and returns the line to print and a
// function to wait for what it started (nil: nothing) before shutting down.
func controlPlaneCmd(use, short, bind string, started func(cp *system.ControlPlane) (string, func(), error)) *cobra.Command {
	var o system.ServerOptions
	cmd := &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs}
	etcd := serverFlags(cmd.Flags(), &o, bind)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		o.EtcdServers = splitList(*etcd)
		o.Log = slog.Default()
		cp, err := system.StartControlPlane(cmd.Context(), o)
		if err != nil {
			return err
		}
		defer cp.Close()
		line, wait, err := started(cp)
		if err != nil {
			return err
		}
		fmt.Fprintln(cmd.OutOrStdout(), line)
		<-cmd.Context().Done()
		slog.Info("shutting down")
		if wait != nil {
			wait()
		}
		return nil
	}
	return cmd
}

func newServerCmd() *cobra.Command {
	return controlPlaneCmd("server", "Run the Kubernetes-compatible API server (embedded or external etcd)", "0.0.0.0",
		func(cp *system.ControlPlane) (string, func(), error) {
			return fmt.Sprintf("svcnet API server at %s (admin kubeconfig: svcnet kubeconfig --data-dir %s)", cp.URL, cp.Opts.DataDir), nil, nil
		})
}

func newUpCmd() *cobra.Command {
	var af agentFlags
	var tokenTTL time.Duration
	var cmd *cobra.Command
	cmd = controlPlaneCmd("up", "Run everything on this machine: embedded etcd, API server, controllers, a node agent; write an admin kubeconfig", "127.0.0.1",
		func(cp *system.ControlPlane) (string, func(), error) {
			kc := filepath.Join(cp.Opts.DataDir, "kubeconfig")
			if err := cp.WriteKubeconfig(kc); err != nil {
				return "", nil, fmt.Errorf("write kubeconfig: %w", err)
			}
			cfg, err := cp.ClientConfig(auth.NodeUserPrefix+af.o.NodeName, auth.GroupNodes)
			if err != nil {
				return "", nil, err
			}
			if af.o.NodeIP == "" {
				af.o.NodeIP = cp.Opts.AdvertiseAddress
			}
			af.o.ClusterCIDR, af.o.ServiceCIDR = cp.Opts.ClusterCIDR, cp.Opts.ServiceCIDR
			if err := af.resolve(); err != nil {
				return "", nil, err
			}
			if !cmd.Flags().Changed("root-dir") {
				af.o.RootDir = filepath.Join(cp.Opts.DataDir, "agent")
			}
			af.defaultDNSListen(cmd)
			ready, done := make(chan struct{}), make(chan error, 1)
			go func() { done <- af.run(cmd, cfg, ready) }()
			select {
			case <-ready:
			case err := <-done:
				return "", nil, fmt.Errorf("node agent: %w", err)
			}
			wait := func() {
				select { // the agent removes what it added to the node before it returns
				case <-done:
				case <-time.After(20 * time.Second):
				}
			}
			jl, err := joinLine(cmd.Context(), cp, tokenTTL) // join.go
			if err != nil {
				return "", nil, err
			}
			return fmt.Sprintf("svcnet is up at %s. Use it with: export KUBECONFIG=%s; kubectl get svc\n%s", cp.URL, kc, jl), wait, nil
		})
	af.ingressDefault = true
	af.add(cmd.Flags())
	cmd.Flags().StringVar(&af.o.NodeIP, "node-ip", "", "this node's IP address (default: --advertise-address)")
	cmd.Flags().DurationVar(&tokenTTL, "token-ttl", 24*time.Hour, "how long the printed join token is valid")
	return cmd
}
