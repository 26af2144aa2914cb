// Package proxy is the node's service proxy, built the way Kubernetes' pkg/proxy
// is: informer handlers only record changes in trackers; one sync function,
// rate-limited, turns the pending changes into the backend's rules; the rules
// are a pure function of the state below (slim structs converted at the edge),
// and a backend (nftables, userspace) applies them. A failed sync is retried
// as a full sync.
package proxy

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// Key names one port of one Service: namespace/name:port (port name, may be empty).
type Key struct {
	Namespace, Name, Port string
}

func (k Key) String() string {
	s := k.Namespace + "/" + k.Name
	if k.Port != "" {
		s += ":" + k.Port
	}
	return s
}

// ServiceName is the namespace/name a key belongs to.
func (k Key) ServiceName() string { return k.Namespace + "/" + k.Name }

// ServicePort is what the proxy needs of one Service port.
type ServicePort struct {
	Key             Key
	Protocol        corev1.Protocol
	ClusterIP       netip.Addr // invalid for headless or ExternalName
	Port            int32
	NodePort        int32
	ExternalIPs     []netip.Addr
	LoadBalancerIPs []netip.Addr
	SourceRanges    []netip.Prefix // loadBalancerSourceRanges
	AffinityTimeout int32          // seconds; 0 = no ClientIP affinity
	ExternalLocal   bool           // externalTrafficPolicy Local
	InternalLocal   bool           // internalTrafficPolicy Local
	HealthCheckPort int32
	// NodeLocal: the cluster IP, protocol and port are a Listener of this node
	// (MarkNodeLocal); the cluster IP key is not proxied here.
	NodeLocal bool
}

// Endpoint is one backend of a Service port.
type Endpoint struct {
	Addr        netip.AddrPort
	Ready       bool
	Serving     bool
	Terminating bool
	Node        string
	Local       bool // on this node
	// ZoneHints and NodeHints are the slice's hints.forZones / forNodes.
	ZoneHints, NodeHints []string
	// Far: topology hints send this node's cluster traffic to other
	// endpoints (set by Topology; local traffic policies ignore it).
	Far bool
}

func (e Endpoint) String() string { return e.Addr.String() }

// State is everything the rules are computed from.
type State struct {
	Services  map[Key]*ServicePort
	Endpoints map[Key][]Endpoint // sorted by address
}

// NewState returns an empty state.
func NewState() *State {
	return &State{Services: map[Key]*ServicePort{}, Endpoints: map[Key][]Endpoint{}}
}

