package daemonset

import (
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/tools/record"

	"github.com/svcnet/svcnet/internal/controller/fakekube"
	"github.com/svcnet/svcnet/internal/controller/history"
)

func node(name string, mut ...func(*corev1.Node)) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"disk": "ssd"}},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}}
	for _, m := range mut {
		m(n)
	}
	return n
}

func daemonPod(name, node, hash string, ready bool) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{appsv1.ControllerRevisionHashLabelKey: hash}},
		Spec: corev1.PodSpec{NodeName: node}, Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	if ready {
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	}
	return p
}

func byNode(pods ...*corev1.Pod) map[string][]*corev1.Pod {
	out := map[string][]*corev1.Pod{}
	for _, p := range pods {
		out[p.Spec.NodeName] = append(out[p.Spec.NodeName], p)
	}
	return out
}

// render writes a decision as "+node-a -pod-x".
func render(d decision) string {
	var out []string
	for _, n := range d.create {
		out = append(out, "+"+n)
	}
	var dels []string
	for _, p := range d.del {
		dels = append(dels, "-"+p.Name)
	}
	sort.Strings(dels)
	return strings.Join(append(out, dels...), " ")
}

func TestPlan(t *testing.T) {
	spec := &corev1.PodSpec{}
	d := daemon{spec: spec, tolerations: podTolerations(spec), hash: "h2", rolling: true, maxUnavailable: intstr.FromInt32(1)}
	ssdOnly := d
	ssdOnly.spec = &corev1.PodSpec{NodeSelector: map[string]string{"disk": "ssd"}}
	affinity := d
	affinity.spec = &corev1.PodSpec{Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{
			{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "disk", Operator: corev1.NodeSelectorOpIn, Values: []string{"hdd"}}}},
			{MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{"b"}}}},
		}}}}}
	twoAtOnce := d
	twoAtOnce.maxUnavailable = intstr.FromString("50%")
	hdd := func(n *corev1.Node) { n.Labels["disk"] = "hdd" }
	notReady := func(n *corev1.Node) { n.Status.Conditions[0].Status = corev1.ConditionFalse }
	cordoned := func(n *corev1.Node) { n.Spec.Unschedulable = true }
	tainted := func(effect corev1.TaintEffect) func(*corev1.Node) {
		return func(n *corev1.Node) { n.Spec.Taints = []corev1.Taint{{Key: "dedicated", Value: "db", Effect: effect}} }
	}
	cases := []struct {
		name    string
		d       daemon
		nodes   []*corev1.Node
		pods    map[string][]*corev1.Pod
		want    string
		desired int32
	}{
		{"one per node", d, []*corev1.Node{node("a"), node("b")}, byNode(), "+a +b", 2},
		{"node removed: its pod goes", d, []*corev1.Node{node("a")}, byNode(daemonPod("p-a", "a", "h2", true), daemonPod("p-b", "b", "h2", true)), "-p-b", 1},
		{"node selector", ssdOnly, []*corev1.Node{node("a"), node("b", hdd)}, byNode(daemonPod("p-b", "b", "h2", true)), "+a -p-b", 1},
		{"required node affinity, any term", affinity, []*corev1.Node{node("a"), node("b"), node("c", hdd)}, byNode(), "+b +c", 2},
		{"cordoned nodes still run daemons", d, []*corev1.Node{node("a", cordoned)}, byNode(), "+a", 1},
		{"not ready: no new pod", d, []*corev1.Node{node("a", notReady)}, byNode(), "", 0},
		{"not ready: the pod stays", d, []*corev1.Node{node("a", notReady)}, byNode(daemonPod("p-a", "a", "h2", false)), "", 0},
		{"NoSchedule taint: no new pod, old stays", d, []*corev1.Node{node("a", tainted(corev1.TaintEffectNoSchedule)), node("b", tainted(corev1.TaintEffectNoSchedule))},
			byNode(daemonPod("p-b", "b", "h2", true)), "", 0},
		{"NoExecute taint evicts", d, []*corev1.Node{node("a", tainted(corev1.TaintEffectNoExecute))}, byNode(daemonPod("p-a", "a", "h2", true)), "-p-a", 0},
		{"failed pod replaced", d, []*corev1.Node{node("a")}, byNode(func() *corev1.Pod {
			p := daemonPod("p-a", "a", "h2", false)
			p.Status.Phase = corev1.PodFailed
			return p
		}()), "+a -p-a", 1},
		{"duplicates: the oldest stays", d, []*corev1.Node{node("a")}, byNode(
			func() *corev1.Pod {
				p := daemonPod("p-old", "a", "h2", true)
				p.CreationTimestamp = metav1.NewTime(time.Now().Add(-time.Hour))
				return p
			}(), func() *corev1.Pod {
				p := daemonPod("p-new", "a", "h2", true)
				p.CreationTimestamp = metav1.Now()
				return p
			}()), "-p-new", 1},
		{"rolling: one node at a time", d, []*corev1.Node{node("a"), node("b"), node("c")},
			byNode(daemonPod("p-a", "a", "h1", true), daemonPod("p-b", "b", "h1", true), daemonPod("p-c", "c", "h1", true)), "-p-a", 3},
		{"rolling: waits while the new pod is unavailable", d, []*corev1.Node{node("a"), node("b")},
			byNode(daemonPod("p-a", "a", "h2", false), daemonPod("p-b", "b", "h1", true)), "", 2},
		{"rolling: unavailable old pods go at once", d, []*corev1.Node{node("a"), node("b")},
			byNode(daemonPod("p-a", "a", "h1", false), daemonPod("p-b", "b", "h1", false)), "-p-a -p-b", 2},
		{"rolling: 50% of 4 nodes", twoAtOnce, []*corev1.Node{node("a"), node("b"), node("c"), node("d")},
			byNode(daemonPod("p-a", "a", "h1", true), daemonPod("p-b", "b", "h1", true), daemonPod("p-c", "c", "h1", true), daemonPod("p-d", "d", "h1", true)), "-p-a -p-b", 4},
	}
	for _, c := range cases {
		got := plan(c.d, c.nodes, c.pods, time.Now())
		if render(got) != c.want || got.status.DesiredNumberScheduled != c.desired {
			t.Errorf("%s: plan %q desired %d, want %q desired %d", c.name, render(got), got.status.DesiredNumberScheduled, c.want, c.desired)
		}
	}
}

