package registry

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// eventsV1 serves core Events also as events.k8s.io/v1, as Kubernetes does: one
// stored object, two shapes. kube-proxy, the scheduler and other components
// record their events through this group.
var eventsV1 = []Legacy{{
	GroupVersion: eventsv1.SchemeGroupVersion,
	New:          func() runtime.Object { return &eventsv1.Event{} },
	ToStorage: func(in runtime.Object) (runtime.Object, error) {
		e, ok := in.(*eventsv1.Event)
		if !ok {
			return nil, fmt.Errorf("events.k8s.io/v1: unexpected %T", in)
		}
		return coreEvent(e), nil
	},
	FromStorage: func(in runtime.Object) (runtime.Object, error) {
		e, ok := in.(*corev1.Event)
		if !ok {
			return nil, fmt.Errorf("events.k8s.io/v1: unexpected stored %T", in)
		}
		return groupEvent(e), nil
	},
}}

// coreEvent is e in the core v1 shape: note is message, regarding is
// involvedObject, and the deprecated* fields are the old core ones.
func coreEvent(e *eventsv1.Event) *corev1.Event {
	out := &corev1.Event{}
	out.APIVersion, out.Kind = corev1.SchemeGroupVersion.String(), "Event"
	mapEventFields(out, e, false)
	return out
}

// groupEvent is e in the events.k8s.io/v1 shape.
func groupEvent(e *corev1.Event) *eventsv1.Event {
	out := &eventsv1.Event{}
	out.APIVersion, out.Kind = eventsv1.SchemeGroupVersion.String(), "Event"
	mapEventFields(e, out, true)
	return out
}

// mapEventFields is the one mapping between the two shapes: it copies each
// field of c into g when toGroup, of g into c otherwise.
func mapEventFields(c *corev1.Event, g *eventsv1.Event, toGroup bool) {
	if toGroup {
		g.ObjectMeta = *c.ObjectMeta.DeepCopy()
		g.Related = clonePtr(c.Related)
		if c.Series != nil {
			g.Series = &eventsv1.EventSeries{Count: c.Series.Count, LastObservedTime: c.Series.LastObservedTime}
		}
	} else {
		c.ObjectMeta = *g.ObjectMeta.DeepCopy()
		c.Related = clonePtr(g.Related)
		if g.Series != nil {
			c.Series = &corev1.EventSeries{Count: g.Series.Count, LastObservedTime: g.Series.LastObservedTime}
		}
	}
	both(&c.InvolvedObject, &g.Regarding, toGroup)
	both(&c.Reason, &g.Reason, toGroup)
	both(&c.Message, &g.Note, toGroup)
	both(&c.Source, &g.DeprecatedSource, toGroup)
	both(&c.FirstTimestamp, &g.DeprecatedFirstTimestamp, toGroup)
	both(&c.LastTimestamp, &g.DeprecatedLastTimestamp, toGroup)
	both(&c.Count, &g.DeprecatedCount, toGroup)
	both(&c.Type, &g.Type, toGroup)
	both(&c.EventTime, &g.EventTime, toGroup)
	both(&c.Action, &g.Action, toGroup)
	both(&c.ReportingController, &g.ReportingController, toGroup)
	both(&c.ReportingInstance, &g.ReportingInstance, toGroup)
}

// both copies *c to *g when toGroup, *g to *c otherwise.
func both[T any](c, g *T, toGroup bool) {
	if toGroup {
		*g = *c
	} else {
		*c = *g
	}
}

// clonePtr is a pointer to a copy of *p, or nil.
func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
