package apiserver

import (
	"context"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/svcnet/svcnet/internal/registry"
)

const netv1 = "/apis/networking.k8s.io/v1/"

func TestPlanServiceCIDR(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	sc := func(name string, deletedAgo time.Duration, ready bool, cidrs ...string) *networkingv1.ServiceCIDR {
		s := &networkingv1.ServiceCIDR{ObjectMeta: metav1.ObjectMeta{Name: name, Finalizers: []string{registry.ServiceCIDRFinalizer}},
			Spec: networkingv1.ServiceCIDRSpec{CIDRs: cidrs}}
		if deletedAgo > 0 {
			t := metav1.NewTime(now.Add(-deletedAgo))
			s.DeletionTimestamp = &t
		}
		if ready {
			s.Status.Conditions = []metav1.Condition{readyCondition()}
		}
		return s
	}
	ips := func(ss ...string) (out []netip.Addr) {
		for _, s := range ss {
			out = append(out, netip.MustParseAddr(s))
		}
		return out
	}
	def := sc("kubernetes", 0, true, "10.96.0.0/12")
	cases := []struct {
		name  string
		sc    *networkingv1.ServiceCIDR
		all   []*networkingv1.ServiceCIDR
		ips   []netip.Addr
		check func(serviceCIDRPlan) bool
	}{
		{"new: becomes ready", sc("extra", 0, false, "10.200.0.0/24"), nil, nil,
			func(p serviceCIDRPlan) bool {
				return p.condition != nil && p.condition.Status == metav1.ConditionTrue && !p.addFinalizer
			}},
		{"ready: nothing to do", sc("extra", 0, true, "10.200.0.0/24"), nil, nil,
			func(p serviceCIDRPlan) bool { return reflect.DeepEqual(p, serviceCIDRPlan{}) }},
		{"finalizer removed by a user: added back", func() *networkingv1.ServiceCIDR {
			s := sc("extra", 0, true, "10.200.0.0/24")
			s.Finalizers = nil
			return s
		}(), nil, nil, func(p serviceCIDRPlan) bool { return p.addFinalizer }},
		{"deleted with an IP in it: held, terminating", sc("extra", time.Minute, true, "10.200.0.0/24"), []*networkingv1.ServiceCIDR{def},
			ips("10.200.0.10", "10.96.0.1"), func(p serviceCIDRPlan) bool {
				return !p.removeFinalizer && p.condition != nil && p.condition.Reason == networkingv1.ServiceCIDRReasonTerminating && len(p.orphans) == 1
			}},
		{"deleted, IP covered by another live one", sc("extra", time.Minute, true, "10.96.5.0/24"), []*networkingv1.ServiceCIDR{def},
			ips("10.96.5.10"), func(p serviceCIDRPlan) bool { return p.removeFinalizer }},
		{"deleted, IP covered only by another deleted one", sc("extra", time.Minute, true, "10.200.0.0/24"),
			[]*networkingv1.ServiceCIDR{def, sc("extra2", time.Minute, true, "10.200.0.0/16")},
			ips("10.200.0.10"), func(p serviceCIDRPlan) bool { return !p.removeFinalizer && len(p.orphans) == 1 }},
		{"deleted, empty, within grace", sc("extra", 3*time.Second, true, "10.200.0.0/24"), []*networkingv1.ServiceCIDR{def}, nil,
			func(p serviceCIDRPlan) bool {
				return !p.removeFinalizer && p.after == serviceCIDRDeletionGrace-3*time.Second
			}},
		{"deleted, empty, after grace", sc("extra", time.Minute, true, "10.200.0.0/24"), []*networkingv1.ServiceCIDR{def}, nil,
			func(p serviceCIDRPlan) bool { return p.removeFinalizer }},
		{"deleted, finalizer already gone", func() *networkingv1.ServiceCIDR {
			s := sc("extra", time.Minute, true, "10.200.0.0/24")
			s.Finalizers = nil
			return s
		}(), nil, ips("10.200.0.10"), func(p serviceCIDRPlan) bool { return reflect.DeepEqual(p, serviceCIDRPlan{}) }},
	}
	for _, c := range cases {
		all := append([]*networkingv1.ServiceCIDR{c.sc}, c.all...)
		if p := planServiceCIDR(c.sc, all, c.ips, now); !c.check(p) {
			t.Errorf("%s: plan %+v", c.name, p)
		}
	}
}

// fakeClock is a settable clock for the server.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func (h *harness) poll(what string, cond func() bool) {
	h.t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 10*time.Second, true,
		func(context.Context) (bool, error) { return cond(), nil })
	if err != nil {
		h.t.Fatalf("waiting for %s: %v", what, err)
	}
}

