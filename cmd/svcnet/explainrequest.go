package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/svcnet/svcnet/internal/explain"
	"github.com/svcnet/svcnet/internal/netpol"
)

// explainRequest reads the objects and this node's iptables-save dump and
// prints explain.Request's result (text, or JSON with -o json).
func explainRequest(ctx context.Context, cs kubernetes.Interface, from, to, node, netns, output string, w io.Writer) error {
	in := explain.Input{From: from, To: to, Node: node, Zone: "cluster.local", ClusterDNS: []string{"10.96.0.10"}}
	switch {
	case strings.HasPrefix(from, "pod/"):
		parts := strings.SplitN(strings.TrimPrefix(from, "pod/"), "/", 2)
		if len(parts) != 2 {
			return fmt.Errorf("FROM %q: want pod/NAMESPACE/NAME", from)
		}
		p, err := cs.CoreV1().Pods(parts[0]).Get(ctx, parts[1], metav1.GetOptions{})
		if err != nil {
			return err
		}
		in.Pod = p
		if p.Spec.NodeName != "" {
			in.Node = p.Spec.NodeName
		}
	case strings.HasPrefix(from, "node/"):
		n, err := cs.CoreV1().Nodes().Get(ctx, strings.TrimPrefix(from, "node/"), metav1.GetOptions{})
		if err != nil {
			return err
		}
		in.FromNode, in.Node = n, n.Name
	default:
		if _, err := netip.ParseAddr(from); err != nil {
			return fmt.Errorf("FROM %q: want pod/NAMESPACE/NAME, node/NAME or an IP address", from)
		}
	}
	n := in.FromNode // read above for node/NAME; else the Node the request leaves from
	if n == nil {
		if got, err := cs.CoreV1().Nodes().Get(ctx, in.Node, metav1.GetOptions{}); err == nil {
			n = got
		}
	}
	if n != nil {
		in.NodeZone = n.Labels[corev1.LabelTopologyZone]
		for _, a := range n.Status.Addresses {
			if ip, err := netip.ParseAddr(a.Address); err == nil && a.Type == corev1.NodeInternalIP {
				in.NodeIPs = append(in.NodeIPs, ip)
			}
		}
	}
	if in.Node == node && netns == "" {
		in.NodeIPs = append(in.NodeIPs, localAddrs(in.NodeIPs)...) // KUBE-NODEPORTS matches any local address (addrtype LOCAL)
	}
	if dns, err := cs.CoreV1().Services("kube-system").Get(ctx, "kube-dns", metav1.GetOptions{}); err == nil && dns.Spec.ClusterIP != "" {
		in.ClusterDNS = []string{dns.Spec.ClusterIP}
	}
	svcs, err := cs.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for i := range svcs.Items {
		in.Services = append(in.Services, &svcs.Items[i])
	}
	slices, err := cs.DiscoveryV1().EndpointSlices("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for i := range slices.Items {
		in.Slices = append(in.Slices, &slices.Items[i])
	}
	nss, err := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for _, ns := range nss.Items {
		in.Namespaces = append(in.Namespaces, ns.Name)
	}
	if in.Policies, err = policyState(ctx, cs, nss.Items); err != nil {
		return err
	}
	args := []string{"iptables-save"}
	if netns != "" {
		args = append([]string{"ip", "netns", "exec", netns}, args...)
	}
	if out, err := exec.CommandContext(ctx, args[0], args[1:]...).Output(); err == nil {
		in.Dump = string(out)
	}
	ex, err := explain.Request(in)
	if err != nil {
		return err
	}
	if output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(ex)
	}
	ex.Text(w)
	return nil
}

// localAddrs returns this host's interface addresses not in have: a node port
// answers on each of them, not only on the Node's InternalIP.
func localAddrs(have []netip.Addr) []netip.Addr {
	var out []netip.Addr
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		p, err := netip.ParsePrefix(a.String())
		if err != nil || p.Addr().IsLinkLocalUnicast() {
			continue
		}
		ip := p.Addr().Unmap()
		known := false
		for _, h := range append(have, out...) {
			known = known || h == ip
		}
		if !known {
			out = append(out, ip)
		}
	}
	return out
}

// policyState reads the pods and NetworkPolicies for the policy verdicts.
func policyState(ctx context.Context, cs kubernetes.Interface, namespaces []corev1.Namespace) (*netpol.State, error) {
	pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	pols, err := cs.NetworkingV1().NetworkPolicies("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var ps []*corev1.Pod
	for i := range pods.Items {
		ps = append(ps, &pods.Items[i])
	}
	var ns []*corev1.Namespace
	for i := range namespaces {
		ns = append(ns, &namespaces[i])
	}
	var nps []*networkingv1.NetworkPolicy
	for i := range pols.Items {
		nps = append(nps, &pols.Items[i])
	}
	return netpol.FromObjects(ps, ns, nps, func(*networkingv1.NetworkPolicy, error) {}), nil
}
