// Package agent is the node agent: it registers its Node, keeps it alive through a
// coordination.k8s.io Lease in kube-node-lease and Ready status heartbeats, and
// runs the node-local services (cluster DNS now; pods and the service proxy
// next). It talks to the API only through client-go, as system:node:<name>.
package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	nodeutil "k8s.io/component-helpers/node/util"

	"github.com/svcnet/svcnet/internal/dns"
	"github.com/svcnet/svcnet/internal/drain"
	"github.com/svcnet/svcnet/internal/ingress"
	"github.com/svcnet/svcnet/internal/podnet"
)

// Version is what the node reports as its kubelet version.
const Version = "v1.37.2-svcnet"

// Options configure an agent.
type Options struct {
	NodeName string
	NodeIP   string
	// LeaseDuration is written into the Lease; renewals happen every quarter of it.
	LeaseDuration time.Duration
	// DNSListen, when set, runs the cluster DNS server there (e.g. 10.96.0.10:53).
	DNSListen string
	DNSZone   string
	// DNSUpstreams are resolvers for names outside the cluster (nil: SERVFAIL).
	DNSUpstreams []string
	// DNSAutopath walks pods' search paths server-side.
	DNSAutopath bool
	// PodRuntime runs the pods bound to this node (root, Linux); without it
	// deletions are confirmed at once.
	PodRuntime bool
	// ContainerRuntime is how pods run: RuntimeCRI (images, through a CRI
	// runtime) or RuntimeProcess (processes of the node).
	ContainerRuntime string
	// RuntimeEndpoint is the CRI endpoint (unix://...); empty with RuntimeCRI
	// starts the node's own containerd in RootDir/containerd.
	RuntimeEndpoint string
	// ImportImages are image tarballs imported into the node's own containerd at start.
	ImportImages []string
	// InsecureRegistries (host:port) are pulled from over plain HTTP (or
	// HTTPS without verification) by the node's own containerd.
	InsecureRegistries []string
	// RootDir holds pod files, logs and CNI state.
	RootDir string
	// ClusterDNS is the nameserver pods get (the kube-dns Service IP).
	ClusterDNS     []string
	CNIPluginDirs  []string
	HostResolvConf string
	// PodNetwork is how pods reach other nodes' pods: vxlan, host-gw or auto.
	PodNetwork string
	// AgentPort serves logs, exec and attach to the API server (0: any free port).
	AgentPort int
	// ClientCA (PEM) verifies the API server's client certificate on AgentPort.
	ClientCA []byte
	// NodeLogDir is listed and served under /logs/ on AgentPort, as the
	// kubelet serves the node's /var/log (empty: DefaultNodeLogDir).
	NodeLogDir string
	// ProxyMode is the service proxy backend: nftables, iptables, userspace, or none.
	ProxyMode string
	// ProxyScheduler is how a new connection's endpoint is chosen: random
	// (the default) or round-robin.
	ProxyScheduler string
	ClusterCIDR    string        // pod network (traffic from elsewhere to a cluster IP is masqueraded)
	ServiceCIDR    string        // cluster IPs outside the allocated ones are rejected
	MinSyncPeriod  time.Duration // a floor between syncs (0: the budget alone)
	SyncPeriod     time.Duration // drift check and repair period (0: proxy.DefaultSyncPeriod)
	SyncShare      float64       // share of one core syncs may take (0: proxy.DefaultSyncShare)
	// NodePortAddresses (kube-proxy's --nodeport-addresses: CIDRs or primary)
	// limit where node ports listen (userspace); empty: every address.
	NodePortAddresses []string
	// HealthzAddress and MetricsAddress serve the proxy's /healthz and /metrics (empty: off).
	HealthzAddress, MetricsAddress string
	// Profiling serves Go's /debug/pprof/ beside /metrics (kube-proxy's --profiling).
	Profiling bool
	// Ingress runs the ingress edge on IngressHTTPPort and IngressHTTPSPort of
	// NodeIP (internal/ingress); IngressSources are further route inputs.
	Ingress                           bool
	IngressHTTPPort, IngressHTTPSPort int
	IngressAccessLog                  bool
	IngressSources                    []ingress.Source
	Log                               *slog.Logger
	Now                               func() time.Time

	// NetworkPolicy enforces NetworkPolicies for this node's pods (netpol.go).
	NetworkPolicy bool
}

