// Command lbfailover measures how long a LoadBalancer IP is unreachable when
// the node announcing it (answering ARP, internal/announce) dies, over many
// deaths: two nodes joined with `svcnet join` in network namespaces on one
// bridge (no route out), a client namespace on the same L2 sending one HTTP
// request every -period to the IP, and -kills times: the Lease holder's agent
// is killed (SIGKILL, by pid) and, with -unplug, its link goes down (the node
// is lost: without it, the dead agent's nftables rules and the client's ARP
// cache keep serving through it); the failover time is from the client's
// last success before the kill to its first success after. The dead node is
// then plugged back and its agent restarted (bounded) before the next kill,
// which hits the other node. The client also watches its link for the new
// announcer's gratuitous ARP.
//
// Needs root: everything runs in a network namespace of its own.
//
//	go run ./bench/lbfailover [-kills 20] [-period 50ms] [-unplug=true]
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mdlayher/arp"
	"github.com/vishvananda/netns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/svcnet/svcnet/bench/harness"
	"github.com/svcnet/svcnet/internal/announce"
	"github.com/svcnet/svcnet/internal/auth"
)

const (
	prefix      = "192.168.91."
	lbIP        = prefix + "240"
	bridge      = "lbfbr0"
	backendPort = 8080
	// bounds of one kill: the IP must answer again, and the dead node's agent
	// must register again, within these.
	failoverBound = 30 * time.Second
	restartBound  = 60 * time.Second
)

func main() {
	kills := flag.Int("kills", 20, "announcing-node deaths, one after another")
	period := flag.Duration("period", 50*time.Millisecond, "time between the client's requests (each times out after 4 periods)")
	unplug := flag.Bool("unplug", true, "also take the dead node's link down (a lost node); false: only the agent dies, and its kernel rules keep serving")
	flag.Parse()
	if *kills < 1 || *period <= 0 {
		fmt.Fprintln(os.Stderr, "bench/lbfailover: -kills must be >= 1 and -period > 0")
		os.Exit(2)
	}
	in, err := harness.InNetns("lbfailover")
	if in != nil {
		err = inside(in, *kills, *period, *unplug)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/lbfailover:", err)
		os.Exit(1)
	}
}

func run(args ...string) error {
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// node is a network namespace on the bridge and the agent run in it.
type node struct {
	name, ns, veth, dir, logPath string
	mac                          net.HardwareAddr
	cmd                          *exec.Cmd
	done                         chan struct{}
}

// addNamespace puts namespace ns with address prefix+host on the bridge
// through veth; the returned func removes both.
func addNamespace(ns, veth string, host int) (func(), error) {
	cleanup := func() {
		_ = exec.Command("ip", "link", "del", veth).Run()
		_ = exec.Command("ip", "netns", "del", ns).Run()
	}
	for _, args := range [][]string{
		{"ip", "netns", "add", ns},
		{"ip", "-n", ns, "link", "set", "lo", "up"},
		{"ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns},
		{"ip", "link", "set", veth, "master", bridge, "up"},
		{"ip", "-n", ns, "addr", "add", fmt.Sprintf("%s%d/24", prefix, host), "dev", "eth0"},
		{"ip", "-n", ns, "link", "set", "eth0", "up"},
	} {
		if err := run(args...); err != nil {
			cleanup()
			return nil, err
		}
	}
	return cleanup, nil
}

// macOf is the hardware address of eth0 in ns.
func macOf(ns string) (net.HardwareAddr, error) {
	out, err := exec.Command("ip", "-n", ns, "-o", "link", "show", "eth0").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("ip link show: %v %s", err, out)
	}
	f := strings.Fields(string(out))
	for i := range f[:len(f)-1] {
		if f[i] == "link/ether" {
			return net.ParseMAC(f[i+1])
		}
	}
	return nil, fmt.Errorf("no link/ether in %s", out)
}

// start runs the node's agent (svcnet join) and waits until it registered.
func (n *node) start(bin, server, token string) error {
	logf, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	off, _ := logf.Seek(0, 2)
	n.cmd = exec.Command("ip", "netns", "exec", n.ns, bin, "join", server, "--token", token, "--node-name", n.name,
		"--data-dir", n.dir, "--pod-runtime=off", "--container-runtime=process", "--proxy-mode=nftables", "--ingress=false",
		"--dns-resolv-conf", "", "--healthz-bind-address", "", "--metrics-bind-address", "")
	n.cmd.Stdout, n.cmd.Stderr = logf, logf
	if err := n.cmd.Start(); err != nil {
		return err
	}
	n.done = make(chan struct{})
	go func(c *exec.Cmd, done chan struct{}) { _ = c.Wait(); close(done) }(n.cmd, n.done)
	want := []byte("svcnet agent: node " + n.name + " registered")
	for deadline := time.Now().Add(restartBound); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		data, _ := os.ReadFile(n.logPath)
		if int64(len(data)) > off && bytes.Contains(data[off:], want) {
			return nil
		}
		select {
		case <-n.done:
			return fmt.Errorf("agent %s exited before it registered (log %s)", n.name, n.logPath)
		default:
		}
	}
	n.kill()
	return fmt.Errorf("agent %s did not register within %v (log %s)", n.name, restartBound, n.logPath)
}

