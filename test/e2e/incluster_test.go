package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const inClusterPod = `apiVersion: v1
kind: Pod
metadata: {name: incluster}
spec:
  containers:
  - name: main
    image: registry.k8s.io/e2e-test-images/agnhost:2.56
    args: [pause]
`

// TestInClusterAPI: a pod reaches the API server of `svcnet up` (on
// 127.0.0.1) the way client-go's in-cluster config does, through the
// kubernetes Service by name and by KUBERNETES_SERVICE_HOST:PORT, verifying
// the server with the service account's ca.crt and sending its token, with
// the nftables proxy and, after a live switch, the userspace one.
func TestInClusterAPI(t *testing.T) {
	requireCNI(t)
	src := imagesDir(t, "pause.tar", "agnhost.tar")
	images := t.TempDir() // only what this test runs: imports stay short
	for _, f := range []string{"pause.tar", "agnhost.tar"} {
		if err := os.Symlink(filepath.Join(src, f), filepath.Join(images, f)); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	port := freePort(t)
	criCleanup(t, dir)
	c := startCluster(t, dir, port, "--pod-runtime=on", "--container-runtime=cri", "--images", images,
		"--proxy-mode=nftables", "--node-name", "local", "--dns-resolv-conf", "")
	c.must("apply", "-f", writeFile(t, filepath.Join(dir, "pod.yaml"), inClusterPod, 0o644))
	waitKubectl(t, c, "pod running", 120*time.Second, func(s string) bool { return s == "Running" },
		"get", "pod", "incluster", "-o", "jsonpath={.status.phase}")
	if ep := c.must("get", "endpoints", "kubernetes", "-o", "jsonpath={.subsets[0].addresses[0].ip}"); ep != "127.0.0.1" {
		t.Fatalf("kubernetes endpoint %q: this test is about an API server on loopback", ep)
	}
	if env := c.must("exec", "incluster", "--", "sh", "-c", "echo $KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT"); env != "10.96.0.1:443\n" {
		t.Errorf("KUBERNETES_SERVICE_HOST:PORT = %q", env)
	}

	// get runs curl in the pod as client-go's in-cluster config would: the
	// service account's CA and token; it returns the status code and body.
	get := func(base, path string) (int, string) {
		t.Helper()
		script := `SA=/var/run/secrets/kubernetes.io/serviceaccount
curl -sS -m 10 --cacert $SA/ca.crt -H "Authorization: Bearer $(cat $SA/token)" -w '\n%{http_code}' "` + base + path + `"`
		out, errOut, err := c.kubectl("exec", "incluster", "--", "sh", "-c", script)
		i := strings.LastIndex(out, "\n")
		if err != nil || i < 0 {
			t.Errorf("curl %s%s in the pod: %v %s %s", base, path, err, out, errOut)
			return 0, ""
		}
		code := 0
		for _, r := range out[i+1:] {
			code = code*10 + int(r-'0')
		}
		return code, out[:i]
	}
	check := func(mode string) {
		t.Helper()
		for _, base := range []string{"https://kubernetes.default.svc", "https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT"} {
			if code, body := get(base, "/api/v1/namespaces/default/services"); code != 200 ||
				!strings.Contains(strings.ReplaceAll(body, " ", ""), `"kind":"ServiceList"`) {
				t.Errorf("%s: GET %s/api/v1/namespaces/default/services = %d %.300s", mode, base, code, body)
			}
			if code, body := get(base, "/api/v1/namespaces/default/secrets"); code != 403 || !strings.Contains(body, `system:serviceaccount:default:default`) {
				t.Errorf("%s: GET %s/api/v1/namespaces/default/secrets = %d %.300s, want 403 for the service account", mode, base, code, body)
			}
		}
	}

	// Service accounts hold only what bindings give them (RBAC).
	c.must("create", "rolebinding", "default-view", "--clusterrole=view", "--serviceaccount=default:default")
	localnet := "/proc/sys/net/ipv4/conf/svcnet0/route_localnet"
	if b, err := os.ReadFile(localnet); err != nil || string(b) != "1\n" {
		t.Errorf("nftables: route_localnet of the pod bridge = %q %v, want 1", b, err)
	}
	check("nftables")

	// The userspace backend dials the endpoint from the node: no route_localnet.
	c.must("create", "configmap", "svcnet-agent", "-n", "kube-system", "--from-literal=proxyMode=userspace")
	deadline := time.Now().Add(30 * time.Second)
	for {
		if b, _ := os.ReadFile(localnet); string(b) == "0\n" { // the nftables backend retired
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the switch to the userspace proxy did not retire the nftables backend (route_localnet still on)")
		}
		time.Sleep(200 * time.Millisecond)
	}
	check("userspace")
}