// Validate checks options and fills defaults.
func (o *Options) Validate() error {
	if o.NodeName == "" || strings.ToLower(o.NodeName) != o.NodeName {
		return fmt.Errorf("--node-name: %q must be a non-empty lower-case name", o.NodeName)
	}
	if _, err := netip.ParseAddr(o.NodeIP); err != nil && (o.NodeIP != "" || o.PodRuntime) { // empty: the existing Node's (adopt.go)
		return fmt.Errorf("--node-ip: %q is not an IP address", o.NodeIP)
	}
	if o.LeaseDuration <= 0 {
		o.LeaseDuration = 4 * time.Second
	}
	if o.DNSZone == "" {
		o.DNSZone = "cluster.local"
	}
	if o.NodeLogDir == "" {
		o.NodeLogDir = DefaultNodeLogDir
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.PodRuntime && o.RootDir == "" {
		return fmt.Errorf("--root-dir: required for the pod runtime")
	}
	if _, err := podnet.ParseMode(o.PodNetwork); err != nil {
		return err
	}
	switch o.ContainerRuntime {
	case "":
		o.ContainerRuntime = RuntimeProcess
	case RuntimeProcess, RuntimeCRI:
	default:
		return fmt.Errorf("--container-runtime: %q is not cri or process", o.ContainerRuntime)
	}
	if o.AgentPort < 0 || o.AgentPort > 65535 {
		return fmt.Errorf("--agent-port: %d is not a port", o.AgentPort)
	}
	switch o.ProxyMode {
	case "", "none":
		o.ProxyMode = "none"
	case "nftables", "iptables", "userspace":
		for flag, v := range map[string]string{"--cluster-cidr": o.ClusterCIDR, "--service-cluster-ip-range": o.ServiceCIDR} {
			if v == "" {
				continue
			}
			if p, err := netip.ParsePrefix(v); err != nil || !p.Addr().Is4() {
				return fmt.Errorf("%s: %q is not an IPv4 CIDR", flag, v)
			}
		}
	default:
		return fmt.Errorf("--proxy-mode: %q is not nftables, iptables, userspace or none", o.ProxyMode)
	}
	if err := validNodePortAddresses(o.NodePortAddresses); err != nil {
		return err
	}
	switch o.ProxyScheduler {
	case "", "random", "round-robin":
	default:
		return fmt.Errorf("--proxy-scheduler: %q is not random or round-robin", o.ProxyScheduler)
	}
	for _, ip := range o.ClusterDNS {
		if _, err := netip.ParseAddr(ip); err != nil {
			return fmt.Errorf("--cluster-dns: %q is not an IP address", ip)
		}
	}
	return nil
}

// containerRuntimeVersion is what the Node reports as its container runtime.
func (a *Agent) containerRuntimeVersion() string {
	if a.runtimeVersion != "" {
		return a.runtimeVersion
	}
	return "svcnet://" + strings.TrimPrefix(Version, "v")
}

// Agent is one running node agent.
type Agent struct {
	o      Options
	client kubernetes.Interface
	port   int // the agent port, once listening
	// runtimeVersion is the container runtime's name://version for the Node.
	runtimeVersion string
	noRun          string // why pods bound to this node do not run (preflight.go)
	kubeletNode    bool   // the Node is a kubelet's: read, never written (adopt.go)
	podBridge      string // svcnet's pod bridge, when pods use svcnet's network

	nodeZone func() string // this node's zone label (zone.go), for topology hints

	proxyDone  chan struct{}
	ingressReg *prometheus.Registry // served with the proxy's metrics
	drain      *drain.Paths         // what this node's proxy and ingress route to (drain.go)
}

// New builds an agent.
func New(client kubernetes.Interface, o Options) (*Agent, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	return &Agent{o: o, client: client, ingressReg: prometheus.NewRegistry(), drain: drain.NewPaths()}, nil
}

func osImage() string {
	data, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return runtime.GOOS
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return runtime.GOOS
}

func kernel() string {
	data, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}

// nodeStatus is what the agent reports about its node.
func (a *Agent) nodeStatus(prev corev1.NodeStatus) corev1.NodeStatus {
	now := metav1.NewTime(a.o.Now())
	ready := corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
		Message: "svcnet agent is posting ready status", LastHeartbeatTime: now, LastTransitionTime: now}
	if a.o.PodRuntime && a.port == 0 {
		// As the kubelet, not Ready until pods can run (and their logs, exec
		// and nodes/proxy reach the agent's port).
		ready.Status, ready.Message = corev1.ConditionFalse, "svcnet agent: the pod runtime is starting"
		ready.Reason = "KubeletNotReady"
	}
	for _, c := range prev.Conditions {
		if c.Type == corev1.NodeReady && c.Status == ready.Status {
			ready.LastTransitionTime = c.LastTransitionTime
		}
	}
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewQuantity(int64(runtime.NumCPU()), resource.DecimalSI),
		corev1.ResourcePods:   *resource.NewQuantity(110, resource.DecimalSI),
		corev1.ResourceMemory: *resource.NewQuantity(memoryBytes(), resource.BinarySI),
	}
	return corev1.NodeStatus{
		Capacity: capacity, Allocatable: capacity, Phase: corev1.NodeRunning,
		Conditions:      []corev1.NodeCondition{ready},
		Addresses:       []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: a.o.NodeIP}, {Type: corev1.NodeHostName, Address: a.o.NodeName}},
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: int32(a.port)}},
		NodeInfo: corev1.NodeSystemInfo{KubeletVersion: Version, KubeProxyVersion: Version, OperatingSystem: runtime.GOOS,
			Architecture: runtime.GOARCH, OSImage: osImage(), KernelVersion: kernel(), ContainerRuntimeVersion: a.containerRuntimeVersion()},
	}
}

