// Command realcluster compares, on the real Kubernetes cluster of
// scripts/realcluster.sh (kube-apiserver v1.34.4 and its controllers, two node
// network namespaces), kube-proxy v1.34.4 (nftables mode) on one node with the
// svcnet agent on the other, both watching the same N Services x 2 endpoints:
//   - one change: a Service and its EndpointSlice written back to back, timed
//     until its endpoint is in each node's kernel (`nft monitor` in the node's
//     namespace prints the transaction holding the endpoint address);
//   - the first full sync after a start (kube-proxy's
//     sync_proxy_rules_last_timestamp_seconds on /metrics, which the agent
//     serves under the same name, minus the process start);
//   - RSS after the sync;
//
// and CoreDNS 1.11.3 (kubernetes + cache 30) with the agent's cluster DNS on the
// same node and data: dnsperf, bounded in time, from the node's namespace.
// Ratios are against kube-proxy / CoreDNS measured in the same run. It is run by
// `scripts/realcluster.sh --bench` once the agents it started are stopped.
//
//	realcluster -services 1000 -kubeconfig ADMIN -agent-kubeconfig AGENT \
//	  -proxy-netns NS1 -agent-netns NS2 -svcnet BIN -ref /var/cache/svcnet-reference
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/svcnet/svcnet/bench/harness"
)

// Bounds of every wait and load: nothing runs unbounded.
const (
	syncTimeout   = 10 * time.Minute  // a first full sync at 10,000 Services (kube-proxy's took 142 s)
	changeTimeout = 180 * time.Second // one change reaching a kernel (kube-proxy's took 12 s at 10,000 on an idle machine)
	// changeGap separates timed changes by more than kube-proxy's 1 s minSyncPeriod,
	// so no change waits for the previous one's sync.
	changeGap = 1500 * time.Millisecond
	ns        = "bench"
)

type config struct {
	services, changes, dnsSeconds, dnsRuns  int
	kubeconfig, agentKubeconfig, workDir    string
	proxyNetns, agentNetns, svcnet, refBin  string
	proxyNode, agentNode, clusterDNSAddress string
}

func main() {
	var c config
	flag.IntVar(&c.services, "services", 1000, "Services loaded (2 endpoints each)")
	flag.IntVar(&c.changes, "changes", 10, "timed changes (median reported)")
	flag.IntVar(&c.dnsSeconds, "dns-seconds", 10, "length of each dnsperf run")
	flag.IntVar(&c.dnsRuns, "dns-runs", 3, "dnsperf runs per server (median reported)")
	flag.StringVar(&c.kubeconfig, "kubeconfig", "", "admin kubeconfig of the cluster")
	flag.StringVar(&c.agentKubeconfig, "agent-kubeconfig", "", "the agent's kubeconfig (its ServiceAccount)")
	flag.StringVar(&c.workDir, "work", os.TempDir(), "directory for logs and the query file")
	flag.StringVar(&c.proxyNetns, "proxy-netns", "", "node namespace kube-proxy runs in")
	flag.StringVar(&c.agentNetns, "agent-netns", "", "node namespace the agent runs in")
	flag.StringVar(&c.proxyNode, "proxy-node", "rc-node1", "kube-proxy's --hostname-override")
	flag.StringVar(&c.agentNode, "agent-node", "rc-node2", "the agent's --hostname-override")
	flag.StringVar(&c.svcnet, "svcnet", "svcnet", "svcnet binary")
	flag.StringVar(&c.refBin, "ref", "/var/cache/svcnet-reference", "directory with kube-proxy and coredns")
	flag.StringVar(&c.clusterDNSAddress, "cluster-dns", "10.96.0.10", "address the agent serves DNS on")
	flag.Parse()
	for name, v := range map[string]string{"-kubeconfig": c.kubeconfig, "-agent-kubeconfig": c.agentKubeconfig, "-proxy-netns": c.proxyNetns, "-agent-netns": c.agentNetns} {
		if v == "" {
			fmt.Fprintf(os.Stderr, "bench/realcluster: %s is required\n", name)
			os.Exit(2)
		}
	}
	if err := requireNoRouteOut(); err != nil {
		fmt.Fprintln(os.Stderr, "bench/realcluster:", err)
		os.Exit(2)
	}
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "bench/realcluster:", err)
		os.Exit(1)
	}
}

