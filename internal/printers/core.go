package printers

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
)

const none = "<none>"

func orNone(s string) string {
	if s == "" {
		return none
	}
	return s
}

func init() {
	register("Namespace", []column{{"Name", "string", false}, {"Status", "string", false}, {"Age", "string", false}},
		func(o runtime.Object, now time.Time) []any {
			ns := o.(*corev1.Namespace)
			return []any{ns.Name, string(ns.Status.Phase), age(ns.CreationTimestamp, now)}
		})
	register("Service", []column{{"Name", "string", false}, {"Type", "string", false}, {"Cluster-IP", "string", false},
		{"External-IP", "string", false}, {"Port(s)", "string", false}, {"Age", "string", false}, {"Selector", "string", true}},
		func(o runtime.Object, now time.Time) []any {
			s := o.(*corev1.Service)
			return []any{s.Name, string(s.Spec.Type), orNone(s.Spec.ClusterIP), serviceExternalIP(s), servicePorts(s.Spec.Ports),
				age(s.CreationTimestamp, now), labels.FormatLabels(s.Spec.Selector)}
		})
	register("Endpoints", []column{{"Name", "string", false}, {"Endpoints", "string", false}, {"Age", "string", false}},
		func(o runtime.Object, now time.Time) []any {
			e := o.(*corev1.Endpoints)
			return []any{e.Name, FormatEndpoints(e), age(e.CreationTimestamp, now)}
		})
	register("Pod", []column{{"Name", "string", false}, {"Ready", "string", false}, {"Status", "string", false},
		{"Restarts", "string", false}, {"Age", "string", false}, {"IP", "string", true}, {"Node", "string", true},
		{"Nominated Node", "string", true}, {"Readiness Gates", "string", true}},
		func(o runtime.Object, now time.Time) []any { return podCells(o.(*corev1.Pod), now) })
	register("Secret", []column{{"Name", "string", false}, {"Type", "string", false}, {"Data", "string", false}, {"Age", "string", false}},
		func(o runtime.Object, now time.Time) []any {
			s := o.(*corev1.Secret)
			return []any{s.Name, string(s.Type), int64(len(s.Data)), age(s.CreationTimestamp, now)}
		})
	register("ConfigMap", []column{{"Name", "string", false}, {"Data", "string", false}, {"Age", "string", false}},
		func(o runtime.Object, now time.Time) []any {
			c := o.(*corev1.ConfigMap)
			return []any{c.Name, int64(len(c.Data) + len(c.BinaryData)), age(c.CreationTimestamp, now)}
		})
	register("ServiceAccount", []column{{"Name", "string", false}, {"Secrets", "string", false}, {"Age", "string", false}},
		func(o runtime.Object, now time.Time) []any {
			sa := o.(*corev1.ServiceAccount)
			return []any{sa.Name, int64(len(sa.Secrets)), age(sa.CreationTimestamp, now)}
		})
	register("ReplicationController", []column{{"Name", "string", false}, {"Desired", "integer", false}, {"Current", "integer", false},
		{"Ready", "integer", false}, {"Age", "string", false}, {"Containers", "string", true}, {"Images", "string", true}, {"Selector", "string", true}},
		func(o runtime.Object, now time.Time) []any {
			rc := o.(*corev1.ReplicationController)
			want := int32(0)
			if rc.Spec.Replicas != nil {
				want = *rc.Spec.Replicas
			}
			var c, i string
			if rc.Spec.Template != nil {
				c, i = containersAndImages(rc.Spec.Template.Spec.Containers)
			}
			return []any{rc.Name, int64(want), int64(rc.Status.Replicas), int64(rc.Status.ReadyReplicas), age(rc.CreationTimestamp, now),
				c, i, labels.FormatLabels(rc.Spec.Selector)}
		})
	register("Node", []column{{"Name", "string", false}, {"Status", "string", false}, {"Roles", "string", false},
		{"Age", "string", false}, {"Version", "string", false}, {"Internal-IP", "string", true}, {"External-IP", "string", true},
		{"OS-Image", "string", true}, {"Kernel-Version", "string", true}, {"Container-Runtime", "string", true}},
		func(o runtime.Object, now time.Time) []any { return nodeCells(o.(*corev1.Node), now) })
	register("Event", []column{{"Last Seen", "string", false}, {"Type", "string", false}, {"Reason", "string", false},
		{"Object", "string", false}, {"Subobject", "string", true}, {"Source", "string", true}, {"Message", "string", false},
		{"First Seen", "string", true}, {"Count", "string", true}, {"Name", "string", true}},
		func(o runtime.Object, now time.Time) []any {
			e := o.(*corev1.Event)
			last := e.LastTimestamp
			if last.IsZero() {
				last = e.ObjectMeta.CreationTimestamp
			}
			first := e.FirstTimestamp
			if first.IsZero() {
				first = last
			}
			src := e.Source.Component
			if e.Source.Host != "" {
				src += ", " + e.Source.Host
			}
			return []any{age(last, now), e.Type, e.Reason, strings.ToLower(e.InvolvedObject.Kind) + "/" + e.InvolvedObject.Name,
				e.InvolvedObject.FieldPath, src, strings.TrimSpace(e.Message), age(first, now), int64(max(e.Count, 1)), e.Name}
		})
}

