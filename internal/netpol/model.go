// Package netpol enforces networking.k8s.io/v1 NetworkPolicies: it turns
// policies, pods and namespaces into the allow-lists of one node (Compile, no
// I/O), decides single flows the same way (Decide, for tests and svcnet
// explain), and programs the result as nftables set elements (Table).
package netpol

import (
	"fmt"
	"net/netip"
	"sort"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Pod is the part of a pod policies look at.
type Pod struct {
	Namespace, Name string
	Node            string
	IP              netip.Addr
	Labels          labels.Set
	Ports           []NamedPort // named container ports
}

// NamedPort is a container port with a name, the target of a named policy port.
type NamedPort struct {
	Name     string
	Protocol corev1.Protocol
	Port     uint16
}

// Key is namespace/name.
func (p *Pod) Key() string { return p.Namespace + "/" + p.Name }

// port is the number of the container port named name for proto (0: none).
func (p *Pod) port(name string, proto corev1.Protocol) uint16 {
	for _, np := range p.Ports {
		if np.Name == name && np.Protocol == proto {
			return np.Port
		}
	}
	return 0
}

// Policy is a NetworkPolicy with its selectors parsed.
type Policy struct {
	Namespace, Name string
	PodSelector     labels.Selector
	// Ingress and Egress are the policyTypes: the directions the policy
	// isolates the pods it selects in.
	Ingress, Egress           bool
	IngressRules, EgressRules []Rule
}

// Key is namespace/name.
func (p *Policy) Key() string { return p.Namespace + "/" + p.Name }

// Rule is one ingress or egress rule: traffic from/to any of Peers (none:
// everyone) on any of Ports (none: every port and protocol).
type Rule struct {
	Peers []Peer
	Ports []PortSpec
}

// Peer is one from/to entry: pods (Pods and/or Namespaces set) or an ipBlock.
type Peer struct {
	Pods       labels.Selector // nil: every pod of the selected namespaces
	Namespaces labels.Selector // nil: the policy's own namespace
	Block      *Block
}

// Block is an ipBlock: CIDR minus Except.
type Block struct {
	CIDR   netip.Prefix
	Except []netip.Prefix
}

// PortSpec is one ports entry. Port 0 with Name "" is every port of Protocol.
type PortSpec struct {
	Protocol corev1.Protocol
	Port     uint16 // first port
	EndPort  uint16 // last port of a range (0: Port only)
	Name     string // named port, resolved on the pod that receives the traffic
}

// Namespace is a namespace's labels.
type Namespace struct {
	Name   string
	Labels labels.Set
}

// State is everything policies are computed from.
type State struct {
	Pods       []*Pod
	Namespaces map[string]*Namespace
	Policies   []*Policy
}

// FromPod keeps what policies need; nil for pods without an IP and host-network
// pods (their address is the node's, policies do not select them).
func FromPod(p *corev1.Pod) *Pod {
	if p.Spec.HostNetwork || p.Status.PodIP == "" || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return nil
	}
	ip, err := netip.ParseAddr(p.Status.PodIP)
	if err != nil || !ip.Is4() {
		return nil
	}
	out := &Pod{Namespace: p.Namespace, Name: p.Name, Node: p.Spec.NodeName, IP: ip, Labels: labels.Set(p.Labels)}
	for _, c := range p.Spec.Containers {
		for _, cp := range c.Ports {
			if cp.Name == "" {
				continue
			}
			proto := cp.Protocol
			if proto == "" {
				proto = corev1.ProtocolTCP
			}
			out.Ports = append(out.Ports, NamedPort{Name: cp.Name, Protocol: proto, Port: uint16(cp.ContainerPort)})
		}
	}
	return out
}

// FromNamespace keeps a namespace's labels, with kubernetes.io/metadata.name
// as the API server sets it.
func FromNamespace(ns *corev1.Namespace) *Namespace {
	l := labels.Set{}
	for k, v := range ns.Labels {
		l[k] = v
	}
	l[corev1.LabelMetadataName] = ns.Name
	return &Namespace{Name: ns.Name, Labels: l}
}

// FromPolicy parses a NetworkPolicy; an error names the field it cannot use.
func FromPolicy(np *networkingv1.NetworkPolicy) (*Policy, error) {
	sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
	if err != nil {
		return nil, fmt.Errorf("spec.podSelector: %w", err)
	}
	p := &Policy{Namespace: np.Namespace, Name: np.Name, PodSelector: sel}
	types := np.Spec.PolicyTypes
	if len(types) == 0 { // the API server's defaulting, for objects stored without it
		types = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
		if len(np.Spec.Egress) > 0 {
			types = append(types, networkingv1.PolicyTypeEgress)
		}
	}
	for _, t := range types {
		p.Ingress = p.Ingress || t == networkingv1.PolicyTypeIngress
		p.Egress = p.Egress || t == networkingv1.PolicyTypeEgress
	}
	for i, r := range np.Spec.Ingress {
		rule, err := fromRule(r.From, r.Ports)
		if err != nil {
			return nil, fmt.Errorf("spec.ingress[%d].%w", i, err)
		}
		p.IngressRules = append(p.IngressRules, rule)
	}
	for i, r := range np.Spec.Egress {
		rule, err := fromRule(r.To, r.Ports)
		if err != nil {
			return nil, fmt.Errorf("spec.egress[%d].%w", i, err)
		}
		p.EgressRules = append(p.EgressRules, rule)
	}
	return p, nil
}

