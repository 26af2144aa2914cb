package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/retry"

	"github.com/svcnet/svcnet/bench/harness"
)

// pollEvery spaces the probe's requests (its resolution) so that polling does
// not take the CPU the sync being measured needs.
const pollEvery = 500 * time.Microsecond

// routesPerIngress is how many host rules each filler Ingress has.
const routesPerIngress = 10

// rule routes host to the echo Service.
func rule(host string) networkingv1.IngressRule {
	prefix := networkingv1.PathTypePrefix
	return networkingv1.IngressRule{Host: host, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
		Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: &prefix, Backend: networkingv1.IngressBackend{
			Service: &networkingv1.IngressServiceBackend{Name: "echo", Port: networkingv1.ServiceBackendPort{Number: 80}}}}}}}}
}

// propagation fills the cluster with n routes, then edits a probe Ingress's
// host o.edits times while clients send requests to bench.test, and prints
// how long each edit took from the write to the first request routed by it.
func propagation(kubeconfig string, n int, o options) error {
	ctx := context.Background()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = -1, 0
	cs := kubernetes.NewForConfigOrDie(cfg)
	ings := cs.NetworkingV1().Ingresses("default")
	fillers := (n + routesPerIngress - 1) / routesPerIngress
	start := time.Now()
	err = harness.Parallel(fillers, 8, func(k int) error {
		ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("fill-%d", k)}}
		for j := 0; j < routesPerIngress && k*routesPerIngress+j < n; j++ {
			ing.Spec.Rules = append(ing.Spec.Rules, rule(fmt.Sprintf("fill-%d-%d.test", k, j)))
		}
		_, err := ings.Create(ctx, ing, metav1.CreateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("create fillers: %w", err)
	}
	defer func() {
		_ = harness.Parallel(fillers, 8, func(k int) error {
			return ings.Delete(ctx, fmt.Sprintf("fill-%d", k), metav1.DeleteOptions{})
		})
		_ = ings.Delete(ctx, "probe", metav1.DeleteOptions{})
	}()
	probeClient := client(svcnetHTTP, loadCase{keepAlive: true}, 1)
	last := (n - 1) % routesPerIngress
	if err := routed(probeClient, fmt.Sprintf("fill-%d-%d.test", fillers-1, last), 60*time.Second); err != nil {
		return fmt.Errorf("%d routes: %w", n, err)
	}
	filled := time.Since(start)
	if _, err := ings.Create(ctx, &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: "probe"},
		Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{rule("probe-0.test")}}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	if err := routed(probeClient, "probe-0.test", 10*time.Second); err != nil {
		return err
	}

	// Requests run during the edits at o.editLoad requests/s: half the clients
	// keep-alive, half new connections.
	stop := make(chan struct{})
	clients := max(o.workers/2, 2)
	var every time.Duration // each client's pause between requests
	if o.editLoad > 0 {
		every = time.Second * time.Duration(clients) / time.Duration(o.editLoad)
	}
	var total, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for i := range clients {
		c := loadCase{keepAlive: i%2 == 0}
		hc := client(svcnetHTTP, c, 1)
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				time.Sleep(every)
				total.Add(1)
				if err := get(hc, url(c, host)); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
		})
	}
	var took, acked []time.Duration
	timeouts := 0
	for i := 1; i <= o.edits; i++ {
		h := fmt.Sprintf("probe-%d.test", i)
		patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"rules": []networkingv1.IngressRule{rule(h)}}})
		t0 := time.Now()
		// svcnet's API server answers a merge patch racing the controller's status
		// write with 409 (kube-apiserver retries internally), so retry here.
		if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			_, err := ings.Patch(ctx, "probe", types.MergePatchType, patch, metav1.PatchOptions{})
			return err
		}); err != nil {
			close(stop)
			wg.Wait()
			return err
		}
		acked = append(acked, time.Since(t0))
		if err := routed(probeClient, h, 5*time.Second); err != nil {
			timeouts++
			continue
		}
		took = append(took, time.Since(t0))
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	fmt.Printf("\npropagation with %d routes (%d Ingresses, routed %v after creating them): Ingress write -> first request routed by it\n",
		n+1, fillers+2, filled.Round(time.Millisecond))
	fmt.Printf("  %d edits: p50 %v, p99 %v, max %v; not routed within 5 s: %d\n", len(took),
		harness.Percentile(took, 50, 10*time.Microsecond), harness.Percentile(took, 99, 10*time.Microsecond),
		harness.Percentile(took, 100, 10*time.Microsecond), timeouts)
	fmt.Printf("  of which the API write (patch sent -> answered): p50 %v, p99 %v\n",
		harness.Percentile(acked, 50, 10*time.Microsecond), harness.Percentile(acked, 99, 10*time.Microsecond))
	fmt.Printf("  requests to bench.test during the edits (about %d/s): %d, failed: %d", o.editLoad, total.Load(), failed.Load())
	if e := firstErr.Load(); e != nil {
		fmt.Printf(" (first: %v)", e)
	}
	fmt.Println()
	return nil
}

// routed polls http://h/ through svcnet until a pod answers (bounded).
func routed(hc *http.Client, h string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := get(hc, "http://"+h+"/")
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not routed within %v: %v", h, timeout, err)
		}
		time.Sleep(pollEvery)
	}
}
