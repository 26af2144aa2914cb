package e2e

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

const tutorialManifest = `apiVersion: v1
kind: Namespace
metadata:
  name: demo
---
apiVersion: apps/v1beta1
kind: Deployment
metadata:
  name: httpd
  namespace: demo
spec:
  replicas: 3
  template:
    metadata:
      labels:
        app: httpd
    spec:
      containers:
      - name: httpd
        image: agnhost
        command: ["svcnet", "agnhost", "serve-hostname", "--port", "8080"]
        ports:
        - containerPort: 8080
          name: http
---
apiVersion: v1
kind: Service
metadata:
  name: httpd-svc
  namespace: demo
spec:
  type: NodePort
  selector:
    app: httpd
  ports:
  - port: 8080
    targetPort: http
`

func selfSignedPEM(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "demo.example.com"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

func wantHeader(t *testing.T, out string, cols ...string) [][]string {
	t.Helper()
	rows := table(out)
	if len(rows) == 0 || strings.Join(rows[0], " ") != strings.Join(cols, " ") {
		t.Fatalf("header = %v, want %v\n%s", rows, cols, out)
	}
	return rows[1:]
}

func TestKubectlTutorial(t *testing.T) {
	dir := t.TempDir()
	c := startCluster(t, dir, freePort(t))

	// apply of a multi-document file with an old apps/v1beta1 Deployment.
	manifest := writeFile(t, filepath.Join(dir, "app.yaml"), tutorialManifest, 0o644)
	out, errOut, err := c.kubectl("apply", "-f", manifest)
	if err != nil {
		t.Fatalf("apply: %v\n%s\n%s", err, out, errOut)
	}
	for _, want := range []string{"namespace/demo created", "deployment.apps/httpd created", "service/httpd-svc created"} {
		if !strings.Contains(out, want) {
			t.Errorf("apply output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errOut, "Warning: apps/v1beta1 Deployment is deprecated in v1.9+, unavailable in v1.16+; use apps/v1 Deployment") {
		t.Errorf("apply stderr lacks the deprecation warning:\n%s", errOut)
	}
	if strings.Contains(errOut, "could also match") {
		t.Errorf("short names are ambiguous:\n%s", errOut)
	}
	// Re-applying the same file changes nothing and keeps allocations.
	before := c.must("-n", "demo", "get", "svc", "httpd-svc", "-o", "jsonpath={.spec.clusterIP} {.spec.ports[0].nodePort}")
	if out := c.must("apply", "-f", manifest); !strings.Contains(out, "service/httpd-svc unchanged") {
		t.Errorf("re-apply: %s", out)
	}
	if after := c.must("-n", "demo", "get", "svc", "httpd-svc", "-o", "jsonpath={.spec.clusterIP} {.spec.ports[0].nodePort}"); after != before {
		t.Errorf("re-apply changed allocations: %s -> %s", before, after)
	}
	if got := c.must("-n", "demo", "get", "deploy", "httpd", "-o", "jsonpath={.apiVersion} {.spec.selector.matchLabels.app} {.spec.replicas}"); got != "apps/v1 httpd 3" {
		t.Errorf("stored deployment = %q", got)
	}

	t.Run("scale", func(t *testing.T) {
		if out := c.must("-n", "demo", "scale", "deployment", "httpd", "--replicas=5"); !strings.Contains(out, "deployment.apps/httpd scaled") {
			t.Fatalf("scale: %s", out)
		}
		if got := c.must("-n", "demo", "get", "deploy", "httpd", "-o", "jsonpath={.spec.replicas}"); got != "5" {
			t.Fatalf("replicas after scale = %q", got)
		}
		rows := wantHeader(t, c.must("-n", "demo", "get", "deploy"), "NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE")
		if rows[0][0] != "httpd" || rows[0][1] != "0/5" {
			t.Fatalf("deployment row = %v", rows)
		}
	})

	t.Run("get svc", func(t *testing.T) {
		rows := wantHeader(t, c.must("-n", "demo", "get", "svc"), "NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE")
		r := rows[0]
		if len(rows) != 1 || r[0] != "httpd-svc" || r[1] != "NodePort" || !strings.HasPrefix(r[2], "10.") || r[3] != "<none>" ||
			!regexp.MustCompile(`^8080:3\d{4}/TCP$`).MatchString(r[4]) {
			t.Fatalf("rows = %v", rows)
		}
		rows = wantHeader(t, c.must("-n", "demo", "get", "svc", "-o", "wide"), "NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE", "SELECTOR")
		if rows[0][6] != "app=httpd" {
			t.Fatalf("wide rows = %v", rows)
		}
		rows = wantHeader(t, c.must("get", "svc", "kubernetes"), "NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE")
		if strings.Join(rows[0][:5], " ") != "kubernetes ClusterIP 10.96.0.1 <none> 443/TCP" {
			t.Fatalf("kubernetes service row = %v", rows[0])
		}
		y := c.must("-n", "demo", "get", "svc", "httpd-svc", "-o", "yaml")
		for _, want := range []string{"apiVersion: v1", "kind: Service", "clusterIP: 10.", "nodePort: 3", "targetPort: http",
			"sessionAffinity: None", "type: NodePort", "externalTrafficPolicy: Cluster", "ipFamilyPolicy: SingleStack", "uid: ", "creationTimestamp: "} {
			if !strings.Contains(y, want) {
				t.Errorf("-o yaml lacks %q:\n%s", want, y)
			}
		}
	})

	t.Run("describe svc", func(t *testing.T) {
		d := c.must("-n", "demo", "describe", "svc", "httpd-svc")
		for _, re := range []string{`(?m)^Name:\s+httpd-svc$`, `(?m)^Selector:\s+app=httpd$`, `(?m)^Type:\s+NodePort$`, `(?m)^IP:\s+10\.`,
			`(?m)^Port:\s+<unset>\s+8080/TCP$`, `(?m)^TargetPort:\s+http/TCP$`, `(?m)^NodePort:\s+<unset>\s+3\d{4}/TCP$`,
			`(?m)^Endpoints:`, `(?m)^Session Affinity:\s+None$`, `(?m)^Events:`} {
			if !regexp.MustCompile(re).MatchString(d) {
				t.Errorf("describe lacks %s:\n%s", re, d)
			}
		}
	})

	t.Run("get endpoints", func(t *testing.T) {
		rows := wantHeader(t, c.must("get", "endpoints"), "NAME", "ENDPOINTS", "AGE")
		if rows[0][0] != "kubernetes" || rows[0][1] != "127.0.0.1:"+strconv.Itoa(c.port) {
			t.Fatalf("kubernetes endpoints = %v", rows)
		}
		// A selectorless Service with user-managed Endpoints (an external service).
		ext := writeFile(t, filepath.Join(dir, "ext.yaml"), `apiVersion: v1
kind: Service
metadata:
  name: external-db
  namespace: demo
spec:
  ports:
  - port: 5432
---
apiVersion: v1
kind: Endpoints
metadata:
  name: external-db
  namespace: demo
subsets:
- addresses:
  - ip: 192.0.2.10
  - ip: 192.0.2.11
  ports:
  - port: 5432
`, 0o644)
		c.must("apply", "-f", ext)
		rows = wantHeader(t, c.must("-n", "demo", "get", "ep", "external-db"), "NAME", "ENDPOINTS", "AGE")
		if rows[0][1] != "192.0.2.10:5432,192.0.2.11:5432" {
			t.Fatalf("external endpoints = %v", rows)
		}
	})

	t.Run("expose edit delete", func(t *testing.T) {
		if out := c.must("-n", "demo", "expose", "deployment", "httpd", "--name", "httpd-exp", "--port", "80", "--target-port", "8080"); !strings.Contains(out, "service/httpd-exp exposed") {
			t.Fatalf("expose: %s", out)
		}
		rows := wantHeader(t, c.must("-n", "demo", "get", "svc", "httpd-exp", "-o", "wide"), "NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE", "SELECTOR")
		if rows[0][1] != "ClusterIP" || rows[0][4] != "80/TCP" || rows[0][6] != "app=httpd" {
			t.Fatalf("exposed service = %v", rows)
		}
		editor := writeFile(t, filepath.Join(dir, "editor.sh"), "#!/bin/sh\nsed -i 's/sessionAffinity: None/sessionAffinity: ClientIP/' \"$1\"\n", 0o755)
		out, errOut, err := c.kubectlEnv([]string{"EDITOR=" + editor, "KUBE_EDITOR=" + editor}, "-n", "demo", "edit", "svc", "httpd-exp")
		if err != nil || !strings.Contains(out, "service/httpd-exp edited") {
			t.Fatalf("edit: %v %s %s", err, out, errOut)
		}
		if got := c.must("-n", "demo", "get", "svc", "httpd-exp", "-o", "jsonpath={.spec.sessionAffinity} {.spec.sessionAffinityConfig.clientIP.timeoutSeconds}"); got != "ClientIP 10800" {
			t.Fatalf("after edit: %q", got)
		}
		if out := c.must("-n", "demo", "delete", "svc", "httpd-exp"); !strings.Contains(out, `service "httpd-exp" deleted`) {
			t.Fatalf("delete: %s", out)
		}
		if e := c.fails("-n", "demo", "get", "svc", "httpd-exp"); !strings.Contains(e, `Error from server (NotFound): services "httpd-exp" not found`) {
			t.Fatalf("get after delete: %s", e)
		}
	})

	t.Run("create secret tls", func(t *testing.T) {
		cert, key := selfSignedPEM(t)
		cf := writeFile(t, filepath.Join(dir, "tls.crt"), string(cert), 0o600)
		kf := writeFile(t, filepath.Join(dir, "tls.key"), string(key), 0o600)
		if out := c.must("-n", "demo", "create", "secret", "tls", "demo-tls", "--cert", cf, "--key", kf); !strings.Contains(out, "secret/demo-tls created") {
			t.Fatalf("create secret: %s", out)
		}
		rows := wantHeader(t, c.must("-n", "demo", "get", "secret", "demo-tls"), "NAME", "TYPE", "DATA", "AGE")
		if rows[0][1] != "kubernetes.io/tls" || rows[0][2] != "2" {
			t.Fatalf("secret row = %v", rows)
		}
	})

	t.Run("api-resources", func(t *testing.T) {
		out := c.must("api-resources")
		for _, re := range []string{`(?m)^services\s+svc\s+v1\s+true\s+Service$`, `(?m)^deployments\s+deploy\s+apps/v1\s+true\s+Deployment$`,
			`(?m)^endpointslices\s+discovery.k8s.io/v1\s+true\s+EndpointSlice$`, `(?m)^namespaces\s+ns\s+v1\s+false\s+Namespace$`,
			`(?m)^ingresses\s+ing\s+networking.k8s.io/v1\s+true\s+Ingress$`, `(?m)^leases\s+coordination.k8s.io/v1\s+true\s+Lease$`} {
			if !regexp.MustCompile(re).MatchString(out) {
				t.Errorf("api-resources lacks %s:\n%s", re, out)
			}
		}
	})

	t.Run("get svc --watch", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, kubectlBin, "-n", "demo", "get", "svc", "--watch")
		cmd.Env = append(cmd.Environ(), "KUBECONFIG="+c.kubeconfig, "HOME="+dir)
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cancel(); _ = cmd.Wait() }()
		lines := make(chan string, 100)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		read := func(match string) {
			t.Helper()
			deadline := time.After(20 * time.Second)
			for {
				select {
				case l, ok := <-lines:
					if !ok {
						t.Fatalf("watch ended before a line matching %q", match)
					}
					if regexp.MustCompile(match).MatchString(l) {
						return
					}
				case <-deadline:
					t.Fatalf("no watch line matching %q within 20s", match)
				}
			}
		}
		read(`^httpd-svc\s+NodePort`)
		c.must("-n", "demo", "create", "service", "loadbalancer", "lb-svc", "--tcp", "80:8080")
		read(`^lb-svc\s+LoadBalancer\s+10\.\S+\s+<pending>\s+80:3\d{4}/TCP`)
	})

	t.Run("rejected input", func(t *testing.T) {
		bad := writeFile(t, filepath.Join(dir, "bad.yaml"), "apiVersion: v1\nkind: Service\nmetadata:\n  name: bad\n  namespace: demo\nspec:\n  selectpr:\n    app: x\n  ports:\n  - port: 80\n", 0o644)
		if e := c.fails("apply", "-f", bad); !strings.Contains(e, `strict decoding error: unknown field "spec.selectpr"`) {
			t.Errorf("unknown field: %s", e)
		}
		ip := writeFile(t, filepath.Join(dir, "ip.yaml"), "apiVersion: v1\nkind: Service\nmetadata:\n  name: fixed\n  namespace: demo\nspec:\n  clusterIP: 1.2.3.4\n  ports:\n  - port: 80\n", 0o644)
		if e := c.fails("apply", "-f", ip); !strings.Contains(e, `The Service "fixed" is invalid: spec.clusterIPs: Invalid value: ["1.2.3.4"]: failed to allocate IP 1.2.3.4: provided IP (1.2.3.4) is not in the valid range. The range of valid IPs is 10.96.0.0/12`) {
			t.Errorf("clusterIP out of range: %s", e)
		}
		np := func(name string) string {
			return writeFile(t, filepath.Join(dir, name+".yaml"), "apiVersion: v1\nkind: Service\nmetadata:\n  name: "+name+
				"\n  namespace: demo\nspec:\n  type: NodePort\n  ports:\n  - port: 80\n    nodePort: 30080\n", 0o644)
		}
		c.must("apply", "-f", np("np1"))
		if e := c.fails("apply", "-f", np("np2")); !strings.Contains(e, `The Service "np2" is invalid: spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated`) {
			t.Errorf("nodePort conflict: %s", e)
		}
		for _, name := range []string{"bad", "fixed", "np2"} {
			if e := c.fails("-n", "demo", "get", "svc", name); !strings.Contains(e, "NotFound") {
				t.Errorf("rejected %s was stored: %s", name, e)
			}
		}
	})

	t.Run("delete namespace", func(t *testing.T) {
		if out := c.must("delete", "namespace", "demo", "--timeout=60s"); !strings.Contains(out, `namespace "demo" deleted`) {
			t.Fatalf("delete ns: %s", out)
		}
		if e := c.fails("get", "ns", "demo"); !strings.Contains(e, "NotFound") {
			t.Fatalf("namespace still there: %s", e)
		}
	})
}

