package agent

import (
	"context"
	"log/slog"
	"net/netip"

	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/svcnet/svcnet/internal/podnet"
)

// peers converts the other nodes into the pod network's peers (pure).
func peers(self string, nodes []*corev1.Node) []podnet.Peer {
	var out []podnet.Peer
	for _, n := range nodes {
		cidr, err := netip.ParsePrefix(n.Spec.PodCIDR)
		if n.Name == self || err != nil {
			continue
		}
		for _, a := range n.Status.Addresses {
			if ip, err := netip.ParseAddr(a.Address); err == nil && a.Type == corev1.NodeInternalIP {
				out = append(out, podnet.Peer{Name: n.Name, PodCIDR: cidr, NodeIP: ip})
				break
			}
		}
	}
	return out
}

// startRoutes keeps this node's routes (and VXLAN entries) to the other
// nodes' pod CIDRs until ctx ends, then removes them.
func (a *Agent) startRoutes(ctx context.Context, log *slog.Logger) func() {
	mode, _ := podnet.ParseMode(a.o.PodNetwork) // checked by Validate
	factory := informers.NewSharedInformerFactory(a.client, 0)
	lister := factory.Core().V1().Nodes().Lister()
	inf := factory.Core().V1().Nodes().Informer()
	kick := make(chan struct{}, 1)
	poke := func(any) {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: poke, UpdateFunc: func(_, o any) { poke(o) }, DeleteFunc: poke})
	factory.Start(ctx.Done())
	done := make(chan struct{})
	go func() {
		defer close(done)
		var vxlan netlink.Link
		for {
			select {
			case <-ctx.Done():
				return
			case <-kick:
			}
			nodes, _ := lister.List(labels.Everything())
			if vxlan == nil && mode != podnet.ModeHostGW {
				// The device exists whenever VXLAN may be used, so peers that
				// see this node as routed reach it even when it sees them as direct.
				self, err := lister.Get(a.o.NodeName)
				if err == nil && self.Spec.PodCIDR != "" {
					ip, _ := netip.ParseAddr(a.o.NodeIP)
					cidr, _ := netip.ParsePrefix(self.Spec.PodCIDR)
					if vxlan, err = podnet.EnsureVXLAN(ip, cidr); err != nil {
						log.Warn("pod network: no VXLAN device; routed nodes' pods are unreachable", "err", err)
					}
				}
			}
			connected, err := podnet.Connected()
			if err != nil {
				log.Warn("pod network: listing the node's addresses", "err", err)
			}
			if err := podnet.Apply(podnet.PlanPeers(mode, peers(a.o.NodeName, nodes), connected), vxlan); err != nil {
				log.Warn("routes to other nodes' pods", "err", err)
			}
		}
	}()
	return func() {
		<-done
		if err := podnet.Apply(podnet.Plan{}, nil); err != nil {
			log.Warn("removing routes to other nodes' pods", "err", err)
		}
		if err := podnet.DeleteVXLAN(); err != nil {
			log.Warn("removing the VXLAN device", "err", err)
		}
	}
}
