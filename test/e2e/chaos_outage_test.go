package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// outageIngress routes host <name>.test to the Service name.
const outageIngress = `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: %[1]s}
spec:
  rules:
  - host: %[1]s.test
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: %[1]s, port: {number: 80}}}}]}
`

// hostGet sends GET / with Host host to addr from the calling thread (so from its
// network namespace) and returns the body of a 200.
func hostGet(addr, host string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	fmt.Fprintf(conn, "GET / HTTP/1.0\r\nHost: %s\r\n\r\n", host)
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", res.Status, b)
	}
	return string(b), nil
}

// dnsA asks server for name's A record.
func dnsA(server, name string) (string, error) {
	q := new(mdns.Msg)
	q.SetQuestion(name, mdns.TypeA)
	r, _, err := (&mdns.Client{Timeout: time.Second}).Exchange(q, server)
	if err != nil {
		return "", err
	}
	for _, rr := range r.Answer {
		if a, ok := rr.(*mdns.A); ok {
			return a.A.String(), nil
		}
	}
	return "", fmt.Errorf("%s: %s, no A record", name, mdns.RcodeToString[r.Rcode])
}

// served is one Service as a node serves it: through its cluster IP (the kernel
// proxy), its name (the node's cluster DNS) and an Ingress host (the node's edge).
type served struct{ name, clusterIP, nodeIP string }

var servedPaths = [3]string{"cluster IP", "DNS", "ingress"}

// check asks each path once; the backends are agnhost serve-hostname pods "web-...".
func (s served) check() [3]error {
	var errs [3]error
	if body, err := hostGet(s.clusterIP+":80", s.name); err != nil || !strings.HasPrefix(body, "web-") {
		errs[0] = fmt.Errorf("%q %v", body, err)
	}
	if ip, err := dnsA(s.nodeIP+":53", s.name+".default.svc.cluster.local."); err != nil || ip != s.clusterIP {
		errs[1] = fmt.Errorf("%q %v", ip, err)
	}
	if body, err := hostGet(s.nodeIP+":80", s.name+".test"); err != nil || !strings.HasPrefix(body, "web-") {
		errs[2] = fmt.Errorf("%q %v", body, err)
	}
	return errs
}

func (s served) ok() bool {
	errs := s.check()
	return errors.Join(errs[:]...) == nil
}

// logTimes are the time= of the lines of log matching re.
func logTimes(log string, re *regexp.Regexp) []time.Time {
	var out []time.Time
	for _, l := range strings.Split(log, "\n") {
		if f := strings.Fields(l); re.MatchString(l) && len(f) > 0 {
			if t, err := time.Parse(time.RFC3339Nano, strings.TrimPrefix(f[0], "time=")); err == nil {
				out = append(out, t)
			}
		}
	}
	return out
}

