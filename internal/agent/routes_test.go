package agent

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestPeers(t *testing.T) {
	node := func(name, cidr, ip string) *corev1.Node {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.NodeSpec{PodCIDR: cidr}}
		if ip != "" {
			n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: name}, {Type: corev1.NodeInternalIP, Address: ip}}
		}
		return n
	}
	got := peers("a", []*corev1.Node{
		node("a", "10.244.0.0/24", "192.0.2.1"), // itself: no route
		node("b", "10.244.1.0/24", "192.0.2.2"),
		node("c", "", "192.0.2.3"),     // no pod CIDR yet
		node("d", "10.244.3.0/24", ""), // no address yet
	})
	if fmt.Sprint(got) != "[{b 10.244.1.0/24 192.0.2.2}]" {
		t.Errorf("peers %v", got)
	}
}
