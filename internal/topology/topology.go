// Package topology turns the cluster's networking objects (namespaces,
// Services, EndpointSlices, pods and nodes) into one small graph that the
// live topology page draws: which Service reaches which pods, on which node,
// and whether they are ready. It does no I/O; the API server feeds it objects.
package topology

import (
	"cmp"
	"embed"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// Assets holds the topology page (index.html and app.js), served under /ui/.
//
//go:embed web
var Assets embed.FS

// Graph is one snapshot of the cluster's Service topology.
type Graph struct {
	Namespaces []string  `json:"namespaces"`
	Nodes      []Node    `json:"nodes"`
	Services   []Service `json:"services"`
	Pods       []Pod     `json:"pods"`
}

// Node is a cluster node and whether it is Ready.
type Node struct {
	Name      string   `json:"name"`
	Ready     bool     `json:"ready"`
	Addresses []string `json:"addresses,omitempty"`
}

// Service is a Service with the endpoints its EndpointSlices list.
type Service struct {
	Namespace             string            `json:"namespace"`
	Name                  string            `json:"name"`
	Type                  string            `json:"type"`
	ClusterIPs            []string          `json:"clusterIPs,omitempty"`
	ExternalName          string            `json:"externalName,omitempty"`
	ExternalIPs           []string          `json:"externalIPs,omitempty"`
	LoadBalancerIPs       []string          `json:"loadBalancerIPs,omitempty"`
	Ports                 []Port            `json:"ports,omitempty"`
	Selector              map[string]string `json:"selector,omitempty"`
	SessionAffinity       string            `json:"sessionAffinity,omitempty"`
	ExternalTrafficPolicy string            `json:"externalTrafficPolicy,omitempty"`
	InternalTrafficPolicy string            `json:"internalTrafficPolicy,omitempty"`
	Slices                []string          `json:"slices,omitempty"`
	Endpoints             []Endpoint        `json:"endpoints,omitempty"`
}

// Port is one Service port.
type Port struct {
	Name       string `json:"name,omitempty"`
	Protocol   string `json:"protocol"`
	Port       int32  `json:"port"`
	TargetPort string `json:"targetPort,omitempty"`
	NodePort   int32  `json:"nodePort,omitempty"`
}

// Endpoint is one address of an EndpointSlice, with the pod behind it.
type Endpoint struct {
	Slice       string  `json:"slice"`
	Address     string  `json:"address"`
	Ports       []int32 `json:"ports,omitempty"`
	Ready       bool    `json:"ready"`
	Serving     bool    `json:"serving"`
	Terminating bool    `json:"terminating,omitempty"`
	Node        string  `json:"node,omitempty"`
	Pod         string  `json:"pod,omitempty"` // NAMESPACE/NAME when the target is a pod
}

// Pod is a pod with its node, IP and readiness.
type Pod struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Node      string `json:"node,omitempty"`
	IP        string `json:"ip,omitempty"`
	Phase     string `json:"phase,omitempty"`
	Ready     bool   `json:"ready"`
}

// Build computes the graph from objects; the result is sorted so equal inputs
// give equal graphs.
func Build(namespaces []*corev1.Namespace, services []*corev1.Service, eps []*discoveryv1.EndpointSlice,
	pods []*corev1.Pod, nodes []*corev1.Node) Graph {
	g := Graph{Namespaces: []string{}, Nodes: []Node{}, Services: []Service{}, Pods: []Pod{}}
	for _, ns := range namespaces {
		g.Namespaces = append(g.Namespaces, ns.Name)
	}
	slices.Sort(g.Namespaces)
	for _, n := range nodes {
		g.Nodes = append(g.Nodes, node(n))
	}
	slices.SortFunc(g.Nodes, func(a, b Node) int { return strings.Compare(a.Name, b.Name) })
	for _, p := range pods {
		g.Pods = append(g.Pods, pod(p))
	}
	slices.SortFunc(g.Pods, func(a, b Pod) int {
		return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
	})
	bySvc := map[string][]*discoveryv1.EndpointSlice{}
	for _, es := range eps {
		if name := es.Labels[discoveryv1.LabelServiceName]; name != "" {
			bySvc[es.Namespace+"/"+name] = append(bySvc[es.Namespace+"/"+name], es)
		}
	}
	for _, s := range services {
		g.Services = append(g.Services, service(s, bySvc[s.Namespace+"/"+s.Name]))
	}
	slices.SortFunc(g.Services, func(a, b Service) int {
		return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
	})
	return g
}

