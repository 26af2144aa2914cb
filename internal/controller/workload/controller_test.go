package workload

import (
	"log/slog"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/tools/record"

	"github.com/svcnet/svcnet/internal/controller/fakekube"
)

func TestDeploymentScalesAndRollsOut(t *testing.T) {
	replicas := int32(3)
	surge, unavail := intstr.FromInt32(1), intstr.FromInt32(0)
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: "d-uid", Generation: 1},
		Spec: appsv1.DeploymentSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &surge, MaxUnavailable: &unavail}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "v1"}}}}}}
	e := fakekube.NewEnv(t, d)
	c, ctx := e.Client, e.Ctx
	log := slog.New(slog.DiscardHandler)
	e.Run(2, NewReplicaSets(c, e.Factory, record.NewFakeRecorder(1000), log), NewDeployments(c, e.Factory, record.NewFakeRecorder(1000), log))
	go fakekube.Kubelet(ctx, c, "ns")

	status := func() (appsv1.DeploymentStatus, int) {
		got, _ := c.AppsV1().Deployments("ns").Get(ctx, "web", metav1.GetOptions{})
		pods, _ := c.CoreV1().Pods("ns").List(ctx, metav1.ListOptions{})
		return got.Status, len(pods.Items)
	}
	waitFor := func(what string, cond func(appsv1.DeploymentStatus, int) bool) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) {
			if st, n := status(); cond(st, n) {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		st, n := status()
		t.Fatalf("%s: not reached; status %+v, %d pods", what, st, n)
	}
	waitFor("3 ready", func(s appsv1.DeploymentStatus, n int) bool {
		return s.ReadyReplicas == 3 && s.AvailableReplicas == 3 && s.UpdatedReplicas == 3 && n == 3
	})

	maxPods := 0
	scaleTo := func(n int32) {
		cur, _ := c.AppsV1().Deployments("ns").Get(ctx, "web", metav1.GetOptions{})
		cur.Spec.Replicas = &n
		cur.Generation++
		if _, err := c.AppsV1().Deployments("ns").Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	scaleTo(5)
	waitFor("scaled to 5", func(s appsv1.DeploymentStatus, n int) bool { return s.AvailableReplicas == 5 && n == 5 })
	scaleTo(1)
	waitFor("scaled to 1", func(s appsv1.DeploymentStatus, n int) bool { return s.Replicas == 1 && n == 1 })
	scaleTo(3)
	waitFor("back to 3", func(s appsv1.DeploymentStatus, n int) bool { return s.AvailableReplicas == 3 && n == 3 })

	// New template: a rolling update with maxSurge 1, maxUnavailable 0.
	cur, _ := c.AppsV1().Deployments("ns").Get(ctx, "web", metav1.GetOptions{})
	cur.Spec.Template.Spec.Containers[0].Image = "v2"
	cur.Generation++
	if _, err := c.AppsV1().Deployments("ns").Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("rolled out", func(s appsv1.DeploymentStatus, n int) bool {
		// Kubernetes bounds the sum of the ReplicaSets' replicas by replicas+maxSurge
		// (pods on their way out are not counted), so that is what is checked.
		sets, _ := c.AppsV1().ReplicaSets("ns").List(ctx, metav1.ListOptions{})
		total := 0
		for _, rs := range sets.Items {
			total += int(*rs.Spec.Replicas)
		}
		maxPods = max(maxPods, total)
		return s.UpdatedReplicas == 3 && s.Replicas == 3 && s.AvailableReplicas == 3 && n == 3 && s.ObservedGeneration == cur.Generation
	})
	if maxPods > 4 {
		t.Errorf("rollout asked for %d replicas at once, maxSurge allows 4", maxPods)
	}
	sets, _ := c.AppsV1().ReplicaSets("ns").List(ctx, metav1.ListOptions{})
	if len(sets.Items) != 2 {
		t.Fatalf("replica sets: %d", len(sets.Items))
	}
	for _, s := range sets.Items {
		img := s.Spec.Template.Spec.Containers[0].Image
		if (img == "v1") != (*s.Spec.Replicas == 0) || s.Labels[LabelPodTemplateHash] == "" || s.Spec.Selector.MatchLabels[LabelPodTemplateHash] == "" {
			t.Fatalf("replica set %s: image %s replicas %d labels %v", s.Name, img, *s.Spec.Replicas, s.Labels)
		}
		if img == "v2" && s.Annotations[AnnotationRevision] != "2" {
			t.Fatalf("new set revision %q", s.Annotations[AnnotationRevision])
		}
	}
	final, _ := c.AppsV1().Deployments("ns").Get(ctx, "web", metav1.GetOptions{})
	var reason string
	for _, cond := range final.Status.Conditions {
		if cond.Type == appsv1.DeploymentProgressing {
			reason = cond.Reason
		}
	}
	if reason != "NewReplicaSetAvailable" {
		t.Fatalf("Progressing reason %q", reason)
	}
}
