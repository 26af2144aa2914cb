package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestChaosRestart: `svcnet up` (API server, etcd, controllers and the agent
// with the kernel proxy) is stopped and started again while requests run
// through a cluster IP (from the node) and a NodePort (from another machine),
// a new connection each, and one keep-alive connection stays open. The pods
// belong to containerd and keep running, the kernel rules stay while no agent
// runs and the new agent's first sync replaces them in one transaction: no
// request fails, the long connection answers from the same pod afterwards and
// no container was restarted.
func TestChaosRestart(t *testing.T) {
	for _, mode := range []string{"nftables", "iptables"} {
		t.Run(mode, func(t *testing.T) { testChaosRestart(t, mode) })
	}
}

func testChaosRestart(t *testing.T, mode string) {
	requireCNI(t)
	images := imagesDir(t, "pause.tar", "agnhost.tar")
	dir := t.TempDir()
	port := freePort(t)
	// The node has an address of its own (192.168.50.1, on the client's veth),
	// as real nodes do: its connections to cluster IPs leave from it. (With
	// only loopback they would leave from the cluster DNS address on lo, which
	// the agent removes when it stops.)
	client := clientNetns(t)
	args := []string{"--pod-runtime=on", "--container-runtime=cri", "--images", images, "--proxy-mode=" + mode,
		"--node-name", "local", "--node-ip", "192.168.50.1", "--dns-resolv-conf", ""}
	criCleanup(t, dir)
	c := startCluster(t, dir, port, args...)
	var stopped time.Duration
	r := restartUnderLoad(t, c, client, func() *cluster {
		start := time.Now()
		c.stop()
		stopped = time.Since(start)
		return startCluster(t, dir, port, args...)
	})
	r.check(t, fmt.Sprintf("restart of svcnet up (stopped in %v)", stopped.Round(time.Millisecond)), mode)
}

// restartRun is what restartUnderLoad measured.
type restartRun struct {
	total, failed int64
	first, again  string        // the long-lived connection's answers before and after
	err           error         // its error after
	down          time.Duration // from the restart's start until it returned
	before, after string        // the pods' container IDs and restart counts
}

// rollContainers lists each roll pod's container ID and restart count.
const rollContainers = `jsonpath={range .items[*]}{.metadata.name}={.status.containerStatuses[0].containerID}/{.status.containerStatuses[0].restartCount} {end}`

// restartUnderLoad deploys the roll app (CRI pods) on c's node (192.168.50.1,
// on client's veth), runs requests through its cluster IP (from the node) and
// NodePort (from client), a new connection each, keeps one keep-alive
// connection open, and calls restart under that load; restart stops what it
// restarts and returns the cluster to read from afterwards.
func restartUnderLoad(t *testing.T, c *cluster, client string, restart func() *cluster) restartRun {
	t.Helper()
	c.must("apply", "-f", writeFile(t, filepath.Join(t.TempDir(), "roll.yaml"), rollApp+"---\n"+rollExtra, 0o644))
	waitReady(t, c, "roll", 3, 120*time.Second)
	svcIP := strings.TrimSpace(c.must("get", "svc", "roll", "-o", "jsonpath={.spec.clusterIP}"))
	loops := []*reqLoop{
		{name: "cluster IP " + svcIP + ":80 from the node", get: getNode("http://" + svcIP + "/")},
		{name: "NodePort 192.168.50.1:30090 from the client", get: getFrom(client, "192.168.50.1:30090")},
	}
	for _, l := range loops {
		waitFor(t, l.name, 30*time.Second, func() bool { b, err := l.get(); return err == nil && strings.HasPrefix(b, "roll-") })
	}
	kept, err := dialKept(svcIP + ":80")
	if err != nil {
		t.Fatal(err)
	}
	defer kept.conn.Close()
	var r restartRun
	if r.first, err = kept.ask(); err != nil {
		t.Fatalf("the long-lived connection: %v", err)
	}
	r.before = c.must("get", "pods", "-l", "app=roll", "-o", rollContainers)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, l := range loops {
		wg.Go(func() { l.run(stop) })
	}
	time.Sleep(2 * time.Second) // load before the restart
	start := time.Now()
	c = restart()
	r.down = time.Since(start)
	// Load on while the new agent takes the pods back (relists, probes, status).
	time.Sleep(5 * time.Second)
	close(stop)
	wg.Wait()

	r.again, r.err = kept.ask()
	for _, l := range loops {
		r.total += l.total.Load()
		r.failed += l.failed.Load()
		l.report(t)
	}
	r.after = c.must("get", "pods", "-l", "app=roll", "-o", rollContainers)
	return r
}

// check fails the test unless no request failed, the long-lived connection
// answered from the same pod and no container changed.
func (r restartRun) check(t *testing.T, what, mode string) {
	t.Helper()
	t.Logf("%s (%s): %d requests, %d failed, serving again %v after the stop began; long-lived connection: %q before, %q after (%v)",
		what, mode, r.total, r.failed, r.down.Round(time.Millisecond), r.first, r.again, r.err)
	if r.failed != 0 {
		t.Errorf("%d of %d requests failed across the %s", r.failed, r.total, what)
	}
	if r.err != nil || r.again != r.first {
		t.Errorf("the connection open across the %s: %q, %v; want %q from the same pod", what, r.again, r.err, r.first)
	}
	if r.after != r.before {
		t.Errorf("containers changed across the %s:\nbefore %s\nafter  %s", what, r.before, r.after)
	}
}

// keptConn is one long-lived HTTP/1.1 connection, asked again and again.
type keptConn struct {
	conn net.Conn
	rd   *bufio.Reader
}

func dialKept(addr string) (*keptConn, error) {
	conn, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		return nil, err
	}
	return &keptConn{conn: conn, rd: bufio.NewReader(conn)}, nil
}

// ask sends one request on the connection and returns the body.
func (k *keptConn) ask() (string, error) {
	_ = k.conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(k.conn, "GET / HTTP/1.1\r\nHost: kept\r\n\r\n"); err != nil {
		return "", err
	}
	res, err := http.ReadResponse(k.rd, nil)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return string(b), err
}
