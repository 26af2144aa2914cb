package main

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/svcnet/svcnet/internal/agent"
	"github.com/svcnet/svcnet/internal/apilb"
	"github.com/svcnet/svcnet/internal/containerd"
	"github.com/svcnet/svcnet/internal/dns"
	"github.com/svcnet/svcnet/internal/ingress"
	"github.com/svcnet/svcnet/internal/podnet"
	"github.com/svcnet/svcnet/internal/proxy"
)

// agentFlags are the node agent's flags, shared by `svcnet agent` and `svcnet up`.
type agentFlags struct {
	o          agent.Options
	resolvConf string
	podRuntime string
	proxyMode  string
	clusterDNS string
	cniDirs    string
	runtime    string
	images     string
	// ingressDefault is --ingress's default (on in svcnet up).
	ingressDefault bool
}

func (f *agentFlags) add(fs *pflag.FlagSet) {
	host, _ := os.Hostname()
	fs.StringVar(&f.o.NodeName, "node-name", strings.ToLower(host), "name of this node")
	fs.DurationVar(&f.o.LeaseDuration, "node-lease-duration", 4*time.Second, "lease duration the node heartbeats with (renewed every quarter of it)")
	fs.StringVar(&f.o.DNSListen, "cluster-dns-listen", "", "run the cluster DNS server on this address (e.g. 10.96.0.10:53; empty: off)")
	fs.StringVar(&f.o.DNSZone, "cluster-domain", "cluster.local", "cluster DNS zone")
	fs.BoolVar(&f.o.DNSAutopath, "cluster-dns-autopath", false, "walk pods' DNS search paths server-side (cuts ndots:5 lookups)")
	fs.StringVar(&f.resolvConf, "dns-resolv-conf", "/etc/resolv.conf", "upstream resolvers of the cluster DNS for other names (empty: none)")
	fs.StringVar(&f.podRuntime, "pod-runtime", "auto", "run the pods bound to this node: on, off, or auto (on when root on Linux)")
	fs.StringVar(&f.runtime, "container-runtime", "auto", "how pods run: cri (images, through containerd), process (commands as processes of the node), or auto (cri when containerd is installed or --container-runtime-endpoint is set)")
	fs.StringVar(&f.o.RuntimeEndpoint, "container-runtime-endpoint", "", "CRI endpoint, e.g. unix:///run/containerd/containerd.sock (empty: svcnet starts its own containerd in <root-dir>/containerd)")
	fs.Func("insecure-registry", "registry `host:port` pulled from over plain HTTP, or HTTPS without verifying its certificate (repeatable)", func(s string) error {
		if err := containerd.ValidRegistry(s); err != nil {
			return err
		}
		f.o.InsecureRegistries = append(f.o.InsecureRegistries, s)
		return nil
	})
	fs.StringVar(&f.images, "images", "", "directory of image tarballs (scripts/test-images.sh) imported into svcnet's containerd at start")
	fs.StringVar(&f.o.RootDir, "root-dir", "/var/lib/svcnet/agent", "directory for pod files, container logs and CNI state")
	fs.StringVar(&f.clusterDNS, "cluster-dns", "10.96.0.10", "comma-separated nameservers pods get in their resolv.conf (the kube-dns Service IP)")
	fs.StringVar(&f.cniDirs, "cni-bin-dir", strings.Join(podnet.DefaultPluginDirs, ","), "comma-separated directories with the CNI plugins (bridge, host-local, loopback)")
	fs.StringVar(&f.o.PodNetwork, "pod-network", string(podnet.ModeAuto), "how pods reach other nodes' pods: host-gw (routes via the node IPs; the nodes share a link), vxlan (a VXLAN tunnel, VNI 1, UDP 8472), or auto (host-gw to nodes on a connected subnet, VXLAN to the others)")
	fs.StringVar(&f.proxyMode, "proxy-mode", "auto", "service proxy backend: nftables, iptables (kube-proxy's rule layout), userspace, none, or auto (nftables when root on Linux, else userspace)")
	fs.StringVar(&f.o.ProxyScheduler, "proxy-scheduler", "random", "how the proxy picks a new connection's endpoint: random or round-robin (nftables: numgen inc, one counter per endpoint count)")
	fs.StringVar(&f.o.HealthzAddress, "healthz-bind-address", "0.0.0.0:10256", "the proxy's /healthz (kube-proxy's port; empty: off)")
	fs.StringVar(&f.o.MetricsAddress, "metrics-bind-address", "127.0.0.1:10249", "the proxy's /metrics with kube-proxy's metric names (empty: off)")
	fs.BoolVar(&f.o.Profiling, "profiling", false, "serve Go's profiles under /debug/pprof/ on --metrics-bind-address (kube-proxy's --profiling)")
	fs.DurationVar(&f.o.MinSyncPeriod, "min-sync-period", 0, "a floor between two proxy rule syncs (kube-proxy's); 0: changes are written at once, paced only by --sync-cpu-share")
	fs.Float64Var(&f.o.SyncShare, "sync-cpu-share", proxy.DefaultSyncShare, "the share of one core the proxy may spend writing rules under continuous churn (0 < share <= 1): after a sync that cost c it waits c*(1/share-1) once a small burst allowance is used")
	fs.DurationVar(&f.o.SyncPeriod, "sync-period", proxy.DefaultSyncPeriod, "how often the proxy checks that the kernel still holds its rules and repairs them (kube-proxy's syncPeriod)")
	fs.BoolVar(&f.o.Ingress, "ingress", f.ingressDefault, "run the ingress edge (Ingresses of class svcnet) on this node's address")
	fs.IntVar(&f.o.IngressHTTPPort, "ingress-http-port", 80, "the ingress' plain HTTP (and h2c) port")
	fs.IntVar(&f.o.IngressHTTPSPort, "ingress-https-port", 443, "the ingress' HTTPS port (certificates from the Ingresses' TLS Secrets)")
	fs.BoolVar(&f.o.IngressAccessLog, "ingress-access-log", false, "log one line per ingress request")
	fs.BoolVar(&f.o.NetworkPolicy, "network-policy", true, "enforce NetworkPolicies for this node's pods in nftables (table ip svcnet-policy; root)")
	fs.IntVar(&f.o.AgentPort, "agent-port", 10250, "HTTPS port the API server reaches for logs, exec and attach (the kubelet's port)")
}

