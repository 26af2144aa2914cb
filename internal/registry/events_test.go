package registry

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/diff"
)

func TestEventsV1Conversion(t *testing.T) {
	at := metav1.NewMicroTime(time.Date(2026, 11, 29, 18, 0, 0, 0, time.UTC))
	first := metav1.NewTime(at.Time.Add(-time.Minute))
	pod := corev1.ObjectReference{Kind: "Pod", Namespace: "ns", Name: "web", FieldPath: "spec.containers{app}"}
	node := corev1.ObjectReference{Kind: "Node", Name: "n1"}
	meta := metav1.ObjectMeta{Name: "web.1", Namespace: "ns", ResourceVersion: "7"}
	for _, tc := range []struct {
		name  string
		group eventsv1.Event
		core  corev1.Event
	}{
		{"new style",
			eventsv1.Event{ObjectMeta: meta, EventTime: at, ReportingController: "kube-proxy", ReportingInstance: "kube-proxy-n1",
				Action: "StartKubeProxy", Reason: "Starting", Regarding: node, Related: &pod, Note: "started", Type: "Normal",
				Series: &eventsv1.EventSeries{Count: 3, LastObservedTime: at}},
			corev1.Event{ObjectMeta: meta, EventTime: at, ReportingController: "kube-proxy", ReportingInstance: "kube-proxy-n1",
				Action: "StartKubeProxy", Reason: "Starting", InvolvedObject: node, Related: &pod, Message: "started", Type: "Normal",
				Series: &corev1.EventSeries{Count: 3, LastObservedTime: at}}},
		{"old style",
			eventsv1.Event{ObjectMeta: meta, Reason: "Pulled", Regarding: pod, Note: "pulled", Type: "Warning",
				DeprecatedSource: corev1.EventSource{Component: "kubelet", Host: "n1"}, DeprecatedFirstTimestamp: first,
				DeprecatedLastTimestamp: first, DeprecatedCount: 2},
			corev1.Event{ObjectMeta: meta, Reason: "Pulled", InvolvedObject: pod, Message: "pulled", Type: "Warning",
				Source: corev1.EventSource{Component: "kubelet", Host: "n1"}, FirstTimestamp: first, LastTimestamp: first, Count: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.core.APIVersion, tc.core.Kind = "v1", "Event"
			tc.group.APIVersion, tc.group.Kind = "events.k8s.io/v1", "Event"
			core, err := eventsV1[0].ToStorage(tc.group.DeepCopy())
			if err != nil {
				t.Fatal(err)
			}
			if !apiequality.Semantic.DeepEqual(&tc.core, core) {
				t.Errorf("to core (-want +got):\n%s", diff.Diff(&tc.core, core))
			}
			group, err := eventsV1[0].FromStorage(tc.core.DeepCopy())
			if err != nil {
				t.Fatal(err)
			}
			if !apiequality.Semantic.DeepEqual(&tc.group, group) {
				t.Errorf("to events.k8s.io/v1 (-want +got):\n%s", diff.Diff(&tc.group, group))
			}
		})
	}
	if _, err := eventsV1[0].ToStorage(&corev1.Pod{}); err == nil {
		t.Error("ToStorage of a Pod: no error")
	}
}
