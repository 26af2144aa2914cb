package proxy

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The proxy's informers keep, instead of Services and EndpointSlices, the
// tracker's own view of them (the informers' transform is the tracker's
// conversion): the cache and the tracker share it, so each Service is held
// once in memory and not also as an API object.

// cachedService is a Service as the proxy keeps it: its identity and its ports.
type cachedService struct {
	metav1.ObjectMeta // name, namespace, uid and resourceVersion only
	ports             []*ServicePort
}

// cachedSlice is an EndpointSlice as the proxy keeps it.
type cachedSlice struct {
	metav1.ObjectMeta
	service string // the namespace/name of its Service ("": none)
	slice   trackedSlice
	trigger time.Time // its endpoints.kubernetes.io/last-change-trigger-time (zero: none)
}

func identity(m metav1.ObjectMeta) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion}
}

// convert is the informers' transform: Services and EndpointSlices become
// what the tracker keeps of them; anything else passes.
func (t *Tracker) convert(o any) (any, error) {
	switch x := o.(type) {
	case *corev1.Service:
		return &cachedService{ObjectMeta: identity(x.ObjectMeta), ports: MarkNodeLocal(ServicePorts(x), t.local)}, nil
	case *discoveryv1.EndpointSlice:
		c := &cachedSlice{ObjectMeta: identity(x.ObjectMeta),
			slice: trackedSlice{name: x.Name, ports: compactPorts(SliceEndpoints(x, t.node))}}
		if svc := x.Labels[discoveryv1.LabelServiceName]; svc != "" {
			c.service = x.Namespace + "/" + svc
		}
		if v, ok := x.Annotations[corev1.EndpointsLastChangeTriggerTime]; ok {
			c.trigger, _ = time.Parse(time.RFC3339Nano, v)
		}
		return c, nil
	}
	return o, nil
}
