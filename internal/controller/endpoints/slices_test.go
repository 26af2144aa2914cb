package endpoints

import (
	"fmt"
	"sort"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func service(mut ...func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: "svc-uid", Labels: map[string]string{"team": "a"}},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, IPFamilies: []corev1.IPFamily{corev1.IPv4Protocol},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString("http")}}}}
	for _, m := range mut {
		m(s)
	}
	return s
}

// pod makes a pod with an IP; port is its container port named "http" (0: none).
func pod(name, ip string, ready bool, port int32, mut ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID(name + "-uid"), Labels: map[string]string{"app": "web"}},
		Spec:   corev1.PodSpec{NodeName: "node-a", Containers: []corev1.Container{{Name: "c"}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip}}
	if port != 0 {
		p.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: port, Protocol: corev1.ProtocolTCP}}
	}
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}
	for _, m := range mut {
		m(p)
	}
	return p
}

func terminating(p *corev1.Pod) { t := metav1.Now(); p.DeletionTimestamp = &t }

// summary renders slices as "ports: ip(r/s/t) ..." lines, sorted, for comparison.
func summary(slices []*discoveryv1.EndpointSlice) []string {
	var out []string
	for _, s := range slices {
		line := portKey(s.Ports) + ":"
		for _, e := range s.Endpoints {
			c := e.Conditions
			line += fmt.Sprintf(" %s(%v/%v/%v)", e.Addresses[0], *c.Ready, c.Serving != nil && *c.Serving, c.Terminating != nil && *c.Terminating)
		}
		out = append(out, line)
	}
	sort.Strings(out)
	return out
}

func apply(existing []*discoveryv1.EndpointSlice, p Plan) []*discoveryv1.EndpointSlice {
	byName := map[string]*discoveryv1.EndpointSlice{}
	for _, s := range existing {
		byName[s.Name] = s
	}
	for _, s := range p.Delete {
		delete(byName, s.Name)
	}
	for _, s := range p.Update {
		byName[s.Name] = s
	}
	for i, s := range p.Create {
		c := s.DeepCopy()
		c.Name = fmt.Sprintf("%s%d-%d", s.GenerateName, len(byName), i)
		byName[c.Name] = c
	}
	var out []*discoveryv1.EndpointSlice
	for _, s := range byName {
		out = append(out, s)
	}
	return out
}

func TestPlanServiceSlices(t *testing.T) {
	cases := []struct {
		name string
		svc  *corev1.Service
		pods []*corev1.Pod
		want []string
	}{
		{"ready and not ready", service(), []*corev1.Pod{pod("a", "10.0.0.1", true, 8080), pod("b", "10.0.0.2", false, 8080)},
			[]string{"http/TCP/8080: 10.0.0.1(true/true/false) 10.0.0.2(false/false/false)"}},
		{"named port differs per pod", service(), []*corev1.Pod{pod("a", "10.0.0.1", true, 8080), pod("b", "10.0.0.2", true, 9090)},
			[]string{"http/TCP/8080: 10.0.0.1(true/true/false)", "http/TCP/9090: 10.0.0.2(true/true/false)"}},
		{"pod without the port name left out", service(), []*corev1.Pod{pod("a", "10.0.0.1", true, 8080), pod("b", "10.0.0.2", true, 0)},
			[]string{"http/TCP/8080: 10.0.0.1(true/true/false)"}},
		{"terminating pod stays serving", service(), []*corev1.Pod{pod("a", "10.0.0.1", true, 8080, terminating)},
			[]string{"http/TCP/8080: 10.0.0.1(false/true/true)"}},
		{"publishNotReadyAddresses", service(func(s *corev1.Service) { s.Spec.PublishNotReadyAddresses = true }),
			[]*corev1.Pod{pod("a", "10.0.0.1", false, 8080)}, []string{"http/TCP/8080: 10.0.0.1(true/false/false)"}},
		{"no IP, finished pods skipped", service(), []*corev1.Pod{pod("a", "", true, 8080),
			pod("b", "10.0.0.2", true, 8080, func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded })}, []string{":"}},
		{"numeric targetPort", service(func(s *corev1.Service) { s.Spec.Ports[0].TargetPort = intstr.FromInt32(7000) }),
			[]*corev1.Pod{pod("a", "10.0.0.1", true, 0)}, []string{"http/TCP/7000: 10.0.0.1(true/true/false)"}},
		{"headless without ports", service(func(s *corev1.Service) { s.Spec.ClusterIP = "None"; s.Spec.Ports = nil }),
			[]*corev1.Pod{pod("a", "10.0.0.1", true, 0)}, []string{": 10.0.0.1(true/true/false)"}},
		{"no pods: placeholder", service(), nil, []string{":"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			plan := PlanServiceSlices(c.svc, c.pods, nil, nil, 100, "")
			got := summary(apply(nil, plan))
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Fatalf("slices\n got %q\nwant %q", got, c.want)
			}
			for _, s := range plan.Create {
				if s.Labels[discoveryv1.LabelServiceName] != "web" || s.Labels[discoveryv1.LabelManagedBy] != ManagedBy || s.Labels["team"] != "a" ||
					s.OwnerReferences[0].UID != "svc-uid" || s.GenerateName != "web-" {
					t.Fatalf("slice metadata %+v", s.ObjectMeta)
				}
			}
		})
	}
}

