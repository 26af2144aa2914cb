package agent

import (
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

func TestDNSPod(t *testing.T) {
	p := dnsPod("node-a", "uid-1", "10.96.0.10:53")
	if p.Namespace != "kube-system" || p.Name != "svcnet-dns-node-a" || p.Labels["k8s-app"] != "kube-dns" || !isMirror(p) {
		t.Errorf("DNS pod %s/%s labels %v annotations %v: want kube-system/svcnet-dns-node-a, k8s-app=kube-dns, a mirror", p.Namespace, p.Name, p.Labels, p.Annotations)
	}
	if !p.Spec.HostNetwork || p.Spec.NodeName != "node-a" || p.OwnerReferences[0].Kind != "Node" || p.Spec.Containers[0].Ports[0].ContainerPort != 53 {
		t.Errorf("DNS pod spec %+v owners %+v", p.Spec, p.OwnerReferences)
	}
	started := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	st := dnsPodStatus("10.200.0.2", started, corev1.PodStatus{})
	if st.Phase != corev1.PodRunning || st.PodIP != "10.200.0.2" || !st.ContainerStatuses[0].Ready {
		t.Errorf("status %+v: want Running with the node's IP, ready", st)
	}
	ready := false
	for _, c := range st.Conditions {
		ready = ready || (c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue)
	}
	if !ready {
		t.Errorf("conditions %+v: want Ready", st.Conditions)
	}
	if again := dnsPodStatus("10.200.0.2", started, st); !reflect.DeepEqual(again, st) {
		t.Errorf("status not stable: %+v then %+v (it would be written at every sync)", st, again)
	}
}
