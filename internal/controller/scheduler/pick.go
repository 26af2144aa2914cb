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

// Pick chooses a node for pod among nodes, given how many pods each node runs.
// Without a fit it returns "" and the reason, in kube-scheduler's style.
func Pick(pod *corev1.Pod, nodes []*corev1.Node, load map[string]int) (string, string) {
	sel := labels.SelectorFromSet(pod.Spec.NodeSelector)
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