// resolve checks the flags that need more than parsing.
// defaultDNSListen makes a node that runs pods (svcnet up's, a joined one)
// serve the cluster DNS on the pods' nameserver unless --cluster-dns-listen
// says otherwise: its pods ask this node's DNS, nothing else answers there.
func (f *agentFlags) defaultDNSListen(cmd *cobra.Command) {
	if !cmd.Flags().Changed("cluster-dns-listen") && f.o.PodRuntime && len(f.o.ClusterDNS) > 0 {
		f.o.DNSListen = net.JoinHostPort(f.o.ClusterDNS[0], "53")
	}
}

func (f *agentFlags) resolve() error {
	switch {
	case f.o.SyncShare <= 0 || f.o.SyncShare > 1:
		return fmt.Errorf("--sync-cpu-share: %v is not a share of one core (0 < share <= 1)", f.o.SyncShare)
	case f.o.SyncPeriod <= 0:
		return fmt.Errorf("--sync-period: %v is not a positive duration", f.o.SyncPeriod)
	case f.o.MinSyncPeriod < 0:
		return fmt.Errorf("--min-sync-period: %v is negative", f.o.MinSyncPeriod)
	}
	switch f.podRuntime {
	case "on":
		if os.Geteuid() != 0 || goruntime.GOOS != "linux" {
			return fmt.Errorf("--pod-runtime=on: the pod runtime needs root on Linux (network namespaces, CNI)")
		}
		f.o.PodRuntime = true
	case "off":
		f.o.PodRuntime = false
	case "auto":
		f.o.PodRuntime = os.Geteuid() == 0 && goruntime.GOOS == "linux"
		if !f.o.PodRuntime {
			slog.Warn("not root: the pod runtime is off (pods bound to this node do not run; deletions are confirmed at once)")
		}
	default:
		return fmt.Errorf("--pod-runtime: %q is not on, off or auto", f.podRuntime)
	}
	switch f.runtime {
	case "auto":
		f.o.ContainerRuntime = agent.RuntimeProcess
		if _, err := exec.LookPath("containerd"); err == nil || f.o.RuntimeEndpoint != "" {
			f.o.ContainerRuntime = agent.RuntimeCRI
		} else if f.o.PodRuntime {
			slog.Info("containerd is not installed: pods run as processes of this node and need a command (apt-get install containerd runc for images)")
		}
	case agent.RuntimeCRI, agent.RuntimeProcess:
		f.o.ContainerRuntime = f.runtime
	default:
		return fmt.Errorf("--container-runtime: %q is not cri, process or auto", f.runtime)
	}
	if f.o.ContainerRuntime == agent.RuntimeCRI && f.o.RuntimeEndpoint == "" && f.o.PodRuntime {
		if _, err := exec.LookPath("containerd"); err != nil {
			return fmt.Errorf("--container-runtime=cri: containerd is not installed (apt-get install containerd runc), or give --container-runtime-endpoint")
		}
	}
	if f.images != "" {
		files, err := filepath.Glob(filepath.Join(f.images, "*.tar"))
		if err != nil || len(files) == 0 {
			return fmt.Errorf("--images: no *.tar image files in %s", f.images)
		}
		f.o.ImportImages = files
	}
	switch f.proxyMode {
	case "auto":
		f.o.ProxyMode = "userspace"
		if os.Geteuid() == 0 && goruntime.GOOS == "linux" {
			f.o.ProxyMode = "nftables"
		}
	case "userspace":
		f.o.ProxyMode = "userspace"
	case "nftables", "iptables":
		if os.Geteuid() != 0 {
			return fmt.Errorf("--proxy-mode=%s: needs root (it programs the kernel's %s)", f.proxyMode, f.proxyMode)
		}
		f.o.ProxyMode = f.proxyMode
	case "none":
		f.o.ProxyMode = "none"
	default:
		return fmt.Errorf("--proxy-mode: %q is not nftables, iptables, userspace, none or auto", f.proxyMode)
	}
	f.o.ClusterDNS = splitList(f.clusterDNS)
	f.o.CNIPluginDirs = splitList(f.cniDirs)
	f.o.HostResolvConf = "/etc/resolv.conf"
	return nil
}

