package endpoints

import (
	"sort"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/endpointslice/trafficdist"

	podstatus "github.com/svcnet/svcnet/internal/pod"
)

// DefaultMaxPerSlice is Kubernetes' default --max-endpoints-per-slice.
const DefaultMaxPerSlice = 100

// group is the endpoints sharing one set of ports.
type group struct {
	ports []discoveryv1.EndpointPort
	eps   map[string]discoveryv1.Endpoint // by first address
}

// Plan is what to write so the stored slices match the desired ones.
type Plan struct {
	Create, Update, Delete []*discoveryv1.EndpointSlice
}

// Empty reports whether the plan writes nothing.
func (p Plan) Empty() bool { return len(p.Create)+len(p.Update)+len(p.Delete) == 0 }

func addressType(svc *corev1.Service) discoveryv1.AddressType {
	if family(svc) == corev1.IPv6Protocol {
		return discoveryv1.AddressTypeIPv6
	}
	return discoveryv1.AddressTypeIPv4
}

// podGroups turns a Service's pods into endpoints grouped by their resolved ports.
// Ready pods are ready; terminating pods stay as serving/terminating endpoints so
// proxies can fall back to them; publishNotReadyAddresses makes everything ready.
func podGroups(svc *corev1.Service, pods []*corev1.Pod, nodes map[string]*corev1.Node) map[string]*group {
	groups := map[string]*group{}
	fam := family(svc)
	for _, p := range pods {
		if !included(p, true) {
			continue
		}
		ip := podIP(p, fam)
		if ip == "" {
			continue
		}
		var ports []discoveryv1.EndpointPort
		for _, sp := range svc.Spec.Ports {
			n, ok := FindPort(p, sp)
			if !ok {
				continue
			}
			name, proto := sp.Name, sp.Protocol
			ports = append(ports, discoveryv1.EndpointPort{Name: &name, Port: &n, Protocol: &proto, AppProtocol: sp.AppProtocol})
		}
		if len(svc.Spec.Ports) > 0 && len(ports) == 0 {
			continue
		}
		serving := podstatus.Ready(p.Status)
		terminating := p.DeletionTimestamp != nil
		ready := svc.Spec.PublishNotReadyAddresses || (serving && !terminating)
		ep := discoveryv1.Endpoint{
			Addresses:  []string{ip},
			Conditions: discoveryv1.EndpointConditions{Ready: &ready, Serving: &serving, Terminating: &terminating},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: p.Namespace, Name: p.Name, UID: p.UID},
		}
		if p.Spec.NodeName != "" {
			n := p.Spec.NodeName
			ep.NodeName = &n
			if node := nodes[n]; node != nil {
				if z := node.Labels[corev1.LabelTopologyZone]; z != "" {
					ep.Zone = &z
				}
			}
		}
		if p.Spec.Hostname != "" && p.Spec.Subdomain == svc.Name {
			h := p.Spec.Hostname
			ep.Hostname = &h
		}
		k := portKey(ports)
		g := groups[k]
		if g == nil {
			g = &group{ports: ports, eps: map[string]discoveryv1.Endpoint{}}
			groups[k] = g
		}
		g.eps[ip] = ep
	}
	return groups
}

