package endpoints

import (
	"fmt"
	"sort"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// hints renders each endpoint's hints as "ip:zones/nodes", sorted.
func hints(slices []*discoveryv1.EndpointSlice) []string {
	var out []string
	for _, s := range slices {
		for _, e := range s.Endpoints {
			var zones, nodes []string
			if e.Hints != nil {
				for _, z := range e.Hints.ForZones {
					zones = append(zones, z.Name)
				}
				for _, n := range e.Hints.ForNodes {
					nodes = append(nodes, n.Name)
				}
			}
			out = append(out, fmt.Sprintf("%s:%v/%v", e.Addresses[0], zones, nodes))
		}
	}
	sort.Strings(out)
	return out
}

// TestTopologyHints: trafficDistribution PreferClose / PreferSameZone hints each
// ready endpoint for its node's zone, PreferSameNode also for its node; not-ready
// endpoints and unset trafficDistribution carry none (as Kubernetes' controller).
func TestTopologyHints(t *testing.T) {
	nodes := map[string]*corev1.Node{
		"node-a": {ObjectMeta: metav1.ObjectMeta{Name: "node-a", Labels: map[string]string{corev1.LabelTopologyZone: "z1"}}},
		"node-b": {ObjectMeta: metav1.ObjectMeta{Name: "node-b", Labels: map[string]string{corev1.LabelTopologyZone: "z2"}}},
		"node-c": {ObjectMeta: metav1.ObjectMeta{Name: "node-c"}}, // no zone label
	}
	on := func(n string) func(*corev1.Pod) { return func(p *corev1.Pod) { p.Spec.NodeName = n } }
	pods := []*corev1.Pod{pod("a", "10.0.0.1", true, 8080, on("node-a")), pod("b", "10.0.0.2", true, 8080, on("node-b")),
		pod("c", "10.0.0.3", true, 8080, on("node-c")), pod("d", "10.0.0.4", false, 8080, on("node-a"))}
	for _, c := range []struct {
		dist string
		want string
	}{
		{"", "[10.0.0.1:[]/[] 10.0.0.2:[]/[] 10.0.0.3:[]/[] 10.0.0.4:[]/[]]"},
		{corev1.ServiceTrafficDistributionPreferClose, "[10.0.0.1:[z1]/[] 10.0.0.2:[z2]/[] 10.0.0.3:[]/[] 10.0.0.4:[]/[]]"},
		{corev1.ServiceTrafficDistributionPreferSameZone, "[10.0.0.1:[z1]/[] 10.0.0.2:[z2]/[] 10.0.0.3:[]/[] 10.0.0.4:[]/[]]"},
		{corev1.ServiceTrafficDistributionPreferSameNode, "[10.0.0.1:[z1]/[node-a] 10.0.0.2:[z2]/[node-b] 10.0.0.3:[]/[node-c] 10.0.0.4:[]/[]]"},
	} {
		t.Run(c.dist, func(t *testing.T) {
			svc := service(func(s *corev1.Service) {
				if c.dist != "" {
					s.Spec.TrafficDistribution = ptr.To(c.dist)
				}
			})
			plan := PlanServiceSlices(svc, pods, nodes, nil, 100, "")
			if got := fmt.Sprint(hints(plan.Create)); got != c.want {
				t.Errorf("hints %s, want %s", got, c.want)
			}
			// Stored as planned: nothing more to write.
			if again := PlanServiceSlices(svc, pods, nodes, apply(nil, plan), 100, ""); !again.Empty() {
				t.Errorf("steady state writes %d updates", len(again.Update))
			}
		})
	}
	// Switching PreferClose off removes the hints in one update.
	close := service(func(s *corev1.Service) {
		s.Spec.TrafficDistribution = ptr.To(corev1.ServiceTrafficDistributionPreferClose)
	})
	stored := apply(nil, PlanServiceSlices(close, pods, nodes, nil, 100, ""))
	plan := PlanServiceSlices(service(), pods, nodes, stored, 100, "")
	if len(plan.Update) != 1 || fmt.Sprint(hints(plan.Update)) != "[10.0.0.1:[]/[] 10.0.0.2:[]/[] 10.0.0.3:[]/[] 10.0.0.4:[]/[]]" {
		t.Errorf("PreferClose removed: %d updates, hints %v", len(plan.Update), hints(plan.Update))
	}
}
