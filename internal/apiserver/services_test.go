package apiserver

import (
	"context"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func nodePortSvc(name string, nodePort int) string {
	np := ""
	if nodePort > 0 {
		np = `,"nodePort":` + itoa(nodePort)
	}
	return `{"metadata":{"name":"` + name + `"},"spec":{"type":"NodePort","selector":{"app":"x"},"ports":[{"port":80` + np + `}]}}`
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestServiceAllocationAdmission(t *testing.T) {
	h := newHarness(t)
	cases := []struct {
		name, body string
		code       int
		msg        string
	}{
		{"out of range", `{"metadata":{"name":"a"},"spec":{"clusterIP":"1.2.3.4","ports":[{"port":80}]}}`, 422,
			`Service "a" is invalid: spec.clusterIPs: Invalid value: ["1.2.3.4"]: failed to allocate IP 1.2.3.4: provided IP (1.2.3.4) is not in the valid range. The range of valid IPs is 10.96.0.0/12`},
		{"requested free", `{"metadata":{"name":"b"},"spec":{"clusterIP":"10.96.100.100","ports":[{"port":80}]}}`, 201, ""},
		{"requested taken", `{"metadata":{"name":"c"},"spec":{"clusterIP":"10.96.100.100","ports":[{"port":80}]}}`, 422,
			`failed to allocate IP 10.96.100.100: provided IP is already allocated`},
		{"kubernetes IP taken", `{"metadata":{"name":"d"},"spec":{"clusterIP":"10.96.0.1","ports":[{"port":80}]}}`, 422, "provided IP is already allocated"},
		{"headless", `{"metadata":{"name":"e"},"spec":{"clusterIP":"None","selector":{"a":"b"}}}`, 201, ""},
		{"nodeport requested", nodePortSvc("np1", 30080), 201, ""},
		{"nodeport taken", nodePortSvc("np2", 30080), 422, `Service "np2" is invalid: spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated`},
		{"nodeport out of range", nodePortSvc("np3", 8080), 422, "provided port is not in the valid range. The range of valid ports is 30000-32767"},
	}
	for _, c := range cases {
		r := h.do("POST", "/api/v1/namespaces/default/services", c.body)
		if r.code != c.code || (c.msg != "" && !strings.Contains(r.str("message"), c.msg)) {
			t.Errorf("%s: %d %s; want %d %q", c.name, r.code, r.str("message"), c.code, c.msg)
		}
	}
	// Delete releases both the IP and the node port.
	h.must(200, h.do("DELETE", "/api/v1/namespaces/default/services/np1", ""))
	h.must(201, h.do("POST", "/api/v1/namespaces/default/services", nodePortSvc("np4", 30080)))
	h.must(200, h.do("DELETE", "/api/v1/namespaces/default/services/b", ""))
	h.must(201, h.do("POST", "/api/v1/namespaces/default/services", `{"metadata":{"name":"b2"},"spec":{"clusterIP":"10.96.100.100","ports":[{"port":80}]}}`))

	// Changing the type from NodePort to ClusterIP releases the node port.
	h.must(200, h.do("PATCH", "/api/v1/namespaces/default/services/np4",
		`{"spec":{"type":"ClusterIP","ports":[{"port":80,"nodePort":null}]}}`, "Content-Type", "application/strategic-merge-patch+json"))
	h.must(201, h.do("POST", "/api/v1/namespaces/default/services", nodePortSvc("np5", 30080)))
	// Re-applying a NodePort manifest without nodePort keeps the allocated one.
	before := h.must(200, h.do("GET", "/api/v1/namespaces/default/services/np5", ""))
	after := h.must(200, h.do("PUT", "/api/v1/namespaces/default/services/np5", nodePortSvc("np5", 0)))
	if before.str("spec", "ports") != after.str("spec", "ports") || before.str("spec", "clusterIP") != after.str("spec", "clusterIP") {
		t.Fatalf("re-apply changed allocations: %s -> %s", before.str("spec"), after.str("spec"))
	}
	// LoadBalancer with externalTrafficPolicy Local gets a health check node port.
	lb := h.must(201, h.do("POST", "/api/v1/namespaces/default/services",
		`{"metadata":{"name":"lb"},"spec":{"type":"LoadBalancer","externalTrafficPolicy":"Local","selector":{"a":"b"},"ports":[{"port":80}]}}`))
	if lb.str("spec", "healthCheckNodePort") == "" || lb.str("spec", "ports") == "" || !strings.Contains(lb.str("spec", "ports"), "nodePort") {
		t.Fatalf("LoadBalancer allocations: %s", lb.str("spec"))
	}
}

func TestClusterIPExhaustion(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.ServiceCIDR = "10.100.0.0/29" }) // 6 usable, one is the kubernetes service
	for i := 0; i < 5; i++ {
		h.must(201, h.do("POST", "/api/v1/namespaces/default/services", svcBody("s"+itoa(i+1), "x")))
	}
	r := h.do("POST", "/api/v1/namespaces/default/services", svcBody("s6", "x"))
	if r.code != 500 || !strings.Contains(r.str("message"), "failed to allocate a serviceIP: range is full") {
		t.Fatalf("exhausted range: %d %s", r.code, r.body)
	}
	h.must(404, h.do("GET", "/api/v1/namespaces/default/services/s6", ""))
	h.must(200, h.do("DELETE", "/api/v1/namespaces/default/services/s3", ""))
	h.must(201, h.do("POST", "/api/v1/namespaces/default/services", svcBody("s6", "x")))
}

