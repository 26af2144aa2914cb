package printers

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func cells(t *testing.T, kind string, obj runtime.Object) []any {
	t.Helper()
	row, err := Row(kind, obj, "None", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return row.Cells
}

func TestServiceCells(t *testing.T) {
	created := metav1.NewTime(time.Now().Add(-90 * time.Second))
	cases := []struct {
		name string
		svc  corev1.Service
		want []any // TYPE, CLUSTER-IP, EXTERNAL-IP, PORT(S), AGE, SELECTOR
	}{
		{"nodeport", corev1.Service{Spec: corev1.ServiceSpec{Type: "NodePort", ClusterIP: "10.96.1.2", Selector: map[string]string{"app": "web"},
			Ports: []corev1.ServicePort{{Port: 8080, NodePort: 31775, Protocol: "TCP"}, {Port: 53, Protocol: "UDP"}}}},
			[]any{"NodePort", "10.96.1.2", "<none>", "8080:31775/TCP,53/UDP", "90s", "app=web"}},
		{"lb pending", corev1.Service{Spec: corev1.ServiceSpec{Type: "LoadBalancer", ClusterIP: "10.96.1.3", Ports: []corev1.ServicePort{{Port: 80, NodePort: 30001, Protocol: "TCP"}}}},
			[]any{"LoadBalancer", "10.96.1.3", "<pending>", "80:30001/TCP", "90s", "<none>"}},
		{"lb ready", corev1.Service{Spec: corev1.ServiceSpec{Type: "LoadBalancer", ClusterIP: "10.96.1.3"},
			Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "192.0.2.9"}}}}},
			[]any{"LoadBalancer", "10.96.1.3", "192.0.2.9", "<none>", "90s", "<none>"}},
		{"externalname", corev1.Service{Spec: corev1.ServiceSpec{Type: "ExternalName", ExternalName: "db.example.com"}},
			[]any{"ExternalName", "<none>", "db.example.com", "<none>", "90s", "<none>"}},
		{"headless with external IPs", corev1.Service{Spec: corev1.ServiceSpec{Type: "ClusterIP", ClusterIP: "None", ExternalIPs: []string{"192.0.2.1", "192.0.2.2"}}},
			[]any{"ClusterIP", "None", "192.0.2.1,192.0.2.2", "<none>", "90s", "<none>"}},
	}
	for _, c := range cases {
		c.svc.Name, c.svc.CreationTimestamp = "s", created
		got := cells(t, "Service", &c.svc)[1:]
		for i := range c.want {
			if got[i] != c.want[i] {
				t.Errorf("%s: column %d = %v, want %v (row %v)", c.name, i+1, got[i], c.want[i], got)
			}
		}
	}
}

func TestEndpointsAndPods(t *testing.T) {
	ep := &corev1.Endpoints{Subsets: []corev1.EndpointSubset{{
		Addresses: []corev1.EndpointAddress{{IP: "10.244.0.5"}, {IP: "10.244.0.6"}, {IP: "10.244.1.7"}, {IP: "10.244.1.8"}},
		Ports:     []corev1.EndpointPort{{Port: 8080}}}}}
	if got := FormatEndpoints(ep); got != "10.244.0.5:8080,10.244.0.6:8080,10.244.1.7:8080 + 1 more..." {
		t.Errorf("endpoints = %q", got)
	}
	if got := FormatEndpoints(&corev1.Endpoints{}); got != "<none>" {
		t.Errorf("empty endpoints = %q", got)
	}
	pod := &corev1.Pod{Spec: corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "a"}, {Name: "b"}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.244.0.5", ContainerStatuses: []corev1.ContainerStatus{
			{Name: "a", Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}},
			{Name: "b", RestartCount: 2, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}}}}}
	c := cells(t, "Pod", pod)
	if c[1] != "1/2" || c[2] != "CrashLoopBackOff" || c[3] != "2" || c[5] != "10.244.0.5" || c[6] != "n1" {
		t.Errorf("pod row %v", c)
	}
	now := metav1.Now()
	pod.DeletionTimestamp = &now
	if c := cells(t, "Pod", pod); c[2] != "Terminating" {
		t.Errorf("terminating pod status %v", c[2])
	}
}

func TestServiceAccountAndReplicationControllerCells(t *testing.T) {
	created := metav1.NewTime(time.Now().Add(-2 * time.Minute))
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", CreationTimestamp: created},
		Secrets: []corev1.ObjectReference{{Name: "tok"}}}
	if got, want := fmt.Sprint(cells(t, "ServiceAccount", sa)), "[default 1 2m]"; got != want {
		t.Errorf("service account row %s, want %s", got, want)
	}
	if cols := Columns("ServiceAccount"); len(cols) != 3 || cols[1].Name != "Secrets" {
		t.Errorf("service account columns %+v", cols)
	}
	n := int32(3)
	rc := &corev1.ReplicationController{ObjectMeta: metav1.ObjectMeta{Name: "web", CreationTimestamp: created},
		Spec: corev1.ReplicationControllerSpec{Replicas: &n, Selector: map[string]string{"app": "web"},
			Template: &corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a", Image: "img:1"}, {Name: "b", Image: "img:2"}}}}},
		Status: corev1.ReplicationControllerStatus{Replicas: 2, ReadyReplicas: 1}}
	if got, want := fmt.Sprint(cells(t, "ReplicationController", rc)), "[web 3 2 1 2m a,b img:1,img:2 app=web]"; got != want {
		t.Errorf("replication controller row %s, want %s", got, want)
	}
	var names []string
	for _, c := range Columns("ReplicationController") {
		if c.Priority == 0 {
			names = append(names, c.Name)
		}
	}
	if got := fmt.Sprint(names); got != "[Name Desired Current Ready Age]" {
		t.Errorf("replication controller columns %s", got)
	}
}

func TestPodInitStatus(t *testing.T) {
	now := time.Now()
	pod := func(init ...corev1.ContainerStatus) *corev1.Pod {
		p := &corev1.Pod{Spec: corev1.PodSpec{InitContainers: []corev1.Container{{Name: "a"}, {Name: "b"}}, Containers: []corev1.Container{{Name: "app"}}},
			Status: corev1.PodStatus{Phase: corev1.PodPending, InitContainerStatuses: init,
				ContainerStatuses: []corev1.ContainerStatus{{Name: "app", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "PodInitializing"}}}}}}
		return p
	}
	done := corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed"}}
	running := corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	for _, tt := range []struct {
		p    *corev1.Pod
		want string
	}{
		{pod(corev1.ContainerStatus{Name: "a", State: running}, corev1.ContainerStatus{Name: "b"}), "Init:0/2"},
		{pod(corev1.ContainerStatus{Name: "a", State: done}, corev1.ContainerStatus{Name: "b", State: running}), "Init:1/2"},
		{pod(corev1.ContainerStatus{Name: "a", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error"}}}, corev1.ContainerStatus{Name: "b"}), "Init:Error"},
		{pod(corev1.ContainerStatus{Name: "a", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}}, corev1.ContainerStatus{Name: "b"}), "Init:CrashLoopBackOff"},
		{pod(corev1.ContainerStatus{Name: "a", State: done}, corev1.ContainerStatus{Name: "b", State: done}), "PodInitializing"},
	} {
		if got := podCells(tt.p, now)[2]; got != tt.want {
			t.Errorf("STATUS = %v, want %s", got, tt.want)
		}
	}
}