// Keys returns the service port keys in a stable order.
func (s *State) Keys() []Key {
	out := make([]Key, 0, len(s.Services))
	for k := range s.Services {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// ServiceProxyNameLabel marks Services that another proxy implements (the
// cluster DNS Service, answered on every node, carries it).
const ServiceProxyNameLabel = "service.kubernetes.io/service-proxy-name"

// HeadlessLabel marks Services that no proxy implements, as kube-proxy leaves
// them out of its informers (the endpoints controller also puts it on the
// Endpoints of headless Services).
const HeadlessLabel = "service.kubernetes.io/headless"

// ServicePorts converts a Service into its ports; Services this proxy does not
// implement (headless, ExternalName, another service-proxy-name or the
// headless label) give none.
func ServicePorts(s *corev1.Service) []*ServicePort {
	ip, err := netip.ParseAddr(s.Spec.ClusterIP)
	if err != nil || s.Spec.Type == corev1.ServiceTypeExternalName || !ip.Is4() {
		return nil
	}
	_, headless := s.Labels[HeadlessLabel]
	if _, other := s.Labels[ServiceProxyNameLabel]; other || headless {
		// Implemented elsewhere; only its cluster IP is known (as allocated), Port 0.
		return []*ServicePort{{Key: Key{s.Namespace, s.Name, ""}, Protocol: corev1.ProtocolTCP, ClusterIP: ip}}
	}
	var ext, lbs []netip.Addr
	for _, e := range s.Spec.ExternalIPs {
		if a, err := netip.ParseAddr(e); err == nil && a.Is4() {
			ext = append(ext, a)
		}
	}
	for _, in := range s.Status.LoadBalancer.Ingress {
		if a, err := netip.ParseAddr(in.IP); err == nil && a.Is4() {
			lbs = append(lbs, a)
		}
	}
	var ranges []netip.Prefix
	for _, r := range s.Spec.LoadBalancerSourceRanges {
		if p, err := netip.ParsePrefix(strings.TrimSpace(r)); err == nil && p.Addr().Is4() {
			ranges = append(ranges, p.Masked())
		}
	}
	var affinity int32
	if s.Spec.SessionAffinity == corev1.ServiceAffinityClientIP {
		affinity = corev1.DefaultClientIPServiceAffinitySeconds
		if c := s.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
			affinity = *c.ClientIP.TimeoutSeconds
		}
	}
	external := s.Spec.Type == corev1.ServiceTypeNodePort || s.Spec.Type == corev1.ServiceTypeLoadBalancer || len(ext) > 0
	var out []*ServicePort
	for _, p := range s.Spec.Ports {
		proto := p.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		if proto == corev1.ProtocolSCTP {
			continue
		}
		sp := &ServicePort{Key: Key{s.Namespace, s.Name, p.Name}, Protocol: proto, ClusterIP: ip, Port: p.Port,
			ExternalIPs: ext, LoadBalancerIPs: lbs, SourceRanges: ranges, AffinityTimeout: affinity,
			ExternalLocal:   external && s.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal,
			InternalLocal:   s.Spec.InternalTrafficPolicy != nil && *s.Spec.InternalTrafficPolicy == corev1.ServiceInternalTrafficPolicyLocal,
			HealthCheckPort: s.Spec.HealthCheckNodePort}
		if s.Spec.Type == corev1.ServiceTypeNodePort || s.Spec.Type == corev1.ServiceTypeLoadBalancer {
			sp.NodePort = p.NodePort
		}
		out = append(out, sp)
	}
	return out
}

// SliceEndpoints converts one EndpointSlice into endpoints per port name, for node.
// Loopback addresses are kept only in the kubernetes Service and on this node.
func SliceEndpoints(es *discoveryv1.EndpointSlice, node string) map[string][]Endpoint {
	if es.AddressType != discoveryv1.AddressTypeIPv4 {
		return nil
	}
	out := map[string][]Endpoint{}
	for _, p := range slicePorts(es, node) {
		out[p.port] = p.eps
	}
	return out
}

// slicePorts is SliceEndpoints as the tracker keeps it: a list, one entry per
// port name with endpoints (a map per slice would cost a whole map group).
func slicePorts(es *discoveryv1.EndpointSlice, node string) []portEndpoints {
	if es.AddressType != discoveryv1.AddressTypeIPv4 {
		return nil
	}
	apiServer := es.Namespace == "default" && es.Labels[discoveryv1.LabelServiceName] == "kubernetes"
	var out []portEndpoints
	add := func(name string, ep Endpoint) {
		for i := range out {
			if out[i].port == name {
				out[i].eps = append(out[i].eps, ep)
				return
			}
		}
		out = append(out, portEndpoints{name, []Endpoint{ep}})
	}
	for _, p := range es.Ports {
		if p.Port == nil {
			continue
		}
		name := ""
		if p.Name != nil {
			name = *p.Name
		}
		for _, e := range es.Endpoints {
			if len(e.Addresses) == 0 {
				continue
			}
			a, err := netip.ParseAddr(e.Addresses[0])
			if err != nil {
				continue
			}
			ep := Endpoint{Addr: netip.AddrPortFrom(a, uint16(*p.Port)),
				Ready:       e.Conditions.Ready == nil || *e.Conditions.Ready,
				Serving:     e.Conditions.Serving == nil || *e.Conditions.Serving,
				Terminating: e.Conditions.Terminating != nil && *e.Conditions.Terminating}
			if e.Conditions.Serving == nil {
				ep.Serving = ep.Ready
			}
			if e.NodeName != nil {
				ep.Node = *e.NodeName
				ep.Local = *e.NodeName == node
			}
			if e.Hints != nil {
				for _, z := range e.Hints.ForZones {
					ep.ZoneHints = append(ep.ZoneHints, z.Name)
				}
				for _, n := range e.Hints.ForNodes {
					ep.NodeHints = append(ep.NodeHints, n.Name)
				}
			}
			// A loopback endpoint is the loopback of whichever node DNATs to
			// it, and pods reach it too (route_localnet on the pod bridge, for
			// the API server of `svcnet up` on 127.0.0.1). Kubernetes refuses
			// such addresses in slices; here only the API server's own and a
			// hostNetwork pod of this node keep them, so no other slice opens
			// a node's loopback services to pods.
			if a.IsLoopback() && !apiServer && !ep.Local {
				continue
			}
			add(name, ep)
		}
	}
	return out
}

// Usable picks the endpoints traffic goes to, as kube-proxy does: the ready
// ones (terminating or not: a terminating endpoint is only ready when its
// Service publishes not-ready addresses) that topology keeps (not Far); when
// there are none, the serving terminating ones; with local only those on this
// node, whatever the hints.
func Usable(eps []Endpoint, local bool) []Endpoint {
	var ready, terminating []Endpoint
	for _, e := range eps {
		if local && !e.Local {
			continue
		}
		if e.Ready {
			if local || !e.Far {
				ready = append(ready, e)
			}
		} else if e.Serving && e.Terminating {
			terminating = append(terminating, e)
		}
	}
	if len(ready) > 0 {
		return ready
	}
	return terminating
}

// TopologyMode says which hints route cluster traffic from node in zone, as
// kube-proxy's topologyModeFromHints: PreferSameNode when every ready endpoint
// has node hints and one names node; else PreferSameZone when every ready
// endpoint has zone hints and one names zone; else "" (all endpoints).
func TopologyMode(eps []Endpoint, node, zone string) string {
	allNode, allZone, forNode, forZone, someReady := true, true, false, false, false
	for _, e := range eps {
		if !e.Ready {
			continue
		}
		someReady = true
		allNode = allNode && len(e.NodeHints) > 0
		allZone = allZone && len(e.ZoneHints) > 0
		forNode = forNode || slices.Contains(e.NodeHints, node)
		forZone = forZone || (zone != "" && slices.Contains(e.ZoneHints, zone))
	}
	switch {
	case !someReady:
		return ""
	case allNode && forNode:
		return corev1.ServiceTrafficDistributionPreferSameNode
	case allZone && forZone:
		return corev1.ServiceTrafficDistributionPreferSameZone
	}
	return ""
}

// Topology returns eps with Far set on the endpoints that cluster traffic from
// node (in zone) skips under TopologyMode, cleared on the others.
func Topology(eps []Endpoint, node, zone string) []Endpoint {
	mode := TopologyMode(eps, node, zone)
	out := make([]Endpoint, len(eps))
	for i, e := range eps {
		switch mode {
		case corev1.ServiceTrafficDistributionPreferSameNode:
			e.Far = !slices.Contains(e.NodeHints, node)
		case corev1.ServiceTrafficDistributionPreferSameZone:
			e.Far = !slices.Contains(e.ZoneHints, zone)
		default:
			e.Far = false
		}
		out[i] = e
	}
	return out
}

// Describe is a one-line summary of a service port, for logs and explain.
func (sp *ServicePort) Describe() string {
	s := fmt.Sprintf("%s %s %s:%d", sp.Key, sp.Protocol, sp.ClusterIP, sp.Port)
	if sp.NodePort != 0 {
		s += fmt.Sprintf(" nodePort %d", sp.NodePort)
	}
	return s
}
