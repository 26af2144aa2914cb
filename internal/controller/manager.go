// Package controller runs svcnet's controllers. Each one is a client of the
// Kubernetes API only (client-go informers and clients), so they run inside
// `svcnet up` / `svcnet server` and could run against any API server.
package controller

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"

	"github.com/svcnet/svcnet/internal/controller/cronjob"
	"github.com/svcnet/svcnet/internal/controller/csr"
	"github.com/svcnet/svcnet/internal/controller/daemonset"
	"github.com/svcnet/svcnet/internal/controller/disruption"
	"github.com/svcnet/svcnet/internal/controller/endpoints"
	"github.com/svcnet/svcnet/internal/controller/gc"
	"github.com/svcnet/svcnet/internal/controller/job"
	"github.com/svcnet/svcnet/internal/controller/lbipam"
	"github.com/svcnet/svcnet/internal/controller/nodeipam"
	"github.com/svcnet/svcnet/internal/controller/nodelifecycle"
	"github.com/svcnet/svcnet/internal/controller/rootca"
	"github.com/svcnet/svcnet/internal/controller/scheduler"
	"github.com/svcnet/svcnet/internal/controller/serviceaccount"
	"github.com/svcnet/svcnet/internal/controller/statefulset"
	"github.com/svcnet/svcnet/internal/controller/workload"
)

// Options configure the controllers.
type Options struct {
	Workers int
	// NodeMonitorGracePeriod is how long a node may stay silent before it is
	// marked NotReady (Kubernetes' default is 40s; ours 5s).
	NodeMonitorGracePeriod time.Duration
	// PodCIDRs gives nodes their pod CIDRs (nil: nodes bring their own).
	PodCIDRs *nodeipam.Blocks
	// LeaderElect makes several control planes on one etcd run one set of
	// controllers, chosen through a Lease in kube-system.
	LeaderElect bool
	// RootCA is the PEM of the CA the API server's certificate chains to,
	// published as the ConfigMap kube-root-ca.crt in every namespace (nil: none).
	RootCA []byte
	// CSRSigner approves and signs node client certificates (nil: off).
	CSRSigner *csr.Signer
	// LoadBalancerPool is written as the LoadBalancerPool "default" (nil: left alone).
	LoadBalancerPool []string
	Log              *slog.Logger
}

// Run starts the controllers and blocks until ctx ends.
func Run(ctx context.Context, cfg *rest.Config, o Options) error {
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.NodeMonitorGracePeriod <= 0 {
		o.NodeMonitorGracePeriod = 5 * time.Second
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("controller client: %w", err)
	}
	run := func(ctx context.Context) {
		broadcaster := record.NewBroadcaster(record.WithContext(ctx))
		broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
		defer broadcaster.Shutdown()
		recorder := broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "svcnet-controller-manager"})
		factory := informers.NewSharedInformerFactory(client, 0)
		eps := endpoints.New(client, factory, recorder, o.Log.With("controller", "endpoints"))
		rs := workload.NewReplicaSets(client, factory, recorder, o.Log)
		rcs := workload.NewReplicationControllers(client, factory, recorder, o.Log)
		accounts := serviceaccount.New(client, factory, o.Log)
		deploys := workload.NewDeployments(client, factory, recorder, o.Log)
		sets := statefulset.New(client, factory, recorder, o.Log)
		daemons := daemonset.New(client, factory, recorder, o.Log)
		jobs := job.New(client, factory, recorder, o.Log)
		cronJobs := cronjob.New(client, factory, recorder, o.Log)
		sched := scheduler.New(client, factory, recorder, o.Log)
		collector := gc.New(client, factory, o.Log)
		nodes := nodelifecycle.New(client, factory, recorder, o.NodeMonitorGracePeriod, o.Log)
		budgets := disruption.New(client, factory, o.Log)
		if o.PodCIDRs != nil {
			go nodeipam.New(client, factory, o.PodCIDRs, o.Log).Run(ctx, 1)
		}
		if lb, err := lbipam.New(cfg, client, factory, recorder, o.LoadBalancerPool, o.Log); err == nil {
			go lb.Run(ctx, 1)
		} else {
			o.Log.Error("lbipam", "err", err)
		}
		if o.CSRSigner != nil {
			go csr.New(client, factory, *o.CSRSigner, o.Log).Run(ctx, 1)
		}
		if len(o.RootCA) > 0 {
			go rootca.New(client, factory, o.RootCA, o.Log).Run(ctx, 1)
		}
		factory.Start(ctx.Done())
		go eps.Run(ctx, o.Workers)
		go rs.Run(ctx, o.Workers)
		go rcs.Run(ctx, o.Workers)
		go accounts.Run(ctx, 1)
		go deploys.Run(ctx, o.Workers)
		go sets.Run(ctx, o.Workers)
		go daemons.Run(ctx, o.Workers)
		go jobs.Run(ctx, o.Workers)
		go cronJobs.Run(ctx, 1)
		go sched.Run(ctx, 1)
		go collector.Run(ctx, 2)
		go nodes.Run(ctx, 2)
		go budgets.Run(ctx, 1)
		<-ctx.Done()
		factory.Shutdown()
	}
	if !o.LeaderElect {
		run(ctx)
		return nil
	}
	host, _ := os.Hostname()
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Name: "svcnet-controller-manager", Namespace: "kube-system"},
		Client:     client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: host + "_" + string(uuid.NewUUID())},
	}
	leaderelection.RunOrDie(ctx, leaderelection.LeaderElectionConfig{
		Lock: lock, ReleaseOnCancel: true,
		LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) {
				o.Log.Info("leading: starting controllers")
				run(ctx)
			},
			OnStoppedLeading: func() { o.Log.Info("stopped leading controllers") },
		},
	})
	return nil
}