// TestChaosAPIAndEtcdOutage stops the API server and its etcd for 60 s while a
// node (its own network namespace: agent with pods, nftables proxy, cluster DNS,
// ingress) is asked every 100 ms through a Service's cluster IP, its DNS name and
// an Ingress. Nothing fails before, during or after the outage; after it the node
// resumes its watches where they were (no list by the node) and converges on a
// change made at the restart.
func TestChaosAPIAndEtcdOutage(t *testing.T) {
	requireCNI(t)
	const outage = 60 * time.Second
	dir := t.TempDir()
	b := newBridge(t, "svce2eobr", "192.168.83.")
	bind, nodeIP, node := b.prefix+"254", b.prefix+"1", "node-o"
	port := freePort(t)
	cpDir := filepath.Join(dir, "cp")
	cp := startAPIServer(t, cpDir, bind, port, "--log-level", "debug")
	ns := b.node("outg", 1)
	nodeUser := "system:node:" + node
	kc := userKubeconfig(t, cpDir, fmt.Sprintf("https://%s:%d", bind, port), nodeUser, "system:nodes")
	root := filepath.Join(dir, node)
	startCommand(t, root, port, "", "svcnet agent: node "+node+" registered", []string{"ip", "netns", "exec", ns, svcnetBin,
		"agent", "--kubeconfig", kc, "--node-name", node, "--node-ip", nodeIP, "--root-dir", root, "--pod-runtime=on",
		"--container-runtime=process", "--proxy-mode=nftables", "--ingress", "--cluster-dns-listen", nodeIP + ":53",
		"--dns-resolv-conf", "", "--healthz-bind-address", "", "--metrics-bind-address", ""})
	cp.must("apply", "-f", writeFile(t, filepath.Join(dir, "web.yaml"), fmt.Sprintf(ingressApps, "web")+"---\n"+fmt.Sprintf(outageIngress, "web"), 0o644))
	waitKubectl(t, cp, "web endpoints", 90*time.Second, func(s string) bool { return strings.Count(s, "true") == 2 },
		"get", "endpointslices", "-l", "kubernetes.io/service-name=web", "-o", "jsonpath={.items[*].endpoints[*].conditions.ready}")
	web := served{"web", cp.must("get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}"), nodeIP}
	var ready bool
	if err := inNetns(ns, func() error {
		for deadline := time.Now().Add(30 * time.Second); !ready && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			ready = web.ok()
		}
		return nil
	}); err != nil || !ready {
		t.Fatalf("web not served by the node within 30s: %v", err)
	}

	// Ask the node every 100 ms from inside it; count per window.
	const before, during, after = 0, 1, 2
	var (
		window  atomic.Int32
		stop    atomic.Bool
		mu      sync.Mutex
		counts  [3][3][2]int // window, path, ok/failed
		lastErr [3]string
	)
	loopDone := make(chan error, 1)
	go func() {
		loopDone <- inNetns(ns, func() error {
			for !stop.Load() {
				w, errs := window.Load(), web.check()
				mu.Lock()
				for p, err := range errs {
					if err != nil {
						counts[w][p][1]++
						lastErr[p] = err.Error()
					} else {
						counts[w][p][0]++
					}
				}
				mu.Unlock()
				time.Sleep(100 * time.Millisecond)
			}
			return nil
		})
	}()
	t.Cleanup(func() { stop.Store(true); <-loopDone })
	time.Sleep(3 * time.Second)

	window.Store(during)
	cp.stop()
	stoppedAt := time.Now()
	time.Sleep(outage - time.Since(stoppedAt)) // the outage itself, not a wait for a result
	cp = startAPIServer(t, cpDir, bind, port, "--log-level", "debug")
	upAt := time.Now()
	window.Store(after)

	// A change made at once: a new Service on the same pods and its Ingress.
	cp.must("apply", "-f", writeFile(t, filepath.Join(dir, "after.yaml"), `apiVersion: v1
kind: Service
metadata: {name: after}
spec:
  selector: {app: web}
  ports: [{name: web, port: 80, targetPort: http}]
---
`+fmt.Sprintf(outageIngress, "after"), 0o644))
	changedAt := time.Now()
	late := served{"after", cp.must("get", "svc", "after", "-o", "jsonpath={.spec.clusterIP}"), nodeIP}
	var convergedAt time.Time
	var lateErrs [3]error
	if err := inNetns(ns, func() error {
		for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if lateErrs = late.check(); errors.Join(lateErrs[:]...) == nil {
				convergedAt = time.Now()
				return nil
			}
		}
		return nil
	}); err != nil || convergedAt.IsZero() {
		t.Errorf("the node did not serve the Service created after the outage within 2 minutes: %v %v", err, lateErrs)
		convergedAt = time.Now() // the counts below still say what failed
	}
	time.Sleep(3 * time.Second)
	stop.Store(true)
	if err := <-loopDone; err != nil {
		t.Fatal(err)
	}
	loopDone <- nil // for the cleanup

	// The node's informers (proxy, DNS, ingress) resume one by one, each after its
	// own client-go back-off; the change needs the last of them.
	logs := cp.logs()
	resumed := upAt
	var resumes []string
	for _, at := range logTimes(logs, regexp.MustCompile(`msg=watch resource=(services|endpointslices|ingresses) .*user=`+
		regexp.QuoteMeta(nodeUser)+` resourceVersion=\d+`)) {
		if at.Before(convergedAt) && at.After(resumed) {
			resumed = at
		}
		resumes = append(resumes, at.Sub(upAt).Round(100*time.Millisecond).String())
	}
	if len(resumes) == 0 {
		t.Errorf("the node never resumed a watch from a resourceVersion:\n%s", grepLines(logs, "msg=watch"))
	}
	relists := regexp.MustCompile(`msg="full list" resource=(\S+) .*user=`+regexp.QuoteMeta(nodeUser)).FindAllStringSubmatch(logs, -1)
	allRelists := strings.Count(logs, `msg="full list"`)
	var byNode []string
	for _, m := range relists {
		byNode = append(byNode, m[1])
	}
	mu.Lock()
	defer mu.Unlock()
	for w, name := range []string{"before", "during the outage", "after"} {
		var parts []string
		for p, path := range servedPaths {
			parts = append(parts, fmt.Sprintf("%s %d ok %d failed", path, counts[w][p][0], counts[w][p][1]))
			if counts[w][p][1] > 0 {
				t.Errorf("%s: %d failed through the %s (last: %s)", name, counts[w][p][1], path, lastErr[p])
			}
		}
		t.Logf("%s: %s", name, strings.Join(parts, ", "))
	}
	from := changedAt
	if resumed.After(from) {
		from = resumed
	}
	t.Logf("outage %v; server up -> the node's Service, EndpointSlice and Ingress watches resumed from their resourceVersions after %v (client-go back-off), "+
		"the last %v; change written -> served by the node %v; converged %v after the later of the two; full lists by the node after the restart: %d %v "+
		"(by everyone, the restarted controllers included: %d)",
		upAt.Sub(stoppedAt).Round(time.Millisecond), resumes, resumed.Sub(upAt).Round(time.Millisecond), convergedAt.Sub(changedAt).Round(time.Millisecond),
		convergedAt.Sub(from).Round(time.Millisecond), len(byNode), byNode, allRelists)
	if len(byNode) > 0 {
		t.Errorf("the node listed %v after the outage instead of resuming its watches", byNode)
	}
	if conv := convergedAt.Sub(from); conv > 10*time.Second {
		t.Errorf("converged %v after the watches resumed and the change was written", conv)
	}
	if got := cp.must("get", "node", node, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`); got != "True" {
		t.Errorf("node Ready = %s after the outage", got)
	}
	if ev := cp.must("get", "events", "-A", "--field-selector", "reason=NodeNotReady", "-o", "name"); ev != "" {
		t.Errorf("the node was marked NotReady around the outage: %s", ev)
	}
}

// TestChaosNodeLost: a node stops heartbeating (its agent gone): within the
// grace period its pods' endpoints turn not ready, the other node's stay ready.
func TestChaosNodeLost(t *testing.T) {
	const grace = 2 * time.Second
	dir := t.TempDir()
	c := startCluster(t, dir, freePort(t), "--node-monitor-grace-period", grace.String())
	lost := startFakeNode(t, c, "lost-a")
	kept := startFakeNode(t, c, "kept-b")
	kept.mu.Lock()
	kept.nextIP = 100 // pod IPs apart from lost-a's (both count from 10.244.0.1)
	kept.mu.Unlock()
	pods := ""
	for _, n := range []string{"lost-a", "kept-b"} {
		pods += fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: p-%[1]s, labels: {app: lost}}
spec:
  nodeName: %[1]s
  containers: [{name: c, image: svcnet/agnhost}]
---
`, n)
	}
	c.must("apply", "-f", writeFile(t, filepath.Join(dir, "lost.yaml"), pods+`apiVersion: v1
kind: Service
metadata: {name: lost}
spec:
  selector: {app: lost}
  ports: [{port: 80}]
`, 0o644))
	cs := c.clientset(t)
	state := func() string {
		l, err := cs.DiscoveryV1().EndpointSlices("default").List(context.Background(), metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=lost"})
		if err != nil {
			return err.Error()
		}
		var out []string
		for _, s := range l.Items {
			for _, e := range s.Endpoints {
				out = append(out, fmt.Sprintf("%s=%v", *e.NodeName, e.Conditions.Ready != nil && *e.Conditions.Ready))
			}
		}
		return strings.Join(out, " ")
	}
	both := func(s string) bool { return strings.Contains(s, "lost-a=true") && strings.Contains(s, "kept-b=true") }
	for deadline := time.Now().Add(30 * time.Second); !both(state()); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("endpoints not ready on both nodes: %s", state())
		}
	}
	lost.stop() // heartbeats every 500 ms until now
	stopped := time.Now()
	var got string
	for deadline := stopped.Add(grace + 10*time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if got = state(); strings.Contains(got, "lost-a=false") {
			break
		}
	}
	took := time.Since(stopped)
	t.Logf("node lost: its endpoint not ready %v after its heartbeats stopped (the last one up to 500ms before; grace %v); endpoints now %s",
		took.Round(10*time.Millisecond), grace, got)
	if !strings.Contains(got, "lost-a=false") || !strings.Contains(got, "kept-b=true") {
		t.Fatalf("endpoints %s %v after the node was lost; want lost-a not ready, kept-b ready", got, took)
	}
	if took < grace-time.Second {
		t.Errorf("not ready after %v, before the %v grace period", took, grace)
	}
	if st := c.must("get", "node", "lost-a", "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`); st != "Unknown" {
		t.Errorf("lost node Ready = %s, want Unknown", st)
	}
}