// kill ends the agent with SIGKILL (by its pid) and waits for it.
func (n *node) kill() {
	if n.cmd == nil || n.cmd.Process == nil {
		return
	}
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.done
	n.cmd = nil
}

// probe is one request of the client: when it started and ended and whether
// it got a 200.
type probe struct {
	start, end time.Time
	ok         bool
}

// garp is a gratuitous ARP for the load-balancer IP seen by the client.
type garp struct {
	at  time.Time
	mac string
}

// client sends requests to the load-balancer IP from its namespace and
// watches its link for gratuitous ARP, until stop.
type client struct {
	mu     sync.Mutex
	probes []probe
	garps  []garp
}

func (c *client) snapshot() ([]probe, []garp) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]probe(nil), c.probes...), append([]garp(nil), c.garps...)
}

// run enters ns on a locked thread (the sockets it opens live there) and
// probes every period until stop; the ARP watcher's socket is opened there too.
func (c *client) run(ns string, period time.Duration, stop <-chan struct{}, ready chan<- error) {
	runtime.LockOSThread() // never unlocked: the thread dies with the goroutine, not back in the pool in ns
	h, err := netns.GetFromName(ns)
	if err == nil {
		err = netns.Set(h)
		_ = h.Close()
	}
	var ac *arp.Client
	if err == nil {
		var ifi *net.Interface
		if ifi, err = net.InterfaceByName("eth0"); err == nil {
			ac, err = arp.Dial(ifi)
		}
	}
	ready <- err
	if err != nil {
		return
	}
	defer ac.Close()
	want := netip.MustParseAddr(lbIP)
	go func() {
		for {
			p, _, err := ac.Read()
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err == nil && p.SenderIP == want && p.TargetIP == want {
				c.mu.Lock()
				c.garps = append(c.garps, garp{time.Now(), p.SenderHardwareAddr.String()})
				c.mu.Unlock()
			}
		}
	}()
	req := []byte("GET / HTTP/1.1\r\nHost: " + lbIP + "\r\nConnection: close\r\n\r\n")
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		start := time.Now()
		ok := get(req, 4*period)
		c.mu.Lock()
		c.probes = append(c.probes, probe{start, time.Now(), ok})
		c.mu.Unlock()
		select {
		case <-stop:
			return
		case <-tick.C:
		}
	}
}

