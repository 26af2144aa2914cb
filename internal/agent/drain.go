package agent

import (
	"context"
	"net/netip"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"

	"github.com/svcnet/svcnet/internal/drain"
	"github.com/svcnet/svcnet/internal/proxy"
)

// Data path names under which this node's proxy and ingress report the pod
// IPs they route new connections to (internal/drain).
const (
	drainIngress = "ingress"
	drainProxy   = "proxy/" // + the backend's mode: during a switch both report
)

// expectDrainPaths declares the data paths this agent will run, before any
// pod is stopped: until each has synced once, the rules a previous agent left
// may still route to a terminating pod.
func (a *Agent) expectDrainPaths() {
	if a.o.ProxyMode != "none" {
		a.drain.Expect(drainProxy + a.o.ProxyMode)
	}
	if a.o.Ingress {
		a.drain.Expect(drainIngress)
	}
}

// drainedBackend wraps a proxy backend of mode so that it reports what it programmed.
func (a *Agent) drainedBackend(be proxy.Backend, mode string) proxy.Backend {
	return proxy.NewProgrammed(be, drainProxy+mode, a.drain)
}

// watchOtherNodes returns whether the cluster has nodes besides this one
// (their proxies route to this node's pods too).
func (a *Agent) watchOtherNodes(ctx context.Context) func() bool {
	factory := informers.NewSharedInformerFactory(a.client, 0)
	lister := factory.Core().V1().Nodes().Lister()
	factory.Core().V1().Nodes().Informer()
	factory.Start(ctx.Done())
	return func() bool {
		nodes, _ := lister.List(labels.Everything())
		for _, n := range nodes {
			if n.Name != a.o.NodeName {
				return true
			}
		}
		return false
	}
}

// drainPod is the pod runtimes' Drain: it returns once this node's proxy and
// ingress send ip no new connection, plus drain.RemoteDelay for the proxies of
// other nodes, or when ctx ends (the runtime's bound).
func (a *Agent) drainPod(ctx context.Context, ip string, otherNodes func() bool) {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return
	}
	start := time.Now()
	if err := a.drain.Wait(ctx, addr); err != nil {
		a.o.Log.Warn("a terminating pod is still an endpoint this node routes to; stopping it anyway", "ip", ip, "waited", time.Since(start))
		return
	}
	if otherNodes() {
		select {
		case <-ctx.Done():
		case <-time.After(drain.RemoteDelay):
		}
	}
}
