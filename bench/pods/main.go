// Command pods measures the pod runtime: start latency of a burst of pods
// (create -> container running, create -> Ready through an httpGet readiness
// probe) against the same server process started directly in the same run, and
// the agent's RSS idle and with 100 pods. Needs root: it runs everything in a
// network namespace of its own (loopback only) and removes it afterwards.
//
//	go run ./bench/pods [-pods 50] [-rss-pods 100]
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/svcnet/svcnet/bench/harness"
)

func main() {
	pods := flag.Int("pods", 50, "pods in the start-latency burst")
	rssPods := flag.Int("rss-pods", 100, "pods running when the agent's RSS is read")
	flag.Parse()
	in, err := harness.InNetns("pods")
	if in != nil {
		err = inside(in, *pods, *rssPods)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/pods:", err)
		os.Exit(1)
	}
}

// proc is a svcnet process the bench started.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func start(ready string, argv ...string) (*proc, error) {
	p := &proc{cmd: exec.Command(argv[0], argv[1:]...), done: make(chan struct{})}
	out, _ := p.cmd.StdoutPipe()
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	up := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), ready) {
				close(up)
				break
			}
		}
		for sc.Scan() {
		}
	}()
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	select {
	case <-up:
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("%s exited early", argv[1])
	case <-time.After(60 * time.Second):
		p.stop()
		return nil, fmt.Errorf("%s not ready in 60s", argv[1])
	}
}

