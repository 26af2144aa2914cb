package agent

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func kubeletNode(addrs ...corev1.NodeAddress) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node1"}, Status: corev1.NodeStatus{Addresses: addrs}}
}

func TestInternalIP(t *testing.T) {
	for _, tc := range []struct {
		name  string
		addrs []corev1.NodeAddress
		want  string
	}{
		{"none", nil, ""},
		{"hostname only", []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: "node1"}}, ""},
		{"IPv4 preferred", []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "fd00::5"}, {Type: corev1.NodeExternalIP, Address: "203.0.113.5"},
			{Type: corev1.NodeInternalIP, Address: "192.168.1.5"}}, "192.168.1.5"},
		{"IPv6 only", []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "fd00::5"}}, "fd00::5"},
	} {
		if got, _ := internalIP(kubeletNode(tc.addrs...)); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestRunLeavesTheKubeletsNodeAlone: without the pod runtime and with a Node
// already registered (by its kubelet), the agent writes no Node, Node status,
// Lease or pod: it only reads the Node, for its InternalIP.
func TestRunLeavesTheKubeletsNodeAlone(t *testing.T) {
	client := fake.NewClientset(kubeletNode(corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "192.168.1.5"}))
	a, err := New(client, Options{NodeName: "node1", ProxyMode: "none", LeaseDuration: 40 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan struct{}), make(chan error, 1)
	go func() { done <- a.Run(ctx, ready) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("not ready within 10s")
	}
	if a.o.NodeIP != "192.168.1.5" {
		t.Errorf("node IP %q, want the Node's InternalIP", a.o.NodeIP)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	for _, act := range client.Actions() {
		if act.GetVerb() != "get" && act.GetVerb() != "list" && act.GetVerb() != "watch" {
			t.Errorf("the agent wrote: %s %s/%s", act.GetVerb(), act.GetResource().Resource, act.GetSubresource())
		}
	}
}

// TestAgentsOwnNodeIsTakenOver: a Node an svcnet agent registered (a restart
// of the same agent) is not a kubelet's: the agent reports its status again.
func TestAgentsOwnNodeIsTakenOver(t *testing.T) {
	n := kubeletNode(corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "192.168.1.5"})
	if !kubeletOwns(n, false) || kubeletOwns(n, true) {
		t.Error("a kubelet's Node: owned by it without the pod runtime only")
	}
	n.Status.NodeInfo.KubeletVersion = Version
	if kubeletOwns(n, false) {
		t.Errorf("a Node reporting %s is the agent's own", Version)
	}
}

// TestRunRegistersWithoutANode: with no Node yet, the agent registers its own
// (svcnet up, or a node without a kubelet); --node-ip is then required.
func TestRunRegistersWithoutANode(t *testing.T) {
	a, err := New(fake.NewClientset(), Options{NodeName: "node1", ProxyMode: "none"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.adoptNode(context.Background()); err == nil {
		t.Error("no Node and no --node-ip: want an error naming --node-ip")
	}
	a.o.NodeIP = "192.168.1.5"
	if adopted, err := a.adoptNode(context.Background()); adopted || err != nil {
		t.Errorf("no Node: adopted %v, err %v", adopted, err)
	}
}
