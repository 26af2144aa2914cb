// Command apiserver benchmarks the API server against its own storage: Service
// creates per second and full-list latency for N Services through client-go, each
// printed with the ratio to raw etcd client puts/gets of the same values on the
// same embedded etcd, measured in the same run. Everything stays on loopback.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/svcnet/svcnet/bench/harness"
)

func main() {
	n := flag.Int("services", 10000, "number of Services to create")
	workers := flag.Int("workers", 8, "concurrent writers (same for both sides)")
	lists := flag.Int("lists", 7, "full lists to time (median reported)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		_ = pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if err := run(*n, *workers, *lists); err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func service(i int) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("svc-%05d", i), Labels: map[string]string{"app": fmt.Sprintf("app-%d", i%100)}},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": fmt.Sprintf("app-%d", i%100)},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80}, {Name: "https", Port: 443}}},
	}
}

// parallel runs fn over [0,n) on workers goroutines and returns the elapsed time.
func parallel(n, workers int, fn func(i int) error) (time.Duration, error) {
	start := time.Now()
	err := harness.Parallel(n, workers, fn)
	return time.Since(start), err
}

func run(n, workers, lists int) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cl, err := harness.Start(ctx, false)
	if err != nil {
		return err
	}
	defer cl.Close()
	cs := cl.Client
	etcd := cl.CP.Store.Client()

	fmt.Printf("svcnet API server bench: %d Services, %d workers, embedded etcd, loopback TLS\n", n, workers)
	// Baseline: raw etcd puts of the same JSON a Service is stored as.
	values := make([]string, n)
	for i := range values {
		s := service(i)
		s.Spec.ClusterIP = "10.96.1.1"
		b, _ := json.Marshal(s)
		values[i] = string(b)
	}
	rawPut, err := parallel(n, workers, func(i int) error {
		_, err := etcd.Put(ctx, fmt.Sprintf("/bench/raw/default/svc-%05d", i), values[i])
		return err
	})
	if err != nil {
		return fmt.Errorf("raw put: %w", err)
	}
	fmt.Printf("progress: raw etcd puts done in %v\n", rawPut.Round(time.Millisecond))
	apiCreate, err := parallel(n, workers, func(i int) error {
		_, err := cs.CoreV1().Services("default").Create(ctx, service(i), metav1.CreateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	fmt.Printf("progress: API creates done in %v\n", apiCreate.Round(time.Millisecond))

	var rawLists, apiLists []time.Duration
	for i := 0; i < lists; i++ {
		t0 := time.Now()
		resp, err := etcd.Get(ctx, "/bench/raw/", clientv3.WithPrefix())
		if err != nil || len(resp.Kvs) != n {
			return fmt.Errorf("raw get: %v (%d keys)", err, len(resp.Kvs))
		}
		rawLists = append(rawLists, time.Since(t0))
		t0 = time.Now()
		l, err := cs.CoreV1().Services("default").List(ctx, metav1.ListOptions{})
		if err != nil || len(l.Items) != n+1 {
			return fmt.Errorf("list: %v (%d items)", err, len(l.Items))
		}
		apiLists = append(apiLists, time.Since(t0))
	}
	rawRate, apiRate := float64(n)/rawPut.Seconds(), float64(n)/apiCreate.Seconds()
	rl, al := harness.Median(rawLists), harness.Median(apiLists)
	fmt.Printf("creates/s:   svcnet %8.0f   raw etcd put %8.0f   ratio svcnet/raw = %.2f\n", apiRate, rawRate, apiRate/rawRate)
	fmt.Printf("list %d:  svcnet %8v   raw etcd get %8v   ratio svcnet/raw = %.2f (median of %d)\n", n,
		al.Round(time.Millisecond), rl.Round(time.Millisecond), float64(al)/float64(rl), lists)
	return nil
}