func TestAllocationRepair(t *testing.T) {
	h := newHarness(t)
	ip := h.must(201, h.do("POST", "/api/v1/namespaces/default/services", nodePortSvc("a", 30100))).str("spec", "clusterIP")
	ctx := context.Background()
	// Lose claims (as after a crash of an older version: a node port key and an
	// IPAddress) and leak others: a cluster IP claim key of the format before
	// IPAddress objects, and an IPAddress naming a Service that is gone.
	for _, k := range []string{h.srv.alloc.portKey(30100), h.srv.alloc.ipKey(ip)} {
		if _, err := h.store.Delete(ctx, k, 0, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.store.Create(ctx, h.srv.alloc.prefix+"clusterips/10.96.7.7", []byte("gone default/ghost"), nil); err != nil {
		t.Fatal(err)
	}
	ghost, err := h.srv.alloc.ipAddr.value("10.96.7.8", &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "ghost"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.store.Create(ctx, h.srv.alloc.ipKey("10.96.7.8"), ghost, nil); err != nil {
		t.Fatal(err)
	}
	rep, err := h.srv.repairAllocations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Restored != 2 || rep.Removed != 2 || rep.Conflicts != 0 || rep.Services != 3 {
		t.Fatalf("repair report %+v, want 2 restored, 2 removed, 3 services (kubernetes, kube-dns, a)", rep)
	}
	for _, k := range []string{h.srv.alloc.portKey(30100), h.srv.alloc.ipKey(ip)} {
		if _, err := h.store.Get(ctx, k); err != nil {
			t.Fatalf("claim %s not restored: %v", k, err)
		}
	}
	h.must(200, h.do("GET", "/apis/networking.k8s.io/v1/ipaddresses/"+ip, ""))
	h.must(404, h.do("GET", "/apis/networking.k8s.io/v1/ipaddresses/10.96.7.8", ""))
	// A second API server on the same store cannot hand out the same values.
	s2, err := New(Config{Store: h.store, Authn: h.srv.cfg.Authn, Log: h.srv.log})
	if err != nil {
		t.Fatal(err)
	}
	r := s2.alloc
	al, err := r.allocate(&corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, ClusterIP: "10.96.0.1",
		Ports: []corev1.ServicePort{{Port: 80, NodePort: 30100}}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Its in-memory index does not know yet; the claim in storage decides.
	if _, err := h.store.Create(ctx, "/registry/services/default/z", []byte("{}"), al.claims); err == nil {
		t.Fatal("second server claimed values the first one holds")
	}
	al.undo()
	if _, err := s2.repairAllocations(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.alloc.allocate(&corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort,
		Ports: []corev1.ServicePort{{Port: 80, NodePort: 30100}}}}, nil); err == nil || !strings.Contains(err.Error(), "provided port is already allocated") {
		t.Fatalf("after repair the second server must know 30100 is taken: %v", err)
	}
}

// TestCreateRetryAfterLostClaim: a second API server whose index does not know a
// port yet picks it, loses the claim in storage, and must retry with another port
// rather than report the lost one as "already allocated". Repeated so that a 50%
// chance of picking the taken port is hit (miss probability 2^-10).
func TestCreateRetryAfterLostClaim(t *testing.T) {
	for i := 0; i < 10; i++ {
		h := newHarness(t, func(c *Config) { c.NodePortRange = "30000-30001" })
		h.must(201, h.do("POST", "/api/v1/namespaces/default/services", nodePortSvc("first", 0)))
		s2, err := New(Config{Store: h.store, Authn: h.srv.cfg.Authn, Log: h.srv.log, NodePortRange: "30000-30001"})
		if err != nil {
			t.Fatal(err)
		}
		obj := &corev1.Service{}
		obj.Name = "second"
		obj.Spec = corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Selector: map[string]string{"a": "b"}, Ports: []corev1.ServicePort{{Port: 80}}}
		if _, err := s2.create(context.Background(), s2.res("", "services"), "default", obj, writeOptions{}); err != nil {
			t.Fatalf("round %d: second server's create failed: %v", i, err)
		}
	}
}
