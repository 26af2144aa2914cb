// Command proxy measures a kernel service proxy's control path (-backend
// nftables or iptables): with N Services x 2 endpoints loaded, the time from
// creating one more Service (with its EndpointSlice) until its endpoints are in
// the kernel (seen on the nf_tables netlink monitor: an element of an
// ip-endpoints map, or for iptables, which the Debian tools write through
// nf_tables, the batch holding a nat rule matching the VIP), against the bare API round trip of the same
// write (until a Service watch sees it); the first full sync when the agent
// starts (clean, and after kill -9 with the old table still there); the
// agent's RSS. Needs root: everything runs in a network namespace of its own.
//
//	go run ./bench/proxy [-services 1000|10000] [-changes 100] [-backend nftables|iptables]
//
// Each timed change is one API write (the Service create; its EndpointSlice
// was written 300 ms before, beyond the agent's 100 ms --min-sync-period).
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/svcnet/svcnet/bench/harness"
)

func main() {
	services := flag.Int("services", 1000, "Services loaded (2 endpoints each)")
	changes := flag.Int("changes", 100, "Services created one by one and timed")
	flag.StringVar(&backend, "backend", "nftables", "proxy mode measured: nftables or iptables")
	flag.Parse()
	if backend != "nftables" && backend != "iptables" {
		fmt.Fprintln(os.Stderr, "bench/proxy: -backend: want nftables or iptables, not", backend)
		os.Exit(2)
	}
	in, err := harness.InNetns("proxy")
	if in != nil {
		err = inside(in.Bin, *services, *changes)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/proxy:", err)
		os.Exit(1)
	}
}

// backend is the agent's --proxy-mode, set once by a flag.
var backend string

// agent is a running `svcnet agent`, with the took= of its first full sync.
type agent struct {
	cmd  *exec.Cmd
	sync chan time.Duration
	done chan struct{}
}

var tookRE = regexp.MustCompile(`msg="proxy rules synced".* took=([0-9.]+[µmn]?s)`)

