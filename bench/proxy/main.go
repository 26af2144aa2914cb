// Command proxy measures a kernel service proxy's control path (-backend
// nftables or iptables): with N Services x 2 endpoints loaded, the time from
// creating one more Service and, right after it, its EndpointSlice (the two
// writes every new Service costs, in the order real clusters write them) until
// its endpoints are in the kernel (seen on the nf_tables netlink monitor: an
// element of an ip-endpoints map, or for iptables, which the Debian tools write
// through nf_tables, the batch holding a nat rule matching the VIP), against
// the bare API round trip of the same two writes (until an EndpointSlice watch
// sees the second); the same changes with the agent run at the old fixed
// --min-sync-period of 100 ms (-old-min-sync, 0: skipped); the first full sync
// when the agent starts (clean, and after kill -9 with the old table still
// there); the agent's RSS, and with -kube-proxy the RSS of a real kube-proxy
// (nftables mode) after its first sync on the same API server. Needs root:
// everything runs in a network namespace of its own.
//
//	go run ./bench/proxy [-services 1000|10000|100000] [-changes 100] [-backend nftables|iptables]
//	  [-old-min-sync 100ms] [-kube-proxy /var/cache/svcnet-reference/kube-proxy]
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/svcnet/svcnet/bench/harness"
)

func main() {
	services := flag.Int("services", 1000, "Services loaded (2 endpoints each)")
	changes := flag.Int("changes", 100, "Services created one by one and timed")
	flag.StringVar(&backend, "backend", "nftables", "proxy mode measured: nftables or iptables")
	oldMinSync := flag.Duration("old-min-sync", 100*time.Millisecond, "also time the changes with the agent at this fixed --min-sync-period (the old loop; 0: skip)")
	flag.StringVar(&heapProfile, "heap-profile", "", "write the agent's heap profile after its first sync to this file (go tool pprof)")
	kubeProxy := flag.String("kube-proxy", "", "a kube-proxy binary: its RSS after its first sync (nftables mode) on the same Services")
	flag.Parse()
	if backend != "nftables" && backend != "iptables" {
		fmt.Fprintln(os.Stderr, "bench/proxy: -backend: want nftables or iptables, not", backend)
		os.Exit(2)
	}
	in, err := harness.InNetns("proxy")
	if in != nil {
		err = inside(in.Bin, *services, *changes, *oldMinSync, *kubeProxy)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/proxy:", err)
		os.Exit(1)
	}
}

// backend is the agent's --proxy-mode, heapProfile where its heap profile
// goes (empty: none); both set once by flags.
var backend, heapProfile string

// agent is a running `svcnet agent`, with the took= of its first full sync.
type agent struct {
	cmd      *exec.Cmd
	sync     chan time.Duration
	done     chan struct{}
	partials atomic.Int64 // partial syncs logged (at --log-level debug)
}

var tookRE = regexp.MustCompile(`msg="proxy rules synced".* took=([0-9.]+[µmn]?s)`)

func startAgent(bin, kubeconfig string, extra ...string) (*agent, error) {
	args := append([]string{"agent", "--kubeconfig", kubeconfig, "--node-name", "bench", "--node-ip", "127.0.0.1",
		"--pod-runtime=off", "--proxy-mode=" + backend, "--dns-resolv-conf", "", "--log-level", "debug", "--profiling"}, extra...)
	a := &agent{cmd: exec.Command(bin, args...), sync: make(chan time.Duration, 1), done: make(chan struct{})}
	stderr, _ := a.cmd.StderrPipe()
	if err := a.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "(partial)") {
				a.partials.Add(1)
			}
			if strings.HasPrefix(sc.Text(), "error:") || strings.Contains(sc.Text(), "failed") || os.Getenv("BENCH_AGENT_LOG") != "" {
				fmt.Fprintln(os.Stderr, "agent:", sc.Text())
			}
			if m := tookRE.FindStringSubmatch(sc.Text()); m != nil {
				d, _ := time.ParseDuration(m[1])
				select {
				case a.sync <- d:
				default:
				}
			}
		}
	}()
	go func() { _ = a.cmd.Wait(); close(a.done) }()
	return a, nil
}

func (a *agent) firstSync() (time.Duration, error) {
	select {
	case d := <-a.sync:
		return d, nil
	case <-a.done:
		return 0, fmt.Errorf("agent exited")
	case <-time.After(5 * time.Minute):
		return 0, fmt.Errorf("no full sync within 5 minutes")
	}
}

