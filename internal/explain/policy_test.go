package explain

import (
	"bytes"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/svcnet/svcnet/internal/netpol"
)

// TestPolicyVerdicts: the endpoint on node-b is admitted from namespace dev
// only; the others are isolated with no rule, so their flows are dropped.
func TestPolicyVerdicts(t *testing.T) {
	in := input("pod/dev/client", "10.96.0.20:8080")
	pod := func(ns, name, ip string, l map[string]string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: l}, Status: corev1.PodStatus{PodIP: ip}}
	}
	pods := []*corev1.Pod{pod("dev", "client", "10.244.0.5", nil), pod("default", "h1", "10.244.0.2", nil),
		pod("default", "h2", "10.244.1.2", map[string]string{"open": "yes"}), pod("default", "h3", "10.244.0.3", nil)}
	nss := []*corev1.Namespace{{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, {ObjectMeta: metav1.ObjectMeta{Name: "dev"}}}
	pols := []*networkingv1.NetworkPolicy{
		{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "deny"}, Spec: networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{"Ingress"}}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "from-dev"}, Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"open": "yes"}},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{
				MatchLabels: map[string]string{corev1.LabelMetadataName: "dev"}}}}}}}},
	}
	in.Policies = netpol.FromObjects(pods, nss, pols, func(*networkingv1.NetworkPolicy, error) { t.Error("policy refused") })
	ex, err := Request(in)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	ex.Text(&buf)
	for _, want := range []string{"ingress of default/h2: allowed by default/from-dev",
		"ingress of default/h1: dropped: isolated by default/deny and no rule allows it",
		"egress of dev/client: not isolated"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("explanation lacks %q:\n%s", want, buf.String())
		}
	}
	if ex.Outcome != "proxied" {
		t.Errorf("outcome %q: one endpoint is allowed", ex.Outcome)
	}
	in.Policies.Pods = in.Policies.Pods[:0] // no pods known: nothing isolated
	if ex, _ := Request(in); strings.Contains(ex.Endpoints[0].Policy, "dropped") {
		t.Errorf("without pods: %s", ex.Endpoints[0].Policy)
	}
}
