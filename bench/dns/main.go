// Command dns compares svcnet's cluster DNS with CoreDNS (kubernetes + cache
// plugins) fed by the same svcnet API server: dnsperf saturation throughput,
// latency percentiles at a fixed rate, loss and RSS, both servers pinned to the
// same core with GOMAXPROCS=1 and dnsperf on the other core. It also compares
// the two servers' answers for every distinct query of the query file.
// Everything runs on loopback. Needs dnsperf and taskset; builds CoreDNS 1.11.3
// from its module when -coredns is not given.
package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	mdns "github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/svcnet/svcnet/bench/harness"
)

func main() {
	services := flag.Int("services", 1000, "Services (10% headless with 3 endpoints)")
	dur := flag.Int("seconds", 10, "length of each dnsperf run")
	runs := flag.Int("runs", 3, "saturation runs per server (median reported)")
	coredns := flag.String("coredns", "", "CoreDNS binary (default: build v1.11.3 into the Go cache dir)")
	flag.Parse()
	if err := run(*services, *dur, *runs, *coredns); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func freePort() int {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func buildCoreDNS() (string, error) {
	cacheDir, _ := os.UserCacheDir()
	dir := filepath.Join(cacheDir, "svcnet-bench", "coredns-1.11.3")
	bin := filepath.Join(dir, "coredns")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	fmt.Println("progress: building CoreDNS v1.11.3 from its module (a few minutes, once)")
	cmd := exec.Command("go", "install", "github.com/coredns/coredns@v1.11.3")
	cmd.Env = append(os.Environ(), "GOBIN="+dir)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	return bin, cmd.Run()
}

type server struct {
	name string
	port int
	cmd  *exec.Cmd
}

func (s *server) rssMB() float64 { return float64(harness.RSSKiB(s.cmd.Process.Pid)) / 1024 }

func start(name string, port int, argv ...string) (*server, error) {
	cmd := exec.Command("taskset", append([]string{"-c", "0"}, argv...)...)
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
	var logBuf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logBuf, &logBuf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{name: name, port: port, cmd: cmd}
	q := new(mdns.Msg)
	q.SetQuestion("kubernetes.default.svc.cluster.local.", mdns.TypeA)
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if m, _, err := (&mdns.Client{Timeout: time.Second}).Exchange(q, fmt.Sprintf("127.0.0.1:%d", port)); err == nil && len(m.Answer) == 1 {
			return s, nil
		}
	}
	_ = cmd.Process.Kill()
	return nil, fmt.Errorf("%s did not answer within 60s:\n%s", name, logBuf.String())
}

type perf struct {
	qps, avgMs float64
	lost       string
}

func dnsperf(port int, file string, seconds int, extra ...string) (perf, []float64, error) {
	args := append([]string{"-c", "1", "dnsperf", "-s", "127.0.0.1", "-p", strconv.Itoa(port), "-d", file, "-l", strconv.Itoa(seconds), "-c", "10"}, extra...)
	out, err := exec.Command("taskset", args...).CombinedOutput()
	if err != nil {
		return perf{}, nil, fmt.Errorf("dnsperf: %v\n%s", err, out)
	}
	var p perf
	var lat []float64
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		f := strings.Fields(l)
		switch {
		case strings.HasPrefix(l, "Queries per second:"):
			p.qps, _ = strconv.ParseFloat(f[3], 64)
		case strings.HasPrefix(l, "Average Latency (s):"):
			v, _ := strconv.ParseFloat(f[3], 64)
			p.avgMs = v * 1000
		case strings.HasPrefix(l, "Queries lost:"):
			p.lost = strings.Join(f[2:], " ")
		case strings.HasPrefix(l, ">") && len(f) >= 5:
			if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
				lat = append(lat, v*1000)
			}
		}
	}
	return p, lat, nil
}

func pct(v []float64, p float64) float64 {
	if len(v) == 0 {
		return 0
	}
	sort.Float64s(v)
	return v[min(len(v)-1, int(float64(len(v))*p))]
}

func median(v []float64) float64 { return pct(append([]float64(nil), v...), 0.5) }

