package cri

import (
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/svcnet/svcnet/internal/pod"
)

// A pod with a privileged container gets a privileged sandbox, as the kubelet
// asks: containerd refuses a privileged container in an unprivileged sandbox.
func TestSandboxPrivilegedWithPrivilegedContainer(t *testing.T) {
	yes := true
	for _, tc := range []struct {
		name string
		pod  corev1.PodSpec
		want bool
	}{
		{"plain", corev1.PodSpec{Containers: []corev1.Container{{Name: "c"}}}, false},
		{"privileged container", corev1.PodSpec{Containers: []corev1.Container{{Name: "a"},
			{Name: "c", SecurityContext: &corev1.SecurityContext{Privileged: &yes}}}}, true},
		{"privileged init container", corev1.PodSpec{InitContainers: []corev1.Container{{Name: "i",
			SecurityContext: &corev1.SecurityContext{Privileged: &yes}}}, Containers: []corev1.Container{{Name: "c"}}}, true},
	} {
		p := &corev1.Pod{Spec: tc.pod}
		got := sandboxConfig(p, 0, "/logs", pod.DNSSettings{}).Linux.SecurityContext.Privileged
		if got != tc.want {
			t.Errorf("%s: sandbox privileged %v, want %v", tc.name, got, tc.want)
		}
	}
}
