// Package endpoints keeps EndpointSlices and the legacy Endpoints object of every
// Service with a selector in step with its pods, and mirrors user-managed Endpoints
// of selectorless Services into EndpointSlices. What the objects should contain is
// computed by pure functions (this file, slices.go); controller.go only watches and
// writes through the Kubernetes API.
package endpoints

import (
	"fmt"
	"net"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	podstatus "github.com/svcnet/svcnet/internal/pod"
)

// Labels and annotations Kubernetes uses on these objects.
const (
	ManagedBy          = "endpointslice-controller.k8s.io"
	MirrorManagedBy    = "endpointslicemirroring-controller.k8s.io"
	EndpointsManagedBy = "endpoint-controller"
	LabelEndpointsBy   = "endpoints.kubernetes.io/managed-by"
	LabelHeadless      = "service.kubernetes.io/headless"
	LabelSkipMirror    = "endpointslice.kubernetes.io/skip-mirror"
	AnnotationTrigger  = "endpoints.kubernetes.io/last-change-trigger-time"
	AnnotationOverCap  = "endpoints.kubernetes.io/over-capacity"
	// MaxEndpointsAddresses is where Kubernetes truncates a legacy Endpoints object.
	MaxEndpointsAddresses = 1000
)

// included says whether a pod is an endpoint at all: it has an IP of the family
// and is not finished; terminating pods only when includeTerminating.
func included(p *corev1.Pod, includeTerminating bool) bool {
	if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return false
	}
	if p.Status.PodIP == "" {
		return false
	}
	return p.DeletionTimestamp == nil || includeTerminating
}

// podIP returns the pod's IP of the given family ("" if none).
func podIP(p *corev1.Pod, family corev1.IPFamily) string {
	ips := []string{p.Status.PodIP}
	for _, x := range p.Status.PodIPs {
		ips = append(ips, x.IP)
	}
	for _, s := range ips {
		ip := net.ParseIP(s)
		if ip == nil {
			continue
		}
		if (ip.To4() != nil) == (family != corev1.IPv6Protocol) {
			return s
		}
	}
	return ""
}

// FindPort resolves a Service port's targetPort for one pod: a number is used as
// is; a name is looked up among the pod's container ports of the same protocol
// (app containers, then sidecars: init containers with restartPolicy Always).
func FindPort(p *corev1.Pod, sp corev1.ServicePort) (int32, bool) {
	tp := sp.TargetPort
	switch {
	case tp.Type == intstr.String && tp.StrVal != "":
		containers := p.Spec.Containers
		for _, c := range p.Spec.InitContainers {
			if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
				containers = append(containers[:len(containers):len(containers)], c)
			}
		}
		for _, c := range containers {
			for _, cp := range c.Ports {
				proto := cp.Protocol
				if proto == "" {
					proto = corev1.ProtocolTCP
				}
				if cp.Name == tp.StrVal && proto == sp.Protocol {
					return cp.ContainerPort, true
				}
			}
		}
		return 0, false
	case tp.IntVal != 0:
		return tp.IntVal, true
	}
	return sp.Port, true
}

// family returns the address family of the Service's endpoints.
func family(svc *corev1.Service) corev1.IPFamily {
	if len(svc.Spec.IPFamilies) > 0 {
		return svc.Spec.IPFamilies[0]
	}
	return corev1.IPv4Protocol
}

// serviceLabels are copied onto the Service's endpoint objects, as Kubernetes does.
func serviceLabels(svc *corev1.Service) map[string]string {
	out := map[string]string{}
	for k, v := range svc.Labels {
		if k == discoveryv1.LabelServiceName || k == discoveryv1.LabelManagedBy || k == LabelEndpointsBy {
			continue
		}
		out[k] = v
	}
	if svc.Spec.ClusterIP == corev1.ClusterIPNone {
		out[LabelHeadless] = ""
	}
	return out
}

// DesiredEndpoints computes the legacy Endpoints object of a Service with a
// selector from its pods (already filtered by the selector and namespace).
func DesiredEndpoints(svc *corev1.Service, pods []*corev1.Pod) *corev1.Endpoints {
	type subsetKey string
	subsets := map[subsetKey]*corev1.EndpointSubset{}
	var keys []subsetKey
	total := 0
	fam := family(svc)
	for _, p := range pods {
		if !included(p, svc.Spec.PublishNotReadyAddresses) {
			continue
		}
		ip := podIP(p, fam)
		if ip == "" {
			continue
		}
		addr := corev1.EndpointAddress{IP: ip, TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: p.Namespace, Name: p.Name, UID: p.UID}}
		if p.Spec.NodeName != "" {
			n := p.Spec.NodeName
			addr.NodeName = &n
		}
		if p.Spec.Hostname != "" && p.Spec.Subdomain == svc.Name {
			addr.Hostname = p.Spec.Hostname
		}
		var ports []corev1.EndpointPort
		for _, sp := range svc.Spec.Ports {
			if n, ok := FindPort(p, sp); ok {
				ports = append(ports, corev1.EndpointPort{Name: sp.Name, Port: n, Protocol: sp.Protocol, AppProtocol: sp.AppProtocol})
			}
		}
		if len(svc.Spec.Ports) > 0 && len(ports) == 0 {
			continue // none of the Service's ports exist on this pod
		}
		sort.Slice(ports, func(i, j int) bool { return ports[i].Name < ports[j].Name })
		k := subsetKey(fmt.Sprint(ports))
		ss := subsets[k]
		if ss == nil {
			ss = &corev1.EndpointSubset{Ports: ports}
			subsets[k] = ss
			keys = append(keys, k)
		}
		if svc.Spec.PublishNotReadyAddresses || (podstatus.Ready(p.Status) && p.DeletionTimestamp == nil) {
			ss.Addresses = append(ss.Addresses, addr)
		} else {
			ss.NotReadyAddresses = append(ss.NotReadyAddresses, addr)
		}
		total++
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	ep := &corev1.Endpoints{}
	ep.Name, ep.Namespace = svc.Name, svc.Namespace
	ep.Labels = serviceLabels(svc)
	ep.Labels[LabelEndpointsBy] = EndpointsManagedBy
	byIP := func(a []corev1.EndpointAddress) {
		sort.Slice(a, func(i, j int) bool { return a[i].IP < a[j].IP })
	}
	left := MaxEndpointsAddresses
	for _, k := range keys {
		ss := subsets[k]
		byIP(ss.Addresses)
		byIP(ss.NotReadyAddresses)
		if len(ss.Addresses) > left {
			ss.Addresses = ss.Addresses[:left]
		}
		left -= len(ss.Addresses)
		if len(ss.NotReadyAddresses) > left {
			ss.NotReadyAddresses = ss.NotReadyAddresses[:left]
		}
		left -= len(ss.NotReadyAddresses)
		if len(ss.Addresses)+len(ss.NotReadyAddresses) > 0 {
			ep.Subsets = append(ep.Subsets, *ss)
		}
	}
	if total > MaxEndpointsAddresses {
		ep.Annotations = map[string]string{AnnotationOverCap: "truncated"}
	}
	return ep
}

// portKey identifies a set of endpoint ports (slices group endpoints by it).
func portKey(ports []discoveryv1.EndpointPort) string {
	parts := make([]string, len(ports))
	for i, p := range ports {
		name, proto, num := "", "", int32(0)
		if p.Name != nil {
			name = *p.Name
		}
		if p.Protocol != nil {
			proto = string(*p.Protocol)
		}
		if p.Port != nil {
			num = *p.Port
		}
		parts[i] = fmt.Sprintf("%s/%s/%d", name, proto, num)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}
