package proxy

import (
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// slim is the informers' transform: it keeps of a Service or EndpointSlice
// only what the tracker reads, so the caches do not hold managedFields,
// last-applied annotations and owner references of every object (with
// thousands of Services they are most of the agent's memory).
func slim(o any) (any, error) {
	switch x := o.(type) {
	case *corev1.Service:
		return &corev1.Service{ObjectMeta: slimMeta(x.ObjectMeta, []string{HeadlessLabel, ServiceProxyNameLabel}, nil),
			Spec: x.Spec, Status: x.Status}, nil
	case *discoveryv1.EndpointSlice:
		return &discoveryv1.EndpointSlice{ObjectMeta: slimMeta(x.ObjectMeta, []string{discoveryv1.LabelServiceName}, []string{corev1.EndpointsLastChangeTriggerTime}),
			AddressType: x.AddressType, Endpoints: x.Endpoints, Ports: x.Ports}, nil
	}
	return o, nil
}

// slimMeta keeps an object's identity and the named labels and annotations.
func slimMeta(m metav1.ObjectMeta, labels, annotations []string) metav1.ObjectMeta {
	out := metav1.ObjectMeta{Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion}
	out.Labels = pick(m.Labels, labels)
	out.Annotations = pick(m.Annotations, annotations)
	return out
}

func pick(from map[string]string, keys []string) map[string]string {
	var out map[string]string
	for _, k := range keys {
		if v, ok := from[k]; ok {
			if out == nil {
				out = make(map[string]string, len(keys))
			}
			out[k] = v
		}
	}
	return out
}
