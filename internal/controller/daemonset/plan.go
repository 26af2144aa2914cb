// Package daemonset runs the DaemonSet controller: one pod per node that the
// pod template fits (nodeSelector, required node affinity, taints with the
// tolerations Kubernetes gives daemon pods), bound by setting spec.nodeName,
// replaced when failed, removed from nodes that stop fitting, and rolled to a new
// template at most maxUnavailable nodes at a time. Each template is a
// ControllerRevision (internal/controller/history) whose hash the pods carry in
// controller-revision-hash; maxSurge is treated as 0. The plan is a pure function; the controller applies it.
package daemonset

import (
	"sort"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/klog/v2"

	"github.com/svcnet/svcnet/internal/pod"
)

// daemonTolerations are the tolerations Kubernetes adds to every daemon pod, so
// they run on cordoned and pressured nodes and stay on unreachable ones.
var daemonTolerations = []corev1.Toleration{
	{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
	{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
	{Key: corev1.TaintNodeDiskPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodeMemoryPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodePIDPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodeUnschedulable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
}

// podTolerations are the template's tolerations plus the daemon ones.
func podTolerations(spec *corev1.PodSpec) []corev1.Toleration {
	out := append([]corev1.Toleration(nil), spec.Tolerations...)
	extra := daemonTolerations
	if spec.HostNetwork {
		extra = append(extra[:len(extra):len(extra)], corev1.Toleration{Key: corev1.TaintNodeNetworkUnavailable,
			Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule})
	}
	for _, t := range extra {
		dup := false
		for _, have := range out {
			if have.Key == t.Key && have.Effect == t.Effect && have.Operator == t.Operator {
				dup = true
			}
		}
		if !dup {
			out = append(out, t)
		}
	}
	return out
}

// nodeTaints are a node's taints plus the ones Kubernetes' node lifecycle
// controller would have put on it for being NotReady or cordoned.
func nodeTaints(n *corev1.Node) []corev1.Taint {
	out := append([]corev1.Taint(nil), n.Spec.Taints...)
	has := func(key string) bool {
		for _, t := range out {
			if t.Key == key {
				return true
			}
		}
		return false
	}
	if !nodeReady(n) && !has(corev1.TaintNodeNotReady) && !has(corev1.TaintNodeUnreachable) {
		out = append(out, corev1.Taint{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoSchedule})
	}
	if n.Spec.Unschedulable && !has(corev1.TaintNodeUnschedulable) {
		out = append(out, corev1.Taint{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule})
	}
	return out
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func tolerated(tols []corev1.Toleration, t corev1.Taint) bool {
	for i := range tols {
		if tols[i].ToleratesTaint(klog.Background(), &t, false) {
			return true
		}
	}
	return false
}

var nodeOps = map[corev1.NodeSelectorOperator]selection.Operator{
	corev1.NodeSelectorOpIn: selection.In, corev1.NodeSelectorOpNotIn: selection.NotIn,
	corev1.NodeSelectorOpExists: selection.Exists, corev1.NodeSelectorOpDoesNotExist: selection.DoesNotExist,
	corev1.NodeSelectorOpGt: selection.GreaterThan, corev1.NodeSelectorOpLt: selection.LessThan,
}

// termMatches reports whether a node selector term (ANDed expressions) matches.
func termMatches(term corev1.NodeSelectorTerm, n *corev1.Node) bool {
	if len(term.MatchExpressions) == 0 && len(term.MatchFields) == 0 {
		return false
	}
	for _, e := range term.MatchExpressions {
		r, err := labels.NewRequirement(e.Key, nodeOps[e.Operator], e.Values)
		if err != nil || !r.Matches(labels.Set(n.Labels)) {
			return false
		}
	}
	for _, e := range term.MatchFields {
		r, err := labels.NewRequirement(e.Key, nodeOps[e.Operator], e.Values)
		if err != nil || e.Key != "metadata.name" || !r.Matches(labels.Set{"metadata.name": n.Name}) {
			return false
		}
	}
	return true
}

// fits reports whether the template's nodeSelector and required node affinity
// (any term) select n.
func fits(spec *corev1.PodSpec, n *corev1.Node) bool {
	if !labels.SelectorFromSet(spec.NodeSelector).Matches(labels.Set(n.Labels)) {
		return false
	}
	a := spec.Affinity
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return true
	}
	for _, term := range a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
		if termMatches(term, n) {
			return true
		}
	}
	return false
}

// placement says whether a new daemon pod goes to n (run) and whether one there
// may stay (keep): NoSchedule taints only stop new pods, NoExecute ones evict.
func placement(spec *corev1.PodSpec, tols []corev1.Toleration, n *corev1.Node) (run, keep bool) {
	if !fits(spec, n) {
		return false, false
	}
	run, keep = true, true
	for _, t := range nodeTaints(n) {
		if t.Effect != corev1.TaintEffectNoSchedule && t.Effect != corev1.TaintEffectNoExecute || tolerated(tols, t) {
			continue
		}
		run = false
		if t.Effect == corev1.TaintEffectNoExecute {
			keep = false
		}
	}
	return run, keep
}

// daemon is what planning needs of a DaemonSet.
type daemon struct {
	spec           *corev1.PodSpec
	tolerations    []corev1.Toleration
	hash           string
	rolling        bool
	maxUnavailable intstr.IntOrString
	minReady       time.Duration
}

// decision is a sync's writes and the status they lead to.
type decision struct {
	create []string // node names
	del    []*corev1.Pod
	status appsv1.DaemonSetStatus
	wait   time.Duration // until a pod becomes available (minReadySeconds)
}

func live(p *corev1.Pod) bool { return p.DeletionTimestamp == nil }

func available(p *corev1.Pod, minReady time.Duration, now time.Time) (bool, time.Duration) {
	if !live(p) || p.Status.Phase != corev1.PodRunning || !pod.Ready(p.Status) {
		return false, 0
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && minReady > 0 && now.Before(c.LastTransitionTime.Add(minReady)) {
			return false, c.LastTransitionTime.Add(minReady).Sub(now)
		}
	}
	return true, 0
}

// plan decides the writes for the daemon's pods, grouped by node name.
func plan(d daemon, nodes []*corev1.Node, byNode map[string][]*corev1.Pod, now time.Time) decision {
	var out decision
	known := map[string]bool{}
	var desired, current, ready, updated, avail, missched int32
	type slot struct {
		pod  *corev1.Pod
		good bool // available
	}
	var slots []slot // one per node that runs the daemon and has one live pod
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Name < nodes[j].Name })
	for _, n := range nodes {
		known[n.Name] = true
		run, keep := placement(d.spec, d.tolerations, n)
		var pods []*corev1.Pod
		for _, p := range byNode[n.Name] {
			switch {
			case !live(p):
			case p.Status.Phase == corev1.PodFailed:
				out.del = append(out.del, p) // replaced on a later sync
			default:
				pods = append(pods, p)
			}
		}
		if !keep {
			out.del = append(out.del, pods...)
			if len(pods) > 0 {
				missched++
			}
			continue
		}
		if !run {
			if len(pods) > 0 {
				missched++
			}
			continue
		}
		desired++
		if len(pods) == 0 {
			out.create = append(out.create, n.Name)
			continue
		}
		sort.Slice(pods, func(i, j int) bool { return pods[i].CreationTimestamp.Before(&pods[j].CreationTimestamp) })
		out.del = append(out.del, pods[1:]...) // the oldest stays
		p := pods[0]
		current++
		if pod.Ready(p.Status) && p.Status.Phase == corev1.PodRunning {
			ready++
		}
		if p.Labels[appsv1.ControllerRevisionHashLabelKey] == d.hash {
			updated++
		}
		ok, w := available(p, d.minReady, now)
		if ok {
			avail++
		} else if w > 0 && (out.wait == 0 || w < out.wait) {
			out.wait = w
		}
		slots = append(slots, slot{pod: p, good: ok})
	}
	for name, pods := range byNode {
		if !known[name] {
			for _, p := range pods {
				if live(p) {
					out.del = append(out.del, p) // its node is gone
				}
			}
		}
	}
	out.status = appsv1.DaemonSetStatus{DesiredNumberScheduled: desired, CurrentNumberScheduled: current, NumberMisscheduled: missched,
		NumberReady: ready, UpdatedNumberScheduled: updated, NumberAvailable: avail, NumberUnavailable: desired - avail}
	if !d.rolling || len(out.create) > 0 || len(out.del) > 0 {
		return out
	}
	maxUnavailable, _ := intstr.GetScaledValueFromIntOrPercent(&d.maxUnavailable, int(desired), true)
	if maxUnavailable < 1 {
		maxUnavailable = 1
	}
	unavailable := int(desired) - len(slots) // nodes still waiting for a pod
	var candidates []*corev1.Pod
	for _, s := range slots {
		old := s.pod.Labels[appsv1.ControllerRevisionHashLabelKey] != d.hash
		switch {
		case !old && !s.good:
			unavailable++
		case old && !s.good:
			out.del = append(out.del, s.pod) // already unavailable: replacing it costs nothing
		case old:
			candidates = append(candidates, s.pod)
		}
	}
	if room := maxUnavailable - unavailable; room > 0 {
		out.del = append(out.del, candidates[:min(room, len(candidates))]...)
	}
	return out
}
