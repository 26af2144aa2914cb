package scheduler

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func node(name string, ready bool, mut ...func(*corev1.Node)) *corev1.Node {
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: st}}}}
	for _, m := range mut {
		m(n)
	}
	return n
}

func TestPick(t *testing.T) {
	ssd := func(n *corev1.Node) { n.Labels["disk"] = "ssd" }
	cordoned := func(n *corev1.Node) { n.Spec.Unschedulable = true }
	tainted := func(n *corev1.Node) {
		n.Spec.Taints = []corev1.Taint{{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}}
	}
	cases := []struct {
		name  string
		pod   corev1.PodSpec
		nodes []*corev1.Node
		load  map[string]int
		want  string
		why   string
	}{
		{"least loaded", corev1.PodSpec{}, []*corev1.Node{node("a", true), node("b", true)}, map[string]int{"a": 3, "b": 1}, "b", ""},
		{"tie by name", corev1.PodSpec{}, []*corev1.Node{node("b", true), node("a", true)}, nil, "a", ""},
		{"not ready skipped", corev1.PodSpec{}, []*corev1.Node{node("a", false), node("b", true)}, map[string]int{"b": 9}, "b", ""},
		{"cordoned skipped", corev1.PodSpec{}, []*corev1.Node{node("a", true, cordoned), node("b", true)}, nil, "b", ""},
		{"nodeSelector", corev1.PodSpec{NodeSelector: map[string]string{"disk": "ssd"}}, []*corev1.Node{node("a", true), node("b", true, ssd)}, map[string]int{"b": 5}, "b", ""},
		{"taint not tolerated", corev1.PodSpec{}, []*corev1.Node{node("a", true, tainted)}, nil, "",
			"0/1 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}."},
		{"taint tolerated", corev1.PodSpec{Tolerations: []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "gpu", Effect: corev1.TaintEffectNoSchedule}}},
			[]*corev1.Node{node("a", true, tainted)}, nil, "a", ""},
		{"nothing fits", corev1.PodSpec{NodeSelector: map[string]string{"disk": "ssd"}}, []*corev1.Node{node("a", false), node("b", true), node("c", true, cordoned)}, nil, "",
			"0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 1 node(s) were not ready, 1 node(s) were unschedulable."},
		{"no nodes", corev1.PodSpec{}, nil, nil, "", "0/0 nodes are available."},
	}
	for _, c := range cases {
		got, why := Pick(&corev1.Pod{Spec: c.pod}, c.nodes, c.load, nil)
		if got != c.want || why != c.why {
			t.Errorf("%s: got %q %q, want %q %q", c.name, got, why, c.want, c.why)
		}
	}
}

func TestPickHostPorts(t *testing.T) {
	pod := func(ip string, proto corev1.Protocol, port int32) *corev1.Pod {
		return &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c",
			Ports: []corev1.ContainerPort{{ContainerPort: 80, HostPort: port, HostIP: ip, Protocol: proto}}}}}}
	}
	nodes := []*corev1.Node{node("a", true)}
	used := map[string][]HostPort{"a": HostPorts(pod("", corev1.ProtocolTCP, 5555))}
	used["a"] = append(used["a"], HostPorts(pod("10.0.0.1", "", 7000))...)
	for _, c := range []struct {
		name string
		pod  *corev1.Pod
		want string
	}{
		{"same port on every address", pod("", corev1.ProtocolTCP, 5555), ""},
		{"same port, one address vs every address", pod("127.0.0.1", corev1.ProtocolTCP, 5555), ""},
		{"same port, other protocol", pod("", corev1.ProtocolUDP, 5555), "a"},
		{"same port, other address", pod("127.0.0.1", corev1.ProtocolTCP, 7000), "a"},
		{"same port and address (TCP by default)", pod("10.0.0.1", corev1.ProtocolTCP, 7000), ""},
		{"0.0.0.0 is every address", pod("0.0.0.0", corev1.ProtocolTCP, 7000), ""},
		{"other port", pod("", corev1.ProtocolTCP, 5556), "a"},
	} {
		got, why := Pick(c.pod, nodes, nil, used)
		if got != c.want {
			t.Errorf("%s: got %q (%s), want %q", c.name, got, why, c.want)
		}
		if got == "" && why != "0/1 nodes are available: 1 node(s) didn't have free ports for the requested pod ports." {
			t.Errorf("%s: reason %q", c.name, why)
		}
	}
}