func (p *proc) stop() {
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func inside(in *harness.Inside, n, rssN int) error {
	bin, tmp := in.Bin, in.Tmp
	data := filepath.Join(tmp, "cp")
	server, err := start("svcnet API server at", bin, "server", "--data-dir", data, "--bind-address", "127.0.0.1", "--secure-port", "6443")
	if err != nil {
		return err
	}
	defer server.stop()
	kc := func(user string) (string, error) {
		out, err := exec.Command(bin, "kubeconfig", "--data-dir", data, "--server", "https://127.0.0.1:6443", "--user", user).Output()
		if err != nil {
			return "", err
		}
		path := filepath.Join(tmp, strings.ReplaceAll(user, ":", "-")+".kubeconfig")
		return path, os.WriteFile(path, out, 0o600)
	}
	admin, err := kc("admin")
	if err != nil {
		return err
	}
	nodeKC, err := kc("system:node:bench")
	if err != nil {
		return err
	}
	agent, err := start("svcnet agent: node bench registered", bin, "agent", "--kubeconfig", nodeKC, "--node-name", "bench",
		"--node-ip", "127.0.0.1", "--root-dir", filepath.Join(tmp, "agent"), "--pod-runtime=on", "--container-runtime=process", "--dns-resolv-conf", "", "--log-level", "error")
	if err != nil {
		return err
	}
	defer agent.stop()
	cfg, err := clientcmd.BuildConfigFromFlags("", admin)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = -1, 0
	client := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()

	base := baseline(bin, n)
	running, ready, err := burst(ctx, client, n)
	if err != nil {
		return err
	}
	fmt.Printf("\npod start, burst of %d pods (agnhost serve-hostname, httpGet readiness probe periodSeconds 1):\n", n)
	fmt.Printf("  baseline: same process started directly, exec -> answers HTTP: p50 %v  p99 %v\n", harness.Percentile(base, 50, time.Millisecond), harness.Percentile(base, 99, time.Millisecond))
	fmt.Printf("  create -> container running: p50 %v  p99 %v  (ratio vs baseline p50 %.1fx)\n", harness.Percentile(running, 50, time.Millisecond), harness.Percentile(running, 99, time.Millisecond), harness.Ratio(harness.Percentile(running, 50, time.Millisecond), harness.Percentile(base, 50, time.Millisecond)))
	fmt.Printf("  create -> Ready:              p50 %v  p99 %v  (ratio vs baseline p50 %.1fx; the probe period dominates)\n", harness.Percentile(ready, 50, time.Millisecond), harness.Percentile(ready, 99, time.Millisecond), harness.Ratio(harness.Percentile(ready, 50, time.Millisecond), harness.Percentile(base, 50, time.Millisecond)))
	if err := deleteAll(ctx, client); err != nil {
		return err
	}

	time.Sleep(2 * time.Second)
	idle := harness.RSSKiB(agent.cmd.Process.Pid)
	if _, _, err := burst(ctx, client, rssN); err != nil {
		return err
	}
	time.Sleep(3 * time.Second)
	full := harness.RSSKiB(agent.cmd.Process.Pid)
	fmt.Printf("\nagent RSS: idle %d MiB, with %d running pods %d MiB (%.0f KiB per pod; ratio %.2fx idle)\n",
		idle>>10, rssN, full>>10, float64(full-idle)/float64(rssN), harness.Ratio(time.Duration(full), time.Duration(idle)))
	return deleteAll(ctx, client)
}

// baseline starts the server process n times at once and times each until it answers.
func baseline(bin string, n int) []time.Duration {
	var mu sync.Mutex
	var out []time.Duration
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			port := 20000 + i
			t0 := time.Now()
			cmd := exec.Command(bin, "agnhost", "serve-hostname", "--port", strconv.Itoa(port))
			if err := cmd.Start(); err != nil {
				return
			}
			defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
			client := &http.Client{Timeout: time.Second}
			for time.Since(t0) < 30*time.Second {
				if resp, err := client.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/"); err == nil {
					resp.Body.Close()
					mu.Lock()
					out = append(out, time.Since(t0))
					mu.Unlock()
					return
				}
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	return out
}

// burst creates n pods at once and returns create -> running and create -> Ready per pod.
func burst(ctx context.Context, client kubernetes.Interface, n int) (running, ready []time.Duration, err error) {
	ns := "default"
	w, err := client.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{LabelSelector: "bench=pods"})
	if err != nil {
		return nil, nil, err
	}
	defer w.Stop()
	created := map[string]time.Time{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("bench-%d", i)
			p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"bench": "pods"}}, Spec: corev1.PodSpec{
				Containers: []corev1.Container{{Name: "web", Image: "svcnet/agnhost", Command: []string{"svcnet", "agnhost", "serve-hostname", "--port", "8080"},
					ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromInt32(8080)}}, PeriodSeconds: 1}}}}}
			t0 := time.Now()
			if _, err := client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
				fmt.Fprintln(os.Stderr, "create:", err)
				return
			}
			mu.Lock()
			created[name] = t0
			mu.Unlock()
		}()
	}
	wg.Wait()
	seenRunning, seenReady := map[string]bool{}, map[string]bool{}
	timeout := time.After(120 * time.Second)
	for len(seenReady) < len(created) {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				return nil, nil, fmt.Errorf("watch ended")
			}
			if ev.Type != watch.Added && ev.Type != watch.Modified {
				continue
			}
			p := ev.Object.(*corev1.Pod)
			now := time.Now()
			mu.Lock()
			t0, ok := created[p.Name]
			mu.Unlock()
			if !ok {
				continue
			}
			if len(p.Status.ContainerStatuses) > 0 && p.Status.ContainerStatuses[0].State.Running != nil && !seenRunning[p.Name] {
				seenRunning[p.Name] = true
				running = append(running, now.Sub(t0))
			}
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue && !seenReady[p.Name] {
					seenReady[p.Name] = true
					ready = append(ready, now.Sub(t0))
				}
			}
		case <-timeout:
			return nil, nil, fmt.Errorf("only %d of %d pods ready within 120s", len(seenReady), len(created))
		}
	}
	return running, ready, nil
}

func deleteAll(ctx context.Context, client kubernetes.Interface) error {
	if err := client.CoreV1().Pods("default").DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "bench=pods"}); err != nil {
		return err
	}
	for i := 0; i < 600; i++ {
		l, err := client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "bench=pods"})
		if err == nil && len(l.Items) == 0 {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("pods not gone within 60s")
}
