package owned

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"

	"github.com/svcnet/svcnet/internal/controller/fakekube"
)

// events drains the recorder's events, joined by "; ".
func events(r *record.FakeRecorder) string {
	var out []string
	for {
		select {
		case e := <-r.Events:
			out = append(out, e)
		default:
			return strings.Join(out, "; ")
		}
	}
}

func TestPodControl(t *testing.T) {
	owner := &corev1.ReplicationController{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns"}}
	existing := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "old", Namespace: "ns", UID: "old-uid"}}
	cases := []struct {
		name       string
		create     int
		failAfter  int // creations that succeed before the API refuses; -1: none refused
		del        []string
		wantErr    bool
		wantEvents string
	}{
		{"create two", 2, -1, nil, false, "Normal SuccessfulCreate Created pod: web-00001; Normal SuccessfulCreate Created pod: web-00002"},
		{"second creation refused", 3, 1, nil, true, "Normal SuccessfulCreate Created pod: web-00001; Warning FailedCreate Error creating: quota"},
		{"first creation refused", 2, 0, nil, true, "Warning FailedCreate Error creating: quota"},
		{"nothing to create", 0, -1, nil, false, ""},
		{"delete", 0, -1, []string{"old"}, false, "Normal SuccessfulDelete Deleted pod: old"},
		{"delete a pod already gone", 0, -1, []string{"gone"}, false, "Normal SuccessfulDelete Deleted pod: gone"},
	}
	for _, c := range cases {
		client := fakekube.NewClientset(existing)
		created := 0
		client.PrependReactor("create", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
			if c.failAfter >= 0 && created >= c.failAfter {
				return true, nil, errors.New("quota")
			}
			created++
			return false, nil, nil
		})
		rec := record.NewFakeRecorder(100)
		pc := PodControl{Client: client, Recorder: rec}
		e := Expectations{Timeout: time.Minute}
		now := time.Now()
		err := pc.CreatePods(context.Background(), owner, "ns/web", c.create, func(int) *corev1.Pod {
			return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: "web-", Namespace: "ns"}}
		}, &e, now)
		for _, name := range c.del {
			if derr := pc.Delete(context.Background(), owner, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"}}); derr != nil {
				err = derr
			}
		}
		if (err != nil) != c.wantErr {
			t.Errorf("%s: err %v, want error %v", c.name, err, c.wantErr)
		}
		if got := events(rec); got != c.wantEvents {
			t.Errorf("%s: events %q, want %q", c.name, got, c.wantEvents)
		}
		// The pods created are still expected (until their events come); the ones not created are not.
		if got := e.Satisfied("ns/web", now); got != (created == 0) {
			t.Errorf("%s: satisfied %v with %d pods created", c.name, got, created)
		}
	}
}

func TestNewPod(t *testing.T) {
	yes := true
	ref := metav1.OwnerReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web", UID: "u", Controller: &yes, BlockOwnerDeletion: &yes}
	for _, tmpl := range []*corev1.PodTemplateSpec{
		{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}, Annotations: map[string]string{"a": "b"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i"}}}},
		{},
	} {
		p := NewPod(tmpl, "ns", ref)
		if p.GenerateName != "web-" || p.Namespace != "ns" || p.Labels == nil || p.Annotations == nil ||
			len(p.Labels) != len(tmpl.Labels) || p.Labels["app"] != tmpl.Labels["app"] || p.Annotations["a"] != tmpl.Annotations["a"] ||
			len(p.OwnerReferences) != 1 || metav1.GetControllerOf(p).UID != "u" || len(p.Spec.Containers) != len(tmpl.Spec.Containers) {
			t.Fatalf("pod %+v from template %+v", p, tmpl)
		}
		p.Labels["x"], p.Spec.Containers = "y", nil
		if tmpl.Labels["x"] != "" || (tmpl.Labels != nil && len(tmpl.Spec.Containers) != 1) {
			t.Fatal("the pod shares its template's maps or slices")
		}
	}
}
