package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
)

// The cri pods' image (scripts/test-images.sh: /agnhost is svcnet) and pull policy.
const (
	podImage   = "registry.k8s.io/e2e-test-images/agnhost:2.56"
	pullPolicy = corev1.PullIfNotPresent
)

// perPodTimeout is added to a base minute for bursts and deletions: on two
// shared cores a CRI pod (sandbox, CNI, shim, container) can take a second.
const perPodTimeout = 2 * time.Second

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

// benchPod is the burst's pod i: the same server and probe for both runtimes.
func benchPod(runtime string, i int) *corev1.Pod {
	c := corev1.Container{Name: "web", Image: "svcnet/agnhost", Command: []string{"svcnet", "agnhost", "serve-hostname", "--port", "8080"},
		ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromInt32(8080)}}, PeriodSeconds: 1}}
	if runtime == "cri" {
		c.Image, c.ImagePullPolicy, c.Command, c.Args = podImage, pullPolicy, nil, []string{"serve-hostname", "--port", "8080"}
	}
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("bench-%d", i), Labels: map[string]string{"bench": "pods"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{c}}}
}

// burst creates n pods at once and returns create -> running and create -> Ready per pod.
func burst(ctx context.Context, client kubernetes.Interface, runtime string, n int) (running, ready []time.Duration, err error) {
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
			p := benchPod(runtime, i)
			t0 := time.Now()
			if _, err := client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
				fmt.Fprintln(os.Stderr, "create:", err)
				return
			}
			mu.Lock()
			created[p.Name] = t0
			mu.Unlock()
		}()
	}
	wg.Wait()
	seenRunning, seenReady := map[string]bool{}, map[string]bool{}
	limit := time.Minute + time.Duration(n)*perPodTimeout
	timeout := time.After(limit)
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
			return nil, nil, fmt.Errorf("only %d of %d pods ready within %v", len(seenReady), len(created), limit)
		}
	}
	return running, ready, nil
}

// deleteAll deletes the bench's pods and waits until the agent confirmed they are gone.
func deleteAll(ctx context.Context, client kubernetes.Interface, n int) error {
	if err := client.CoreV1().Pods("default").DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "bench=pods"}); err != nil {
		return err
	}
	limit := time.Minute + time.Duration(n)*perPodTimeout
	for t0 := time.Now(); time.Since(t0) < limit; time.Sleep(100 * time.Millisecond) {
		l, err := client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "bench=pods"})
		if err == nil && len(l.Items) == 0 {
			return nil
		}
	}
	return fmt.Errorf("pods not gone within %v", limit)
}
