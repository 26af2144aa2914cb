package e2e

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// podServer runs `svcnet server` on the bridge's .254 address and returns it
// with a function that starts, in namespace ns, an agent with the process pod
// runtime and the nftables proxy for node name at ip (extra: more flags).
func podServer(t *testing.T, b *bridgeNet, dir string) (*cluster, func(ns, name, ip string, extra ...string)) {
	t.Helper()
	requireCNI(t)
	port := freePort(t)
	server := fmt.Sprintf("https://%s254:%d", b.prefix, port)
	cp := startProcess(t, filepath.Join(dir, "cp"), port, "", fmt.Sprintf("svcnet API server at %s (admin kubeconfig: svcnet kubeconfig --data-dir %s)", server, filepath.Join(dir, "cp")),
		"server", "--data-dir", filepath.Join(dir, "cp"), "--bind-address", b.prefix+"254", "--secure-port", fmt.Sprint(port))
	kubeconfig := func(user string) string {
		out, err := exec.Command(svcnetBin, "kubeconfig", "--data-dir", filepath.Join(dir, "cp"), "--server", server, "--user", user).Output()
		if err != nil {
			t.Fatalf("svcnet kubeconfig --user %s: %v", user, err)
		}
		return writeFile(t, filepath.Join(dir, strings.ReplaceAll(user, ":", "-")+".kubeconfig"), string(out), 0o600)
	}
	cp.kubeconfig = kubeconfig("admin")
	return cp, func(ns, name, ip string, extra ...string) {
		t.Helper()
		root := filepath.Join(dir, name)
		startCommand(t, root, port, "", "svcnet agent: node "+name+" registered", append([]string{"ip", "netns", "exec", ns, svcnetBin,
			"agent", "--kubeconfig", kubeconfig("system:node:" + name), "--node-name", name, "--node-ip", ip, "--root-dir", root,
			"--pod-runtime=on", "--container-runtime=process", "--proxy-mode=nftables", "--dns-resolv-conf", "", "--ingress=false",
			"--healthz-bind-address", "", "--metrics-bind-address", ""}, extra...))
	}
}

// pinnedNetexec is a pod answering /hostname and /clientip on 8080, on node.
func pinnedNetexec(name, node string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %[1]s, labels: {app: web}}
spec:
  nodeSelector: {kubernetes.io/hostname: %[2]s}
  containers:
  - name: netexec
    image: svcnet/agnhost
    command: ["svcnet", "agnhost", "netexec", "--http-port", "8080"]
---
`, name, node)
}

// hostnamesFrom sends n requests from namespace ns to url and counts the
// answers (pod names; "error" for a failed request).
func hostnamesFrom(t *testing.T, ns, url string, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for i := 0; i < n; i++ {
		out, err := exec.Command("ip", "netns", "exec", ns, svcnetBin, "agnhost", "get", "--timeout", "1s", url).Output()
		if err != nil {
			got["error"]++
			continue
		}
		got[strings.TrimSpace(string(out))]++
	}
	return got
}

// TestTopologyZones: three nodes on one bridge, za in zone-a, zb1 and zb2 in
// zone-b, a netexec pod on za and on zb1. A Service with trafficDistribution
// PreferClose gets zone hints in its EndpointSlice; requests from each node go
// to the pod of its zone only (zb2 has none of its own); when za's pod is
// gone, za falls back to zone-b's. internalTrafficPolicy Local keeps
// requests on the node and fails them on a node without an endpoint.
func TestTopologyZones(t *testing.T) {
	dir := t.TempDir()
	b := newBridge(t, "svce2etzbr", "192.168.88.")
	cp, startAgent := podServer(t, b, dir)
	zones := map[string]string{"za": "zone-a", "zb1": "zone-b", "zb2": "zone-b"}
	ns := map[string]string{}
	for i, name := range []string{"za", "zb1", "zb2"} {
		ns[name] = b.node(name, i+1)
		startAgent(ns[name], name, fmt.Sprintf("192.168.88.%d", i+1))
		cp.must("label", "node", name, "topology.kubernetes.io/zone="+zones[name])
	}
	cp.must("apply", "-f", writeFile(t, filepath.Join(dir, "web.yaml"), pinnedNetexec("web-za", "za")+pinnedNetexec("web-zb1", "zb1")+`apiVersion: v1
