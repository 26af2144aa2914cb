package endpoints

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"

	"github.com/svcnet/svcnet/internal/controller/fakekube"
)

func fakeClient(objs ...runtime.Object) *fake.Clientset { return fakekube.NewClientset(objs...) }

func startController(t *testing.T, c *fake.Clientset) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	f := informers.NewSharedInformerFactory(c, 0)
	ctrl := New(c, f, record.NewFakeRecorder(100), slog.New(slog.DiscardHandler))
	f.Start(ctx.Done())
	go ctrl.Run(ctx, 2)
}

func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		ok, got := cond()
		if ok {
			return
		}
		last = got
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s: not reached within 10s; last: %s", what, last)
}

func slicesOf(t *testing.T, c *fake.Clientset) []*discoveryv1.EndpointSlice {
	l, err := c.DiscoveryV1().EndpointSlices("ns").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []*discoveryv1.EndpointSlice
	for i := range l.Items {
		out = append(out, &l.Items[i])
	}
	return out
}

func TestControllerFollowsPodsAndServiceChanges(t *testing.T) {
	svc := service()
	c := fakeClient(svc, pod("a", "10.0.0.1", true, 8080), pod("b", "10.0.0.2", false, 8080))
	startController(t, c)
	ctx := context.Background()
	want := func(s string) func() (bool, string) {
		return func() (bool, string) {
			got := fmt.Sprint(summary(slicesOf(t, c)))
			return got == s, got
		}
	}
	eventually(t, "initial slices", want("[http/TCP/8080: 10.0.0.1(true/true/false) 10.0.0.2(false/false/false)]"))
	eventually(t, "legacy endpoints", func() (bool, string) {
		ep, err := c.CoreV1().Endpoints("ns").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return len(ep.Subsets) == 1 && len(ep.Subsets[0].Addresses) == 1 && len(ep.Subsets[0].NotReadyAddresses) == 1 &&
			ep.Annotations[AnnotationTrigger] != "", fmt.Sprint(ep.Subsets, ep.Annotations)
	})

	// Readiness flip.
	if _, err := c.CoreV1().Pods("ns").UpdateStatus(ctx, pod("b", "10.0.0.2", true, 8080), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "b ready", want("[http/TCP/8080: 10.0.0.1(true/true/false) 10.0.0.2(true/true/false)]"))

	// Selector change to pods nobody has: placeholder only, Endpoints empty.
	s2 := svc.DeepCopy()
	s2.Spec.Selector = map[string]string{"app": "other"}
	if _, err := c.CoreV1().Services("ns").Update(ctx, s2, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "selector change", want("[:]"))

	// Type change to ExternalName (no selector): our slices and Endpoints go away.
	s3 := s2.DeepCopy()
	s3.Spec.Selector, s3.Spec.Type, s3.Spec.ExternalName, s3.Spec.ClusterIP = nil, corev1.ServiceTypeExternalName, "db.example.com", ""
	if _, err := c.CoreV1().Services("ns").Update(ctx, s3, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "ExternalName removes slices", want("[]"))
	eventually(t, "ExternalName removes endpoints", func() (bool, string) {
		_, err := c.CoreV1().Endpoints("ns").Get(ctx, "web", metav1.GetOptions{})
		return err != nil, fmt.Sprint(err)
	})
}

func TestControllerMirrorsSelectorlessEndpoints(t *testing.T) {
	svc := service(func(s *corev1.Service) { s.Name, s.Spec.Selector = "db", nil })
	ep := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "ns"}, Subsets: []corev1.EndpointSubset{{
		Addresses: []corev1.EndpointAddress{{IP: "192.0.2.10"}}, Ports: []corev1.EndpointPort{{Name: "pg", Port: 5432, Protocol: corev1.ProtocolTCP}}}}}
	c := fakeClient(svc, ep)
	startController(t, c)
	eventually(t, "mirrored slice", func() (bool, string) {
		got := fmt.Sprint(summary(slicesOf(t, c)))
		return got == "[pg/TCP/5432: 192.0.2.10(true/false/false)]", got
	})
	// The user's Endpoints object is never rewritten.
	got, _ := c.CoreV1().Endpoints("ns").Get(context.Background(), "db", metav1.GetOptions{})
	if got.Labels[LabelEndpointsBy] != "" {
		t.Fatalf("user Endpoints taken over: %v", got.Labels)
	}
}
