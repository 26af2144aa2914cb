package proxy

import (
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestSlimKeepsWhatTheTrackerReads: a tracker fed the informers' slimmed
// objects computes the same state as one fed the full objects.
func TestSlimKeepsWhatTheTrackerReads(t *testing.T) {
	heavy := func(m *metav1.ObjectMeta) {
		m.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationApply}}
		if m.Annotations == nil {
			m.Annotations = map[string]string{}
		}
		m.Annotations["kubectl.kubernetes.io/last-applied-configuration"] = `{"big":"json"}`
		m.OwnerReferences = []metav1.OwnerReference{{Kind: "Service", Name: "x"}}
	}
	trigger := time.Date(2026, 11, 30, 1, 2, 3, 0, time.UTC)
	var objs []any
	for _, s := range []*corev1.Service{
		svc("web", "10.96.0.5", nil),
		svc("lb", "10.96.0.6", func(s *corev1.Service) {
			s.Spec.Type, s.Spec.ExternalTrafficPolicy = corev1.ServiceTypeLoadBalancer, corev1.ServiceExternalTrafficPolicyLocal
			s.Spec.Ports[0].NodePort, s.Spec.HealthCheckNodePort = 30080, 31000
			s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "192.0.2.10"}}
			s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
		}),
		svc("other-proxy", "10.96.0.7", func(s *corev1.Service) { s.Labels = map[string]string{ServiceProxyNameLabel: "foo"} }),
		svc("headless-label", "10.96.0.8", func(s *corev1.Service) { s.Labels = map[string]string{HeadlessLabel: ""} }),
	} {
		heavy(&s.ObjectMeta)
		objs = append(objs, s)
	}
	for _, es := range []*discoveryv1.EndpointSlice{
		slice("web", "web-a", "n1", true, "10.244.0.2", "10.244.0.3"),
		slice("lb", "lb-a", "n2", false, "10.244.1.2"),
		slice("other-proxy", "op-a", "n1", true, "10.244.0.9"),
	} {
		heavy(&es.ObjectMeta)
		es.Annotations[corev1.EndpointsLastChangeTriggerTime] = trigger.Format(time.RFC3339Nano)
		zone := "z1"
		es.Endpoints[0].Zone = &zone
		es.Endpoints[0].Hints = &discoveryv1.EndpointHints{ForZones: []discoveryv1.ForZone{{Name: "z1"}}}
		objs = append(objs, es)
	}
	full, slimmed := NewTracker("n1"), NewTracker("n1")
	feed := func(tr *Tracker, o any) {
		switch x := o.(type) {
		case *corev1.Service:
			tr.OnService(x, false)
		case *discoveryv1.EndpointSlice:
			tr.OnSlice(x, false)
		}
	}
	for _, o := range objs {
		feed(full, o)
		s, err := slim(o)
		if err != nil {
			t.Fatal(err)
		}
		m := s.(metav1.Object)
		if len(m.GetManagedFields()) != 0 || len(m.GetOwnerReferences()) != 0 || m.GetAnnotations()["kubectl.kubernetes.io/last-applied-configuration"] != "" {
			t.Errorf("%s: slim kept %+v", m.GetName(), m)
		}
		feed(slimmed, s)
	}
	st1, keys1, trig1 := full.Apply()
	st2, keys2, trig2 := slimmed.Apply()
	if !reflect.DeepEqual(st1, st2) || len(keys1) != len(keys2) || !reflect.DeepEqual(trig1, trig2) {
		t.Errorf("slimmed state differs:\n full %+v %v\n slim %+v %v", st1, trig1, st2, trig2)
	}
	if len(trig2) != 3 || len(st2.Services) != 4 {
		t.Errorf("fixture: %d triggers, %d service ports; want 3 and 4", len(trig2), len(st2.Services))
	}
	if o, _ := slim("not an object"); o != "not an object" {
		t.Errorf("other objects pass through: %v", o)
	}
}
