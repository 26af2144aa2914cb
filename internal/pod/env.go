// Package pod holds what the node agent computes for a pod, for any pod runtime:
// the Service environment variables, a container's environment, /etc/resolv.conf,
// /etc/hosts, probe state and the pod's status, in the forms the kubelet uses.
// All pure: the pod runtime writes the results.
package pod

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// envName turns a Service or port name into an environment variable stem:
// upper case, dashes as underscores (httpd-svc -> HTTPD_SVC).
func envName(s string) string { return strings.ToUpper(strings.ReplaceAll(s, "-", "_")) }

// hasClusterIP reports whether a Service has a virtual IP to advertise.
func hasClusterIP(s *corev1.Service) bool {
	return s.Spec.ClusterIP != "" && s.Spec.ClusterIP != corev1.ClusterIPNone
}

// ServiceEnv returns the environment a container in namespace ns gets for the
// Services that exist when it starts: those of its own namespace (unless
// enableServiceLinks is false) and always the `kubernetes` Service of default.
// Services without a cluster IP (headless, ExternalName) give nothing. The result
// is sorted by name.
func ServiceEnv(ns string, enableServiceLinks bool, services []*corev1.Service) []corev1.EnvVar {
	chosen := map[string]*corev1.Service{}
	for _, s := range services {
		if !hasClusterIP(s) || len(s.Spec.Ports) == 0 {
			continue
		}
		isMaster := s.Namespace == "default" && s.Name == "kubernetes"
		if (s.Namespace == ns && enableServiceLinks) || isMaster {
			if _, dup := chosen[s.Name]; !dup || s.Namespace == ns {
				chosen[s.Name] = s // a Service of the pod's namespace wins over default/kubernetes
			}
		}
	}
	var out []corev1.EnvVar
	add := func(name, value string) { out = append(out, corev1.EnvVar{Name: name, Value: value}) }
	for _, s := range chosen {
		stem, ip := envName(s.Name), s.Spec.ClusterIP
		add(stem+"_SERVICE_HOST", ip)
		add(stem+"_SERVICE_PORT", strconv.Itoa(int(s.Spec.Ports[0].Port)))
		for i, p := range s.Spec.Ports {
			if p.Name != "" {
				add(stem+"_SERVICE_PORT_"+envName(p.Name), strconv.Itoa(int(p.Port)))
			}
			proto := string(p.Protocol)
			if proto == "" {
				proto = string(corev1.ProtocolTCP)
			}
			url := fmt.Sprintf("%s://%s", strings.ToLower(proto), net.JoinHostPort(ip, strconv.Itoa(int(p.Port))))
			if i == 0 {
				add(stem+"_PORT", url) // the Docker links form of the first port
			}
			pp := fmt.Sprintf("%s_PORT_%d_%s", stem, p.Port, strings.ToUpper(proto))
			add(pp, url)
			add(pp+"_PROTO", strings.ToLower(proto))
			add(pp+"_PORT", strconv.Itoa(int(p.Port)))
			add(pp+"_ADDR", ip)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Ready reports a pod status's Ready condition.
func Ready(st corev1.PodStatus) bool {
	for _, c := range st.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
