package ingress

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	kubefake "k8s.io/client-go/kubernetes/fake"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwfake "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned/fake"
)

// The source waits for the Gateway API to be served, then builds ports from
// the objects and writes their statuses once (no write when nothing changed).
func TestGatewaySourceStatuses(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{
		{Type: corev1.NodeInternalIP, Address: "192.0.2.10"}, {Type: corev1.NodeHostName, Address: "n1"}}}}
	kube := kubefake.NewClientset(node, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default"}})
	// created through the v1 client: the fake's tracker would file objects given to
	// NewClientset under v1beta1, whose Go types are the same
	gwc := gwfake.NewSimpleClientset() // NewClientset's field manager does not know these kinds
	if _, err := gwc.GatewayV1().GatewayClasses().Create(ctx, gwClass("svcnet", GatewayControllerName), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := gwc.GatewayV1().Gateways("default").Create(ctx, gwGateway("default", "gw", httpListener("http", 80, "", gwv1.NamespacesFromSame)), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := gwc.GatewayV1().HTTPRoutes("default").Create(ctx, gwRoute("default", "r", 0, nil, "web"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	src := newGatewaySource(gwc, kube, nil)
	var served atomic.Bool // the fake discovery is not safe for concurrent use
	src.discover = served.Load
	pokes := make(chan struct{}, 100)
	if err := src.Start(ctx, func() { pokes <- struct{}{} }); err != nil {
		t.Fatal(err)
	}
	if src.Ports(&State{}, NewIndex(&State{})) != nil {
		t.Fatalf("ports before the Gateway API is served")
	}
	served.Store(true)
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return src.ready(), nil
	})
	if err != nil {
		t.Fatalf("source not ready: %v", err)
	}
	s := &State{}
	ports := src.Ports(s, NewIndex(s))
	if ports[80] == nil {
		t.Fatalf("ports %v (last result %+v)", ports, src.last)
	}
	src.Publish(ctx)
	gw, err := gwc.GatewayV1().Gateways("default").Get(ctx, "gw", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if condOf(gw.Status.Conditions, "Programmed") != "True/Programmed" || len(gw.Status.Addresses) != 1 || gw.Status.Addresses[0].Value != "192.0.2.10" {
		t.Errorf("gateway status %+v", gw.Status)
	}
	hr, err := gwc.GatewayV1().HTTPRoutes("default").Get(ctx, "r", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(hr.Status.Parents) != 1 || condOf(hr.Status.Parents[0].Conditions, "ResolvedRefs") != "False/BackendNotFound" {
		t.Errorf("route status %+v", hr.Status)
	}
	gc, err := gwc.GatewayV1().GatewayClasses().Get(ctx, "svcnet", metav1.GetOptions{})
	if err != nil || condOf(gc.Status.Conditions, "Accepted") != "True/Accepted" {
		t.Errorf("class status %+v %v", gc.Status, err)
	}
	// Once the informers hold the written statuses, another sync writes nothing.
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		cur, err := src.gwf.Gateway().V1().Gateways().Lister().Gateways("default").Get("gw")
		return err == nil && len(cur.Status.Conditions) > 0, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		cur, err := src.gwf.Gateway().V1().HTTPRoutes().Lister().HTTPRoutes("default").Get("r")
		return err == nil && len(cur.Status.Parents) > 0, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	gwc.ClearActions()
	src.now = func() time.Time { return time.Now().Add(time.Hour) }
	src.Ports(s, NewIndex(s))
	src.Publish(ctx)
	for _, a := range gwc.Actions() {
		if a.GetVerb() == "update" {
			t.Errorf("unchanged status written again: %v %v", a.GetResource(), a.GetSubresource())
		}
	}
}