func (a *agent) stop(kill bool) {
	if kill {
		_ = a.cmd.Process.Kill()
	} else {
		_ = a.cmd.Process.Signal(os.Interrupt)
	}
	<-a.done
}

func inside(bin string, n, changes int, oldMinSync time.Duration, kubeProxy string) error {
	ctx := context.Background()
	c, err := harness.Start(ctx, true)
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Printf("loading %d Services x 2 endpoints\n", n)
	t0 := time.Now()
	if err := harness.Parallel(n, 16, func(i int) error {
		return harness.CreateService(ctx, c.Client, fmt.Sprintf("s%d", i), endpointAddrs(i)...)
	}); err != nil {
		return err
	}
	fmt.Printf("  loaded in %v\n", time.Since(t0).Round(time.Millisecond))

	a, err := startAgent(bin, c.Kubeconfig)
	if err != nil {
		return err
	}
	cold, err := a.firstSync()
	if err != nil {
		return err
	}
	time.Sleep(time.Second)
	rss := harness.RSSKiB(a.cmd.Process.Pid)
	anon, file := harness.RSSParts(a.cmd.Process.Pid)
	if heapProfile != "" {
		if err := saveHeapProfile(heapProfile); err != nil {
			return err
		}
	}

	mon, err := watchKernel()
	if err != nil {
		return err
	}
	defer mon.close()
	fmt.Printf("timing %d two-write changes\n", changes)
	cur, err := timeChanges(ctx, c, a, mon, n, changes, "new")
	if err != nil {
		return err
	}
	a.stop(false)
	var old *changeTimes
	if oldMinSync > 0 {
		a, err := startAgent(bin, c.Kubeconfig, "--min-sync-period", oldMinSync.String())
		if err != nil {
			return err
		}
		if _, err := a.firstSync(); err != nil {
			return err
		}
		fmt.Printf("timing %d two-write changes with --min-sync-period %v\n", changes, oldMinSync)
		if old, err = timeChanges(ctx, c, a, mon, n+changes, changes, "old"); err != nil {
			return err
		}
		a.stop(false)
	}
	// The monitor is done: subscribed, it would make the kernel send it an event
	// per element of the full syncs below (the cold one above ran without it).
	mon.close()
	a2, err := startAgent(bin, c.Kubeconfig)
	if err != nil {
		return err
	}
	warm, err := a2.firstSync()
	if err != nil {
		return err
	}
	a2.stop(true) // kill -9: the table stays
	a3, err := startAgent(bin, c.Kubeconfig)
	if err != nil {
		return err
	}
	stale, err := a3.firstSync()
	if err != nil {
		return err
	}
	a3.stop(false)
	p := func(d []time.Duration, q int) time.Duration { return harness.Percentile(d, q, 10*time.Microsecond) }
	fmt.Printf("\n%d Services x 2 endpoints, %s backend:\n", n, backend)
	fmt.Printf("  two-write change (Service, then its EndpointSlice) -> in the kernel: p50 %v  p99 %v  (%d changes, %.2f partial syncs per change)\n",
		p(cur.prog, 50), p(cur.prog, 99), len(cur.prog), float64(cur.syncs)/float64(len(cur.prog)))
	fmt.Printf("  baseline, the same two writes -> EndpointSlice watch event: p50 %v  p99 %v\n", p(cur.base, 50), p(cur.base, 99))
	fmt.Printf("  ratio p50 %.2fx  p99 %.2fx\n", harness.Ratio(p(cur.prog, 50), p(cur.base, 50)), harness.Ratio(p(cur.prog, 99), p(cur.base, 99)))
	fmt.Printf("  per change, programmed minus watched (the agent's own part): p50 %v  p99 %v\n", p(cur.extra, 50), p(cur.extra, 99))
	if old != nil {
		fmt.Printf("  the same with --min-sync-period %v (the old fixed floor): p50 %v  p99 %v  (%.2f partial syncs per change); new/old p50 %.3fx  p99 %.3fx\n",
			oldMinSync, p(old.prog, 50), p(old.prog, 99), float64(old.syncs)/float64(len(old.prog)),
			harness.Ratio(p(cur.prog, 50), p(old.prog, 50)), harness.Ratio(p(cur.prog, 99), p(old.prog, 99)))
	}
	fmt.Printf("  first full sync: cold %v, after a clean restart %v, after kill -9 (old table present) %v\n",
		cold.Round(time.Millisecond), warm.Round(time.Millisecond), stale.Round(time.Millisecond))
	fmt.Printf("  agent RSS after the first sync: %d MiB (anonymous %d MiB, its binary's pages %d MiB)\n", rss>>10, anon>>10, file>>10)
	if kubeProxy != "" {
		kpRSS, kpAnon, kpSync, err := kubeProxyRSS(kubeProxy, c.Kubeconfig)
		if err != nil {
			return fmt.Errorf("kube-proxy: %w", err)
		}
		fmt.Printf("  kube-proxy (nftables) RSS after its first sync (%v): %d MiB (anonymous %d MiB); agent/kube-proxy %.2fx, anonymous %.2fx\n",
			kpSync.Round(time.Millisecond), kpRSS>>10, kpAnon>>10, float64(rss)/float64(kpRSS), float64(anon)/float64(kpAnon))
	}
	return nil
}

