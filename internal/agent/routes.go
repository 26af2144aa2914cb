package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/vishvananda/netlink"
)

// routeProtocol marks the routes the agent owns (host-gw: each other node's
// pod CIDR via that node's IP), so it can find and remove them again.
const routeProtocol = netlink.RouteProtocol(0x53)

// desiredRoutes maps other nodes' pod CIDRs to their InternalIPs (pure).
func desiredRoutes(self string, nodes []*corev1.Node) map[string]string {
	out := map[string]string{}
	for _, n := range nodes {
		if n.Name == self || n.Spec.PodCIDR == "" {
			continue
		}
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP {
				out[n.Spec.PodCIDR] = a.Address
				break
			}
		}
	}
	return out
}

// syncRoutes makes the node's routes to other nodes' pod CIDRs what nodes say.
func syncRoutes(want map[string]string) error {
	have, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Protocol: routeProtocol}, netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		return err
	}
	for _, r := range have {
		if r.Dst == nil || want[r.Dst.String()] != r.Gw.String() {
			if err := netlink.RouteDel(&r); err != nil {
				return fmt.Errorf("delete route %v: %w", r.Dst, err)
			}
		}
	}
	for cidr, gw := range want {
		_, dst, err := net.ParseCIDR(cidr)
		if err != nil {
			continue
		}
		if err := netlink.RouteReplace(&netlink.Route{Dst: dst, Gw: net.ParseIP(gw), Protocol: routeProtocol}); err != nil {
			return fmt.Errorf("route %s via %s: %w", cidr, gw, err)
		}
	}
	return nil
}

// startRoutes keeps routes to the other nodes' pod CIDRs until ctx ends, then removes them.
func (a *Agent) startRoutes(ctx context.Context, log *slog.Logger) func() {
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
		for {
			select {
			case <-ctx.Done():
				return
			case <-kick:
			}
			nodes, _ := lister.List(labels.Everything())
			if err := syncRoutes(desiredRoutes(a.o.NodeName, nodes)); err != nil {
				log.Warn("routes to other nodes' pods", "err", err)
			}
		}
	}()
	return func() {
		<-done
		if err := syncRoutes(nil); err != nil {
			log.Warn("removing routes to other nodes' pods", "err", err)
		}
	}
}
