package ingress

import (
	"context"
	"slices"

	networkingv1 "k8s.io/api/networking/v1"
)

// Source is a further input of the routing Table besides Ingresses (the
// Gateway API translation is one). The Controller calls Start once, then
// Ports on every sync from the one sync goroutine, and Publish after the
// Table with those ports is live.
type Source interface {
	// Start runs the source's own informers; poke asks for a sync (cheap,
	// coalescing; call it from event handlers).
	Start(ctx context.Context, poke func()) error
	// Ports translates the source's objects, with the shared Services,
	// EndpointSlices and Secrets of s (resolve backends through ix), into
	// what it serves on each port.
	Ports(s *State, ix *Index) map[int]*Port
	// Publish writes the statuses of what Ports last built (e.g. Gateway
	// conditions), writing only changes.
	Publish(ctx context.Context)
}

// Merge combines ports of several inputs into one Table: on a port served by
// several, certificates are concatenated and each host's routes appended in
// input order (the first input's routes win ties); a port is TLS if any
// input says so.
func Merge(inputs ...map[int]*Port) *Table {
	t := &Table{Ports: map[int]*Port{}}
	for _, in := range inputs {
		for num, p := range in {
			cur := t.Ports[num]
			if cur == nil {
				t.Ports[num] = p
				continue
			}
			merged := &Port{TLS: cur.TLS || p.TLS, Certs: slices.Concat(cur.Certs, p.Certs), Hosts: map[string]*Host{}}
			for name, h := range cur.Hosts {
				merged.Hosts[name] = h
			}
			for name, h := range p.Hosts {
				if old := merged.Hosts[name]; old != nil {
					merged.Hosts[name] = &Host{Routes: slices.Concat(old.Routes, h.Routes), AnyDepth: old.AnyDepth || h.AnyDepth}
				} else {
					merged.Hosts[name] = h
				}
			}
			t.Ports[num] = merged
		}
	}
	return t
}

// LoadBalancerStatus returns cur with this node's addresses present (serving)
// or absent (not serving) and whether that changed it; other nodes' entries
// are kept, so agents share an Ingress' status.
func LoadBalancerStatus(cur []networkingv1.IngressLoadBalancerIngress, mine []string, serving bool) ([]networkingv1.IngressLoadBalancerIngress, bool) {
	out := slices.Clone(cur)
	changed := false
	for _, ip := range mine {
		i := slices.IndexFunc(out, func(e networkingv1.IngressLoadBalancerIngress) bool { return e.IP == ip })
		switch {
		case serving && i < 0:
			out = append(out, networkingv1.IngressLoadBalancerIngress{IP: ip})
			changed = true
		case !serving && i >= 0:
			out = slices.Delete(out, i, i+1)
			changed = true
		}
	}
	return out, changed
}
