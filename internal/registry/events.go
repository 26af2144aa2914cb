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
	out := &corev1.Event{
		ObjectMeta:          *e.ObjectMeta.DeepCopy(),
		InvolvedObject:      e.Regarding,
		Reason:              e.Reason,
		Message:             e.Note,
		Source:              e.DeprecatedSource,
		FirstTimestamp:      e.DeprecatedFirstTimestamp,
		LastTimestamp:       e.DeprecatedLastTimestamp,
		Count:               e.DeprecatedCount,
		Type:                e.Type,
		EventTime:           e.EventTime,
		Action:              e.Action,
		ReportingController: e.ReportingController,
		ReportingInstance:   e.ReportingInstance,
	}
	out.APIVersion, out.Kind = corev1.SchemeGroupVersion.String(), "Event"
	if e.Related != nil {
		r := *e.Related
		out.Related = &r
	}
	if e.Series != nil {
		out.Series = &corev1.EventSeries{Count: e.Series.Count, LastObservedTime: e.Series.LastObservedTime}
	}
	return out
}

// groupEvent is e in the events.k8s.io/v1 shape.
func groupEvent(e *corev1.Event) *eventsv1.Event {
	out := &eventsv1.Event{
		ObjectMeta:               *e.ObjectMeta.DeepCopy(),
		EventTime:                e.EventTime,
		ReportingController:      e.ReportingController,
		ReportingInstance:        e.ReportingInstance,
		Action:                   e.Action,
		Reason:                   e.Reason,
		Regarding:                e.InvolvedObject,
		Note:                     e.Message,
		Type:                     e.Type,
		DeprecatedSource:         e.Source,
		DeprecatedFirstTimestamp: e.FirstTimestamp,
		DeprecatedLastTimestamp:  e.LastTimestamp,
		DeprecatedCount:          e.Count,
	}
	out.APIVersion, out.Kind = eventsv1.SchemeGroupVersion.String(), "Event"
	if e.Related != nil {
		r := *e.Related
		out.Related = &r
	}
	if e.Series != nil {
		out.Series = &eventsv1.EventSeries{Count: e.Series.Count, LastObservedTime: e.Series.LastObservedTime}
	}
	return out
}
