package workload

import (
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func deploy(replicas int32, surge, unavailable string) *appsv1.Deployment {
	s, u := intstr.Parse(surge), intstr.Parse(unavailable)
	return &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Replicas: &replicas, Strategy: appsv1.DeploymentStrategy{
		Type: appsv1.RollingUpdateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &s, MaxUnavailable: &u}}}}
}

func set(name string, spec, available int32, age time.Duration) *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(time.Unix(1e9, 0).Add(-age))},
		Spec: appsv1.ReplicaSetSpec{Replicas: &spec}, Status: appsv1.ReplicaSetStatus{Replicas: spec, AvailableReplicas: available}}
}

func TestFenceposts(t *testing.T) {
	cases := []struct {
		replicas       int32
		surge, unavail string
		s, u           int32
	}{
		{10, "25%", "25%", 3, 2},
		{3, "25%", "25%", 1, 0},
		{3, "0", "0", 0, 1},
		{5, "1", "0", 1, 0},
		{4, "100%", "50%", 4, 2},
	}
	for _, c := range cases {
		s, u := fenceposts(deploy(c.replicas, c.surge, c.unavail))
		if s != c.s || u != c.u {
			t.Errorf("%d replicas, surge %s unavailable %s: got %d/%d, want %d/%d", c.replicas, c.surge, c.unavail, s, u, c.s, c.u)
		}
	}
}

// TestRollingUpdateSteps walks a 4-replica rollout with maxSurge 1, maxUnavailable 1
// the way the controller does, each step making new pods available, and checks
// that availability never drops below 3 and the total never exceeds 5.
func TestRollingUpdateSteps(t *testing.T) {
	d := deploy(4, "1", "1")
	oldRS, newRS := set("old", 4, 4, time.Hour), set("new", 0, 0, 0)
	for step := 0; step < 20; step++ {
		all := []*appsv1.ReplicaSet{oldRS, newRS}
		if n := newReplicas(d, all, newRS); n != *newRS.Spec.Replicas {
			newRS.Spec.Replicas = &n
		} else if sizes := scaleDownOld(d, all, []*appsv1.ReplicaSet{oldRS}, newRS); len(sizes) > 0 {
			n := sizes["old"]
			oldRS.Spec.Replicas = &n
		}
		// Pods follow specs; new pods become available, old ones go away.
		oldRS.Status.Replicas, oldRS.Status.AvailableReplicas = *oldRS.Spec.Replicas, *oldRS.Spec.Replicas
		newRS.Status.Replicas, newRS.Status.AvailableReplicas = *newRS.Spec.Replicas, *newRS.Spec.Replicas
		total := *oldRS.Spec.Replicas + *newRS.Spec.Replicas
		avail := oldRS.Status.AvailableReplicas + newRS.Status.AvailableReplicas
		if total > 5 || avail < 3 {
			t.Fatalf("step %d: total %d (max 5), available %d (min 3)", step, total, avail)
		}
		if *oldRS.Spec.Replicas == 0 && *newRS.Spec.Replicas == 4 {
			return
		}
	}
	t.Fatalf("rollout did not finish: old %d new %d", *oldRS.Spec.Replicas, *newRS.Spec.Replicas)
}

func TestUnavailableOldPodsGoFirst(t *testing.T) {
	d := deploy(4, "0", "1")
	oldRS := set("old", 4, 2, time.Hour) // two of its pods are broken
	newRS := set("new", 0, 0, 0)
	sizes := scaleDownOld(d, []*appsv1.ReplicaSet{oldRS, newRS}, []*appsv1.ReplicaSet{oldRS}, newRS)
	// Budget: spec total 4 - minAvailable 3 = 1 pod this step, taken from the
	// unavailable ones (available stays 2, not 1).
	if sizes["old"] != 3 {
		t.Fatalf("old set scaled to %d, want 3", sizes["old"])
	}
	oldRS.Spec.Replicas = ptr(3)
	if more := scaleDownOld(d, []*appsv1.ReplicaSet{oldRS, newRS}, []*appsv1.ReplicaSet{oldRS}, newRS); len(more) != 0 {
		t.Fatalf("scaled further below the budget: %v", more)
	}
}

