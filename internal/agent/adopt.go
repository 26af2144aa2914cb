package agent

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// As a kube-proxy drop-in the agent runs next to a kubelet: without the pod
// runtime (--pod-runtime off) and with a Node of its name already there, the
// Node is the kubelet's. The agent then registers nothing and writes no
// Node status, Lease, pod status or mirror pod; it reads the Node for its
// address, as kube-proxy does.

// kubeletOwns says whether an existing Node is left to its kubelet: the agent
// runs no pods, and the Node is not one an svcnet agent registered (those
// report a kubelet version ending in -svcnet, and are taken over again).
func kubeletOwns(n *corev1.Node, podRuntime bool) bool {
	return n != nil && !podRuntime && !strings.HasSuffix(n.Status.NodeInfo.KubeletVersion, "-svcnet")
}

// internalIP is the Node's first IPv4 InternalIP (or first InternalIP).
func internalIP(n *corev1.Node) (string, bool) {
	var first string
	for _, a := range n.Status.Addresses {
		if a.Type != corev1.NodeInternalIP {
			continue
		}
		if ip, err := netip.ParseAddr(a.Address); err == nil && ip.Is4() {
			return a.Address, true
		}
		if first == "" {
			first = a.Address
		}
	}
	return first, first != ""
}

// adoptNode looks for a kubelet's Node of this name; when there is one the
// agent uses it (its InternalIP when --node-ip is not given) and reports true.
func (a *Agent) adoptNode(ctx context.Context) (bool, error) {
	if a.o.PodRuntime {
		return false, nil
	}
	n, err := a.client.CoreV1().Nodes().Get(ctx, a.o.NodeName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		if a.o.NodeIP == "" {
			return false, fmt.Errorf("--node-ip: required: there is no Node %s to take the address from", a.o.NodeName)
		}
		return false, nil
	case err != nil:
		return false, fmt.Errorf("node %s: %w", a.o.NodeName, err)
	}
	if !kubeletOwns(n, a.o.PodRuntime) {
		return false, nil
	}
	if a.o.NodeIP == "" {
		ip, ok := internalIP(n)
		if !ok {
			return false, fmt.Errorf("--node-ip: required: Node %s has no InternalIP", a.o.NodeName)
		}
		a.o.NodeIP = ip
	}
	return true, nil
}