// mirrorGroups turns user-managed Endpoints of a selectorless Service into slice
// endpoints, as Kubernetes' EndpointSlice mirroring controller does.
func mirrorGroups(svc *corev1.Service, ep *corev1.Endpoints) map[string]*group {
	groups := map[string]*group{}
	fam := family(svc)
	for _, ss := range ep.Subsets {
		var ports []discoveryv1.EndpointPort
		for _, p := range ss.Ports {
			name, port, proto := p.Name, p.Port, p.Protocol
			if proto == "" {
				proto = corev1.ProtocolTCP
			}
			ports = append(ports, discoveryv1.EndpointPort{Name: &name, Port: &port, Protocol: &proto, AppProtocol: p.AppProtocol})
		}
		k := portKey(ports)
		g := groups[k]
		if g == nil {
			g = &group{ports: ports, eps: map[string]discoveryv1.Endpoint{}}
			groups[k] = g
		}
		add := func(a corev1.EndpointAddress, ready bool) {
			ip := a.IP
			if parsed := podIP(&corev1.Pod{Status: corev1.PodStatus{PodIP: ip}}, fam); parsed == "" {
				return
			}
			e := discoveryv1.Endpoint{Addresses: []string{ip}, TargetRef: a.TargetRef, NodeName: a.NodeName,
				Conditions: discoveryv1.EndpointConditions{Ready: &ready}}
			if a.Hostname != "" {
				h := a.Hostname
				e.Hostname = &h
			}
			g.eps[ip] = e
		}
		for _, a := range ss.Addresses {
			add(a, true)
		}
		for _, a := range ss.NotReadyAddresses {
			add(a, false)
		}
	}
	return groups
}

// sliceMeta is the metadata every slice of the Service carries.
func sliceMeta(svc *corev1.Service, managedBy string) metav1.ObjectMeta {
	labels := serviceLabels(svc)
	labels[discoveryv1.LabelServiceName] = svc.Name
	labels[discoveryv1.LabelManagedBy] = managedBy
	t := true
	return metav1.ObjectMeta{
		GenerateName: svc.Name + "-",
		Namespace:    svc.Namespace,
		Labels:       labels,
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Service", Name: svc.Name, UID: svc.UID,
			Controller: &t, BlockOwnerDeletion: &t}},
	}
}

