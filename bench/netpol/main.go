// Command netpol measures NetworkPolicy programming against the service
// proxy's, in one run on one agent: with P NetworkPolicies over N pods (all on
// the agent's node, the worst case: every pod is checked there) and S
// Services x 2 endpoints loaded, the time from one API write until the kernel
// holds its result (seen on the nf_tables netlink monitor):
//
//   - a new NetworkPolicy -> its element in table ip svcnet-policy;
//   - a pod relabelled (a policy selects it, another admits it) -> elements;
//   - baseline: a new Service (its EndpointSlice written 300 ms before) ->
//     its endpoints in table ip svcnet, the proxy's own one-change time.
//
// Needs root: everything runs in a network namespace of its own.
//
//	go run ./bench/netpol [-policies 1000] [-pods 100] [-services 1000] [-changes 50]
package main

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"sync"
	"time"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/svcnet/svcnet/bench/harness"
	"github.com/svcnet/svcnet/internal/netpol"
)

const namespaces = 10 // pods and policies are spread over ns-0 .. ns-9

func main() {
	policies := flag.Int("policies", 1000, "NetworkPolicies loaded")
	pods := flag.Int("pods", 100, "pods loaded (all on the measured node)")
	services := flag.Int("services", 1000, "Services loaded (2 endpoints each)")
	changes := flag.Int("changes", 50, "changes of each kind, timed one by one")
	flag.Parse()
	in, err := harness.InNetns("netpol")
	if in != nil {
		err = inside(in.Bin, *policies, *pods, *services, *changes)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/netpol:", err)
		os.Exit(1)
	}
}

func podIP(i int) string { return fmt.Sprintf("10.244.%d.%d", i/250, i%250+2) }

// policy j in ns-(j%10) selects app=a(j/10%10) and admits app=a(j/10%10+1) of
// its namespace on TCP port: every pod is selected by P/100 policies.
func policy(j int, port int) *networkingv1.NetworkPolicy {
	p := intstr.FromInt(port)
	return &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: fmt.Sprintf("ns-%d", j%namespaces), Name: fmt.Sprintf("p%d", j)},
		Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": fmt.Sprintf("a%d", j/10%10)}},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From:  []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": fmt.Sprintf("a%d", (j/10+1)%10)}}}},
				Ports: []networkingv1.NetworkPolicyPort{{Port: &p}}}}}}
}

func load(ctx context.Context, cs kubernetes.Interface, nPol, nPods, nSvc int) error {
	for i := 0; i < namespaces; i++ {
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("ns-%d", i)}}, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	if err := harness.Parallel(nPods, 16, func(i int) error {
		p, err := cs.CoreV1().Pods(fmt.Sprintf("ns-%d", i%namespaces)).Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pod-%d", i), Labels: map[string]string{"app": fmt.Sprintf("a%d", i/namespaces%10)}},
			Spec:       corev1.PodSpec{NodeName: "bench", Containers: []corev1.Container{{Name: "c", Image: "none"}}}}, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		p.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: podIP(i), PodIPs: []corev1.PodIP{{IP: podIP(i)}}}
		_, err = cs.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
		return err
	}); err != nil {
		return err
	}
	if err := harness.Parallel(nPol, 16, func(j int) error {
		np := policy(j, 1000+j)
		_, err := cs.NetworkingV1().NetworkPolicies(np.Namespace).Create(ctx, np, metav1.CreateOptions{})
		return err
	}); err != nil {
		return err
	}
	return harness.Parallel(nSvc, 16, func(i int) error { return harness.CreateService(ctx, cs, fmt.Sprintf("s%d", i), endpointAddrs(i)...) })
}

// monitor remembers when kernel set elements were first seen, by a key of
// the caller's choosing.
type monitor struct {
	seen sync.Map // any -> time.Time
	tick chan struct{}
}

func (m *monitor) mark(k any) {
	if _, loaded := m.seen.LoadOrStore(k, time.Now()); !loaded {
		select {
		case m.tick <- struct{}{}:
		default:
		}
	}
}

// wait returns when k was first seen, relative to start.
func (m *monitor) wait(k any, start time.Time) (time.Duration, error) {
	for {
		if at, ok := m.seen.Load(k); ok {
			return max(at.(time.Time).Sub(start), time.Nanosecond), nil
		}
		select {
		case <-m.tick:
		case <-time.After(30 * time.Second):
			return 0, fmt.Errorf("%v not seen in the kernel within 30s", k)
		}
	}
}

// policyElem is an element of the policy table: local pod, peer start, port.
type policyElem struct {
	local, peer netip.Addr
	port        uint16
}

