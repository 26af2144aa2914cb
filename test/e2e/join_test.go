package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// bridgeNet is a bridge in the test's namespace (no route out) and node
// namespaces on it, each with one veth eth0.
type bridgeNet struct {
	t      *testing.T
	name   string
	prefix string // e.g. 192.168.79.
}

func (b *bridgeNet) ip(args ...string) {
	b.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		b.t.Fatalf("ip %v: %v %s", args, err, out)
	}
}

// newBridge creates bridge name with address prefix+254/24.
func newBridge(t *testing.T, name, prefix string) *bridgeNet {
	b := &bridgeNet{t: t, name: name, prefix: prefix}
	b.ip("link", "add", name, "type", "bridge")
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", name).Run() })
	b.ip("addr", "add", prefix+"254/24", "dev", name)
	b.ip("link", "set", name, "up")
	return b
}

// node adds a namespace named after short with address prefix+host on the bridge
// and returns the namespace.
func (b *bridgeNet) node(short string, host int) string {
	ns := fmt.Sprintf("svcnet-e2e-%s-%d", short, os.Getpid())
	b.ip("netns", "add", ns)
	b.t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	b.ip("-n", ns, "link", "set", "lo", "up")
	veth := "v" + short
	b.ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
	// Deleted from this side first: a namespace outlives `ip netns del` while sockets of a
	// killed process still retransmit in it (TestLoadBalancer unplugs a node).
	b.t.Cleanup(func() { _ = exec.Command("ip", "link", "del", veth).Run() })
	b.ip("link", "set", veth, "master", b.name, "up")
	b.ip("-n", ns, "addr", "add", fmt.Sprintf("%s%d/24", b.prefix, host), "dev", "eth0")
	b.ip("-n", ns, "link", "set", "eth0", "up")
	return ns
}

var joinLineRE = regexp.MustCompile(`svcnet join (https://\S+) --token (\S+) --ca-cert-hash (sha256:[0-9a-f]+)`)