func TestTemplateHashAndComparison(t *testing.T) {
	a := &corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "v1"}}}}
	b := a.DeepCopy()
	b.Spec.Containers[0].Image = "v2"
	if TemplateHash(a, nil) == TemplateHash(b, nil) || TemplateHash(a, nil) != TemplateHash(a.DeepCopy(), nil) {
		t.Fatal("hash must follow the template")
	}
	one := int32(1)
	if TemplateHash(a, nil) == TemplateHash(a, &one) {
		t.Fatal("collision count must change the hash")
	}
	withHash := a.DeepCopy()
	withHash.Labels[LabelPodTemplateHash] = "abc"
	if !sameTemplate(withHash, a) || sameTemplate(withHash, b) {
		t.Fatal("template comparison must ignore only the hash label")
	}
}

func TestDeletionOrder(t *testing.T) {
	mk := func(name, node string, phase corev1.PodPhase, isReady bool, age time.Duration) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(time.Unix(1e9, 0).Add(-age))},
			Spec: corev1.PodSpec{NodeName: node}, Status: corev1.PodStatus{Phase: phase}}
		st := corev1.ConditionFalse
		if isReady {
			st = corev1.ConditionTrue
		}
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}
		return p
	}
	pods := []*corev1.Pod{
		mk("old-ready", "n", corev1.PodRunning, true, time.Hour),
		mk("young-ready", "n", corev1.PodRunning, true, time.Minute),
		mk("not-ready", "n", corev1.PodRunning, false, time.Hour),
		mk("pending", "n", corev1.PodPending, false, time.Hour),
		mk("unscheduled", "", corev1.PodPending, false, time.Hour),
	}
	deletionOrder(pods)
	var got []string
	for _, p := range pods {
		got = append(got, p.Name)
	}
	want := "unscheduled pending not-ready young-ready old-ready"
	if s := join(got); s != want {
		t.Fatalf("order %q, want %q", s, want)
	}
}

func join(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += " "
		}
		out += x
	}
	return out
}

func ptr(n int32) *int32 { return &n }

// Scaling a Deployment mid-rollout spreads the change over its active sets in
// proportion (Kubernetes' example: 8 + 5 of 10 replicas, maxSurge 3, scaled to 30).
func TestProportionalSizes(t *testing.T) {
	three, two := intstr.FromInt32(3), intstr.FromInt32(2)
	want := int32(30)
	d := &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Replicas: &want, Strategy: appsv1.DeploymentStrategy{
		Type: appsv1.RollingUpdateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &three, MaxUnavailable: &two}}}}
	set := func(name string, n int32, age time.Duration) *appsv1.ReplicaSet {
		return &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(time.Now().Add(-age)),
			Annotations: map[string]string{AnnotationDesiredReplicas: "10", AnnotationMaxReplicas: "13"}}, Spec: appsv1.ReplicaSetSpec{Replicas: &n}}
	}
	all := []*appsv1.ReplicaSet{set("first", 8, time.Hour), set("second", 5, time.Minute), set("empty", 0, 2*time.Hour)}
	if !scalingEvent(d, all) {
		t.Fatal("a scaled deployment is not a scaling event")
	}
	got := proportionalSizes(d, all)
	if len(got) != 2 || got["first"] != 20 || got["second"] != 13 {
		t.Fatalf("sizes %v, want first 20, second 13", got)
	}
	want = 10 // and back down
	for _, rs := range all {
		rs.Annotations[AnnotationMaxReplicas] = "33"
		if rs.Name == "first" {
			rs.Spec.Replicas = &[]int32{20}[0]
		} else if rs.Name == "second" {
			rs.Spec.Replicas = &[]int32{13}[0]
		}
	}
	if got := proportionalSizes(d, all); got["first"]+got["second"] != 13 || got["first"] != 8 || got["second"] != 5 {
		t.Fatalf("scaled down: %v, want first 8, second 5", got)
	}
}
