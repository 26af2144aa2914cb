package owned

import (
	"context"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
)

// An owner keeps its matching pods, adopts matching orphans, releases its pods
// whose labels no longer match, and leaves other controllers' pods alone.
func TestClaimPods(t *testing.T) {
	ctx := context.Background()
	rc := &corev1.ReplicationController{ObjectMeta: metav1.ObjectMeta{Name: "rc", Namespace: "ns", UID: "rc-uid"}}
	ref := *metav1.NewControllerRef(rc, corev1.SchemeGroupVersion.WithKind("ReplicationController"))
	other := ref
	other.Name, other.UID = "other", "other-uid"
	pod := func(name string, lbl string, refs ...metav1.OwnerReference) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("uid-" + name), Labels: map[string]string{"name": lbl},
			OwnerReferences: refs}}
	}
	pods := []*corev1.Pod{pod("mine", "web", ref), pod("orphan", "web"), pod("moved", "other", ref), pod("theirs", "web", other), pod("stranger", "x")}
	client := fake.NewClientset()
	for _, p := range pods {
		if _, err := client.CoreV1().Pods("ns").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	keep, err := ClaimPods(ctx, client, pods, labels.SelectorFromSet(labels.Set{"name": "web"}), ref)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range keep {
		names = append(names, p.Name)
	}
	if len(names) != 2 || names[0] != "mine" || names[1] != "orphan" {
		t.Fatalf("kept %v, want mine and orphan", names)
	}
	for name, want := range map[string]string{"orphan": "rc", "moved": "", "theirs": "other", "stranger": ""} {
		p, _ := client.CoreV1().Pods("ns").Get(ctx, name, metav1.GetOptions{})
		got := ""
		if c := metav1.GetControllerOf(p); c != nil {
			got = c.Name
		}
		if got != want {
			t.Errorf("%s: controller %q, want %q", name, got, want)
		}
	}
	// while the owner is being deleted it adopts nothing
	if _, adopt, _ := Claim([]*corev1.Pod{pod("orphan2", "web")}, labels.SelectorFromSet(labels.Set{"name": "web"}), ref, false); len(adopt) != 0 {
		t.Errorf("adopted while being deleted: %v", adopt)
	}
}

// A Deployment adopts an orphan ReplicaSet its selector matches.
func TestClaimReplicaSets(t *testing.T) {
	ctx := context.Background()
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: "d-uid"}}
	ref := *metav1.NewControllerRef(d, appsv1.SchemeGroupVersion.WithKind("Deployment"))
	orphan := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "old", Namespace: "ns", UID: "rs-uid", Labels: map[string]string{"app": "web"}}}
	client := fake.NewClientset(orphan)
	_, adopt, _ := Claim([]*appsv1.ReplicaSet{orphan}, labels.SelectorFromSet(labels.Set{"app": "web"}), ref, true)
	if len(adopt) != 1 {
		t.Fatalf("adopt %v", adopt)
	}
	if err := SetReplicaSetOwner(ctx, client, orphan, ref, true); err != nil {
		t.Fatal(err)
	}
	got, _ := client.AppsV1().ReplicaSets("ns").Get(ctx, "old", metav1.GetOptions{})
	if c := metav1.GetControllerOf(got); c == nil || c.UID != "d-uid" || c.Kind != "Deployment" {
		t.Fatalf("owner refs %v", got.OwnerReferences)
	}
}
