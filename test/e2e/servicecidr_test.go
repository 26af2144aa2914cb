package e2e

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const extraServiceCIDR = `apiVersion: networking.k8s.io/v1
kind: ServiceCIDR
metadata:
  name: extra
spec:
  cidrs: ["10.200.0.0/24"]
`

// TestServiceCIDRAndIPAddress: the default ServiceCIDR, one IPAddress per cluster IP
// (created and deleted with its Service), and an extra ServiceCIDR serving IPs.
func TestServiceCIDRAndIPAddress(t *testing.T) {
	dir := t.TempDir()
	c := startCluster(t, dir, freePort(t), "--service-cluster-ip-range", "10.96.0.0/16")

	rows := wantHeader(t, c.must("get", "servicecidrs"), "NAME", "CIDRS", "AGE")
	if len(rows) != 1 || rows[0][0] != "kubernetes" || rows[0][1] != "10.96.0.0/16" {
		t.Fatalf("servicecidrs: %v", rows)
	}
	if out := c.must("get", "servicecidr", "kubernetes", "-o", "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}"); out != "True" {
		t.Fatalf("default ServiceCIDR Ready = %q", out)
	}
	rows = wantHeader(t, c.must("get", "ipaddresses"), "NAME", "PARENTREF")
	found := false
	for _, r := range rows {
		found = found || (r[0] == "10.96.0.1" && r[1] == "services/default/kubernetes")
	}
	if !found {
		t.Fatalf("no IPAddress for the kubernetes Service: %v", rows)
	}

	c.must("create", "service", "clusterip", "web", "--tcp=80:8080")
	ip := c.must("get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}")
	out := c.must("get", "ipaddress", ip, "-o", "jsonpath={.spec.parentRef.resource}/{.spec.parentRef.namespace}/{.spec.parentRef.name} {.metadata.labels.ipaddress\\.kubernetes\\.io/managed-by}")
	if out != "services/default/web ipallocator.k8s.io" {
		t.Fatalf("IPAddress %s: %q", ip, out)
	}
	c.must("delete", "service", "web")
	if errOut := c.fails("get", "ipaddress", ip); !strings.Contains(errOut, "NotFound") {
		t.Fatalf("IPAddress after the Service is gone: %s", errOut)
	}

	// An extra ServiceCIDR: a Service asking for an IP in it gets it once it is Ready.
	c.must("apply", "-f", writeFile(t, filepath.Join(dir, "extra.yaml"), extraServiceCIDR, 0o644))
	c.must("wait", "--for=condition=Ready", "servicecidr/extra", "--timeout=30s")
	c.must("create", "service", "clusterip", "far", "--tcp=80:8080", "--clusterip=10.200.0.10")
	if got := c.must("get", "ipaddress", "10.200.0.10", "-o", "jsonpath={.spec.parentRef.name}"); got != "far" {
		t.Fatalf("IPAddress 10.200.0.10 parent %q", got)
	}
	rows = wantHeader(t, c.must("get", "servicecidrs"), "NAME", "CIDRS", "AGE")
	if len(rows) != 2 || rows[0][0] != "extra" || rows[0][1] != "10.200.0.0/24" { // sorted by name
		t.Fatalf("servicecidrs: %v", rows)
	}
	// Outside every ServiceCIDR is refused, naming the field.
	if errOut := c.fails("create", "service", "clusterip", "nowhere", "--tcp=80:8080", "--clusterip=10.201.0.10"); !strings.Contains(errOut, "spec.clusterIPs") ||
		!strings.Contains(errOut, "The range of valid IPs is 10.96.0.0/16,10.200.0.0/24") {
		t.Fatalf("IP outside the ServiceCIDRs: %s", errOut)
	}

	// Deleting it waits for its last Service, then finishes.
	c.must("delete", "servicecidr", "extra", "--wait=false")
	waitKubectl(t, c, "extra Terminating", 30*time.Second, func(s string) bool { return s == "Terminating" },
		"get", "servicecidr", "extra", "-o", "jsonpath={.status.conditions[?(@.type==\"Ready\")].reason}")
	if errOut := c.fails("create", "service", "clusterip", "late", "--tcp=80:8080", "--clusterip=10.200.0.11"); !strings.Contains(errOut, "not in the valid range") {
		t.Fatalf("IP from a ServiceCIDR being deleted: %s", errOut)
	}
	c.must("delete", "service", "far")
	c.must("wait", "--for=delete", "servicecidr/extra", "--timeout=60s")
}

const badNetworkPolicy = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: bad
spec:
  podSelector: {}
  ingress:
  - from:
    - ipBlock:
        cidr: 10.0.0.0/33
`

const goodNetworkPolicy = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: web-allow
spec:
  podSelector:
    matchLabels:
      app: web
  ingress:
  - from:
    - ipBlock:
        cidr: 192.0.2.0/24
        except: ["192.0.2.128/25"]
    ports:
    - port: 8080
  egress:
  - to:
    - namespaceSelector:
        matchLabels:
          team: db
`

// TestNetworkPolicyAPI: NetworkPolicies are stored with Kubernetes' defaults, shown
// by get and describe, and a bad one is refused naming the field.
func TestNetworkPolicyAPI(t *testing.T) {
	dir := t.TempDir()
	c := startCluster(t, dir, freePort(t))
	errOut := c.fails("apply", "-f", writeFile(t, filepath.Join(dir, "bad.yaml"), badNetworkPolicy, 0o644))
	if !strings.Contains(errOut, `spec.ingress[0].from[0].ipBlock.cidr: Invalid value: "10.0.0.0/33"`) {
		t.Fatalf("bad cidr: %s", errOut)
	}
	c.must("apply", "-f", writeFile(t, filepath.Join(dir, "good.yaml"), goodNetworkPolicy, 0o644))
	rows := wantHeader(t, c.must("get", "netpol"), "NAME", "POD-SELECTOR", "AGE")
	if len(rows) != 1 || rows[0][0] != "web-allow" || rows[0][1] != "app=web" {
		t.Fatalf("netpol: %v", rows)
	}
	if got := c.must("get", "networkpolicy", "web-allow", "-o", "jsonpath={.spec.policyTypes} {.spec.ingress[0].ports[0].protocol}"); got != `["Ingress","Egress"] TCP` {
		t.Fatalf("defaults: %q", got)
	}
	desc := c.must("describe", "networkpolicy", "web-allow")
	for _, want := range []string{"PodSelector:     app=web", "IPBlock:", "CIDR: 192.0.2.0/24", "Except: 192.0.2.128/25", "To Port: 8080/TCP",
		"NamespaceSelector: team=db", "Policy Types: Ingress, Egress"} {
		if !strings.Contains(desc, want) {
			t.Errorf("describe lacks %q:\n%s", want, desc)
		}
	}
	c.must("delete", "netpol", "web-allow")
}