func startAgent(bin, kubeconfig string) (*agent, error) {
	a := &agent{cmd: exec.Command(bin, "agent", "--kubeconfig", kubeconfig, "--node-name", "bench", "--node-ip", "127.0.0.1",
		"--pod-runtime=off", "--proxy-mode="+backend, "--dns-resolv-conf", "", "--log-level", logLevel()), sync: make(chan time.Duration, 1), done: make(chan struct{})}
	stderr, _ := a.cmd.StderrPipe()
	if err := a.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "error:") || strings.Contains(sc.Text(), "failed") || strings.Contains(sc.Text(), "(partial)") {
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

func inside(bin string, n, changes int) error {
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

	// A partial iptables sync rewrites KUBE-SERVICES (a rule per Service): the
	// monitor's socket needs room for that batch (ENOBUFS ends the monitor).
	conn, err := nftables.New(nftables.WithSockOptions(func(c *netlink.Conn) error { return c.SetReadBuffer(256 << 20) }))
	if err != nil {
		return err
	}
	mon := nftables.NewMonitor() // every object: with an object filter the library drops the NEWGEN that ends a batch
	events, err := conn.AddMonitor(mon)
	if err != nil {
		return err
	}
	defer mon.Close()
	// When each address was first seen programmed: the event may come before
	// the Create call returns the Service's cluster IP.
	var seenAt sync.Map
	tick := make(chan struct{}, 1)
	send := func(ip netip.Addr) {
		if _, loaded := seenAt.LoadOrStore(ip, time.Now()); !loaded {
			select {
			case tick <- struct{}{}:
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
				// iptables-nft: -d VIP/32 is a 4-byte compare in the rule.
				if r, ok := ev.Data.(*nftables.Rule); ok {
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
	w, err := c.Client.CoreV1().Services("default").Watch(ctx, metav1.ListOptions{LabelSelector: "bench=change"})
	if err != nil {
		return err
	}
	defer w.Stop()
	var prog, base, extra []time.Duration
	for i := 0; i < changes; i++ {
		name := fmt.Sprintf("change-%d", i)
		// The endpoints exist first (a slice of a Service not yet there: no rules);
		// the timed change is the one API write that creates the Service.
		if err := harness.CreateSlice(ctx, c.Client, name, endpointAddrs(n+i)...); err != nil {
			return err
		}
		time.Sleep(300 * time.Millisecond) // the slice's own sync (delayed up to --min-sync-period) is done
		start := time.Now()
		svc, err := c.Client.CoreV1().Services("default").Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name,
			Labels: map[string]string{"bench": "change"}}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		ip := netip.MustParseAddr(svc.Spec.ClusterIP)
		var watched, programmed time.Duration
		for watched == 0 || programmed == 0 {
			if at, ok := seenAt.Load(ip); ok && programmed == 0 {
				programmed = max(at.(time.Time).Sub(start), time.Nanosecond)
				continue
			}
			select {
			case ev := <-w.ResultChan():
				if ev.Type == watch.Added && ev.Object.(*corev1.Service).Name == name {
					watched = time.Since(start)
				}
			case <-tick:
			case <-time.After(30 * time.Second):
				out, _ := exec.Command("nft", "list", "map", "ip", "svcnet", "ip-endpoints-2").CombinedOutput()
				if backend == "iptables" {
					out, _ = exec.Command("iptables-save", "-t", "nat").CombinedOutput()
				}
				return fmt.Errorf("service %s (%s) not seen programmed within 30s; in the kernel: %v", name, ip, strings.Contains(string(out), ip.String()+" ") || strings.Contains(string(out), ip.String()+"/32"))
			}
		}
		prog, base = append(prog, programmed), append(base, watched)
		extra = append(extra, max(0, programmed-watched))
	}
	a.stop(false)
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

	fmt.Printf("\n%d Services x 2 endpoints, %s backend:\n", n, backend)
	fmt.Printf("  one new Service -> in the kernel: p50 %v  p99 %v\n", harness.Percentile(prog, 50, 10*time.Microsecond), harness.Percentile(prog, 99, 10*time.Microsecond))
	fmt.Printf("  baseline, the same create -> Service watch event: p50 %v  p99 %v\n", harness.Percentile(base, 50, 10*time.Microsecond), harness.Percentile(base, 99, 10*time.Microsecond))
	fmt.Printf("  ratio p50 %.2fx  p99 %.2fx\n", harness.Ratio(harness.Percentile(prog, 50, 10*time.Microsecond), harness.Percentile(base, 50, 10*time.Microsecond)), harness.Ratio(harness.Percentile(prog, 99, 10*time.Microsecond), harness.Percentile(base, 99, 10*time.Microsecond)))
	fmt.Printf("  per change, programmed minus watched (the agent's own part): p50 %v  p99 %v\n", harness.Percentile(extra, 50, 10*time.Microsecond), harness.Percentile(extra, 99, 10*time.Microsecond))
	fmt.Printf("  first full sync: cold %v, after a clean restart %v, after kill -9 (old table present) %v\n",
		cold.Round(time.Millisecond), warm.Round(time.Millisecond), stale.Round(time.Millisecond))
	fmt.Printf("  agent RSS after the first sync: %d MiB\n", rss>>10)
	return nil
}

// endpointAddrs are the two endpoint addresses of the i-th Service.
func endpointAddrs(i int) []string {
	return []string{fmt.Sprintf("10.244.%d.%d", 2*i/250, 2*i%250+2), fmt.Sprintf("10.244.%d.%d", (2*i+1)/250, (2*i+1)%250+2)}
}

// logLevel is the agent's log level: BENCH_AGENT_LOG=debug shows each partial sync.
func logLevel() string {
	if l := os.Getenv("BENCH_AGENT_LOG"); l != "" {
		return l
	}
	return "info"
}
