package agent

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func portPod(uid string, ports ...corev1.ContainerPort) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: uid, UID: types.UID(uid)},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Ports: ports}}}}
}

// The kubelet's NodePorts admission: a host port an admitted pod holds fails
// the next pod asking for it, until the holder finishes or goes away.
func TestPortAdmission(t *testing.T) {
	web := corev1.ContainerPort{ContainerPort: 80, HostPort: 21017}
	udp := corev1.ContainerPort{ContainerPort: 80, HostPort: 21017, Protocol: corev1.ProtocolUDP}
	onIP := func(ip string) corev1.ContainerPort {
		return corev1.ContainerPort{ContainerPort: 80, HostPort: 21017, HostIP: ip}
	}
	h := newPortAdmission()
	steps := []struct {
		pod  *corev1.Pod
		want verdict
	}{
		{portPod("holder", web), admitPod},
		{portPod("holder", web), admitPod}, // an update of an admitted pod
		{portPod("plain"), admitPod},
		{portPod("same-port", corev1.ContainerPort{ContainerPort: 8080, HostPort: 21017}), rejectPod},
		{portPod("same-port", corev1.ContainerPort{ContainerPort: 8080, HostPort: 21017}), skipPod},
		{portPod("other-protocol", udp), admitPod},
		{portPod("one-address", onIP("10.0.0.1")), rejectPod}, // the holder has every address
		{portPod("other-port", corev1.ContainerPort{ContainerPort: 80, HostPort: 21018, HostIP: "10.0.0.1"}), admitPod},
		{portPod("another-address", corev1.ContainerPort{ContainerPort: 80, HostPort: 21018, HostIP: "10.0.0.2"}), admitPod},
	}
	for _, s := range steps {
		if got := h.decide(s.pod); got != s.want {
			t.Fatalf("%s: verdict %d, want %d", s.pod.Name, got, s.want)
		}
	}
	// the holder finishes: its port is free again
	done := portPod("holder", web)
	done.Status.Phase = corev1.PodFailed
	h.decide(done)
	if got := h.decide(portPod("next", web)); got != admitPod {
		t.Fatalf("after the holder finished: %d", got)
	}
	h.forget("next")
	if got := h.decide(portPod("after-delete", web)); got != admitPod {
		t.Fatalf("after the holder went away: %d", got)
	}
	// a pod running before the agent started keeps its ports
	h = newPortAdmission()
	running := portPod("running", web)
	running.Status.Phase = corev1.PodRunning
	h.seed(running)
	if got := h.decide(portPod("new", web)); got != rejectPod {
		t.Fatalf("a seeded running pod's port was given away: %d", got)
	}
	// a sidecar's port counts, a plain init container's does not
	always := corev1.ContainerRestartPolicyAlways
	side := portPod("sidecar")
	side.Spec.InitContainers = []corev1.Container{{Name: "s", RestartPolicy: &always, Ports: []corev1.ContainerPort{{HostPort: 9000}}},
		{Name: "i", Ports: []corev1.ContainerPort{{HostPort: 9001}}}}
	if got := hostPorts(side); len(got) != 1 || got[0] != (hostPort{proto: corev1.ProtocolTCP, ip: "0.0.0.0", port: 9000}) {
		t.Fatalf("sidecar host ports %v", got)
	}
}

func TestRejectedStatus(t *testing.T) {
	st := rejectedStatus(corev1.PodStatus{Phase: corev1.PodPending, QOSClass: corev1.PodQOSBestEffort,
		Conditions: []corev1.PodCondition{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}}}, metav1.Now())
	if st.Phase != corev1.PodFailed || st.Reason != "NodePorts" || st.QOSClass != corev1.PodQOSBestEffort || len(st.Conditions) != 1 ||
		st.Message != "Pod was rejected: Predicate NodePorts failed: node(s) didn't have free ports for the requested pod ports" || st.StartTime == nil {
		t.Fatalf("rejected status %+v", st)
	}
}