func fromRule(peers []networkingv1.NetworkPolicyPeer, ports []networkingv1.NetworkPolicyPort) (Rule, error) {
	var r Rule
	for i, pe := range peers {
		var out Peer
		var err error
		if pe.PodSelector != nil {
			if out.Pods, err = metav1.LabelSelectorAsSelector(pe.PodSelector); err != nil {
				return r, fmt.Errorf("peers[%d].podSelector: %w", i, err)
			}
		}
		if pe.NamespaceSelector != nil {
			if out.Namespaces, err = metav1.LabelSelectorAsSelector(pe.NamespaceSelector); err != nil {
				return r, fmt.Errorf("peers[%d].namespaceSelector: %w", i, err)
			}
		}
		if pe.IPBlock != nil {
			b := &Block{}
			if b.CIDR, err = netip.ParsePrefix(pe.IPBlock.CIDR); err != nil {
				return r, fmt.Errorf("peers[%d].ipBlock.cidr: %w", i, err)
			}
			for j, e := range pe.IPBlock.Except {
				ex, err := netip.ParsePrefix(e)
				if err != nil {
					return r, fmt.Errorf("peers[%d].ipBlock.except[%d]: %w", i, j, err)
				}
				b.Except = append(b.Except, ex.Masked())
			}
			b.CIDR = b.CIDR.Masked()
			out.Block = b
		}
		if out.Pods == nil && out.Namespaces == nil && out.Block == nil {
			return r, fmt.Errorf("peers[%d]: needs podSelector, namespaceSelector or ipBlock", i)
		}
		r.Peers = append(r.Peers, out)
	}
	for i, po := range ports {
		ps := PortSpec{Protocol: corev1.ProtocolTCP}
		if po.Protocol != nil {
			ps.Protocol = *po.Protocol
		}
		if po.Port != nil {
			if po.Port.Type == intstr.String {
				ps.Name = po.Port.StrVal
			} else if v := po.Port.IntVal; v < 1 || v > 65535 {
				return r, fmt.Errorf("ports[%d].port: %d is not a port", i, v)
			} else {
				ps.Port = uint16(v)
			}
		}
		if po.EndPort != nil {
			if v := *po.EndPort; v < int32(ps.Port) || v > 65535 || ps.Name != "" {
				return r, fmt.Errorf("ports[%d].endPort: %d needs a numeric port <= it", i, v)
			}
			ps.EndPort = uint16(*po.EndPort)
		}
		r.Ports = append(r.Ports, ps)
	}
	return r, nil
}

// FromObjects converts API objects into a State; a policy that does not parse
// is skipped and passed to bad (the API server validates them, so only a
// foreign one sends such).
func FromObjects(pods []*corev1.Pod, nss []*corev1.Namespace, pols []*networkingv1.NetworkPolicy, bad func(*networkingv1.NetworkPolicy, error)) *State {
	var ps []*Pod
	for _, p := range pods {
		if sp := FromPod(p); sp != nil {
			ps = append(ps, sp)
		}
	}
	var ns []*Namespace
	for _, n := range nss {
		ns = append(ns, FromNamespace(n))
	}
	var policies []*Policy
	for _, np := range pols {
		p, err := FromPolicy(np)
		if err != nil {
			bad(np, err)
			continue
		}
		policies = append(policies, p)
	}
	return NewState(ps, ns, policies)
}

// NewState builds a State; the pods are sorted by IP so results are stable.
func NewState(pods []*Pod, namespaces []*Namespace, policies []*Policy) *State {
	s := &State{Pods: pods, Namespaces: map[string]*Namespace{}, Policies: policies}
	for _, ns := range namespaces {
		s.Namespaces[ns.Name] = ns
	}
	sort.Slice(s.Pods, func(i, j int) bool { return s.Pods[i].IP.Less(s.Pods[j].IP) })
	sort.Slice(s.Policies, func(i, j int) bool { return s.Policies[i].Key() < s.Policies[j].Key() })
	return s
}

// podByIP finds the pod with ip (nil: not a pod).
func (s *State) podByIP(ip netip.Addr) *Pod {
	i := sort.Search(len(s.Pods), func(i int) bool { return !s.Pods[i].IP.Less(ip) })
	if i < len(s.Pods) && s.Pods[i].IP == ip {
		return s.Pods[i]
	}
	return nil
}

// selecting returns the policies that select pod for a direction.
func (s *State) selecting(pod *Pod, ingress bool) []*Policy {
	var out []*Policy
	for _, p := range s.Policies {
		if p.Namespace != pod.Namespace || (ingress && !p.Ingress) || (!ingress && !p.Egress) {
			continue
		}
		if p.PodSelector.Matches(pod.Labels) {
			out = append(out, p)
		}
	}
	return out
}

// peerPod says whether peer (of a policy in ns) selects pod.
func (s *State) peerPod(peer Peer, ns string, pod *Pod) bool {
	if peer.Block != nil || pod == nil {
		return false
	}
	if peer.Namespaces == nil {
		if pod.Namespace != ns {
			return false
		}
	} else {
		n := s.Namespaces[pod.Namespace]
		if n == nil || !peer.Namespaces.Matches(n.Labels) {
			return false
		}
	}
	return peer.Pods == nil || peer.Pods.Matches(pod.Labels)
}