// startJoinable runs `svcnet up` on the bridge address and returns it with the
// server URL, token and CA hash of the join line it printed.
func startJoinable(t *testing.T, b *bridgeNet, dir string, extra ...string) (*cluster, []string) {
	t.Helper()
	port := freePort(t)
	kc := filepath.Join(dir, "kubeconfig")
	want := fmt.Sprintf("svcnet is up at https://%s254:%d. Use it with: export KUBECONFIG=%s; kubectl get svc", b.prefix, port, kc)
	args := append([]string{"up", "--data-dir", dir, "--bind-address", b.prefix + "254", "--secure-port", fmt.Sprint(port),
		"--pod-runtime=off", "--container-runtime=process", "--proxy-mode=none", "--ingress=false"}, extra...)
	cp := startProcess(t, dir, port, kc, want, args...)
	var m []string
	deadline := time.Now().Add(10 * time.Second)
	for m == nil && time.Now().Before(deadline) {
		m = joinLineRE.FindStringSubmatch(cp.logs())
		if m == nil {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if m == nil {
		t.Fatalf("no join line in the output of svcnet up:\n%s", cp.logs())
	}
	return cp, m[1:]
}

// TestJoin: `svcnet join` with the token svcnet up printed adds a node that
// becomes Ready, with its own client certificate (CN system:node:<name>) from
// an auto-approved CertificateSigningRequest; a wrong CA hash is refused.
func TestJoin(t *testing.T) {
	dir := t.TempDir()
	b := newBridge(t, "svce2ejbr", "192.168.79.")
	cp, jl := startJoinable(t, b, filepath.Join(dir, "cp"))
	server, token, hash := jl[0], jl[1], jl[2]
	if server != "https://192.168.79.254:"+fmt.Sprint(cp.port) {
		t.Errorf("join server %s", server)
	}
	if got := cp.must("get", "secret", "-n", "kube-system", "bootstrap-token-"+strings.Split(token, ".")[0], "-o", "jsonpath={.type}"); got != "bootstrap.kubernetes.io/token" {
		t.Errorf("bootstrap token secret type %q", got)
	}
	ns := b.node("joina", 1)
	nodeDir := filepath.Join(dir, "node-j")
	agentArgs := []string{"--node-name", "node-j", "--data-dir", nodeDir, "--pod-runtime=off", "--container-runtime=process",
		"--proxy-mode=none", "--ingress=false", "--dns-resolv-conf", "", "--healthz-bind-address", "", "--metrics-bind-address", ""}

	bad := exec.Command("ip", append([]string{"netns", "exec", ns, svcnetBin, "join", server, "--token", token,
		"--ca-cert-hash", "sha256:" + strings.Repeat("0", 64)}, agentArgs...)...)
	if out, err := bad.CombinedOutput(); err == nil || !strings.Contains(string(out), "does not match") {
		t.Errorf("join with a wrong --ca-cert-hash: %v %s", err, out)
	}

	startCommand(t, nodeDir, cp.port, "", "svcnet agent: node node-j registered", append([]string{"ip", "netns", "exec", ns, svcnetBin,
		"join", server, "--token", token, "--ca-cert-hash", hash}, agentArgs...))
	waitKubectl(t, cp, "node-j Ready", 30*time.Second, func(s string) bool { return s == "True 192.168.79.1" },
		"get", "node", "node-j", "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status} {.status.addresses[?(@.type=="InternalIP")].address}`)
	csrs := cp.must("get", "csr", "-o", `jsonpath={range .items[*]}{.spec.username} {.spec.signerName} {.status.conditions[0].type}{"\n"}{end}`)
	if !strings.Contains(csrs, "system:bootstrap:"+strings.Split(token, ".")[0]+" kubernetes.io/kube-apiserver-client-kubelet Approved") {
		t.Errorf("CSRs:\n%s", csrs)
	}
	if out := cp.must("get", "csr"); !strings.Contains(out, "Approved,Issued") || !strings.Contains(out, "kubernetes.io/kube-apiserver-client-kubelet") {
		t.Errorf("kubectl get csr:\n%s", out)
	}
	// Requests for anything else wait for an admin: kubectl certificate approve writes /approval.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "jane"}}, key)
	req := base64.StdEncoding.EncodeToString(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	cp.must("apply", "-f", writeFile(t, filepath.Join(dir, "jane-csr.yaml"), `apiVersion: certificates.k8s.io/v1
kind: CertificateSigningRequest
metadata: {name: jane}
spec:
  request: `+req+`
  signerName: kubernetes.io/kube-apiserver-client
  usages: [client auth]
`, 0o644))
	if got := cp.must("get", "csr", "jane", "-o", "jsonpath={.spec.username} {.status.conditions}"); got != "admin " {
		t.Errorf("csr jane before approval: %q", got)
	}
	cp.must("certificate", "approve", "jane")
	if got := cp.must("get", "csr", "jane", "-o", `jsonpath={.status.conditions[0].type} {.status.conditions[0].reason}`); got != "Approved KubectlApprove" {
		t.Errorf("csr jane after kubectl certificate approve: %q", got)
	}
	data, err := os.ReadFile(filepath.Join(nodeDir, "pki", "node-client-current.pem"))
	if err != nil {
		t.Fatal(err)
	}
	for blk, rest := pem.Decode(data); blk != nil; blk, rest = pem.Decode(rest) {
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if c.Subject.CommonName != "system:node:node-j" || len(c.Subject.Organization) != 1 || c.Subject.Organization[0] != "system:nodes" {
			t.Errorf("node certificate subject %v", c.Subject)
		}
		break
	}
}

// TestJoinRotation: with 20s node certificates (--cluster-signing-duration),
// a joined node renews its own (a second CSR, by system:node:<name>,
// auto-approved as selfnodeclient) and stays Ready after the first one expired.
func TestJoinRotation(t *testing.T) {
	dir := t.TempDir()
	b := newBridge(t, "svce2ejrbr", "192.168.81.")
	cp, jl := startJoinable(t, b, filepath.Join(dir, "cp"), "--cluster-signing-duration", "20s")
	ns := b.node("joinr", 1)
	nodeDir := filepath.Join(dir, "node-r")
	startCommand(t, nodeDir, cp.port, "", "svcnet agent: node node-r registered", []string{"ip", "netns", "exec", ns, svcnetBin,
		"join", jl[0], "--token", jl[1], "--ca-cert-hash", jl[2], "--node-name", "node-r", "--data-dir", nodeDir,
		"--pod-runtime=off", "--container-runtime=process", "--proxy-mode=none", "--ingress=false", "--dns-resolv-conf", "",
		"--healthz-bind-address", "", "--metrics-bind-address", ""})
	firstExpiry := time.Now().Add(22 * time.Second) // 20s from its issue, just before the agent said registered
	waitKubectl(t, cp, "a renewal CSR by the node, issued", 60*time.Second, func(s string) bool {
		return strings.Contains(s, "system:node:node-r Approved LS0t") // a PEM certificate
	}, "get", "csr", "-o", `jsonpath={range .items[*]}{.spec.username} {.status.conditions[0].type} {.status.certificate}{"\n"}{end}`)
	waitKubectl(t, cp, "the node's lease renewed after its first certificate expired", 60*time.Second, func(s string) bool {
		r, err := time.Parse(time.RFC3339Nano, s)
		return err == nil && r.After(firstExpiry)
	}, "get", "lease", "-n", "kube-node-lease", "node-r", "-o", "jsonpath={.spec.renewTime}")
	if got := cp.must("get", "node", "node-r", "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`); got != "True" {
		t.Errorf("node-r Ready = %s after its first certificate expired", got)
	}
}
