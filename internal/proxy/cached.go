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

// ident is what the informers need of an object: its key and its
// resourceVersion (an update with an unchanged one counts as a resync).
// Three strings, not a whole ObjectMeta per cached object.
type ident struct{ Namespace, Name, rv string }

// GetObjectMeta makes an ident a metav1.ObjectMetaAccessor for the informers'
// key function and resync check.
func (i *ident) GetObjectMeta() metav1.Object {
	return &metav1.ObjectMeta{Namespace: i.Namespace, Name: i.Name, ResourceVersion: i.rv}
}

// cachedService is a Service as the proxy keeps it: its identity and its ports.
type cachedService struct {
	ident
	ports []*ServicePort
}

// cachedSlice is an EndpointSlice as the proxy keeps it.
type cachedSlice struct {
	ident
	service string // the namespace/name of its Service ("": none)
	slice   trackedSlice
	trigger time.Time // its endpoints.kubernetes.io/last-change-trigger-time (zero: none)
}

func identity(m metav1.ObjectMeta) ident {
	return ident{Namespace: m.Namespace, Name: m.Name, rv: m.ResourceVersion}
}

// convert is the informers' transform: Services and EndpointSlices become
// what the tracker keeps of them; anything else passes.
func (t *Tracker) convert(o any) (any, error) {
	switch x := o.(type) {
	case *corev1.Service:
		return &cachedService{ident: identity(x.ObjectMeta), ports: MarkNodeLocal(ServicePorts(x), t.local)}, nil
	case *discoveryv1.EndpointSlice:
		c := &cachedSlice{ident: identity(x.ObjectMeta),
			slice: trackedSlice{name: x.Name, ports: slicePorts(x, t.node)}}
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