func TestSlicesOfAHundredAndStableUpdates(t *testing.T) {
	svc := service()
	var pods []*corev1.Pod
	for i := 0; i < 250; i++ {
		pods = append(pods, pod(fmt.Sprintf("p%03d", i), fmt.Sprintf("10.1.%d.%d", i/200, i%200+1), true, 8080))
	}
	slices := apply(nil, PlanServiceSlices(svc, pods, nil, nil, 100, ""))
	var sizes []int
	for _, s := range slices {
		sizes = append(sizes, len(s.Endpoints))
	}
	sort.Ints(sizes)
	if fmt.Sprint(sizes) != "[50 100 100]" {
		t.Fatalf("250 pods -> slice sizes %v, want [50 100 100]", sizes)
	}
	// One more pod: one slice changes, nothing is created or deleted.
	pods = append(pods, pod("new", "10.2.0.1", true, 8080))
	plan := PlanServiceSlices(svc, pods, nil, slices, 100, "2026-01-01T00:00:00Z")
	if len(plan.Create) != 0 || len(plan.Delete) != 0 || len(plan.Update) != 1 || len(plan.Update[0].Endpoints) != 51 {
		t.Fatalf("adding one pod: create %d update %d delete %d", len(plan.Create), len(plan.Update), len(plan.Delete))
	}
	if plan.Update[0].Annotations[AnnotationTrigger] != "2026-01-01T00:00:00Z" {
		t.Fatalf("trigger annotation %v", plan.Update[0].Annotations)
	}
	slices = apply(slices, plan)
	// A readiness flip of one pod updates exactly the slice holding it.
	pods[7] = pod(pods[7].Name, pods[7].Status.PodIP, false, 8080)
	plan = PlanServiceSlices(svc, pods, nil, slices, 100, "")
	if len(plan.Update) != 1 || len(plan.Create)+len(plan.Delete) != 0 {
		t.Fatalf("readiness flip: create %d update %d delete %d", len(plan.Create), len(plan.Update), len(plan.Delete))
	}
	slices = apply(slices, plan)
	// Nothing changed: nothing to write.
	if plan := PlanServiceSlices(svc, pods, nil, slices, 100, ""); !plan.Empty() {
		t.Fatalf("steady state plan not empty: %+v", plan)
	}
	// All pods gone: one placeholder remains.
	plan = PlanServiceSlices(svc, nil, nil, slices, 100, "")
	if got := summary(apply(slices, plan)); fmt.Sprint(got) != "[:]" || len(plan.Create) != 0 {
		t.Fatalf("no pods: %v (creates %d)", got, len(plan.Create))
	}
}

func TestZoneAndHostname(t *testing.T) {
	svc := service(func(s *corev1.Service) { s.Spec.ClusterIP = "None" })
	p := pod("a", "10.0.0.1", true, 8080, func(p *corev1.Pod) { p.Spec.Hostname, p.Spec.Subdomain = "db-0", "web" })
	nodes := map[string]*corev1.Node{"node-a": {ObjectMeta: metav1.ObjectMeta{Name: "node-a", Labels: map[string]string{corev1.LabelTopologyZone: "z1"}}}}
	s := PlanServiceSlices(svc, []*corev1.Pod{p}, nodes, nil, 100, "").Create[0]
	e := s.Endpoints[0]
	if *e.Zone != "z1" || *e.NodeName != "node-a" || *e.Hostname != "db-0" || e.TargetRef.Name != "a" {
		t.Fatalf("endpoint %+v", e)
	}
	if _, ok := s.Labels[LabelHeadless]; !ok {
		t.Fatalf("headless label missing: %v", s.Labels)
	}
}