// runAnnounced is run, printing "node NAME registered" once the node is.
func (f *agentFlags) runAnnounced(cmd *cobra.Command, cfg *rest.Config) error {
	ready := make(chan struct{})
	go func() {
		select {
		case <-ready:
			fmt.Fprintf(cmd.OutOrStdout(), "svcnet agent: node %s registered\n", f.o.NodeName)
		case <-cmd.Context().Done():
		}
	}()
	return f.run(cmd, cfg, ready)
}

// start runs an agent with client config cfg until the command's context ends.
func (f *agentFlags) run(cmd *cobra.Command, cfg *rest.Config, ready chan<- struct{}) error {
	o := f.o
	if len(o.ClientCA) == 0 { // svcnet join sets it: its client config carries the CA in its transport
		o.ClientCA = cfg.TLSClientConfig.CAData
	}
	if len(o.ClientCA) == 0 && cfg.TLSClientConfig.CAFile != "" {
		data, err := os.ReadFile(cfg.TLSClientConfig.CAFile)
		if err != nil {
			return fmt.Errorf("--kubeconfig: certificate-authority: %w", err)
		}
		o.ClientCA = data
	}
	o.Log = slog.Default()
	if o.DNSListen != "" && f.resolvConf != "" {
		ups, err := dns.UpstreamsFromResolvConf(f.resolvConf)
		if err != nil {
			return fmt.Errorf("--dns-resolv-conf: %w", err)
		}
		o.DNSUpstreams = ups
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	if o.Ingress { // Gateway API routes are a second input of the ingress edge
		gw, err := ingress.NewGatewaySource(cfg, client, o.Log.With("component", "gateway"))
		if err != nil {
			return err
		}
		o.IngressSources = append(o.IngressSources, gw)
	}
	a, err := agent.New(client, o)
	if err != nil {
		return err
	}
	return a.Run(cmd.Context(), ready)
}

func newAgentCmd() *cobra.Command {
	var f agentFlags
	var kubeconfig string
	var cleanup bool
	var kp kubeProxyFlags
	var servers []string
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the node agent: register the node, heartbeat, run its pods, serve cluster DNS",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cleanup {
				if err := agent.Cleanup(f.o.ServiceCIDR); err != nil {
					return err
				}
				if err := agent.CleanupIPTables(); err != nil {
					return err
				}
				if err := agent.CleanupNetworkPolicy(); err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), "svcnet agent: proxy rules and the service CIDR route removed")
				n, err := agent.CleanupPods(cmd.Context(), f.o.RootDir, f.o.RuntimeEndpoint, slog.Default())
				if err != nil {
					return err
				}
				if n >= 0 {
					fmt.Fprintf(cmd.OutOrStdout(), "svcnet agent: %d pod sandboxes removed\n", n)
				}
				return nil
			}
			if err := kp.apply(cmd, &f, &kubeconfig); err != nil { // kube-proxy's flags and --config (kubeproxy.go)
				return err
			}
			if err := f.resolve(); err != nil {
				return err
			}
			cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
			if err != nil {
				return fmt.Errorf("--kubeconfig: %w", err)
			}
			if len(servers) > 0 { // several API servers: the kubeconfig's credentials, through a failover proxy
				addrs, err := apilb.Addresses("--server", servers)
				if err != nil {
					return err
				}
				if cfg.Host, err = failoverURL(cmd.Context(), addrs); err != nil {
					return err
				}
			}
			cfg.QPS, cfg.Burst = 50, 100
			return f.runAnnounced(cmd, cfg)
		},
	}
	home, _ := os.UserHomeDir()
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", filepath.Join(home, ".kube", "config"), "kubeconfig with this node's identity (svcnet kubeconfig --user system:node:NAME)")
	cmd.Flags().StringVar(&f.o.NodeIP, "node-ip", "", "this node's IP address (InternalIP; empty: the existing Node's, with --pod-runtime off)")
	cmd.Flags().StringSliceVar(&servers, "server", nil, "API servers to use instead of the kubeconfig's, comma separated (https://host:port,...): connections go to the one that answered last and fail over to the next")
	cmd.Flags().BoolVar(&cleanup, "cleanup", false, "remove what the service proxy programmed (nftables table, service CIDR route) and the pods svcnet's containerd runs (in --root-dir), and exit")
	cmd.Flags().StringVar(&f.o.ClusterCIDR, "cluster-cidr", "10.244.0.0/16", "pod network of the cluster: the proxy masquerades traffic from elsewhere to cluster IPs")
	cmd.Flags().StringVar(&f.o.ServiceCIDR, "service-cluster-ip-range", "10.96.0.0/12", "cluster IP range: the proxy rejects traffic to unallocated cluster IPs in it")
	f.add(cmd.Flags())
	kp.add(cmd.Flags(), &f)
	return cmd
}
