// Command endpoints benchmarks endpoint programming latency: from a pod's Ready
// condition change (the status write) until a watcher sees the updated
// EndpointSlice, with S Services x P pods, against the bare watch round-trip of the
// same write (until a pod watcher sees it), measured on the same flips.
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/svcnet/svcnet/bench/harness"
)

const ns = "bench"

func main() {
	services := flag.Int("services", 1000, "Services")
	pods := flag.Int("pods", 10, "pods per Service")
	samples := flag.Int("samples", 300, "readiness flips to time")
	flag.Parse()
	if err := run(*services, *pods, *samples); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func pct(ds []time.Duration, p float64) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

func setReady(p *corev1.Pod, ready bool) {
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: st, LastTransitionTime: metav1.Now()}}
}

func run(nSvc, perSvc, samples int) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cl, err := harness.Start(ctx, true)
	if err != nil {
		return err
	}
	defer cl.Close()
	cs := cl.Client
	fmt.Printf("endpoint programming bench: %d Services x %d pods, controllers in-process, loopback TLS\n", nSvc, perSvc)
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	start := time.Now()
	err = harness.Parallel(nSvc, 8, func(i int) error {
		_, err := cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("svc-%04d", i)},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": fmt.Sprintf("app-%04d", i)},
				Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}}}, metav1.CreateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("services: %w", err)
	}
	total := nSvc * perSvc
	podIPs := make([]string, total)
	err = harness.Parallel(total, 8, func(i int) error {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pod-%05d", i), Labels: map[string]string{"app": fmt.Sprintf("app-%04d", i/perSvc)}},
			Spec: corev1.PodSpec{NodeName: "node-a", Containers: []corev1.Container{{Name: "c", Image: "agnhost"}}}}
		p, err := cs.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		podIPs[i] = fmt.Sprintf("10.%d.%d.%d", 100+i/65536, (i/256)%256, i%256)
		p.Status.Phase, p.Status.PodIP = corev1.PodRunning, podIPs[i]
		setReady(p, true)
		_, err = cs.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("pods: %w", err)
	}
	fmt.Printf("progress: %d Services and %d ready pods written in %v\n", nSvc, total, time.Since(start).Round(time.Millisecond))

	// Wait until every pod is a ready endpoint.
	for deadline := time.Now().Add(5 * time.Minute); ; {
		l, err := cs.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		ready := 0
		for _, s := range l.Items {
			for _, e := range s.Endpoints {
				if e.Conditions.Ready != nil && *e.Conditions.Ready {
					ready++
				}
			}
		}
		if ready == total {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d endpoints ready after 5 minutes", ready, total)
		}
		time.Sleep(200 * time.Millisecond)
	}
	fmt.Printf("progress: all %d endpoints ready %v after start\n", total, time.Since(start).Round(time.Millisecond))

	type seen struct {
		ip    string
		ready bool
		at    time.Time
	}
	sliceSeen, podSeen := make(chan seen, 10000), make(chan seen, 10000)
	sw, err := cs.DiscoveryV1().EndpointSlices(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	pw, err := cs.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	go func() {
		for ev := range sw.ResultChan() {
			if s, ok := ev.Object.(*discoveryv1.EndpointSlice); ok && ev.Type == watch.Modified {
				now := time.Now()
				for _, e := range s.Endpoints {
					sliceSeen <- seen{e.Addresses[0], e.Conditions.Ready != nil && *e.Conditions.Ready, now}
				}
			}
		}
	}()
	go func() {
		for ev := range pw.ResultChan() {
			if p, ok := ev.Object.(*corev1.Pod); ok && ev.Type == watch.Modified {
				r := false
				for _, c := range p.Status.Conditions {
					r = r || (c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue)
				}
				podSeen <- seen{p.Status.PodIP, r, time.Now()}
			}
		}
	}()
	wait := func(ch chan seen, ip string, ready bool) (time.Time, error) {
		timeout := time.After(30 * time.Second)
		for {
			select {
			case s := <-ch:
				if s.ip == ip && s.ready == ready {
					return s.at, nil
				}
			case <-timeout:
				return time.Time{}, fmt.Errorf("no update for %s ready=%v within 30s", ip, ready)
			}
		}
	}
	state := make([]bool, total)
	for i := range state {
		state[i] = true
	}
	var eps, bare []time.Duration
	for k := 0; k < samples; k++ {
		i := rand.IntN(total)
		p, err := cs.CoreV1().Pods(ns).Get(ctx, fmt.Sprintf("pod-%05d", i), metav1.GetOptions{})
		if err != nil {
			return err
		}
		state[i] = !state[i]
		setReady(p, state[i])
		t0 := time.Now()
		if _, err := cs.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
			return err
		}
		tp, err := wait(podSeen, podIPs[i], state[i])
		if err != nil {
			return err
		}
		ts, err := wait(sliceSeen, podIPs[i], state[i])
		if err != nil {
			return err
		}
		bare, eps = append(bare, tp.Sub(t0)), append(eps, ts.Sub(t0))
	}
	r := func(d time.Duration) string { return d.Round(10 * time.Microsecond).String() }
	fmt.Printf("bare watch round-trip (pod status write -> pod watch event): p50 %s  p99 %s\n", r(pct(bare, 0.5)), r(pct(bare, 0.99)))
	fmt.Printf("endpoint programming (pod status write -> EndpointSlice watch event): p50 %s  p99 %s\n", r(pct(eps, 0.5)), r(pct(eps, 0.99)))
	fmt.Printf("ratio endpoint/bare: p50 %.2f  p99 %.2f  (%d flips, %d Services x %d pods)\n",
		float64(pct(eps, 0.5))/float64(pct(bare, 0.5)), float64(pct(eps, 0.99))/float64(pct(bare, 0.99)), samples, nSvc, perSvc)
	return nil
}
