package workload

import (
	"log/slog"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"

	"github.com/svcnet/svcnet/internal/controller/fakekube"
)

func testRC(replicas int32) *corev1.ReplicationController {
	return &corev1.ReplicationController{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: "rc-uid", Generation: 1},
		Spec: corev1.ReplicationControllerSpec{Replicas: &replicas, Selector: map[string]string{"app": "web"},
			Template: &corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web", "tier": "fe"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i"}}}}}}
}

func rcPod(name string, owner types.UID, labels map[string]string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: labels, CreationTimestamp: metav1.Now()}}
	if owner != "" {
		t := true
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "ReplicationController", Name: "web", UID: owner, Controller: &t}}
	}
	return p
}

func TestReplicationControllerKeepsPods(t *testing.T) {
	web := map[string]string{"app": "web"}
	cases := []struct {
		name      string
		replicas  int32
		pods      []runtime.Object
		wantOwned int      // pods controlled by the RC at the end
		wantKept  []string // pods that must survive
	}{
		{"creates up to replicas", 2, nil, 2, nil},
		{"deletes extras", 1, []runtime.Object{rcPod("a", "rc-uid", web), rcPod("b", "rc-uid", web), rcPod("c", "rc-uid", web)}, 1, nil},
		{"ignores pods it does not control", 1, []runtime.Object{rcPod("bare", "", web), rcPod("other", "other-uid", web)}, 1, []string{"bare", "other"}},
		{"keeps its pods at replicas", 2, []runtime.Object{rcPod("a", "rc-uid", web), rcPod("b", "rc-uid", web)}, 2, []string{"a", "b"}},
		{"zero replicas", 0, []runtime.Object{rcPod("a", "rc-uid", web)}, 0, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := fakekube.NewEnv(t, append([]runtime.Object{testRC(tc.replicas)}, tc.pods...)...)
			c, ctx := e.Client, e.Ctx
			e.Run(1, NewReplicationControllers(c, e.Factory, record.NewFakeRecorder(100), slog.New(slog.DiscardHandler)))
			go fakekube.Kubelet(ctx, c, "ns")
			var owned []corev1.Pod
			var st corev1.ReplicationControllerStatus
			deadline := time.Now().Add(10 * time.Second)
			for time.Now().Before(deadline) {
				owned = owned[:0]
				pods, _ := c.CoreV1().Pods("ns").List(ctx, metav1.ListOptions{})
				for _, p := range pods.Items {
					if r := metav1.GetControllerOf(&p); r != nil && r.UID == "rc-uid" {
						owned = append(owned, p)
					}
				}
				rc, _ := c.CoreV1().ReplicationControllers("ns").Get(ctx, "web", metav1.GetOptions{})
				st = rc.Status
				if len(owned) == tc.wantOwned && st.Replicas == int32(tc.wantOwned) && st.ReadyReplicas == int32(tc.wantOwned) && st.ObservedGeneration == 1 {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if len(owned) != tc.wantOwned || st.Replicas != int32(tc.wantOwned) || st.ReadyReplicas != int32(tc.wantOwned) || st.FullyLabeledReplicas > st.Replicas {
				t.Fatalf("owned pods %d, status %+v; want %d", len(owned), st, tc.wantOwned)
			}
			for _, p := range owned {
				r := p.OwnerReferences[0]
				if r.APIVersion != "v1" || r.Kind != "ReplicationController" || r.Name != "web" || r.Controller == nil || !*r.Controller {
					t.Errorf("pod %s owner reference %+v", p.Name, r)
				}
				if p.GenerateName != "" && (p.GenerateName != "web-" || p.Labels["tier"] != "fe") {
					t.Errorf("new pod %s: generateName %q labels %v", p.Name, p.GenerateName, p.Labels)
				}
			}
			for _, name := range tc.wantKept {
				if _, err := c.CoreV1().Pods("ns").Get(ctx, name, metav1.GetOptions{}); err != nil {
					t.Errorf("pod %s: %v", name, err)
				}
			}
		})
	}
}

func TestReplicationControllerScales(t *testing.T) {
	e := fakekube.NewEnv(t, testRC(1))
	c, ctx := e.Client, e.Ctx
	e.Run(2, NewReplicationControllers(c, e.Factory, record.NewFakeRecorder(100), slog.New(slog.DiscardHandler)))
	go fakekube.Kubelet(ctx, c, "ns")
	for _, n := range []int32{3, 1, 4} {
		rc, _ := c.CoreV1().ReplicationControllers("ns").Get(ctx, "web", metav1.GetOptions{})
		rc.Spec.Replicas = &n
		if _, err := c.CoreV1().ReplicationControllers("ns").Update(ctx, rc, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			pods, _ := c.CoreV1().Pods("ns").List(ctx, metav1.ListOptions{})
			rc, _ := c.CoreV1().ReplicationControllers("ns").Get(ctx, "web", metav1.GetOptions{})
			if len(pods.Items) == int(n) && rc.Status.AvailableReplicas == n {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("scale to %d: %d pods, status %+v", n, len(pods.Items), rc.Status)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