func run(n, seconds, runs int, coredns string) error {
	for _, tool := range []string{"dnsperf", "taskset"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found (apt-get install dnsperf util-linux)", tool)
		}
	}
	if coredns == "" {
		var err error
		if coredns, err = buildCoreDNS(); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cl, err := harness.Start(ctx, true)
	if err != nil {
		return err
	}
	defer cl.Close()
	cs, kc, dir := cl.Client, cl.Kubeconfig, cl.Dir
	fmt.Printf("cluster DNS bench: %d Services, svcnet dns vs CoreDNS 1.11.3 (kubernetes + cache 30), each GOMAXPROCS=1 on core 0, dnsperf -c 10 on core 1\n", n)
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bench"}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	headless := n / 10
	for i := 0; i < n; i++ {
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("svc-%05d", i)},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}
		if i < headless {
			svc.Spec.ClusterIP = corev1.ClusterIPNone
		}
		if _, err := cs.CoreV1().Services("bench").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			return err
		}
		if i < headless {
			ep := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: svc.Name}, Subsets: []corev1.EndpointSubset{{
				Ports: []corev1.EndpointPort{{Name: "http", Port: 80}}}}}
			for k := 0; k < 3; k++ {
				ep.Subsets[0].Addresses = append(ep.Subsets[0].Addresses, corev1.EndpointAddress{IP: fmt.Sprintf("10.244.%d.%d", i/80, (i%80)*3+k+1)})
			}
			if _, err := cs.CoreV1().Endpoints("bench").Create(ctx, ep, metav1.CreateOptions{}); err != nil {
				return err
			}
		}
	}
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		l, err := cs.DiscoveryV1().EndpointSlices("bench").List(ctx, metav1.ListOptions{})
		if err == nil && len(l.Items) >= headless {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("headless endpoints not mirrored")
		}
	}
	fmt.Printf("progress: %d Services (%d headless) created\n", n, headless)

	// Query file: existing A 50%, headless A 10%, SRV 10%, NXDOMAIN 15%, AAAA (NODATA) 15%.
	var qs []string
	for k := 0; k < 20000; k++ {
		i := rand.IntN(n)
		name := fmt.Sprintf("svc-%05d.bench.svc.cluster.local", i)
		switch r := rand.IntN(100); {
		case r < 50:
			qs = append(qs, name+" A")
		case r < 60:
			qs = append(qs, fmt.Sprintf("svc-%05d.bench.svc.cluster.local A", rand.IntN(headless)))
		case r < 70:
			qs = append(qs, "_http._tcp."+name+" SRV")
		case r < 85:
			qs = append(qs, fmt.Sprintf("nope-%05d.bench.svc.cluster.local A", i))
		default:
			qs = append(qs, name+" AAAA")
		}
	}
	file := filepath.Join(dir, "queries")
	if err := os.WriteFile(file, []byte(strings.Join(qs, "\n")+"\n"), 0o644); err != nil {
		return err
	}
	corefile := filepath.Join(dir, "Corefile")
	cport, sport := freePort(), freePort()
	if err := os.WriteFile(corefile, []byte(fmt.Sprintf("cluster.local:%d {\n  kubernetes cluster.local {\n    kubeconfig %s admin@svcnet\n    pods disabled\n  }\n  cache 30\n}\n", cport, kc)), 0o644); err != nil {
		return err
	}
	svcnetBin := filepath.Join(dir, "svcnet")
	if out, err := exec.Command("go", "build", "-o", svcnetBin, "github.com/svcnet/svcnet/cmd/svcnet").CombinedOutput(); err != nil {
		return fmt.Errorf("build svcnet: %v %s", err, out)
	}
	ours, err := start("svcnet", sport, svcnetBin, "dns", "--kubeconfig", kc, "--listen", fmt.Sprintf("127.0.0.1:%d", sport), "--resolv-conf", "", "--metrics-listen", "")
	if err != nil {
		return err
	}
	defer ours.cmd.Process.Kill()
	theirs, err := start("coredns", cport, coredns, "-conf", corefile)
	if err != nil {
		return err
	}
	defer theirs.cmd.Process.Kill()

	// Same answers?
	diffs, distinct := 0, map[string]bool{}
	for _, q := range qs {
		if distinct[q] || len(distinct) >= 2000 {
			continue
		}
		distinct[q] = true
		f := strings.Fields(q)
		a, b := answer(sport, f[0], f[1]), answer(cport, f[0], f[1])
		if a != b {
			if diffs < 5 {
				fmt.Printf("answer difference for %s:\n  svcnet:  %s\n  coredns: %s\n", q, a, b)
			}
			diffs++
		}
	}
	fmt.Printf("answers compared: %d distinct queries, %d differ\n", len(distinct), diffs)

	res := map[string][]float64{}
	avg := map[string][]float64{}
	lost := map[string]string{}
	for r := 0; r < runs; r++ {
		for _, s := range []*server{ours, theirs} {
			p, _, err := dnsperf(s.port, file, seconds)
			if err != nil {
				return err
			}
			res[s.name] = append(res[s.name], p.qps)
			avg[s.name] = append(avg[s.name], p.avgMs)
			lost[s.name] = p.lost
			fmt.Printf("progress: run %d %-7s %8.0f qps, avg %.3f ms, lost %s\n", r+1, s.name, p.qps, p.avgMs, p.lost)
		}
	}
	p99 := map[string][2]float64{}
	for _, s := range []*server{ours, theirs} {
		_, lat, err := dnsperf(s.port, file, 5, "-Q", "20000", "-v")
		if err != nil {
			return err
		}
		p99[s.name] = [2]float64{pct(lat, 0.5), pct(lat, 0.99)}
	}
	fmt.Printf("\n%-8s %12s %12s %14s %14s %8s  %s\n", "server", "qps(median)", "avg ms", "p50 @20k qps", "p99 @20k qps", "RSS MB", "lost (last run)")
	for _, s := range []*server{ours, theirs} {
		fmt.Printf("%-8s %12.0f %12.3f %14.3f %14.3f %8.1f  %s\n", s.name, median(res[s.name]), median(avg[s.name]), p99[s.name][0], p99[s.name][1], s.rssMB(), lost[s.name])
	}
	fmt.Printf("ratio svcnet/coredns: qps %.2fx, p99@20k %.2fx, RSS %.2fx (%d Services)\n",
		median(res["svcnet"])/median(res["coredns"]), p99["svcnet"][1]/p99["coredns"][1], ours.rssMB()/theirs.rssMB(), n)
	return nil
}

// answer renders rcode and sorted answer records (TTL left out) for comparison.
func answer(port int, name, qtype string) string {
	q := new(mdns.Msg)
	q.SetQuestion(mdns.Fqdn(name), mdns.StringToType[qtype])
	m, _, err := (&mdns.Client{Timeout: 2 * time.Second}).Exchange(q, fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return "error: " + err.Error()
	}
	var rrs []string
	for _, rr := range m.Answer {
		rr.Header().Ttl = 0
		rrs = append(rrs, strings.Join(strings.Fields(rr.String()), " "))
	}
	sort.Strings(rrs)
	return mdns.RcodeToString[m.Rcode] + " " + strings.Join(rrs, " | ")
}
