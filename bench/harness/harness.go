// Package harness starts what every benchmark needs: a control plane on loopback
// in a temporary directory with a client for it, and a bounded parallel runner.
package harness

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/svcnet/svcnet/internal/system"
)

// Cluster is a control plane started for a benchmark.
type Cluster struct {
	CP         *system.ControlPlane
	Dir        string
	Kubeconfig string
	Client     *kubernetes.Clientset // unthrottled
}

// Start runs a control plane (with or without controllers) on a free loopback port.
func Start(ctx context.Context, controllers bool) (*Cluster, error) {
	dir, err := os.MkdirTemp(os.Getenv(envTmp), "svcnet-bench-") // inside InNetns: in its scratch directory, removed even when interrupted
	if err != nil {
		return nil, err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	cp, err := system.StartControlPlane(ctx, system.ServerOptions{DataDir: dir, BindAddress: "127.0.0.1", SecurePort: 0,
		NoControllers: !controllers, Log: log})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	c := &Cluster{CP: cp, Dir: dir, Kubeconfig: filepath.Join(dir, "kubeconfig")}
	if err := cp.WriteKubeconfig(c.Kubeconfig); err != nil {
		c.Close()
		return nil, err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		c.Close()
		return nil, err
	}
	cfg.QPS, cfg.Burst = -1, 0 // no client-side throttling
	c.Client = kubernetes.NewForConfigOrDie(cfg)
	return c, nil
}

// Close stops the control plane and removes its directory.
func (c *Cluster) Close() {
	c.CP.Close()
	os.RemoveAll(c.Dir)
}

// Parallel runs fn(i) for i in [0,n) on workers goroutines; the first error wins.
func Parallel(n, workers int, fn func(i int) error) error {
	var next atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				if err := fn(i); err != nil {
					once.Do(func() { first = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// Median returns the middle of ds (sorting ds).
func Median(ds []time.Duration) time.Duration {
	slices.Sort(ds)
	return ds[len(ds)/2]
}
