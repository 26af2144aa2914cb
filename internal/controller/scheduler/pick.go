// Package scheduler binds pods without a node to a Ready, schedulable node that
// matches their nodeSelector and tolerates its taints, spreading pods evenly. The
// choice is a pure function; the controller binds through pods/binding.
package scheduler

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/klog/v2"
)

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func tolerates(p *corev1.Pod, t corev1.Taint) bool {
	for _, tol := range p.Spec.Tolerations {
		if tol.ToleratesTaint(klog.Background(), &t, false) {
			return true
		}
	}
	return false
}

// HostPort is one host port a pod's container asks for (IP "" is every address).
type HostPort struct {
	IP       string
	Protocol corev1.Protocol
	Port     int32
}

// HostPorts are the host ports of a pod's containers and sidecars.
func HostPorts(p *corev1.Pod) []HostPort {
	var out []HostPort
	add := func(cs []corev1.Container, sidecarsOnly bool) {
		for _, c := range cs {
			if sidecarsOnly && (c.RestartPolicy == nil || *c.RestartPolicy != corev1.ContainerRestartPolicyAlways) {
				continue
			}
			for _, cp := range c.Ports {
				if cp.HostPort <= 0 {
					continue
				}
				hp := HostPort{IP: cp.HostIP, Protocol: cp.Protocol, Port: cp.HostPort}
				if hp.IP == "0.0.0.0" || hp.IP == "::" {
					hp.IP = ""
				}
				if hp.Protocol == "" {
					hp.Protocol = corev1.ProtocolTCP
				}
				out = append(out, hp)
			}
		}
	}
	add(p.Spec.Containers, false)
	add(p.Spec.InitContainers, true)
	return out
}

// portsFree says whether none of want conflicts with used, as kube-scheduler's
// NodePorts filter: the same port and protocol on the same address, or on
// every address on either side.
func portsFree(want, used []HostPort) bool {
	for _, w := range want {
		for _, u := range used {
			if w.Port == u.Port && w.Protocol == u.Protocol && (w.IP == u.IP || w.IP == "" || u.IP == "") {
				return false
			}
		}
	}
	return true
}

// Pick chooses a node for pod among nodes, given how many pods each node runs
// and the host ports its pods hold. Without a fit it returns "" and the reason,
// in kube-scheduler's style.
func Pick(pod *corev1.Pod, nodes []*corev1.Node, load map[string]int, used map[string][]HostPort) (string, string) {
	sel := labels.SelectorFromSet(pod.Spec.NodeSelector)
	want := HostPorts(pod)
	reasons := map[string]int{}
	var fit []*corev1.Node
	for _, n := range nodes {
		switch {
		case !nodeReady(n):
			reasons["node(s) were not ready"]++
		case n.Spec.Unschedulable:
			reasons["node(s) were unschedulable"]++
		case !sel.Matches(labels.Set(n.Labels)):
			reasons["node(s) didn't match Pod's node affinity/selector"]++
		case !portsFree(want, used[n.Name]):
			reasons["node(s) didn't have free ports for the requested pod ports"]++
		default:
			ok := true
			for _, t := range n.Spec.Taints {
				if (t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute) && !tolerates(pod, t) {
					reasons[fmt.Sprintf("node(s) had untolerated taint {%s: %s}", t.Key, t.Value)]++
					ok = false
					break
				}
			}
			if ok {
				fit = append(fit, n)
			}
		}
	}
	if len(fit) == 0 {
		var parts []string
		for r, n := range reasons {
			parts = append(parts, fmt.Sprintf("%d %s", n, r))
		}
		sort.Strings(parts)
		msg := fmt.Sprintf("0/%d nodes are available", len(nodes))
		if len(parts) > 0 {
			msg += ": " + strings.Join(parts, ", ")
		}
		return "", msg + "."
	}
	sort.Slice(fit, func(i, j int) bool {
		if load[fit[i].Name] != load[fit[j].Name] {
			return load[fit[i].Name] < load[fit[j].Name]
		}
		return fit[i].Name < fit[j].Name
	})
	return fit[0].Name, ""
}