func TestControllerFollowsNodes(t *testing.T) {
	one := intstr.FromInt32(1)
	ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: "ns", UID: "ds-uid", Generation: 1},
		Spec: appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "agent"}},
			UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType, RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: &one}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "agent"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "v1"}}}}}}
	e := fakekube.NewEnv(t, ds, node("a"))
	c, ctx := e.Client, e.Ctx
	e.Run(2, New(c, e.Factory, record.NewFakeRecorder(1000), slog.New(slog.DiscardHandler)))
	go fakekube.Kubelet(ctx, c, "ns")

	// state renders "desired/available: node,node" (pods' nodes, sorted).
	state := func() string {
		cur, _ := c.AppsV1().DaemonSets("ns").Get(ctx, "agent", metav1.GetOptions{})
		list, _ := c.CoreV1().Pods("ns").List(ctx, metav1.ListOptions{})
		var nodes []string
		for _, p := range list.Items {
			nodes = append(nodes, p.Spec.NodeName)
		}
		sort.Strings(nodes)
		return fmt.Sprintf("%d/%d: %s", cur.Status.DesiredNumberScheduled, cur.Status.NumberAvailable, strings.Join(nodes, ","))
	}
	waitFor := func(want string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if state() == want {
				return
			}
		}
		t.Fatalf("state %q, want %q", state(), want)
	}
	waitFor("1/1: a")
	if _, err := c.CoreV1().Nodes().Create(ctx, node("b"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("2/2: a,b")
	list, _ := c.CoreV1().Pods("ns").List(ctx, metav1.ListOptions{})
	var podOnB string
	for _, p := range list.Items {
		if p.Spec.NodeName == "b" {
			podOnB = p.Name
		}
		if len(p.Spec.Tolerations) < 6 || p.Labels[appsv1.ControllerRevisionHashLabelKey] == "" || metav1.GetControllerOf(&p).Kind != "DaemonSet" {
			t.Fatalf("daemon pod %s: tolerations %v labels %v", p.Name, p.Spec.Tolerations, p.Labels)
		}
	}
	// The template is a ControllerRevision whose hash the pods carry.
	revs, _ := c.AppsV1().ControllerRevisions("ns").List(ctx, metav1.ListOptions{})
	if len(revs.Items) != 1 || revs.Items[0].Revision != 1 || revs.Items[0].Labels[history.HashLabel] != list.Items[0].Labels[history.HashLabel] ||
		revs.Items[0].Name != "agent-"+revs.Items[0].Labels[history.HashLabel] || metav1.GetControllerOf(&revs.Items[0]).UID != "ds-uid" {
		t.Fatalf("revisions %+v", revs.Items)
	}
	// A second revision of the same template, numbered higher, is kept and the
	// first deleted, the pods relabelled rather than restarted.
	dup := revs.Items[0].DeepCopy()
	dup.Name, dup.ResourceVersion, dup.UID, dup.Revision = "agent-dup", "", "dup-uid", 2
	dup.Labels = map[string]string{"app": "agent", history.HashLabel: "dup"}
	if _, err := c.AppsV1().ControllerRevisions("ns").Create(ctx, dup, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) { // until the controller's cache has it
		if _, err := e.Factory.Apps().V1().ControllerRevisions().Lister().ControllerRevisions("ns").Get("agent-dup"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the duplicate revision never reached the informer")
		}
	}
	if err := c.CoreV1().Nodes().Delete(ctx, "a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("1/1: b")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		revs, _ = c.AppsV1().ControllerRevisions("ns").List(ctx, metav1.ListOptions{})
		list, _ = c.CoreV1().Pods("ns").List(ctx, metav1.ListOptions{})
		if len(revs.Items) == 1 && revs.Items[0].Name == "agent-dup" && len(list.Items) == 1 && list.Items[0].Labels[history.HashLabel] == "dup" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a duplicate revision: %d revisions, pods %v", len(revs.Items), list.Items)
		}
	}
	if list.Items[0].Spec.NodeName != "b" || list.Items[0].Name != podOnB {
		t.Fatalf("the pod on b was replaced: %s", list.Items[0].Name)
	}
	// the relabelled pod counts as updated once the controller has seen it
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		cur, _ := c.AppsV1().DaemonSets("ns").Get(ctx, "agent", metav1.GetOptions{})
		if cur.Status.ObservedGeneration == 1 && cur.Status.UpdatedNumberScheduled == 1 && cur.Status.CurrentNumberScheduled == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status %+v", cur.Status)
		}
	}
}