func memoryBytes() int64 {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	var kb int64
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "MemTotal:") {
			fmt.Sscanf(strings.TrimPrefix(l, "MemTotal:"), "%d", &kb)
		}
	}
	return kb * 1024
}

// register creates the Node or takes it over, and reports status.
func (a *Agent) register(ctx context.Context) error {
	nodes := a.client.CoreV1().Nodes()
	n, err := nodes.Get(ctx, a.o.NodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		n = &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: a.o.NodeName, Labels: map[string]string{
			corev1.LabelHostname: a.o.NodeName, corev1.LabelOSStable: runtime.GOOS, corev1.LabelArchStable: runtime.GOARCH}}}
		n, err = nodes.Create(ctx, n, metav1.CreateOptions{})
	}
	if err != nil {
		return fmt.Errorf("register node %s: %w", a.o.NodeName, err)
	}
	if a.o.PodRuntime && a.port == 0 && nodeReady(n) {
		// A restarted agent: the pods of the one before still run (containerd's),
		// so the Node stays Ready while the pod runtime starts again (the Lease
		// says the node lives); the status posted once it runs replaces this one.
		return nil
	}
	return a.postStatus(ctx, n)
}

// nodeReady reports whether n's Ready condition is True.
func nodeReady(n *corev1.Node) bool {
	_, c := nodeutil.GetNodeCondition(&n.Status, corev1.NodeReady)
	return c != nil && c.Status == corev1.ConditionTrue
}

func (a *Agent) postStatus(ctx context.Context, n *corev1.Node) error {
	cp := n.DeepCopy()
	cp.Status = a.nodeStatus(n.Status)
	_, err := a.client.CoreV1().Nodes().UpdateStatus(ctx, cp, metav1.UpdateOptions{})
	return err
}

// keepLease renews the node's Lease every quarter of its duration until ctx ends.
func (a *Agent) keepLease(ctx context.Context, log *slog.Logger) {
	t := time.NewTicker(a.o.LeaseDuration / 4)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := a.renewLease(ctx); err != nil && ctx.Err() == nil {
			log.Warn("lease renewal failed", "err", err)
		}
	}
}

// renewLease creates or renews the node's Lease.
func (a *Agent) renewLease(ctx context.Context) error {
	leases := a.client.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	now := metav1.NewMicroTime(a.o.Now())
	secs := int32(a.o.LeaseDuration / time.Second)
	holder := a.o.NodeName
	l, err := leases.Get(ctx, a.o.NodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = leases.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: a.o.NodeName},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &secs, RenewTime: &now}}, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds, l.Spec.RenewTime = &holder, &secs, &now
	_, err = leases.Update(ctx, l, metav1.UpdateOptions{})
	return err
}

