package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	certutil "k8s.io/client-go/util/cert"
)

const ingressApps = `apiVersion: apps/v1
kind: Deployment
metadata: {name: %[1]s}
spec:
  replicas: 2
  selector: {matchLabels: {app: %[1]s}}
  template:
    metadata: {labels: {app: %[1]s}}
    spec:
      containers:
      - name: web
        image: registry.k8s.io/e2e-test-images/agnhost:2.56
        command: ["svcnet", "agnhost", "serve-hostname", "--port", "8080"]
        ports: [{name: http, containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: %[1]s}
spec:
  selector: {app: %[1]s}
  ports: [{name: web, port: 80, targetPort: http}]
`

const ingressRoutes = `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web}
spec:
  defaultBackend: {service: {name: alpha, port: {number: 80}}}
  tls: [{hosts: [secure.test], secretName: secure}]
  rules:
  - host: alpha.test
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: alpha, port: {name: web}}}}]}
  - host: paths.test
    http:
      paths:
      - {path: /a, pathType: Prefix, backend: {service: {name: alpha, port: {number: 80}}}}
      - {path: /b, pathType: Exact, backend: {service: {name: beta, port: {number: 80}}}}
  - host: secure.test
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: beta, port: {number: 80}}}}]}
`

// ingressClient sends every request to the node's ingress whatever the URL's
// host says (as curl --resolve).
func ingressClient(node string) *http.Client {
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		_, port, _ := net.SplitHostPort(addr)
		return (&net.Dialer{Timeout: 3 * time.Second}).DialContext(ctx, network, net.JoinHostPort(node, port))
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true,
		ForceAttemptHTTP2: true, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
}

func TestIngress(t *testing.T) {
	requireCNI(t)
	dir := t.TempDir()
	c := startCluster(t, dir, freePort(t), "--pod-runtime=on", "--proxy-mode=none", "--node-name", "local", "--dns-resolv-conf", "")
	for _, app := range []string{"alpha", "beta"} {
		c.must("apply", "-f", writeFile(t, filepath.Join(dir, app+".yaml"), fmt.Sprintf(ingressApps, app), 0o644))
	}
	waitKubectl(t, c, "IngressClass svcnet", 20*time.Second, func(s string) bool { return strings.Contains(s, "svcnet.io/ingress") },
		"get", "ingressclass", "svcnet", "-o", "jsonpath={.spec.controller}")
	for _, app := range []string{"alpha", "beta"} {
		waitKubectl(t, c, app+" endpoints", 60*time.Second, func(s string) bool { return strings.Count(s, "true") == 2 },
			"get", "endpointslices", "-l", "kubernetes.io/service-name="+app, "-o", "jsonpath={range .items[*].endpoints[*]}{.conditions.ready} {end}")
	}
	crt, key, err := certutil.GenerateSelfSignedCertKey("secure.test", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "tls.crt"), string(crt), 0o600)
	writeFile(t, filepath.Join(dir, "tls.key"), string(key), 0o600)
	c.must("create", "secret", "tls", "secure", "--cert", filepath.Join(dir, "tls.crt"), "--key", filepath.Join(dir, "tls.key"))
	c.must("apply", "-f", writeFile(t, filepath.Join(dir, "ingress.yaml"), ingressRoutes, 0o644))
	waitKubectl(t, c, "ingress status", 20*time.Second, func(s string) bool { return s == "127.0.0.1" },
		"get", "ingress", "web", "-o", "jsonpath={.status.loadBalancer.ingress[*].ip}")

	hc := ingressClient("127.0.0.1")
	get := func(url string) (int, string, *tls.ConnectionState) {
		resp, err := hc.Get(url)
		if err != nil {
			return 0, err.Error(), nil
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.TLS
	}
	expect := func(url, podPrefix string, code int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			gotCode, body, _ := get(url)
			if gotCode == code && strings.HasPrefix(body, podPrefix) {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("%s: %d %q, want %d %s*", url, gotCode, body, code, podPrefix)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	expect("http://alpha.test/", "alpha-", 200)
	expect("http://paths.test/a/x", "alpha-", 200)
	expect("http://paths.test/b", "beta-", 200)
	expect("http://paths.test/b/x", "alpha-", 200) // Exact /b misses: the default backend
	expect("http://nowhere.test/", "alpha-", 200)  // default backend
	expect("https://secure.test/", "beta-", 200)

	// Both pods of a Service get requests (balancing per request).
	seen := map[string]bool{}
	for range 40 {
		if code, body, _ := get("http://alpha.test/"); code == 200 {
			seen[body] = true
		}
	}
	if len(seen) != 2 {
		t.Errorf("40 requests reached %d alpha pods, want 2: %v", len(seen), seen)
	}

	// TLS: the Secret's certificate by SNI, then a rotated one within 1 s.
	serial := func() string {
		_, _, st := get("https://secure.test/")
		if st == nil || len(st.PeerCertificates) == 0 {
			return ""
		}
		return st.PeerCertificates[0].SerialNumber.String()
	}
	first := serial()
	if first == "" {
		t.Fatalf("no certificate served for secure.test")
	}
	crt2, key2, err := certutil.GenerateSelfSignedCertKey("secure.test", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "tls.crt"), string(crt2), 0o600)
	writeFile(t, filepath.Join(dir, "tls.key"), string(key2), 0o600)
	out := c.must("create", "secret", "tls", "secure", "--cert", filepath.Join(dir, "tls.crt"), "--key", filepath.Join(dir, "tls.key"),
		"--dry-run=client", "-o", "yaml")
	c.must("apply", "-f", writeFile(t, filepath.Join(dir, "secret2.yaml"), out, 0o644))
	start := time.Now()
	for serial() == first {
		if time.Since(start) > time.Second {
			t.Fatalf("rotated certificate not served within 1 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("rotated certificate served after %v", time.Since(start))

	// The redirect annotation.
	c.must("annotate", "ingress", "web", "svcnet.io/ssl-redirect=true")
	noFollow := ingressClient("127.0.0.1")
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := noFollow.Get("http://secure.test/x")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 308 && resp.Header.Get("Location") == "https://secure.test/x" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no 308 to https after the annotation: %v %v", resp, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if d := c.must("describe", "ingress", "web"); !strings.Contains(d, "paths.test") || !strings.Contains(d, "alpha:web") {
		t.Errorf("describe ingress:\n%s", d)
	}
}
