package statefulset

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	appslisters "k8s.io/client-go/listers/apps/v1"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/svcnet/svcnet/internal/controller/fakekube"
	"github.com/svcnet/svcnet/internal/controller/history"
)

// p builds the pod of ordinal ord at revision rev in a state: "ok" (Running and
// Ready), "pending", "failed" or "gone" (terminating).
func p(ord int, rev, state string) *corev1.Pod {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: podName("web", ord), Labels: map[string]string{LabelRevision: rev}}}
	switch state {
	case "ok":
		pod.Status.Phase = corev1.PodRunning
		pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	case "pending":
		pod.Status.Phase = corev1.PodPending
	case "failed":
		pod.Status.Phase = corev1.PodFailed
	case "gone":
		pod.Status.Phase = corev1.PodRunning
		now := metav1.Now()
		pod.DeletionTimestamp = &now
	}
	return pod
}

func pods(list ...*corev1.Pod) map[int]*corev1.Pod {
	out := map[int]*corev1.Pod{}
	for _, pod := range list {
		ord, _ := ordinal("web", pod.Name)
		out[ord] = pod
	}
	return out
}

// render writes steps as "+web-1 -web-3".
func render(steps []step) string {
	var out []string
	for _, s := range steps {
		if s.del != nil {
			out = append(out, "-"+s.del.Name)
		} else {
			out = append(out, "+"+podName("web", s.create))
		}
	}
	return strings.Join(out, " ")
}

func TestPlan(t *testing.T) {
	ordered := set{replicas: 3, rolling: true, updateRev: "r2"}
	parallel := ordered
	parallel.parallel = true
	partitioned := ordered
	partitioned.partition = 2
	from5 := ordered
	from5.start = 5
	cases := []struct {
		name string
		set  set
		pods map[int]*corev1.Pod
		want string
	}{
		{"ordered: first pod", ordered, pods(), "+web-0"},
		{"ordered: waits for web-0 to be ready", ordered, pods(p(0, "r2", "pending")), ""},
		{"ordered: next once ready", ordered, pods(p(0, "r2", "ok")), "+web-1"},
		{"ordered: a hole is filled first", ordered, pods(p(0, "r2", "ok"), p(2, "r2", "ok")), "+web-1"},
		{"ordered: failed pod replaced", ordered, pods(p(0, "r2", "failed"), p(1, "r2", "ok")), "-web-0"},
		{"ordered: scale down from the top, one at a time", ordered,
			pods(p(0, "r2", "ok"), p(1, "r2", "ok"), p(2, "r2", "ok"), p(3, "r2", "ok"), p(4, "r2", "ok")), "-web-4"},
		{"ordered: scale down waits for the terminating pod", ordered,
			pods(p(0, "r2", "ok"), p(1, "r2", "ok"), p(2, "r2", "ok"), p(3, "r2", "ok"), p(4, "r2", "gone")), ""},
		{"ordered: scale down waits for unready pods", ordered,
			pods(p(0, "r2", "ok"), p(1, "r2", "pending"), p(2, "r2", "ok"), p(3, "r2", "ok")), ""},
		{"ordered: scale down halts at an unready condemned pod below another", ordered,
			pods(p(0, "r2", "ok"), p(1, "r2", "ok"), p(2, "r2", "ok"), p(3, "r2", "pending"), p(4, "r2", "pending")), ""},
		{"ordered: the first unready condemned pod may go", ordered,
			pods(p(0, "r2", "ok"), p(1, "r2", "ok"), p(2, "r2", "ok"), p(3, "r2", "pending")), "-web-3"},
		{"parallel: all at once", parallel, pods(), "+web-0 +web-1 +web-2"},
		{"parallel: not waiting for readiness", parallel, pods(p(0, "r2", "pending")), "+web-1 +web-2"},
		{"parallel: scale down all at once", parallel,
			pods(p(0, "r2", "ok"), p(1, "r2", "ok"), p(2, "r2", "ok"), p(3, "r2", "ok"), p(4, "r2", "pending")), "-web-4 -web-3"},
		{"rolling: highest old pod first", ordered, pods(p(0, "r1", "ok"), p(1, "r1", "ok"), p(2, "r1", "ok")), "-web-2"},
		{"rolling: waits for the updated pod to be ready", ordered, pods(p(0, "r1", "ok"), p(1, "r1", "ok"), p(2, "r2", "pending")), ""},
		{"rolling: then the next", ordered, pods(p(0, "r1", "ok"), p(1, "r1", "ok"), p(2, "r2", "ok")), "-web-1"},
		{"rolling: done", ordered, pods(p(0, "r2", "ok"), p(1, "r2", "ok"), p(2, "r2", "ok")), ""},
		{"partition 2: only web-2 rolls", partitioned, pods(p(0, "r1", "ok"), p(1, "r1", "ok"), p(2, "r1", "ok")), "-web-2"},
		{"partition 2: below it stays", partitioned, pods(p(0, "r1", "ok"), p(1, "r1", "ok"), p(2, "r2", "ok")), ""},
		{"on delete: no rolling", set{replicas: 1, updateRev: "r2"}, pods(p(0, "r1", "ok")), ""},
		{"ordinals start at 5", from5, pods(p(5, "r2", "ok")), "+web-6"},
		{"ordinals start at 5: web-0 is condemned", from5, pods(p(0, "r2", "ok"), p(5, "r2", "ok"), p(6, "r2", "ok"), p(7, "r2", "ok")), "-web-0"},
	}
	for _, c := range cases {
		if got := render(plan(c.set, c.pods)); got != c.want {
			t.Errorf("%s: plan %q, want %q", c.name, got, c.want)
		}
	}
}