func TestExamplesApply(t *testing.T) {
	c := startCluster(t, t.TempDir(), freePort(t))
	out := c.must("apply", "-f", filepath.Join(repoRoot(), "examples"))
	for _, want := range []string{"deployment.apps/httpd created", "service/httpd-svc created", "service/httpd-nodeport created",
		"service/httpd-headless created", "service/db created", "deployment.apps/netexec created", "service/netexec created"} {
		if !strings.Contains(out, want) {
			t.Errorf("apply examples: missing %q in\n%s", want, out)
		}
	}
	rows := map[string][]string{}
	for _, r := range wantHeader(t, c.must("get", "svc"), "NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE") {
		rows[r[0]] = r
	}
	if r := rows["httpd-nodeport"]; r[1] != "NodePort" || r[4] != "80:30080/TCP" {
		t.Errorf("nodeport row %v", r)
	}
	if r := rows["httpd-headless"]; r[2] != "None" {
		t.Errorf("headless row %v", r)
	}
	if r := rows["db"]; r[1] != "ExternalName" || r[3] != "db.example.com" {
		t.Errorf("externalname row %v", r)
	}
	if r := rows["netexec"]; r[4] != "80/TCP,81/UDP" {
		t.Errorf("netexec row %v", r)
	}
	if got := c.must("get", "svc", "netexec", "-o", "jsonpath={.spec.sessionAffinityConfig.clientIP.timeoutSeconds}"); got != "600" {
		t.Errorf("affinity timeout %q", got)
	}
}