// requireNoRouteOut refuses to run with a default route: the bench talks to the
// cluster's addresses (10.210.0.0/24), which must never leave the machine; it
// belongs in the hub namespace of scripts/realcluster.sh.
func requireNoRouteOut() error {
	data, err := os.ReadFile("/proc/net/route")
	if err != nil {
		return err
	}
	for _, l := range strings.Split(string(data), "\n")[1:] {
		if f := strings.Fields(l); len(f) > 1 && f[1] == "00000000" {
			return fmt.Errorf("this network namespace has a default route (via %s): run it in the cluster's hub namespace (scripts/realcluster.sh --bench)", f[0])
		}
	}
	return nil
}

// proc is a process started in a node namespace (nsenter execs it: the pid is its own).
type proc struct {
	name  string
	cmd   *exec.Cmd
	start time.Time
}

func startIn(netns, logPath, name string, argv ...string) (*proc, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command("nsenter", append([]string{"--net=/var/run/netns/" + netns}, argv...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // nothing outlives the bench
	p := &proc{name: name, cmd: cmd, start: time.Now()}
	return p, cmd.Start()
}

func (p *proc) stop() {
	_ = p.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

func (p *proc) rssMiB() float64 { return float64(harness.RSSKiB(p.cmd.Process.Pid)) / 1024 }

// lastSyncRE finds the IPv4 (or unlabelled) sync timestamp: kube-proxy labels it by ip_family.
var lastSyncRE = regexp.MustCompile(`(?m)^kubeproxy_sync_proxy_rules_last_timestamp_seconds(?:\{ip_family="IPv4"\})? ([0-9.e+]+)$`)

// firstSync waits until the proxy's /metrics (port 10249 in its namespace)
// reports a completed sync and returns when it completed, after the start.
func firstSync(p *proc, netns string) (time.Duration, error) {
	deadline := time.Now().Add(syncTimeout)
	for time.Now().Before(deadline) {
		out, err := exec.Command("nsenter", "--net=/var/run/netns/"+netns, "curl", "-s", "-m", "2", "http://127.0.0.1:10249/metrics").Output()
		if err == nil {
			if m := lastSyncRE.FindSubmatch(out); m != nil {
				if v, _ := strconv.ParseFloat(string(m[1]), 64); v > 0 {
					at := time.Unix(0, int64(v*1e9))
					return at.Sub(p.start), nil
				}
			}
		}
		if p.cmd.ProcessState != nil {
			return 0, fmt.Errorf("%s exited", p.name)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return 0, fmt.Errorf("%s: no sync within %v", p.name, syncTimeout)
}

// monitor is `nft monitor` in a namespace, recording when each watched address first appears.
type monitor struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	want   map[string]chan time.Time
	ended  chan struct{} // closed when nft monitor stops printing (it exits on ENOBUFS)
	stderr strings.Builder
}

func startMonitor(netns string) (*monitor, error) {
	m := &monitor{cmd: exec.Command("nsenter", "--net=/var/run/netns/"+netns, "nft", "monitor"), want: map[string]chan time.Time{}, ended: make(chan struct{})}
	m.cmd.Stderr = &m.stderr
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := m.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := m.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		defer close(m.ended)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		for sc.Scan() {
			now, line := time.Now(), sc.Text()
			m.mu.Lock()
			for addr, ch := range m.want {
				if strings.Contains(line, addr) {
					ch <- now
					delete(m.want, addr)
				}
			}
			m.mu.Unlock()
		}
	}()
	return m, nil
}

// watch returns a channel that receives the time addr is first seen (addr must end
// the address: callers pass "10.250.1.2 " forms as nft prints them).
func (m *monitor) watch(addr string) chan time.Time {
	ch := make(chan time.Time, 1)
	m.mu.Lock()
	m.want[addr] = ch
	m.mu.Unlock()
	return ch
}

func (m *monitor) stop() { _ = m.cmd.Process.Kill(); _ = m.cmd.Wait() }

// endpointIP is the i-th endpoint address: 10.250.0.0/16, never routed anywhere.
func endpointIP(i int) string { return fmt.Sprintf("10.250.%d.%d", i/250, i%250+1) }

func createService(ctx context.Context, cs kubernetes.Interface, name string, ips ...string) error {
	if _, err := cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}}}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	port, ready := int32(8080), true
	var eps []discoveryv1.Endpoint
	for _, ip := range ips {
		eps = append(eps, discoveryv1.Endpoint{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}})
	}
	name8080 := "http"
	_, err := cs.DiscoveryV1().EndpointSlices(ns).Create(ctx, &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: name + "-x",
		Labels: map[string]string{discoveryv1.LabelServiceName: name, discoveryv1.LabelManagedBy: "bench"}},
		AddressType: discoveryv1.AddressTypeIPv4, Endpoints: eps, Ports: []discoveryv1.EndpointPort{{Name: &name8080, Port: &port}}}, metav1.CreateOptions{})
	return err
}