kind: Service
metadata: {name: close}
spec:
  selector: {app: web}
  trafficDistribution: PreferClose
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: local}
spec:
  selector: {app: web}
  internalTrafficPolicy: Local
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: spread}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
`, 0o644))
	waitKubectl(t, cp, "both pods ready", 90*time.Second, func(s string) bool { return s == "True True" },
		"get", "pods", "web-za", "web-zb1", "-o", `jsonpath={.items[*].status.conditions[?(@.type=="Ready")].status}`)
	hints := waitKubectl(t, cp, "zone hints in the EndpointSlice", 30*time.Second, func(s string) bool { return strings.Count(s, "zone-") == 4 },
		"get", "endpointslices", "-l", "kubernetes.io/service-name=close", "-o", `jsonpath={range .items[*].endpoints[*]}{.nodeName} {.zone} {.hints.forZones[*].name}{"\n"}{end}`)
	for _, want := range []string{"za zone-a zone-a", "zb1 zone-b zone-b"} {
		if !strings.Contains(hints, want) {
			t.Errorf("EndpointSlice of close: %q, want a line %q", hints, want)
		}
	}
	closeURL := "http://" + cp.must("get", "svc", "close", "-o", "jsonpath={.spec.clusterIP}") + "/hostname"
	localURL := "http://" + cp.must("get", "svc", "local", "-o", "jsonpath={.spec.clusterIP}") + "/hostname"

	// expect polls until n requests from node all get want (the proxies
	// follow the slices within moments), then reports what they got.
	expect := func(what, node, url string, want map[string]int) {
		t.Helper()
		var got map[string]int
		n := 0
		for _, c := range want {
			n += c
		}
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			if got = hostnamesFrom(t, ns[node], url, n); fmt.Sprint(got) == fmt.Sprint(want) {
				t.Logf("%s: from %s: %v", what, node, got)
				return
			}
		}
		t.Errorf("%s: %d requests from %s got %v, want %v", what, n, node, got, want)
	}
	// The control: without trafficDistribution, requests from each node reach both pods.
	spreadURL := "http://" + cp.must("get", "svc", "spread", "-o", "jsonpath={.spec.clusterIP}") + "/hostname"
	for _, node := range []string{"za", "zb2"} {
		if got := hostnamesFrom(t, ns[node], spreadURL, 20); got["web-za"] == 0 || got["web-zb1"] == 0 {
			t.Errorf("no trafficDistribution: 20 requests from %s got %v, want both pods", node, got)
		}
	}
	expect("PreferClose, endpoint in the zone", "za", closeURL, map[string]int{"web-za": 20})
	expect("PreferClose, endpoint in the zone", "zb1", closeURL, map[string]int{"web-zb1": 20})
	expect("PreferClose, endpoint in the zone on another node", "zb2", closeURL, map[string]int{"web-zb1": 20})
	expect("internalTrafficPolicy Local", "za", localURL, map[string]int{"web-za": 20})
	expect("internalTrafficPolicy Local", "zb1", localURL, map[string]int{"web-zb1": 20})
	expect("internalTrafficPolicy Local, no endpoint on the node", "zb2", localURL, map[string]int{"error": 5})

	cp.must("delete", "pod", "web-za", "--grace-period=1")
	expect("PreferClose, no endpoint left in zone-a: fall back", "za", closeURL, map[string]int{"web-zb1": 20})
	expect("internalTrafficPolicy Local, the node's endpoint gone", "za", localURL, map[string]int{"error": 5})
}
