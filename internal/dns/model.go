// Package dns is svcnet's cluster DNS: the Kubernetes DNS-based service discovery
// specification answered from an in-memory index fed by watches, with everything
// outside the cluster zone forwarded to the node's upstream resolvers.
//
// API objects are cut down to the slim structs below where they come off the
// watch (source.go); the index (index.go) and the answers (answer.go) are pure.
package dns

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// Service is what DNS needs of a Kubernetes Service.
type Service struct {
	Name, Namespace string
	ClusterIPs      []string // empty for headless and ExternalName
	ExternalName    string
	Headless        bool
	Ports           []Port
	Endpoints       []Endpoint // headless only: ready endpoints
}

// Port is a Service port.
type Port struct {
	Name     string
	Protocol string // lower case: tcp, udp, sctp
	Port     int32
}

// Endpoint is one ready endpoint address of a headless Service.
type Endpoint struct {
	IP       string
	Hostname string // the endpoint's hostname, or the IP with dashes
}

// FromService converts a Service (nil for an unsupported one).
func FromService(s *corev1.Service) *Service {
	out := &Service{Name: s.Name, Namespace: s.Namespace}
	switch {
	case s.Spec.Type == corev1.ServiceTypeExternalName:
		out.ExternalName = strings.TrimSuffix(s.Spec.ExternalName, ".")
	case s.Spec.ClusterIP == corev1.ClusterIPNone:
		out.Headless = true
	case s.Spec.ClusterIP == "":
		return nil
	default:
		out.ClusterIPs = append(out.ClusterIPs, s.Spec.ClusterIPs...)
		if len(out.ClusterIPs) == 0 {
			out.ClusterIPs = []string{s.Spec.ClusterIP}
		}
	}
	for _, p := range s.Spec.Ports {
		proto := strings.ToLower(string(p.Protocol))
		if proto == "" {
			proto = "tcp"
		}
		out.Ports = append(out.Ports, Port{Name: strings.ToLower(p.Name), Protocol: proto, Port: p.Port})
	}
	return out
}

// dashed turns an IP into a DNS label: 10.1.2.3 -> 10-1-2-3, fd00::1 -> fd00--1.
func dashed(ip string) string {
	return strings.NewReplacer(".", "-", ":", "-").Replace(ip)
}

// EndpointsFromSlices returns the ready endpoints of a Service's slices, deduplicated
// by IP. Headless Services answer with these.
func EndpointsFromSlices(slices []*discoveryv1.EndpointSlice) []Endpoint {
	seen := map[string]bool{}
	var out []Endpoint
	for _, s := range slices {
		if s.AddressType == discoveryv1.AddressTypeFQDN {
			continue
		}
		for _, e := range s.Endpoints {
			if e.Conditions.Ready != nil && !*e.Conditions.Ready {
				continue
			}
			for _, ip := range e.Addresses {
				if seen[ip] {
					continue
				}
				seen[ip] = true
				h := dashed(ip)
				if e.Hostname != nil && *e.Hostname != "" {
					h = strings.ToLower(*e.Hostname)
				}
				out = append(out, Endpoint{IP: ip, Hostname: h})
			}
		}
	}
	return out
}
