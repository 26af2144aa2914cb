package owned

import (
	"context"
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
)

// NewPod returns a new pod in ns from tmpl, controlled by ref and named after
// its owner by generateName; its labels and annotations are never nil.
func NewPod(tmpl *corev1.PodTemplateSpec, ns string, ref metav1.OwnerReference) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: ref.Name + "-", Namespace: ns,
		Labels: map[string]string{}, Annotations: map[string]string{}, OwnerReferences: []metav1.OwnerReference{ref}},
		Spec: *tmpl.Spec.DeepCopy()}
	maps.Copy(p.Labels, tmpl.Labels)
	maps.Copy(p.Annotations, tmpl.Annotations)
	return p
}

// PodControl creates and deletes an owner's pods, recording the events on the
// owner that Kubernetes' pod control records.
type PodControl struct {
	Client   kubernetes.Interface
	Recorder record.EventRecorder
}

// Create creates pod for owner.
func (c PodControl) Create(ctx context.Context, owner runtime.Object, pod *corev1.Pod) error {
	p, err := c.Client.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		c.Recorder.Eventf(owner, corev1.EventTypeWarning, "FailedCreate", "Error creating: %v", err)
		return err
	}
	c.Recorder.Eventf(owner, corev1.EventTypeNormal, "SuccessfulCreate", "Created pod: %s", p.Name)
	return nil
}

// CreatePods creates n pods for owner, pod(i) the i-th, expected in e as
// creations of key from now; at the first error it stops and gives up expecting
// the pods not created.
func (c PodControl) CreatePods(ctx context.Context, owner runtime.Object, key string, n int, pod func(i int) *corev1.Pod, e *Expectations, now time.Time) error {
	e.Expect(key, n, 0, now)
	for i := 0; i < n; i++ {
		if err := c.Create(ctx, owner, pod(i)); err != nil {
			e.Observe(key, n-i, 0)
			return err
		}
	}
	return nil
}

// Delete deletes pod of owner, only if it is still the same pod (UID); a pod
// already gone counts as deleted.
func (c PodControl) Delete(ctx context.Context, owner runtime.Object, pod *corev1.Pod) error {
	uid := pod.UID
	err := c.Client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil && !apierrors.IsNotFound(err) {
		c.Recorder.Eventf(owner, corev1.EventTypeWarning, "FailedDelete", "Error deleting: %v", err)
		return err
	}
	c.Recorder.Eventf(owner, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted pod: %s", pod.Name)
	return nil
}