// serviceExternalIP is what the EXTERNAL-IP column shows, as Kubernetes prints it.
func serviceExternalIP(s *corev1.Service) string {
	switch s.Spec.Type {
	case corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort:
		if len(s.Spec.ExternalIPs) > 0 {
			return strings.Join(s.Spec.ExternalIPs, ",")
		}
		return none
	case corev1.ServiceTypeLoadBalancer:
		var ips []string
		for _, ing := range s.Status.LoadBalancer.Ingress {
			if ing.IP != "" {
				ips = append(ips, ing.IP)
			} else if ing.Hostname != "" {
				ips = append(ips, ing.Hostname)
			}
		}
		ips = append(ips, s.Spec.ExternalIPs...)
		if len(ips) == 0 {
			return "<pending>"
		}
		return strings.Join(ips, ",")
	case corev1.ServiceTypeExternalName:
		return s.Spec.ExternalName
	}
	return "<unknown>"
}

func servicePorts(ports []corev1.ServicePort) string {
	if len(ports) == 0 {
		return none
	}
	parts := make([]string, len(ports))
	for i, p := range ports {
		s := strconv.Itoa(int(p.Port))
		if p.NodePort > 0 {
			s += ":" + strconv.Itoa(int(p.NodePort))
		}
		parts[i] = s + "/" + string(p.Protocol)
	}
	return strings.Join(parts, ",")
}

// FormatEndpoints renders at most three ip:port pairs and a "+ N more..." suffix.
func FormatEndpoints(e *corev1.Endpoints) string {
	if len(e.Subsets) == 0 {
		return none
	}
	const limit = 3
	var list []string
	count := 0
	for _, ss := range e.Subsets {
		if len(ss.Ports) == 0 {
			count += len(ss.Addresses)
			for _, a := range ss.Addresses {
				if len(list) < limit {
					list = append(list, a.IP)
				}
			}
			continue
		}
		for _, p := range ss.Ports {
			count += len(ss.Addresses)
			for _, a := range ss.Addresses {
				if len(list) < limit {
					list = append(list, net.JoinHostPort(a.IP, strconv.Itoa(int(p.Port))))
				}
			}
		}
	}
	out := strings.Join(list, ",")
	if count > limit {
		out = fmt.Sprintf("%s + %d more...", out, count-limit)
	}
	if out == "" {
		return none
	}
	return out
}