// get sends req to the load-balancer IP and reports a 200 within timeout.
func get(req []byte, timeout time.Duration) bool {
	conn, err := net.DialTimeout("tcp", net.JoinHostPort(lbIP, "80"), timeout)
	if err != nil {
		return false
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	if _, err := conn.Write(req); err != nil {
		return false
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "HTTP/1.1 200")
}

// result of one kill.
type result struct {
	from, to    string
	failover    time.Duration // last success before the kill -> first success after
	failed      int           // requests that failed in between
	garp        time.Duration // kill -> the new announcer's gratuitous ARP (0: not seen)
	sawGARP     bool
	firstOKKill time.Duration // kill -> first success
}

func inside(in *harness.Inside, kills int, period time.Duration, unplug bool) (err error) {
	ctx := context.Background()
	if err := run("ip", "link", "add", bridge, "type", "bridge"); err != nil {
		return err
	}
	defer exec.Command("ip", "link", "del", bridge).Run()
	if err := run("ip", "addr", "add", prefix+"254/24", "dev", bridge); err != nil {
		return err
	}
	if err := run("ip", "link", "set", bridge, "up"); err != nil {
		return err
	}
	// The backend: a hostname server on the bridge address, outside the nodes.
	backend := exec.Command(in.Bin, "agnhost", "serve-hostname", "--port", fmt.Sprint(backendPort))
	if err := backend.Start(); err != nil {
		return err
	}
	defer func() { _ = backend.Process.Kill(); _ = backend.Wait() }()

	cpLog, err := os.Create(filepath.Join(in.Tmp, "cp.log"))
	if err != nil {
		return err
	}
	defer cpLog.Close()
	up, err := harness.StartUp(in.Bin, filepath.Join(in.Tmp, "cp"), cpLog, "--bind-address", prefix+"254",
		"--pod-runtime=off", "--proxy-mode=none", "--ingress=false", "--load-balancer-pool", prefix+"240-"+prefix+"250")
	if err != nil {
		return err
	}
	defer up.Stop()
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(in.Tmp, "cp", "kubeconfig"))
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	tok := auth.NewBootstrapToken()
	sec := auth.BootstrapSecret(tok, time.Hour, time.Now(), "bench/lbfailover")
	if _, err := cs.CoreV1().Secrets(sec.Namespace).Create(ctx, sec, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("bootstrap token: %w", err)
	}
	server := "https://" + prefix + "254:6443"

	pid := os.Getpid()
	nodes := map[string]*node{}
	for i, name := range []string{"lbf-a", "lbf-b"} {
		n := &node{name: name, ns: fmt.Sprintf("svcnet-%s-%d", name, pid), veth: "v" + name,
			dir: filepath.Join(in.Tmp, name), logPath: filepath.Join(in.Tmp, name+".log")}
		cleanup, err := addNamespace(n.ns, n.veth, i+1)
		if err != nil {
			return err
		}
		defer cleanup()
		if err := run("ip", "netns", "exec", n.ns, "sysctl", "-qw", "net.ipv4.ip_forward=1"); err != nil {
			return err
		}
		if n.mac, err = macOf(n.ns); err != nil {
			return err
		}
		defer n.kill()
		if err := n.start(in.Bin, server, tok.String()); err != nil {
			return err
		}
		nodes[name] = n
	}
	clientNS := fmt.Sprintf("svcnet-lbf-cl-%d", pid)
	cleanup, err := addNamespace(clientNS, "vlbf-cl", 100)
	if err != nil {
		return err
	}
	defer cleanup()

	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Port: 80}}}}
	if _, err := cs.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		return err
	}
	if err := harness.CreateSlice(ctx, cs, "web", prefix+"254"); err != nil {
		return err
	}

	c := &client{}
	stop, ready := make(chan struct{}), make(chan error, 1)
	go c.run(clientNS, period, stop, ready)
	if err := <-ready; err != nil {
		return fmt.Errorf("client namespace: %w", err)
	}
	defer close(stop)

	holder := func() string {
		l, err := cs.CoordinationV1().Leases("kube-system").Get(ctx, announce.LeaseName("default", "web"), metav1.GetOptions{})
		if err != nil || l.Spec.HolderIdentity == nil {
			return ""
		}
		return *l.Spec.HolderIdentity
	}
	// steady waits until the client's last request succeeded and a node holds the Lease.
	steady := func() (string, error) {
		for deadline := time.Now().Add(failoverBound); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			probes, _ := c.snapshot()
			if len(probes) > 0 && probes[len(probes)-1].ok {
				if h := holder(); nodes[h] != nil {
					return h, nil
				}
			}
		}
		return "", fmt.Errorf("%s not reachable from the client with a Lease holder within %v", lbIP, failoverBound)
	}

	fmt.Printf("2 nodes + a client on one bridge, LoadBalancer IP %s, a request every %v (timeout %v), %d kills, unplug=%v\n",
		lbIP, period, 4*period, kills, unplug)
	var results []result
	for i := range kills {
		from, err := steady()
		if err != nil {
			return err
		}
		to := map[string]string{"lbf-a": "lbf-b", "lbf-b": "lbf-a"}[from]
		dead := nodes[from]
		dead.kill()
		if unplug {
			if err := run("ip", "link", "set", dead.veth, "down"); err != nil {
				return err
			}
		}
		kill := time.Now() // the node is gone: requests sent from now on cannot pass through it
		var r result
		for deadline := kill.Add(failoverBound); ; time.Sleep(20 * time.Millisecond) {
			probes, garps := c.snapshot()
			if ok := measure(probes, garps, kill, nodes[to].mac.String(), &r); ok {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("kill %d: %s not reachable again within %v after %s died", i+1, lbIP, failoverBound, from)
			}
		}
		r.from, r.to = from, holder() // with -unplug=false the restarted agent may keep its Lease
		results = append(results, r)
		garpText := "no gratuitous ARP seen"
		if r.sawGARP {
			garpText = fmt.Sprintf("gratuitous ARP from %s %v after the kill", to, r.garp.Round(time.Millisecond))
		}
		fmt.Printf("kill %2d: %s died, Lease now held by %s: failover %v (kill -> first success %v), %d failed requests, %s\n", i+1, from, r.to,
			r.failover.Round(time.Millisecond), r.firstOKKill.Round(time.Millisecond), r.failed, garpText)
		if unplug {
			if err := run("ip", "link", "set", dead.veth, "up"); err != nil {
				return err
			}
		}
		if err := dead.start(in.Bin, server, tok.String()); err != nil {
			return fmt.Errorf("kill %d: restart: %w", i+1, err)
		}
		// The restarted agent's informers and announcer: a Lease period (2 s) and
		// some before it can take over (this wait is not measured).
		time.Sleep(3 * time.Second)
	}
	report(results)
	return nil
}

