package topology

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func ptr[T any](v T) *T { return &v }

func svc(ns, name string, typ corev1.ServiceType, ip string, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{Type: typ, ClusterIP: ip, Ports: ports}}
}

func slice(ns, svcName, name string, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: svcName}},
		Ports: []discoveryv1.EndpointPort{{Port: ptr(int32(80))}}, Endpoints: eps}
}

func ep(ip, pod, node string, ready *bool) discoveryv1.Endpoint {
	return discoveryv1.Endpoint{Addresses: []string{ip}, NodeName: ptr(node), Conditions: discoveryv1.EndpointConditions{Ready: ready},
		TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: pod}}
}

func mkPod(ns, name, node, ip string, ready bool) *corev1.Pod {
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: corev1.PodSpec{NodeName: node},
		Status: corev1.PodStatus{PodIP: ip, Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}}}
}

func TestBuild(t *testing.T) {
	httpPort := corev1.ServicePort{Port: 8080, TargetPort: intstr.FromInt32(80), Protocol: corev1.ProtocolTCP}
	cases := []struct {
		name   string
		ns     []*corev1.Namespace
		svcs   []*corev1.Service
		slices []*discoveryv1.EndpointSlice
		pods   []*corev1.Pod
		nodes  []*corev1.Node
		want   Graph
	}{
		{name: "empty", want: Graph{Namespaces: []string{}, Nodes: []Node{}, Services: []Service{}, Pods: []Pod{}}},
		{
			name: "service with a ready and a not ready pod on two nodes",
			ns:   []*corev1.Namespace{{ObjectMeta: metav1.ObjectMeta{Name: "kube-system"}}, {ObjectMeta: metav1.ObjectMeta{Name: "default"}}},
			svcs: []*corev1.Service{svc("default", "httpd-svc", "", "10.96.0.20", httpPort)},
			slices: []*discoveryv1.EndpointSlice{slice("default", "httpd-svc", "httpd-svc-b", ep("10.244.1.2", "web-b", "n2", ptr(false))),
				slice("default", "httpd-svc", "httpd-svc-a", ep("10.244.0.2", "web-a", "n1", nil))},
			pods: []*corev1.Pod{mkPod("default", "web-b", "n2", "10.244.1.2", false), mkPod("default", "web-a", "n1", "10.244.0.2", true)},
			nodes: []*corev1.Node{{ObjectMeta: metav1.ObjectMeta{Name: "n2"}},
				{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
					Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "192.0.2.1"}, {Type: corev1.NodeHostName, Address: "n1"}}}}},
			want: Graph{
				Namespaces: []string{"default", "kube-system"},
				Nodes:      []Node{{Name: "n1", Ready: true, Addresses: []string{"192.0.2.1"}}, {Name: "n2"}},
				Services: []Service{{Namespace: "default", Name: "httpd-svc", Type: "ClusterIP", ClusterIPs: []string{"10.96.0.20"},
					Ports:  []Port{{Protocol: "TCP", Port: 8080, TargetPort: "80"}},
					Slices: []string{"httpd-svc-a", "httpd-svc-b"},
					Endpoints: []Endpoint{
						{Slice: "httpd-svc-a", Address: "10.244.0.2", Ports: []int32{80}, Ready: true, Serving: true, Node: "n1", Pod: "default/web-a"},
						{Slice: "httpd-svc-b", Address: "10.244.1.2", Ports: []int32{80}, Ready: false, Serving: true, Node: "n2", Pod: "default/web-b"},
					}}},
				Pods: []Pod{{Namespace: "default", Name: "web-a", Node: "n1", IP: "10.244.0.2", Phase: "Running", Ready: true},
					{Namespace: "default", Name: "web-b", Node: "n2", IP: "10.244.1.2", Phase: "Running"}},
			},
		},
		{
			name: "NodePort, ExternalName and a slice of another namespace's same-named service",
			svcs: []*corev1.Service{svc("b", "np", corev1.ServiceTypeNodePort, "10.96.0.9", corev1.ServicePort{Port: 80, NodePort: 30080}),
				{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "np"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "www.example.com"}}},
			slices: []*discoveryv1.EndpointSlice{slice("c", "np", "np-x", ep("10.244.0.9", "p", "n1", nil))},
			want: Graph{Namespaces: []string{}, Nodes: []Node{}, Pods: []Pod{}, Services: []Service{
				{Namespace: "a", Name: "np", Type: "ExternalName", ExternalName: "www.example.com"},
				{Namespace: "b", Name: "np", Type: "NodePort", ClusterIPs: []string{"10.96.0.9"}, Ports: []Port{{Protocol: "TCP", Port: 80, NodePort: 30080}}},
			}},
		},
		{
			name: "terminating endpoint without a pod reference",
			svcs: []*corev1.Service{svc("default", "ext", "", "10.96.0.30")},
			slices: []*discoveryv1.EndpointSlice{{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "ext-1", Labels: map[string]string{discoveryv1.LabelServiceName: "ext"}},
				Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"192.0.2.50"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(false), Serving: ptr(true), Terminating: ptr(true)}}}}},
			want: Graph{Namespaces: []string{}, Nodes: []Node{}, Pods: []Pod{}, Services: []Service{
				{Namespace: "default", Name: "ext", Type: "ClusterIP", ClusterIPs: []string{"10.96.0.30"}, Slices: []string{"ext-1"},
					Endpoints: []Endpoint{{Slice: "ext-1", Address: "192.0.2.50", Serving: true, Terminating: true}}},
			}},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Build(c.ns, c.svcs, c.slices, c.pods, c.nodes)
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("Build:\n got %+v\nwant %+v", got, c.want)
			}
		})
	}
}

func TestAssets(t *testing.T) {
	for _, f := range []string{"web/index.html", "web/app.js"} {
		if _, err := Assets.ReadFile(f); err != nil {
			t.Error(err)
		}
	}
}