func podCells(p *corev1.Pod, now time.Time) []any {
	ready, restarts := 0, int32(0)
	var lastRestart time.Time
	reason := string(p.Status.Phase)
	if p.Status.Reason != "" {
		reason = p.Status.Reason
	}
	initializing := false
	for i, cs := range p.Status.InitContainerStatuses {
		restarts += cs.RestartCount
		if t := cs.LastTerminationState.Terminated; t != nil && t.FinishedAt.After(lastRestart) {
			lastRestart = t.FinishedAt.Time
		}
		switch t, w := cs.State.Terminated, cs.State.Waiting; {
		case t != nil && t.ExitCode == 0:
			continue
		case t != nil && t.Reason != "":
			reason = "Init:" + t.Reason
		case t != nil && t.Signal != 0:
			reason = fmt.Sprintf("Init:Signal:%d", t.Signal)
		case t != nil:
			reason = fmt.Sprintf("Init:ExitCode:%d", t.ExitCode)
		case w != nil && w.Reason != "" && w.Reason != "PodInitializing":
			reason = "Init:" + w.Reason
		default:
			reason = fmt.Sprintf("Init:%d/%d", i, len(p.Spec.InitContainers))
		}
		initializing = true
		break
	}
	if !initializing { // only the app containers' restarts count from here on, as kubectl prints
		restarts, lastRestart = 0, time.Time{}
	}
	for i := len(p.Status.ContainerStatuses) - 1; i >= 0 && !initializing; i-- {
		cs := p.Status.ContainerStatuses[i]
		restarts += cs.RestartCount
		if t := cs.LastTerminationState.Terminated; t != nil && t.FinishedAt.After(lastRestart) {
			lastRestart = t.FinishedAt.Time
		}
		switch {
		case cs.State.Waiting != nil && cs.State.Waiting.Reason != "":
			reason = cs.State.Waiting.Reason
		case cs.State.Terminated != nil && cs.State.Terminated.Reason != "":
			reason = cs.State.Terminated.Reason
		case cs.State.Terminated != nil && cs.State.Terminated.Signal != 0:
			reason = fmt.Sprintf("Signal:%d", cs.State.Terminated.Signal)
		case cs.State.Terminated != nil:
			reason = fmt.Sprintf("ExitCode:%d", cs.State.Terminated.ExitCode)
		case cs.Ready && cs.State.Running != nil:
			ready++
		}
	}
	if p.DeletionTimestamp != nil {
		reason = "Terminating"
		if p.Status.Reason == "NodeLost" {
			reason = "Unknown"
		}
	}
	rs := strconv.Itoa(int(restarts))
	if !lastRestart.IsZero() {
		rs = fmt.Sprintf("%d (%s ago)", restarts, duration.HumanDuration(now.Sub(lastRestart)))
	}
	gates := none
	if n := len(p.Spec.ReadinessGates); n > 0 {
		ok := 0
		for _, g := range p.Spec.ReadinessGates {
			for _, c := range p.Status.Conditions {
				if c.Type == g.ConditionType && c.Status == corev1.ConditionTrue {
					ok++
				}
			}
		}
		gates = fmt.Sprintf("%d/%d", ok, n)
	}
	return []any{p.Name, fmt.Sprintf("%d/%d", ready, len(p.Spec.Containers)), reason, rs, age(p.CreationTimestamp, now),
		orNone(p.Status.PodIP), orNone(p.Spec.NodeName), orNone(p.Status.NominatedNodeName), gates}
}

func nodeCells(n *corev1.Node, now time.Time) []any {
	status := "Unknown"
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			if c.Status == corev1.ConditionTrue {
				status = "Ready"
			} else {
				status = "NotReady"
			}
		}
	}
	if n.Spec.Unschedulable {
		status += ",SchedulingDisabled"
	}
	var roles []string
	for k := range n.Labels {
		if r, ok := strings.CutPrefix(k, "node-role.kubernetes.io/"); ok && r != "" {
			roles = append(roles, r)
		}
	}
	sort.Strings(roles)
	addr := func(t corev1.NodeAddressType) string {
		for _, a := range n.Status.Addresses {
			if a.Type == t {
				return a.Address
			}
		}
		return none
	}
	osImage, kernel, runtime := n.Status.NodeInfo.OSImage, n.Status.NodeInfo.KernelVersion, n.Status.NodeInfo.ContainerRuntimeVersion
	return []any{n.Name, status, orNone(strings.Join(roles, ",")), age(n.CreationTimestamp, now), n.Status.NodeInfo.KubeletVersion,
		addr(corev1.NodeInternalIP), addr(corev1.NodeExternalIP), orUnknown(osImage), orUnknown(kernel), orUnknown(runtime)}
}

func orUnknown(s string) string {
	if s == "" {
		return "<unknown>"
	}
	return s
}