func TestDesiredEndpoints(t *testing.T) {
	svc := service()
	pods := []*corev1.Pod{pod("b", "10.0.0.2", false, 8080), pod("a", "10.0.0.1", true, 8080), pod("c", "10.0.0.3", true, 9090),
		pod("d", "10.0.0.4", true, 8080, terminating)}
	ep := DesiredEndpoints(svc, pods)
	if len(ep.Subsets) != 2 {
		t.Fatalf("subsets %+v", ep.Subsets)
	}
	s0 := ep.Subsets[0]
	if s0.Ports[0].Port != 8080 || len(s0.Addresses) != 1 || s0.Addresses[0].IP != "10.0.0.1" || len(s0.NotReadyAddresses) != 1 || s0.NotReadyAddresses[0].IP != "10.0.0.2" {
		t.Fatalf("subset 0 %+v", s0)
	}
	if ep.Labels[LabelEndpointsBy] != EndpointsManagedBy || ep.Labels["team"] != "a" {
		t.Fatalf("labels %v", ep.Labels)
	}
	// publishNotReadyAddresses: every pod, terminating ones too, is an address.
	svc.Spec.PublishNotReadyAddresses = true
	ep = DesiredEndpoints(svc, pods)
	if n := len(ep.Subsets[0].Addresses); n != 3 {
		t.Fatalf("publishNotReady addresses %d, want 3", n)
	}
	// Over capacity: truncated at 1000 with Kubernetes' annotation.
	var many []*corev1.Pod
	for i := 0; i < 1001; i++ {
		many = append(many, pod(fmt.Sprint(i), fmt.Sprintf("10.3.%d.%d", i/250, i%250+1), true, 8080))
	}
	ep = DesiredEndpoints(service(), many)
	if len(ep.Subsets[0].Addresses) != 1000 || ep.Annotations[AnnotationOverCap] != "truncated" {
		t.Fatalf("over capacity: %d addresses, annotations %v", len(ep.Subsets[0].Addresses), ep.Annotations)
	}
}

func TestMirror(t *testing.T) {
	svc := service(func(s *corev1.Service) { s.Spec.Selector = nil })
	ep := &corev1.Endpoints{Subsets: []corev1.EndpointSubset{{
		Addresses:         []corev1.EndpointAddress{{IP: "192.0.2.10"}},
		NotReadyAddresses: []corev1.EndpointAddress{{IP: "192.0.2.11"}},
		Ports:             []corev1.EndpointPort{{Name: "pg", Port: 5432}}}}}
	plan := PlanMirrorSlices(svc, ep, nil, 100)
	if got := summary(plan.Create); fmt.Sprint(got) != "[pg/TCP/5432: 192.0.2.10(true/false/false) 192.0.2.11(false/false/false)]" {
		t.Fatalf("mirror %v", got)
	}
	if plan.Create[0].Labels[discoveryv1.LabelManagedBy] != MirrorManagedBy {
		t.Fatalf("mirror label %v", plan.Create[0].Labels)
	}
}

func TestFindPortSidecar(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	p := &corev1.Pod{Spec: corev1.PodSpec{
		Containers: []corev1.Container{{Name: "app", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 80}}}},
		InitContainers: []corev1.Container{
			{Name: "once", Ports: []corev1.ContainerPort{{Name: "setup", ContainerPort: 9000}}},
			{Name: "side", RestartPolicy: &always, Ports: []corev1.ContainerPort{{Name: "http-sidecar", ContainerPort: 8080}}},
		}}}
	for _, tc := range []struct {
		name string
		want int32
		ok   bool
	}{{"http", 80, true}, {"http-sidecar", 8080, true}, {"setup", 0, false}} {
		got, ok := FindPort(p, corev1.ServicePort{Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString(tc.name)})
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: %d %v, want %d %v (a regular init container's ports are not endpoints)", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}