// kernelMonitor records when each address was first seen programmed.
type kernelMonitor struct {
	mon    *nftables.Monitor
	seenAt sync.Map // netip.Addr -> time.Time
	tick   chan struct{}
}

// watchKernel follows the nf_tables netlink monitor: an ip-endpoints element
// (nftables) or a nat rule comparing with an address (iptables-nft) marks
// that address programmed. The event may come before the Create call returns
// the Service's cluster IP.
func watchKernel() (*kernelMonitor, error) {
	// A partial iptables sync rewrites KUBE-SERVICES (a rule per Service): the
	// monitor's socket needs room for that batch (ENOBUFS ends the monitor).
	conn, err := nftables.New(nftables.WithSockOptions(func(c *netlink.Conn) error { return c.SetReadBuffer(256 << 20) }))
	if err != nil {
		return nil, err
	}
	k := &kernelMonitor{mon: nftables.NewMonitor(), tick: make(chan struct{}, 1)} // every object: with an object filter the library drops the NEWGEN that ends a batch
	events, err := conn.AddMonitor(k.mon)
	if err != nil {
		return nil, err
	}
	send := func(ip netip.Addr) {
		if _, loaded := k.seenAt.LoadOrStore(ip, time.Now()); !loaded {
			select {
			case k.tick <- struct{}{}:
			default:
			}
		}
	}
	go func() {
		for ev := range events {
			if ev.Error != nil && os.Getenv("BENCH_DEBUG") != "" {
				fmt.Fprintln(os.Stderr, "monitor:", ev.Type, ev.Error)
			}
			if ev.Type == nftables.MonitorEventTypeNewRule {
				// iptables-nft: -d VIP/32 is a 4-byte compare; only nat rules
				// need endpoints (filter rejects a Service without them).
				if r, ok := ev.Data.(*nftables.Rule); ok && r.Table != nil && r.Table.Name == "nat" {
					for _, e := range r.Exprs {
						if c, ok := e.(*expr.Cmp); ok && len(c.Data) == 4 {
							ip, _ := netip.AddrFromSlice(c.Data)
							send(ip)
						}
					}
				}
				continue
			}
			if ev.Type != nftables.MonitorEventTypeNewSetElem {
				continue
			}
			elems, _ := ev.Data.([]nftables.SetElement)
			for _, e := range elems {
				if len(e.Key) == 16 { // ip . proto . port . slot: an endpoint of an ip-endpoints-N map
					ip, _ := netip.AddrFromSlice(e.Key[:4])
					send(ip)
				}
			}
		}
	}()
	return k, nil
}

func (k *kernelMonitor) close() { k.mon.Close() }

// changeTimes are the timed changes of one agent run.
type changeTimes struct {
	prog, base, extra []time.Duration
	syncs             int64 // partial syncs the agent logged meanwhile
}

