package gc

import (
	"context"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/svcnet/svcnet/internal/controller/fakekube"
)

func owned(kind, name string, uid types.UID) []metav1.OwnerReference {
	t := true
	return []metav1.OwnerReference{{Kind: kind, Name: name, UID: uid, Controller: &t}}
}

// podGone reports whether the pod ns/name is gone.
func podGone(ctx context.Context, c kubernetes.Interface, name string) func() bool {
	return func() bool {
		_, err := c.CoreV1().Pods("ns").Get(ctx, name, metav1.GetOptions{})
		return err != nil
	}
}

func TestCollectsOrphansOnly(t *testing.T) {
	live := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "live", Namespace: "ns", UID: "live-uid"}}
	e := fakekube.NewEnv(t,
		live,
		&appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "orphan", Namespace: "ns", OwnerReferences: owned("Deployment", "gone", "gone-uid")}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "kept", Namespace: "ns", OwnerReferences: owned("ReplicaSet", "live", "live-uid")}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "stale-uid", Namespace: "ns", OwnerReferences: owned("ReplicaSet", "live", "old-uid")}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "foreign", Namespace: "ns", OwnerReferences: owned("Widget", "db", "x")}},
	)
	c, ctx := e.Client, e.Ctx
	e.Run(2, New(c, e.Factory, slog.New(slog.DiscardHandler)))
	fakekube.Eventually(10*time.Second, func() bool {
		_, err := c.AppsV1().ReplicaSets("ns").Get(ctx, "orphan", metav1.GetOptions{})
		return err != nil && podGone(ctx, c, "stale-uid")()
	})
	for _, name := range []string{"kept", "foreign"} {
		if _, err := c.CoreV1().Pods("ns").Get(ctx, name, metav1.GetOptions{}); err != nil {
			t.Errorf("pod %s was collected: %v", name, err)
		}
	}
	if _, err := c.AppsV1().ReplicaSets("ns").Get(ctx, "orphan", metav1.GetOptions{}); err == nil {
		t.Error("orphaned ReplicaSet not collected")
	}
	if _, err := c.CoreV1().Pods("ns").Get(ctx, "stale-uid", metav1.GetOptions{}); err == nil {
		t.Error("pod whose owner was recreated (other UID) not collected")
	}
	// Deleting the owner collects its pods.
	if err := c.AppsV1().ReplicaSets("ns").Delete(ctx, "live", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if !fakekube.Eventually(10*time.Second, podGone(ctx, c, "kept")) {
		t.Fatal("pods of a deleted ReplicaSet not collected")
	}
}

func TestCollectsPodsOfDeletedReplicationController(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rc := &corev1.ReplicationController{ObjectMeta: metav1.ObjectMeta{Name: "rc", Namespace: "ns", UID: "rc-uid"}}
		e := fakekube.NewEnv(t, rc,
			&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "rc-pod", Namespace: "ns", OwnerReferences: owned("ReplicationController", "rc", "rc-uid")}})
		c, ctx := e.Client, e.Ctx
		e.Run(1, New(c, e.Factory, slog.New(slog.DiscardHandler)))
		synctest.Wait() // the controller has seen everything and done all it will
		if _, err := c.CoreV1().Pods("ns").Get(ctx, "rc-pod", metav1.GetOptions{}); err != nil {
			t.Fatalf("pod of a live ReplicationController collected: %v", err)
		}
		if err := c.CoreV1().ReplicationControllers("ns").Delete(ctx, "rc", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		if !fakekube.Eventually(10*time.Second, podGone(ctx, c, "rc-pod")) {
			t.Fatal("pods of a deleted ReplicationController not collected")
		}
	})
}

func TestCollectsPodsOfDeletedWorkloads(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sts := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: "sts-uid"}}
		ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: "ns", UID: "ds-uid"}}
		job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "hello", Namespace: "ns", UID: "job-uid"}}
		e := fakekube.NewEnv(t, sts, ds, job,
			&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: "ns", OwnerReferences: owned("StatefulSet", "web", "sts-uid")}},
			&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "agent-x", Namespace: "ns", OwnerReferences: owned("DaemonSet", "agent", "ds-uid")}},
			&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "hello-y", Namespace: "ns", OwnerReferences: owned("Job", "hello", "job-uid")}})
		c, ctx := e.Client, e.Ctx
		e.Run(1, New(c, e.Factory, slog.New(slog.DiscardHandler)))
		synctest.Wait() // the controller has seen everything and done all it will
		for _, del := range []struct {
			pod    string
			delete func() error
		}{
			{"web-0", func() error { return c.AppsV1().StatefulSets("ns").Delete(ctx, "web", metav1.DeleteOptions{}) }},
			{"agent-x", func() error { return c.AppsV1().DaemonSets("ns").Delete(ctx, "agent", metav1.DeleteOptions{}) }},
			{"hello-y", func() error { return c.BatchV1().Jobs("ns").Delete(ctx, "hello", metav1.DeleteOptions{}) }},
		} {
			if _, err := c.CoreV1().Pods("ns").Get(ctx, del.pod, metav1.GetOptions{}); err != nil {
				t.Fatalf("pod %s of a live owner collected: %v", del.pod, err)
			}
			if err := del.delete(); err != nil {
				t.Fatal(err)
			}
			if !fakekube.Eventually(10*time.Second, podGone(ctx, c, del.pod)) {
				t.Fatalf("pod %s not collected after its owner was deleted", del.pod)
			}
		}
	})
}

func TestTypedClientAdapters(t *testing.T) {
	c := fakekube.NewClientset(&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: "ns", UID: "ds-uid"}})
	ctx := context.Background()
	uid := uidIn(c.AppsV1().DaemonSets)
	for _, tc := range []struct {
		ns, name string
		want     types.UID
		notFound bool
	}{
		{"ns", "agent", "ds-uid", false},
		{"ns", "other", "", true},
		{"elsewhere", "agent", "", true},
	} {
		got, err := uid(ctx, tc.ns, tc.name)
		if got != tc.want || apierrors.IsNotFound(err) != tc.notFound {
			t.Errorf("uid of %s/%s = %q %v, want %q (not found %v)", tc.ns, tc.name, got, err, tc.want, tc.notFound)
		}
	}
	del := deleteIn(c.AppsV1().DaemonSets)
	if err := del(ctx, "ns", "agent", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := del(ctx, "ns", "agent", metav1.DeleteOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("second delete: %v", err)
	}
}