func TestOrdinal(t *testing.T) {
	for name, want := range map[string]int{"web-0": 0, "web-12": 12, "web-x": -1, "web-01": -1, "webb-1": -1, "web--1": -1, "web-1-2": -1} {
		got, ok := ordinal("web", name)
		if !ok {
			got = -1
		}
		if got != want {
			t.Errorf("ordinal(%q) = %d, want %d", name, got, want)
		}
	}
}

func TestControllerRunsAndRollsAStatefulSet(t *testing.T) {
	replicas, partition := int32(3), int32(0)
	ss := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: "ss-uid", Generation: 1},
		Spec: appsv1.StatefulSetSpec{Replicas: &replicas, ServiceName: "web-svc", PodManagementPolicy: appsv1.OrderedReadyPodManagement,
			Selector:       &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			UpdateStrategy: appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType, RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: &partition}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "v1"}}}}}}
	e := fakekube.NewEnv(t, ss)
	c, ctx := e.Client, e.Ctx
	e.Run(2, New(c, e.Factory, record.NewFakeRecorder(1000), slog.New(slog.DiscardHandler)))
	go fakekube.Kubelet(ctx, c, "ns")

	waitFor := func(what string, cond func(*appsv1.StatefulSet, []corev1.Pod) bool) {
		t.Helper()
		var cur *appsv1.StatefulSet
		var list *corev1.PodList
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			cur, _ = c.AppsV1().StatefulSets("ns").Get(ctx, "web", metav1.GetOptions{})
			list, _ = c.CoreV1().Pods("ns").List(ctx, metav1.ListOptions{})
			if cond(cur, list.Items) {
				return
			}
		}
		t.Fatalf("%s: not reached; status %+v, %d pods", what, cur.Status, len(list.Items))
	}
	waitFor("3 ready", func(s *appsv1.StatefulSet, ps []corev1.Pod) bool {
		return s.Status.ReadyReplicas == 3 && s.Status.UpdatedReplicas == 3 && s.Status.ObservedGeneration == 1 && len(ps) == 3
	})
	first, _ := c.CoreV1().Pods("ns").Get(ctx, "web-0", metav1.GetOptions{})
	if first.Spec.Hostname != "web-0" || first.Spec.Subdomain != "web-svc" || first.Labels[LabelPodName] != "web-0" ||
		first.Labels[LabelPodIndex] != "0" || !strings.HasPrefix(first.Labels[LabelRevision], "web-") ||
		!*metav1.GetControllerOf(first).Controller || metav1.GetControllerOf(first).Kind != "StatefulSet" {
		t.Fatalf("pod web-0: %+v", first.ObjectMeta)
	}
	var order []string
	for _, a := range c.Actions() {
		if a.GetVerb() == "create" && a.GetResource().Resource == "pods" {
			order = append(order, a.(k8stesting.CreateAction).GetObject().(*corev1.Pod).Name)
		}
	}
	if strings.Join(order, " ") != "web-0 web-1 web-2" {
		t.Errorf("creation order %v", order)
	}

	// A deleted pod comes back under its name.
	if err := c.CoreV1().Pods("ns").Delete(ctx, "web-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("web-1 back", func(s *appsv1.StatefulSet, ps []corev1.Pod) bool { return len(ps) == 3 && s.Status.ReadyReplicas == 3 })

	// A new template rolls from web-2 down; the current revision follows at the end.
	cur, _ := c.AppsV1().StatefulSets("ns").Get(ctx, "web", metav1.GetOptions{})
	oldRev := cur.Status.CurrentRevision
	cur.Spec.Template.Spec.Containers[0].Image = "v2"
	cur.Generation = 2
	if _, err := c.AppsV1().StatefulSets("ns").Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("rolled", func(s *appsv1.StatefulSet, ps []corev1.Pod) bool {
		return s.Status.UpdatedReplicas == 3 && s.Status.CurrentRevision == s.Status.UpdateRevision && s.Status.CurrentRevision != oldRev &&
			s.Status.ObservedGeneration == 2 && len(ps) == 3
	})
	for _, name := range []string{"web-0", "web-1", "web-2"} {
		pod, err := c.CoreV1().Pods("ns").Get(ctx, name, metav1.GetOptions{})
		if err != nil || pod.Spec.Containers[0].Image != "v2" {
			t.Fatalf("%s after rollout: %v %v", name, err, pod)
		}
	}
	// Each template is a ControllerRevision named as the pods' revision label, numbered in order.
	cur, _ = c.AppsV1().StatefulSets("ns").Get(ctx, "web", metav1.GetOptions{})
	revs, _ := c.AppsV1().ControllerRevisions("ns").List(ctx, metav1.ListOptions{})
	byName := map[string]appsv1.ControllerRevision{}
	for _, r := range revs.Items {
		byName[r.Name] = r
	}
	oldR, newR := byName[oldRev], byName[cur.Status.UpdateRevision]
	if len(revs.Items) != 2 || oldR.Revision != 1 || newR.Revision != 2 || metav1.GetControllerOf(&newR).UID != "ss-uid" ||
		newR.Labels["app"] != "web" || "web-"+newR.Labels[LabelRevision] != newR.Name {
		t.Fatalf("revisions %+v", revs.Items)
	}

	// Rolling back to v1 takes its revision again (renumbered), not a new one.
	cur.Spec.Template.Spec.Containers[0].Image = "v1"
	cur.Generation = 3
	if _, err := c.AppsV1().StatefulSets("ns").Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("rolled back", func(s *appsv1.StatefulSet, ps []corev1.Pod) bool {
		return s.Status.UpdateRevision == oldRev && s.Status.CurrentRevision == oldRev && s.Status.UpdatedReplicas == 3 && len(ps) == 3
	})
	if r, _ := c.AppsV1().ControllerRevisions("ns").Get(ctx, oldRev, metav1.GetOptions{}); r.Revision != 3 {
		t.Fatalf("rolled-back revision numbered %d, want 3", r.Revision)
	}
}