// endpointsOf is a cluster IP seen with endpoints in the proxy's table.
type endpointsOf netip.Addr

func startMonitor() (*monitor, func(), error) {
	conn, err := nftables.New(nftables.WithSockOptions(func(c *netlink.Conn) error { return c.SetReadBuffer(256 << 20) }))
	if err != nil {
		return nil, nil, err
	}
	mon := nftables.NewMonitor()
	events, err := conn.AddMonitor(mon)
	if err != nil {
		return nil, nil, err
	}
	m := &monitor{tick: make(chan struct{}, 1)}
	go func() {
		for ev := range events {
			if ev.Type != nftables.MonitorEventTypeNewSetElem {
				continue
			}
			elems, _ := ev.Data.([]nftables.SetElement)
			for _, e := range elems {
				if len(e.Key) != 16 {
					continue
				}
				a, _ := netip.AddrFromSlice(e.Key[:4])
				if netip.MustParsePrefix("10.96.0.0/12").Contains(a) { // ip . proto . port . slot of ip-endpoints-N
					m.mark(endpointsOf(a))
					continue
				}
				peer, _ := netip.AddrFromSlice(e.Key[4:8]) // local . peer . proto . port of ingress-ports
				m.mark(policyElem{a, peer, binary.BigEndian.Uint16(e.Key[12:14])})
			}
		}
	}()
	return m, func() { _ = mon.Close() }, nil
}

func inside(bin string, nPol, nPods, nSvc, changes int) error {
	ctx := context.Background()
	c, err := harness.Start(ctx, true) // the service account controller: pods need their namespace's default
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Printf("loading %d NetworkPolicies over %d pods in %d namespaces, %d Services x 2 endpoints\n", nPol, nPods, namespaces, nSvc)
	t0 := time.Now()
	if err := load(ctx, c.Client, nPol, nPods, nSvc); err != nil {
		return err
	}
	fmt.Printf("  loaded in %v\n", time.Since(t0).Round(time.Millisecond))
	compute := computeTime(ctx, c.Client)

	m, stop, err := startMonitor()
	if err != nil {
		return err
	}
	defer stop()
	agent := exec.Command(bin, "agent", "--kubeconfig", c.Kubeconfig, "--node-name", "bench", "--node-ip", "127.0.0.1",
		"--pod-runtime=off", "--proxy-mode=nftables", "--dns-resolv-conf", "", "--ingress=false", "--log-level", agentLogLevel())
	agent.Stderr = os.Stderr
	if err := agent.Start(); err != nil {
		return err
	}
	defer func() { _ = agent.Process.Signal(os.Interrupt); _ = agent.Wait() }()
	// Ready when p0's element (pod-0 admits pod-10 on 1000) and the last Service are in.
	if _, err := m.wait(policyElem{netip.MustParseAddr(podIP(0)), netip.MustParseAddr(podIP(10)), 1000}, time.Now()); err != nil {
		return err
	}
	if _, err := m.wait(endpointsOf(netip.MustParseAddr(clusterIP(ctx, c.Client, nSvc-1))), time.Now()); err != nil {
		return err
	}
	time.Sleep(2 * time.Second)

	var newPolicy, relabel, proxy []time.Duration
	for i := 0; i < changes; i++ {
		// A new policy: ns-0's pod-0 (app=a0) admits pod-10 (a1) on a port no one
		// used, two apart so that no element merges with the previous one's.
		port := 20000 + 2*i
		np := policy(0, port)
		np.Name = fmt.Sprintf("change-%d", i)
		np.Spec.PodSelector = metav1.LabelSelector{MatchLabels: map[string]string{"app": "a0"}}
		start := time.Now()
		if _, err := c.Client.NetworkingV1().NetworkPolicies("ns-0").Create(ctx, np, metav1.CreateOptions{}); err != nil {
			return err
		}
		// app=a0 pods of ns-0 admit app=a1 pods of ns-0: pod-0 . pod-10 . tcp . port
		d, err := m.wait(policyElem{netip.MustParseAddr(podIP(0)), netip.MustParseAddr(podIP(10)), uint16(port)}, start)
		if err != nil {
			return fmt.Errorf("new policy: %w", err)
		}
		newPolicy = append(newPolicy, d)
		time.Sleep(200 * time.Millisecond)

		// A relabel: pod-k of ns-0 turns a1 (or back to a2): when it turns a1,
		// pod-0 admits it on every port that admits a1, change-i's included.
		k := 10 * (2 + i%8)
		p, err := c.Client.CoreV1().Pods("ns-0").Get(ctx, fmt.Sprintf("pod-%d", k), metav1.GetOptions{})
		if err != nil {
			return err
		}
		label := "a1"
		if p.Labels["app"] == "a1" {
			label = "a2"
		}
		p.Labels["app"] = label
		start = time.Now()
		if _, err := c.Client.CoreV1().Pods("ns-0").Update(ctx, p, metav1.UpdateOptions{}); err != nil {
			return err
		}
		if label == "a1" {
			d, err := m.wait(policyElem{netip.MustParseAddr(podIP(0)), netip.MustParseAddr(podIP(k)), uint16(port)}, start)
			if err != nil {
				return fmt.Errorf("relabel: %w", err)
			}
			relabel = append(relabel, d)
		}
		time.Sleep(200 * time.Millisecond)

		// The proxy's own one change.
		name := fmt.Sprintf("change-%d", i)
		if err := harness.CreateSlice(ctx, c.Client, name, endpointAddrs(nSvc+i)...); err != nil {
			return err
		}
		time.Sleep(300 * time.Millisecond)
		start = time.Now()
		svc, err := c.Client.CoreV1().Services("default").Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		if d, err = m.wait(endpointsOf(netip.MustParseAddr(svc.Spec.ClusterIP)), start); err != nil {
			return fmt.Errorf("proxy: %w", err)
		}
		proxy = append(proxy, d)
		time.Sleep(200 * time.Millisecond)
	}
	out, _ := exec.Command("nft", "list", "table", "ip", netpol.TableName).Output()
	pct := func(d []time.Duration, p int) time.Duration { return harness.Percentile(d, p, 10*time.Microsecond) }
	fmt.Printf("\n%d NetworkPolicies x %d pods (+ %d Services), one change -> in the kernel (API write included):\n", nPol, nPods, nSvc)
	fmt.Printf("  new NetworkPolicy:       p50 %v  p99 %v  (n=%d)\n", pct(newPolicy, 50), pct(newPolicy, 99), len(newPolicy))
	fmt.Printf("  pod relabelled:          p50 %v  p99 %v  (n=%d)\n", pct(relabel, 50), pct(relabel, 99), len(relabel))
	fmt.Printf("  baseline, new Service:   p50 %v  p99 %v  (n=%d)\n", pct(proxy, 50), pct(proxy, 99), len(proxy))
	fmt.Printf("  ratio new policy / new Service: p50 %.2fx  p99 %.2fx\n", harness.Ratio(pct(newPolicy, 50), pct(proxy, 50)), harness.Ratio(pct(newPolicy, 99), pct(proxy, 99)))
	fmt.Printf("  of which computing the node's rules (netpol.Compile, in process): %v\n", compute.Round(10*time.Microsecond))
	fmt.Printf("  policy table: %d bytes as nft text\n", len(out))
	return nil
}