// measure fills r from the client's requests and ARP after kill; false until
// a request sent after the kill succeeded (one in flight at the kill may
// still pass through the dying node).
func measure(probes []probe, garps []garp, kill time.Time, toMAC string, r *result) bool {
	var lastOK time.Time
	failed, firstOK := 0, time.Time{}
	for _, p := range probes {
		switch {
		case p.ok && p.end.Before(kill):
			lastOK, failed = p.end, 0
		case p.ok && p.start.After(kill):
			firstOK = p.end
		case !p.ok:
			failed++
		}
		if !firstOK.IsZero() {
			break
		}
	}
	if firstOK.IsZero() || lastOK.IsZero() {
		return false
	}
	r.failover, r.firstOKKill, r.failed = firstOK.Sub(lastOK), firstOK.Sub(kill), failed
	for _, g := range garps {
		if g.at.After(kill) && g.mac == toMAC {
			r.garp, r.sawGARP = g.at.Sub(kill), true
			break
		}
	}
	return true
}

func report(results []result) {
	var fo, garps []time.Duration
	failed := 0
	for _, r := range results {
		fo = append(fo, r.failover)
		failed += r.failed
		if r.sawGARP {
			garps = append(garps, r.garp)
		}
	}
	p := func(d []time.Duration, n int) time.Duration { return harness.Percentile(d, n, 10*time.Millisecond) }
	fmt.Printf("\nfailover over %d kills (last success before the kill -> first success after): min %v p50 %v p90 %v max %v; %d failed requests in all\n",
		len(fo), p(fo, 0), p(fo, 50), p(fo, 90), p(fo, 100), failed)
	if len(garps) > 0 {
		fmt.Printf("gratuitous ARP of the new announcer seen by the client in %d of %d kills, kill -> GARP: min %v p50 %v p90 %v max %v\n",
			len(garps), len(results), p(garps, 0), p(garps, 50), p(garps, 90), p(garps, 100))
	} else {
		fmt.Printf("gratuitous ARP of the new announcer seen by the client in 0 of %d kills\n", len(results))
	}
	fmt.Println("published, not measured here (../shared/PERF-NOTES.md): MetalLB L2 \"a few seconds\"; kube-vip ~3 s; Cilium L2 announcements 2-4 s tuned, 10-20 s by default")
}
