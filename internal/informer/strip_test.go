package informer

import (
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestStrip(t *testing.T) {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web",
		ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
		Annotations:   map[string]string{LastApplied: "{...}", "keep": "me"}},
		Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.5"}}
	o, err := Strip(svc)
	s := o.(*corev1.Service)
	if err != nil || s.ManagedFields != nil || len(s.Annotations) != 1 || s.Annotations["keep"] != "me" || s.Spec.ClusterIP != "10.96.0.5" {
		t.Errorf("stripped %+v, %v", s.ObjectMeta, err)
	}
	only := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{LastApplied: "{}"}}}
	if o, _ := Strip(only); o.(*corev1.Service).Annotations != nil {
		t.Errorf("annotations left: %v", o.(*corev1.Service).Annotations)
	}
	if o, err := Strip("tombstone"); o != "tombstone" || err != nil {
		t.Errorf("a non-object: %v %v", o, err)
	}
}

func TestChain(t *testing.T) {
	add := func(s string) func(any) (any, error) { return func(o any) (any, error) { return o.(string) + s, nil } }
	if o, err := Chain(add("a"), add("b"))(""); o != "ab" || err != nil {
		t.Errorf("chain: %v %v", o, err)
	}
	boom := errors.New("boom")
	fail := func(any) (any, error) { return nil, boom }
	if _, err := Chain(fail, add("b"))(""); !errors.Is(err, boom) {
		t.Errorf("chain error: %v", err)
	}
}