// computeTime is one netpol.Compile over the loaded objects.
func computeTime(ctx context.Context, cs kubernetes.Interface) time.Duration {
	pods, _ := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	nss, _ := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	pols, _ := cs.NetworkingV1().NetworkPolicies("").List(ctx, metav1.ListOptions{})
	var ps []*corev1.Pod
	for i := range pods.Items {
		ps = append(ps, &pods.Items[i])
	}
	var ns []*corev1.Namespace
	for i := range nss.Items {
		ns = append(ns, &nss.Items[i])
	}
	var nps []*networkingv1.NetworkPolicy
	for i := range pols.Items {
		nps = append(nps, &pols.Items[i])
	}
	s := netpol.FromObjects(ps, ns, nps, func(*networkingv1.NetworkPolicy, error) {})
	start := time.Now()
	r := netpol.Compile(s, "bench")
	d := time.Since(start)
	fmt.Printf("  node rules: %d ingress-isolated pods, %d ingress elements\n", len(r.IngressIsolated), len(r.Ingress))
	return d
}

func clusterIP(ctx context.Context, cs kubernetes.Interface, i int) string {
	s, err := cs.CoreV1().Services("default").Get(ctx, fmt.Sprintf("s%d", i), metav1.GetOptions{})
	if err != nil {
		return "0.0.0.0"
	}
	return s.Spec.ClusterIP
}

// endpointAddrs are two of the pods' addresses, for the i-th Service.
func endpointAddrs(i int) []string { return []string{podIP(2 * i % 100), podIP((2*i + 1) % 100)} }

// agentLogLevel is the agent's log level: BENCH_AGENT_LOG=debug shows each sync.
func agentLogLevel() string {
	if l := os.Getenv("BENCH_AGENT_LOG"); l != "" {
		return l
	}
	return "error"
}