func run(c config) error {
	ctx := context.Background()
	rc, err := clientcmd.BuildConfigFromFlags("", c.kubeconfig)
	if err != nil {
		return err
	}
	rc.QPS, rc.Burst = 500, 1000
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	defer func() {
		_ = cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	}()
	n := c.services
	fmt.Printf("realcluster bench: %d Services x 2 endpoints on kube-apiserver v1.34.4; kube-proxy (nftables) on %s, svcnet agent on %s\n", n, c.proxyNode, c.agentNode)
	t0 := time.Now()
	if err := harness.Parallel(n, 16, func(i int) error {
		return createService(ctx, cs, fmt.Sprintf("svc-%05d", i), endpointIP(2*i), endpointIP(2*i+1))
	}); err != nil {
		return err
	}
	fmt.Printf("  loaded in %v\n", time.Since(t0).Round(time.Millisecond))

	kpArgs := []string{filepath.Join(c.refBin, "kube-proxy"), "--kubeconfig", c.kubeconfig, "--hostname-override", c.proxyNode,
		"--proxy-mode", "nftables", "--cluster-cidr", "10.244.0.0/16", "--metrics-bind-address", "127.0.0.1:10249",
		"--healthz-bind-address", "127.0.0.1:10256",
		// leave the host's conntrack sysctls alone (they are not per namespace)
		"--conntrack-max-per-core", "0", "--conntrack-tcp-timeout-established", "0", "--conntrack-tcp-timeout-close-wait", "0"}
	agentArgs := []string{c.svcnet, "agent", "--kubeconfig", c.agentKubeconfig, "--hostname-override", c.agentNode,
		"--pod-runtime", "off", "--proxy-mode", "nftables", "--cluster-cidr", "10.244.0.0/16",
		"--service-cluster-ip-range", "10.96.0.0/12", "--cluster-dns-listen", c.clusterDNSAddress + ":53", "--dns-resolv-conf", "",
		"--metrics-bind-address", "127.0.0.1:10249", "--healthz-bind-address", "127.0.0.1:10256",
		"--root-dir", filepath.Join(c.workDir, "bench-agent")}
	kp, err := startIn(c.proxyNetns, filepath.Join(c.workDir, "bench-kube-proxy.log"), "kube-proxy", kpArgs...)
	if err != nil {
		return err
	}
	defer kp.stop()
	ag, err := startIn(c.agentNetns, filepath.Join(c.workDir, "bench-agent.log"), "svcnet agent", agentArgs...)
	if err != nil {
		return err
	}
	defer ag.stop()
	kpSync, err := firstSync(kp, c.proxyNetns)
	if err != nil {
		return err
	}
	agSync, err := firstSync(ag, c.agentNetns)
	if err != nil {
		return err
	}
	time.Sleep(2 * time.Second)
	kpRSS, agRSS := kp.rssMiB(), ag.rssMiB()

	kpMon, err := startMonitor(c.proxyNetns)
	if err != nil {
		return err
	}
	defer kpMon.stop()
	agMon, err := startMonitor(c.agentNetns)
	if err != nil {
		return err
	}
	defer agMon.stop()
	time.Sleep(500 * time.Millisecond)
	var kpChange, agChange []time.Duration
	for i := 0; i < c.changes; i++ {
		time.Sleep(changeGap)
		ip := endpointIP(2*(n+i)) + " "
		ipKP, ipAG := kpMon.watch(ip), agMon.watch(ip)
		start := time.Now()
		if err := createService(ctx, cs, fmt.Sprintf("change-%03d", i), endpointIP(2*(n+i)), endpointIP(2*(n+i)+1)); err != nil {
			return err
		}
		for _, w := range []struct {
			ch  chan time.Time
			mon *monitor
			out *[]time.Duration
			who string
		}{{ipKP, kpMon, &kpChange, "kube-proxy"}, {ipAG, agMon, &agChange, "agent"}} {
			select {
			case at := <-w.ch:
				*w.out = append(*w.out, at.Sub(start))
			case <-w.mon.ended:
				_ = w.mon.cmd.Wait() // its stderr is copied in full
				return fmt.Errorf("change %d: nft monitor in %s's namespace stopped: %s", i, w.who, w.mon.stderr.String())
			case <-time.After(changeTimeout):
				return fmt.Errorf("change %d: %s did not program endpoint %s within %v", i, w.who, ip, changeTimeout)
			}
		}
	}
	kpMed, agMed := harness.Median(kpChange), harness.Median(agChange)
	fmt.Printf("  %-52s %12s %12s %8s\n", "", "kube-proxy", "svcnet", "ratio")
	fmt.Printf("  %-52s %12v %12v %7.1fx\n", fmt.Sprintf("one change (Service+slice -> kernel), median of %d", c.changes),
		kpMed.Round(time.Millisecond), agMed.Round(time.Millisecond), harness.Ratio(kpMed, agMed))
	fmt.Printf("  %-52s %12v %12v %7.1fx\n", "first full sync after start", kpSync.Round(time.Millisecond), agSync.Round(time.Millisecond), harness.Ratio(kpSync, agSync))
	fmt.Printf("  %-52s %10.0f MB %10.0f MB %7.2fx\n", "RSS after the sync", kpRSS, agRSS, agRSS/kpRSS)
	kp.stop()

	return dnsBench(c, ag)
}