func node(n *corev1.Node) Node {
	out := Node{Name: n.Name}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			out.Ready = c.Status == corev1.ConditionTrue
		}
	}
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP || a.Type == corev1.NodeExternalIP {
			out.Addresses = append(out.Addresses, a.Address)
		}
	}
	return out
}

func pod(p *corev1.Pod) Pod {
	out := Pod{Namespace: p.Namespace, Name: p.Name, Node: p.Spec.NodeName, IP: p.Status.PodIP, Phase: string(p.Status.Phase)}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			out.Ready = c.Status == corev1.ConditionTrue
		}
	}
	return out
}

func service(s *corev1.Service, eps []*discoveryv1.EndpointSlice) Service {
	typ := s.Spec.Type
	if typ == "" {
		typ = corev1.ServiceTypeClusterIP
	}
	out := Service{Namespace: s.Namespace, Name: s.Name, Type: string(typ), ClusterIPs: s.Spec.ClusterIPs,
		ExternalName: s.Spec.ExternalName, ExternalIPs: s.Spec.ExternalIPs, Selector: s.Spec.Selector,
		SessionAffinity: string(s.Spec.SessionAffinity), ExternalTrafficPolicy: string(s.Spec.ExternalTrafficPolicy)}
	if len(out.ClusterIPs) == 0 && s.Spec.ClusterIP != "" {
		out.ClusterIPs = []string{s.Spec.ClusterIP}
	}
	if p := s.Spec.InternalTrafficPolicy; p != nil {
		out.InternalTrafficPolicy = string(*p)
	}
	for _, in := range s.Status.LoadBalancer.Ingress {
		out.LoadBalancerIPs = append(out.LoadBalancerIPs, cmp.Or(in.IP, in.Hostname))
	}
	for _, p := range s.Spec.Ports {
		port := Port{Name: p.Name, Protocol: string(cmp.Or(p.Protocol, corev1.ProtocolTCP)), Port: p.Port, NodePort: p.NodePort}
		if p.TargetPort.String() != "0" {
			port.TargetPort = p.TargetPort.String()
		}
		out.Ports = append(out.Ports, port)
	}
	for _, es := range eps {
		out.Slices = append(out.Slices, es.Name)
		var ports []int32
		for _, p := range es.Ports {
			if p.Port != nil {
				ports = append(ports, *p.Port)
			}
		}
		for _, e := range es.Endpoints {
			ep := Endpoint{Slice: es.Name, Ports: ports,
				// Ready and serving default to true when unset, as the API documents.
				Ready: e.Conditions.Ready == nil || *e.Conditions.Ready, Serving: e.Conditions.Serving == nil || *e.Conditions.Serving,
				Terminating: e.Conditions.Terminating != nil && *e.Conditions.Terminating}
			if e.NodeName != nil {
				ep.Node = *e.NodeName
			}
			if r := e.TargetRef; r != nil && r.Kind == "Pod" {
				ep.Pod = cmp.Or(r.Namespace, es.Namespace) + "/" + r.Name
			}
			for _, a := range e.Addresses {
				ep.Address = a
				out.Endpoints = append(out.Endpoints, ep)
			}
		}
	}
	slices.Sort(out.Slices)
	slices.SortFunc(out.Endpoints, func(a, b Endpoint) int {
		return cmp.Or(strings.Compare(a.Address, b.Address), strings.Compare(a.Slice, b.Slice))
	})
	return out
}