func TestServiceCIDRsAndIPAddresses(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	h := newHarness(t, func(c *Config) { c.ServiceCIDR = "10.100.0.0/29"; c.Now = clock.now }) // 6 IPs: kubernetes + 5
	def := h.must(200, h.do("GET", netv1+"servicecidrs/kubernetes", ""))
	if def.str("spec", "cidrs") != `["10.100.0.0/29"]` || !strings.Contains(def.str("status", "conditions"), `"status":"True"`) ||
		def.str("metadata", "finalizers") != `["`+registry.ServiceCIDRFinalizer+`"]` {
		t.Fatalf("default ServiceCIDR: %s", def.body)
	}
	h.must(200, h.do("GET", netv1+"servicecidrs/kubernetes/status", ""))
	k := h.must(200, h.do("GET", netv1+"ipaddresses/10.100.0.1", ""))
	if k.str("spec", "parentRef") != `{"name":"kubernetes","namespace":"default","resource":"services"}` ||
		k.str("metadata", "labels", networkingv1.LabelManagedBy) != registry.IPAllocatorName ||
		k.str("metadata", "labels", networkingv1.LabelIPAddressFamily) != "IPv4" {
		t.Fatalf("IPAddress of the kubernetes Service: %s", k.body)
	}

	// Each Service's IP has its IPAddress, gone with the Service.
	ip := h.must(201, h.do("POST", "/api/v1/namespaces/default/services", svcBody("a", "x"))).str("spec", "clusterIP")
	h.must(200, h.do("GET", netv1+"ipaddresses/"+ip, ""))
	h.must(200, h.do("DELETE", "/api/v1/namespaces/default/services/a", ""))
	h.must(404, h.do("GET", netv1+"ipaddresses/"+ip, ""))

	// An IPAddress a user creates takes its IP; one of a Service's cannot be created.
	h.must(201, h.do("POST", netv1+"ipaddresses", `{"metadata":{"name":"10.100.0.5"},"spec":{"parentRef":{"group":"example.com","resource":"things","name":"t"}}}`))
	r := h.do("POST", "/api/v1/namespaces/default/services", `{"metadata":{"name":"b"},"spec":{"clusterIP":"10.100.0.5","ports":[{"port":80}]}}`)
	if r.code != 422 || !strings.Contains(r.str("message"), "provided IP is already allocated") {
		t.Fatalf("IP of a user's IPAddress: %d %s", r.code, r.body)
	}
	h.must(409, h.do("POST", netv1+"ipaddresses", `{"metadata":{"name":"10.100.0.1"},"spec":{"parentRef":{"resource":"things","name":"t"}}}`))
	h.must(422, h.do("POST", netv1+"ipaddresses", `{"metadata":{"name":"10.100.0.01"},"spec":{"parentRef":{"resource":"things","name":"t"}}}`))

	// Fill the default range (kubernetes, kube-dns is outside a /29, the user's IP, 4 more).
	for _, n := range []string{"s1", "s2", "s3", "s4"} {
		h.must(201, h.do("POST", "/api/v1/namespaces/default/services", svcBody(n, "x")))
	}
	r = h.do("POST", "/api/v1/namespaces/default/services", svcBody("s5", "x"))
	if r.code != 500 || !strings.Contains(r.str("message"), "range is full") {
		t.Fatalf("full default range: %d %s", r.code, r.body)
	}
	// An extra ServiceCIDR serves once Ready: next IPs come from it.
	h.must(201, h.do("POST", netv1+"servicecidrs", `{"metadata":{"name":"extra"},"spec":{"cidrs":["10.200.0.0/24"]}}`))
	h.poll("extra Ready", func() bool {
		return strings.Contains(h.do("GET", netv1+"servicecidrs/extra", "").str("status", "conditions"), `"status":"True"`)
	})
	h.poll("extra serving", func() bool {
		h.srv.alloc.mu.Lock()
		defer h.srv.alloc.mu.Unlock()
		return strings.Contains(h.srv.alloc.ips.String(), "10.200.0.0/24")
	})
	s5 := h.must(201, h.do("POST", "/api/v1/namespaces/default/services", svcBody("s5", "x"))).str("spec", "clusterIP")
	if !strings.HasPrefix(s5, "10.200.0.") {
		t.Fatalf("IP after the default is full: %s", s5)
	}
	h.must(201, h.do("POST", "/api/v1/namespaces/default/services", `{"metadata":{"name":"req"},"spec":{"clusterIP":"10.200.0.200","ports":[{"port":80}]}}`))
	r = h.do("PUT", netv1+"servicecidrs/extra", `{"metadata":{"name":"extra"},"spec":{"cidrs":["10.201.0.0/24"]}}`)
	if r.code != 422 || !strings.Contains(r.str("message"), "spec.cidrs[0]: Invalid value: \"10.201.0.0/24\": field is immutable") {
		t.Fatalf("changing cidrs: %d %s", r.code, r.body)
	}

	// Deleting it: held while s5 and req have IPs only it covers; gives no new IPs.
	h.must(200, h.do("DELETE", netv1+"servicecidrs/extra", ""))
	h.poll("extra Terminating", func() bool {
		return strings.Contains(h.do("GET", netv1+"servicecidrs/extra", "").str("status", "conditions"), networkingv1.ServiceCIDRReasonTerminating)
	})
	r = h.do("POST", "/api/v1/namespaces/default/services", `{"metadata":{"name":"req2"},"spec":{"clusterIP":"10.200.0.201","ports":[{"port":80}]}}`)
	if r.code != 422 || !strings.Contains(r.str("message"), "not in the valid range") {
		t.Fatalf("IP from a ServiceCIDR being deleted: %d %s", r.code, r.body)
	}
	h.must(200, h.do("DELETE", "/api/v1/namespaces/default/services/s5", ""))
	h.must(200, h.do("DELETE", "/api/v1/namespaces/default/services/req", ""))
	clock.add(serviceCIDRDeletionGrace)
	if _, err := h.srv.syncServiceCIDRs(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.must(404, h.do("GET", netv1+"servicecidrs/extra", ""))
}