// dnsBench runs CoreDNS next to the agent in the agent's namespace, on the
// same API data, and dnsperf against each in turn.
func dnsBench(c config, ag *proc) error {
	corefile := filepath.Join(c.workDir, "bench-Corefile")
	if err := os.WriteFile(corefile, []byte(fmt.Sprintf(`.:1053 {
    bind 127.0.0.1
    errors
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig %s
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    cache 30
}
`, c.kubeconfig)), 0o600); err != nil {
		return err
	}
	cd, err := startIn(c.agentNetns, filepath.Join(c.workDir, "bench-coredns.log"), "coredns",
		filepath.Join(c.refBin, "coredns"), "-conf", corefile)
	if err != nil {
		return err
	}
	defer cd.stop()
	// queries: existing A 60%, SRV 10%, NXDOMAIN 15%, AAAA (NODATA) 15%
	var qs []string
	for k := 0; k < 20000; k++ {
		name := fmt.Sprintf("svc-%05d.%s.svc.cluster.local", rand.IntN(c.services), ns)
		switch r := rand.IntN(100); {
		case r < 60:
			qs = append(qs, name+" A")
		case r < 70:
			qs = append(qs, "_http._tcp."+name+" SRV")
		case r < 85:
			qs = append(qs, fmt.Sprintf("nosuch-%d.%s.svc.cluster.local A", k, ns))
		default:
			qs = append(qs, name+" AAAA")
		}
	}
	qfile := filepath.Join(c.workDir, "bench-queries.txt")
	if err := os.WriteFile(qfile, []byte(strings.Join(qs, "\n")+"\n"), 0o600); err != nil {
		return err
	}
	servers := []struct {
		name, addr, port string
		p                *proc
	}{{"CoreDNS 1.11.3", "127.0.0.1", "1053", cd}, {"svcnet agent", c.clusterDNSAddress, "53", ag}}
	for _, s := range servers { // both answer before the runs start (CoreDNS lists all Services first)
		if err := waitDNS(c.agentNetns, s.addr, s.port); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	type result struct{ qps, avgMs []float64 }
	res := make([]result, len(servers))
	lost := make([]string, len(servers))
	for r := 0; r < c.dnsRuns; r++ {
		for i, s := range servers { // in turn, so drift in the machine's load hits both
			out, err := exec.Command("nsenter", "--net=/var/run/netns/"+c.agentNetns, "dnsperf", "-s", s.addr, "-p", s.port,
				"-d", qfile, "-l", strconv.Itoa(c.dnsSeconds), "-c", "10", "-q", "200").CombinedOutput()
			if err != nil {
				return fmt.Errorf("dnsperf %s: %v\n%s", s.name, err, out)
			}
			q, avg, l := parseDNSPerf(string(out))
			res[i].qps, res[i].avgMs, lost[i] = append(res[i].qps, q), append(res[i].avgMs, avg), l
		}
	}
	med := func(v []float64) float64 {
		s := slices.Clone(v)
		slices.Sort(s)
		return s[len(s)/2]
	}
	fmt.Printf("  DNS, dnsperf -c 10 -q 200 -l %d from the node, median of %d runs (both servers unpinned, machine shared):\n", c.dnsSeconds, c.dnsRuns)
	for i, s := range servers {
		fmt.Printf("    %-16s %9.0f qps  avg %6.2f ms  lost %s  RSS %.0f MB\n", s.name, med(res[i].qps), med(res[i].avgMs), lost[i], s.p.rssMiB())
	}
	fmt.Printf("    svcnet/CoreDNS: %.2fx qps, %.2fx avg latency (the agent's RSS includes its proxy)\n",
		med(res[1].qps)/med(res[0].qps), med(res[1].avgMs)/med(res[0].avgMs))
	return nil
}

func waitDNS(netns, addr, port string) error {
	deadline := time.Now().Add(syncTimeout)
	for time.Now().Before(deadline) {
		out, _ := exec.Command("nsenter", "--net=/var/run/netns/"+netns, "dig", "+short", "+time=1", "+tries=1", "-p", port, "@"+addr,
			fmt.Sprintf("svc-00000.%s.svc.cluster.local", ns)).Output()
		if strings.TrimSpace(string(out)) != "" {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("no answer on %s:%s within %v", addr, port, syncTimeout)
}

func parseDNSPerf(out string) (qps, avgMs float64, lost string) {
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		f := strings.Fields(l)
		switch {
		case strings.HasPrefix(l, "Queries per second:") && len(f) >= 4:
			qps, _ = strconv.ParseFloat(f[3], 64)
		case strings.HasPrefix(l, "Average Latency (s):") && len(f) >= 4:
			v, _ := strconv.ParseFloat(f[3], 64)
			avgMs = v * 1000
		case strings.HasPrefix(l, "Queries lost:"):
			lost = strings.Join(f[2:], " ")
		}
	}
	return qps, avgMs, lost
}