// timeChanges creates changes Services one by one, each written as real
// clusters do: the Service, then at once its EndpointSlice; each is timed from
// the first write until its endpoints are in the kernel, and until a watch of
// EndpointSlices sees the second write (the baseline). first numbers the
// Services' endpoint addresses.
func timeChanges(ctx context.Context, c *harness.Cluster, a *agent, k *kernelMonitor, first, changes int, tag string) (*changeTimes, error) {
	w, err := c.Client.DiscoveryV1().EndpointSlices("default").Watch(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelManagedBy + "=bench"})
	if err != nil {
		return nil, err
	}
	defer w.Stop()
	out := &changeTimes{}
	syncs0 := a.partials.Load()
	for i := 0; i < changes; i++ {
		time.Sleep(50 * time.Millisecond) // the previous change's syncs are over
		name := fmt.Sprintf("change-%s-%d", tag, i)
		start := time.Now()
		svc, err := c.Client.CoreV1().Services("default").Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}, metav1.CreateOptions{})
		if err != nil {
			return nil, err
		}
		if err := harness.CreateSlice(ctx, c.Client, name, endpointAddrs(first+i)...); err != nil {
			return nil, err
		}
		ip := netip.MustParseAddr(svc.Spec.ClusterIP)
		var watched, programmed time.Duration
		for watched == 0 || programmed == 0 {
			if at, ok := k.seenAt.Load(ip); ok && programmed == 0 {
				programmed = max(at.(time.Time).Sub(start), time.Nanosecond)
				continue
			}
			select {
			case ev := <-w.ResultChan():
				if es, ok := ev.Object.(*discoveryv1.EndpointSlice); ok && ev.Type == watch.Added && es.Labels[discoveryv1.LabelServiceName] == name {
					watched = time.Since(start)
				}
			case <-k.tick:
			case <-time.After(30 * time.Second):
				out, _ := exec.Command("nft", "list", "map", "ip", "svcnet", "ip-endpoints-2").CombinedOutput()
				if backend == "iptables" {
					out, _ = exec.Command("iptables-save", "-t", "nat").CombinedOutput()
				}
				return nil, fmt.Errorf("service %s (%s) not seen programmed within 30s; in the kernel: %v", name, ip, strings.Contains(string(out), ip.String()+" ") || strings.Contains(string(out), ip.String()+"/32"))
			}
		}
		out.prog, out.base = append(out.prog, programmed), append(out.base, watched)
		out.extra = append(out.extra, max(0, programmed-watched))
	}
	time.Sleep(100 * time.Millisecond) // the last change's log lines are read
	out.syncs = a.partials.Load() - syncs0
	return out, nil
}

// endpointAddrs are the two endpoint addresses of the i-th Service, from
// 10.128.0.0/9 (room for 100,000s of Services; outside the service CIDR).
func endpointAddrs(i int) []string {
	addr := func(k int) string {
		return netip.AddrFrom4([4]byte{10, byte(128 + k>>16), byte(k >> 8), byte(k)}).String()
	}
	return []string{addr(2*i + 2), addr(2*i + 3)}
}

var lastSyncRE = regexp.MustCompile(`(?m)^kubeproxy_sync_proxy_rules_last_timestamp_seconds(?:\{ip_family="IPv4"\})? ([0-9.e+]+)$`)

// kubeProxyRSS runs kube-proxy (nftables mode) on the same API server until
// its /metrics reports a completed sync (at most 15 minutes), and returns its
// RSS then and how long that first sync took from its start.
func kubeProxyRSS(bin, kubeconfig string) (rss, anon int64, took time.Duration, err error) {
	cmd := exec.Command(bin, "--kubeconfig", kubeconfig, "--hostname-override", "bench", "--proxy-mode", "nftables",
		"--cluster-cidr", "10.244.0.0/16", "--metrics-bind-address", "127.0.0.1:10249", "--healthz-bind-address", "127.0.0.1:10256",
		// conntrack sysctls are not per namespace: leave the host's alone
		"--conntrack-max-per-core", "0", "--conntrack-tcp-timeout-established", "0", "--conntrack-tcp-timeout-close-wait", "0")
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, 0, err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	defer func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		_ = exec.Command("nft", "delete", "table", "ip", "kube-proxy").Run()
	}()
	client := &http.Client{Timeout: 2 * time.Second}
	for deadline := time.Now().Add(15 * time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		select {
		case <-done:
			return 0, 0, 0, fmt.Errorf("exited before its first sync")
		default:
		}
		resp, err := client.Get("http://127.0.0.1:10249/metrics")
		if err != nil {
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if m := lastSyncRE.FindSubmatch(body); m != nil {
			if v, _ := strconv.ParseFloat(string(m[1]), 64); v > 0 {
				took := time.Unix(0, int64(v*1e9)).Sub(start)
				time.Sleep(2 * time.Second)
				anon, _ := harness.RSSParts(cmd.Process.Pid)
				return harness.RSSKiB(cmd.Process.Pid), anon, took, nil
			}
		}
	}
	return 0, 0, 0, fmt.Errorf("no sync within 15 minutes")
}

// saveHeapProfile writes the agent's heap profile (--profiling on its metrics
// address) to path.
func saveHeapProfile(path string) error {
	resp, err := http.Get("http://127.0.0.1:10249/debug/pprof/heap")
	if err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	defer resp.Body.Close()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	fmt.Printf("  agent heap profile: %s (go tool pprof -sample_index=inuse_space %s)\n", path, path)
	return f.Close()
}