// planSlices packs the desired endpoints into at most maxPer per slice, keeping
// every endpoint in the slice that already holds it (so a change touches as few
// slices as possible), filling existing slices before creating new ones, and
// keeping one empty placeholder slice when there are no endpoints at all.
// Topology hints follow trafficDistribution (nil: none), as Kubernetes sets them.
func planSlices(svc *corev1.Service, groups map[string]*group, existing []*discoveryv1.EndpointSlice, maxPer int, managedBy, trigger string, trafficDistribution *string) Plan {
	if maxPer <= 0 {
		maxPer = DefaultMaxPerSlice
	}
	meta := sliceMeta(svc, managedBy)
	at := addressType(svc)
	var plan Plan
	byKey := map[string][]*discoveryv1.EndpointSlice{}
	for _, s := range existing {
		if s.AddressType != at {
			plan.Delete = append(plan.Delete, s)
			continue
		}
		k := portKey(s.Ports)
		byKey[k] = append(byKey[k], s)
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var kept []*discoveryv1.EndpointSlice
	fresh := func(ports []discoveryv1.EndpointPort) *discoveryv1.EndpointSlice {
		s := &discoveryv1.EndpointSlice{ObjectMeta: *meta.DeepCopy(), AddressType: at, Ports: ports, Endpoints: []discoveryv1.Endpoint{}}
		if trigger != "" {
			s.Annotations = map[string]string{AnnotationTrigger: trigger}
		}
		return s
	}
	for _, k := range keys {
		g := groups[k]
		slices := byKey[k]
		delete(byKey, k)
		sort.Slice(slices, func(i, j int) bool { return slices[i].Name < slices[j].Name })
		remaining := make(map[string]discoveryv1.Endpoint, len(g.eps))
		for a, e := range g.eps {
			remaining[a] = e
		}
		var work []*discoveryv1.EndpointSlice
		for _, s := range slices {
			c := s.DeepCopy()
			c.Endpoints = c.Endpoints[:0]
			for _, e := range s.Endpoints {
				if len(e.Addresses) == 0 {
					continue
				}
				if want, ok := remaining[e.Addresses[0]]; ok && len(c.Endpoints) < maxPer {
					c.Endpoints = append(c.Endpoints, want)
					delete(remaining, e.Addresses[0])
				}
			}
			c.Ports = g.ports
			work = append(work, c)
		}
		addrs := make([]string, 0, len(remaining))
		for a := range remaining {
			addrs = append(addrs, a)
		}
		sort.Strings(addrs)
		for _, a := range addrs {
			var target *discoveryv1.EndpointSlice
			for _, s := range work {
				if len(s.Endpoints) < maxPer {
					target = s
					break
				}
			}
			if target == nil {
				target = fresh(g.ports)
				work = append(work, target)
			}
			target.Endpoints = append(target.Endpoints, remaining[a])
		}
		for _, s := range work {
			if s.Name == "" {
				plan.Create = append(plan.Create, s)
				continue
			}
			if len(s.Endpoints) == 0 {
				plan.Delete = append(plan.Delete, s)
				continue
			}
			kept = append(kept, s)
		}
	}
	for _, rest := range byKey {
		plan.Delete = append(plan.Delete, rest...)
	}
	if len(kept)+len(plan.Create) == 0 {
		// No endpoints: one placeholder slice without ports says so.
		if len(plan.Delete) > 0 {
			reuse := plan.Delete[0]
			plan.Delete = plan.Delete[1:]
			c := reuse.DeepCopy()
			c.Ports, c.Endpoints, c.AddressType = nil, []discoveryv1.Endpoint{}, at
			kept = append(kept, c)
		} else {
			plan.Create = append(plan.Create, fresh(nil))
		}
	}
	// With PreferClose / PreferSameZone every ready endpoint is hinted for its
	// own zone (PreferSameNode: and its node), else hints are removed; set on
	// the desired slices before comparing, so unchanged hints write nothing.
	trafficdist.ReconcileHints(trafficDistribution, append(kept[:len(kept):len(kept)], plan.Create...), nil, nil)
	orig := map[string]*discoveryv1.EndpointSlice{}
	for _, s := range existing {
		orig[s.Name] = s
	}
	for _, s := range kept {
		o := orig[s.Name]
		s.Labels = mergeLabels(s.Labels, meta.Labels)
		s.OwnerReferences = meta.OwnerReferences
		if o != nil && sameSlice(o, s) {
			continue
		}
		if trigger != "" {
			if s.Annotations == nil {
				s.Annotations = map[string]string{}
			}
			s.Annotations[AnnotationTrigger] = trigger
		}
		plan.Update = append(plan.Update, s)
	}
	return plan
}

// mergeLabels sets want on top of have (keeping labels others added).
func mergeLabels(have, want map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range have {
		out[k] = v
	}
	for k, v := range want {
		out[k] = v
	}
	return out
}

func sameSlice(a, b *discoveryv1.EndpointSlice) bool {
	return a.AddressType == b.AddressType &&
		apiequality.Semantic.DeepEqual(a.Ports, b.Ports) &&
		apiequality.Semantic.DeepEqual(a.Endpoints, b.Endpoints) &&
		apiequality.Semantic.DeepEqual(a.Labels, b.Labels) &&
		apiequality.Semantic.DeepEqual(a.OwnerReferences, b.OwnerReferences)
}

// PlanServiceSlices plans the slices of a Service with a selector.
func PlanServiceSlices(svc *corev1.Service, pods []*corev1.Pod, nodes map[string]*corev1.Node, existing []*discoveryv1.EndpointSlice, maxPer int, trigger string) Plan {
	return planSlices(svc, podGroups(svc, pods, nodes), existing, maxPer, ManagedBy, trigger, svc.Spec.TrafficDistribution)
}

// PlanMirrorSlices plans the slices mirroring a selectorless Service's Endpoints.
func PlanMirrorSlices(svc *corev1.Service, ep *corev1.Endpoints, existing []*discoveryv1.EndpointSlice, maxPer int) Plan {
	return planSlices(svc, mirrorGroups(svc, ep), existing, maxPer, MirrorManagedBy, "", nil)
}