// Run registers the node and keeps it alive until ctx ends. ready is closed once
// the node is registered (and the DNS server, if any, listens).
func (a *Agent) Run(ctx context.Context, ready chan<- struct{}) error {
	log := a.o.Log.With("node", a.o.NodeName)
	if err := a.preflight(log); err != nil {
		return err
	}
	decided := false // whose Node it is, asked once: a retried register must not adopt the Node it created
	for {
		var err error
		if !decided {
			a.kubeletNode, err = a.adoptNode(ctx)
			decided = err == nil
		}
		if err == nil && !a.kubeletNode {
			err = a.register(ctx)
		}
		if err == nil {
			break
		}
		log.Warn("registering the node failed, retrying", "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	if a.kubeletNode {
		log.Info("the Node is the kubelet's: using it, not registering one", "ip", a.o.NodeIP)
	} else {
		if err := a.renewLease(ctx); err != nil {
			log.Warn("lease renewal failed", "err", err)
		}
		// From now on, also while the pod runtime starts (an image import can
		// take longer than the node monitor's grace period).
		go a.keepLease(ctx, log)
	}
	if a.o.PodRuntime {
		rt, stop, err := a.startPods(ctx, log)
		if err != nil {
			return fmt.Errorf("pod runtime: %w", err)
		}
		defer stop()
		srvCtx, stopSrv := context.WithCancel(context.Background())
		defer stopSrv()
		if a.port, err = a.serveNode(srvCtx, rt, log); err != nil {
			return err
		}
		if n, err := a.client.CoreV1().Nodes().Get(ctx, a.o.NodeName, metav1.GetOptions{}); err == nil {
			_ = a.postStatus(ctx, n) // publish the agent port
		}
		defer a.startRoutes(ctx, log)()
	} else if !a.kubeletNode { // the kubelet runs and deletes the pods of its node
		a.finishDeletions(ctx)
	}
	if a.o.ProxyMode != "nftables" && os.Geteuid() == 0 {
		// The kernel rules an nftables proxy left when it stopped would still
		// answer for cluster IPs (as kube-proxy, clean up other modes' leftovers).
		// The service CIDR route is the iptables mode's too: its proxy replaces
		// it, so the node's connections to cluster IPs never find none.
		cidr := a.o.ServiceCIDR
		if a.o.ProxyMode == "iptables" {
			cidr = ""
		}
		if err := Cleanup(cidr); err != nil {
			log.Warn("removing the rules a previous nftables proxy left", "err", err)
		}
	}
	if a.o.ProxyMode != "none" {
		if err := a.startProxy(ctx, log); err != nil {
			return err
		}
	}
	if a.o.DNSListen != "" {
		cleanup, err := a.startDNS(ctx, log)
		if err != nil {
			return err
		}
		defer cleanup() // before Run returns, so the address never outlives the agent
	}
	if a.o.Ingress {
		a.startIngress(ctx, log)
	}
	a.startNetworkPolicy(ctx, log)
	if a.o.ProxyMode == "nftables" || a.o.ProxyMode == "iptables" {
		a.startAnnouncer(ctx, log) // announce.go: load-balancer IPs on the LAN
	}
	if a.proxyDone != nil {
		defer func() { <-a.proxyDone }() // the proxy removes its rules when ctx ends
	}
	log.Info("node registered", "ip", a.o.NodeIP)
	if ready != nil {
		close(ready)
	}
	status := time.NewTicker(10 * time.Second)
	defer status.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-status.C:
			if a.kubeletNode {
				continue
			}
			n, err := a.client.CoreV1().Nodes().Get(ctx, a.o.NodeName, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				err = a.register(ctx) // deleted while running: register again
			} else if err == nil {
				err = a.postStatus(ctx, n)
			}
			if err != nil && ctx.Err() == nil {
				log.Warn("node status update failed", "err", err)
			}
		}
	}
}

// startDNS serves the cluster DNS; the returned function removes the address it
// added to the node, if any.
func (a *Agent) startDNS(ctx context.Context, log *slog.Logger) (func(), error) {
	ix := dns.NewIndex(a.o.DNSZone, 5)
	// Always a forwarder: the kube-dns ConfigMap may name servers the node has none of.
	fw := dns.NewForwarder(a.o.DNSUpstreams, 10000)
	dns.WatchUpstreams(ctx, a.client, fw, log)
	srv := &dns.Server{Index: ix, Forwarder: fw, Allowed: dns.DefaultAllowed, Log: log}
	if a.o.DNSAutopath {
		srv.Autopath = &dns.PodIPs{}
	}
	host, _, err := net.SplitHostPort(a.o.DNSListen)
	if err != nil {
		return nil, fmt.Errorf("--cluster-dns-listen: %w", err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return nil, fmt.Errorf("--cluster-dns-listen: %q is not an IP address", host)
	}
	cleanup, err := ensureLocal(ip)
	if err != nil {
		return nil, fmt.Errorf("--cluster-dns-listen: %w", err)
	}
	dns.RunWithClient(ctx, a.client, ix, log, srv.Autopath)
	up := make(chan struct{})
	errs := make(chan error, 1)
	go func() { errs <- srv.ListenAndServe(ctx, a.o.DNSListen, up) }()
	select {
	case <-up:
		log.Info("cluster DNS serving", "listen", a.o.DNSListen)
		if !a.kubeletNode { // a kubelet deletes mirror pods it has no static pod for
			go a.keepDNSPod(ctx, log)
		}
		return cleanup, nil
	case err := <-errs:
		cleanup()
		return nil, fmt.Errorf("--cluster-dns-listen %s: %w", a.o.DNSListen, err)
	}
}