// During a partitioned rollout a pod below the partition is made from the
// current revision's template, the others from the set's own.
func TestVersionedPodBelowPartition(t *testing.T) {
	oldTmpl := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "v1"}}}}
	data, err := history.Data(&oldTmpl)
	if err != nil {
		t.Fatal(err)
	}
	indexer := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	_ = indexer.Add(&appsv1.ControllerRevision{ObjectMeta: metav1.ObjectMeta{Name: "web-old", Namespace: "ns"}, Data: runtime.RawExtension{Raw: data}})
	c := &Controller{history: history.Store{Revisions: appslisters.NewControllerRevisionLister(indexer)}}
	ss := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns"}, Spec: appsv1.StatefulSetSpec{Template: oldTmpl}}
	ss.Spec.Template.Spec.Containers = []corev1.Container{{Name: "c", Image: "v2"}}
	s := set{replicas: 3, rolling: true, partition: 2, updateRev: "web-new"}
	for ord, want := range map[int]string{0: "v1 web-old", 1: "v1 web-old", 2: "v2 web-new"} {
		p := c.versionedPod(ss, s, "web-old", ord)
		if got := p.Spec.Containers[0].Image + " " + p.Labels[LabelRevision]; got != want {
			t.Errorf("ordinal %d: %s, want %s", ord, got, want)
		}
	}
}
