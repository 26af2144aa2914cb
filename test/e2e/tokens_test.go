package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServiceAccountTokens: `kubectl create token` hands out JWTs that kubectl can
// use (reads but not Secrets), bound tokens die with their pod, and a new pod gets
// the kube-api-access volume mounted in every container.
func TestServiceAccountTokens(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	c := startCluster(t, dir, port)
	// A kubeconfig with the cluster and no credentials: --token is the only one.
	bare := writeFile(t, filepath.Join(dir, "bare.kubeconfig"), fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: svcnet, cluster: {server: "https://127.0.0.1:%d", certificate-authority: %q}}]
users: [{name: nobody, user: {}}]
contexts: [{name: nobody, context: {cluster: svcnet, user: nobody, namespace: default}}]
current-context: nobody
`, port, filepath.Join(dir, "pki", "ca.crt")), 0o600)
	as := func(token string, args ...string) (string, string, error) {
		return c.kubectl(append([]string{"--kubeconfig", bare, "--token", token}, args...)...)
	}

	c.must("create", "serviceaccount", "robot")
	c.must("create", "rolebinding", "robot-view", "--clusterrole=view", "--serviceaccount=default:robot") // RBAC: reads in default
	tok := strings.TrimSpace(c.must("create", "token", "robot"))
	claims := jwtPayload(t, tok)
	if claims["sub"] != "system:serviceaccount:default:robot" || claims["iss"] != "https://kubernetes.default.svc.cluster.local" ||
		claims["exp"].(float64)-claims["iat"].(float64) != 3600 {
		t.Fatalf("token claims %v", claims)
	}
	if out, errOut, err := as(tok, "get", "pods"); err != nil || !strings.Contains(out+errOut, "No resources found") {
		t.Fatalf("get pods with the token: %v %s %s", err, out, errOut)
	}
	if out, _, err := as(tok, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username} {.status.userInfo.groups}"); err != nil ||
		out != `system:serviceaccount:default:robot ["system:serviceaccounts","system:serviceaccounts:default","system:authenticated"]` {
		t.Errorf("whoami: %q %v", out, err)
	}
	if _, errOut, err := as(tok, "get", "secrets"); err == nil || !strings.Contains(errOut, `secrets is forbidden: User "system:serviceaccount:default:robot" cannot list resource "secrets"`) {
		t.Errorf("get secrets with the token: %v %s", err, errOut)
	}
	if _, errOut, err := as(tok, "create", "configmap", "x"); err == nil || !strings.Contains(errOut, "forbidden") {
		t.Errorf("create with the token: %v %s", err, errOut)
	}
	short := strings.TrimSpace(c.must("create", "token", "robot", "--duration", "10m", "--audience", "vault"))
	if cl := jwtPayload(t, short); cl["exp"].(float64)-cl["iat"].(float64) != 600 || fmt.Sprint(cl["aud"]) != "[vault]" || fmt.Sprintf("%T", cl["aud"]) != "[]interface {}" {
		t.Errorf("--duration 10m --audience vault: %v", cl)
	}
	if _, errOut, err := as(short, "get", "pods"); err == nil || !strings.Contains(errOut, "Unauthorized") {
		t.Errorf("token for another audience accepted: %v %s", err, errOut)
	}
	if e := c.fails("create", "token", "robot", "--duration", "5m"); !strings.Contains(e, "may not specify a duration less than 10 minutes") {
		t.Errorf("5m token: %s", e)
	}

	// A new pod: the account and the kube-api-access volume, mounted everywhere.
	writeFile(t, filepath.Join(dir, "pod.yaml"), `apiVersion: v1
kind: Pod
metadata: {name: worker}
spec:
  serviceAccountName: robot
  initContainers: [{name: init, image: agnhost, command: [svcnet, agnhost, pause]}]
  containers: [{name: main, image: agnhost, command: [svcnet, agnhost, pause]}]
`, 0o644)
	c.must("apply", "-f", filepath.Join(dir, "pod.yaml"))
	vol := c.must("get", "pod", "worker", "-o", `jsonpath={.spec.volumes[0].name} {.spec.volumes[0].projected.sources[0].serviceAccountToken.expirationSeconds} {.spec.volumes[0].projected.sources[1].configMap.name}`)
	mounts := c.must("get", "pod", "worker", "-o", `jsonpath={.spec.initContainers[0].volumeMounts[0].name}:{.spec.initContainers[0].volumeMounts[0].mountPath} {.spec.containers[0].volumeMounts[0].name}:{.spec.containers[0].volumeMounts[0].mountPath}`)
	name := strings.Fields(vol)[0]
	if !strings.HasPrefix(name, "kube-api-access-") || vol != name+" 3607 kube-root-ca.crt" ||
		mounts != fmt.Sprintf("%s:/var/run/secrets/kubernetes.io/serviceaccount %s:/var/run/secrets/kubernetes.io/serviceaccount", name, name) {
		t.Errorf("pod volume %q, mounts %q", vol, mounts)
	}
	if e := c.fails("run", "ghost", "--image", "agnhost", "--overrides", `{"spec":{"serviceAccountName":"ghost"}}`); !strings.Contains(e, `error looking up service account default/ghost: serviceaccount "ghost" not found`) {
		t.Errorf("pod of a missing account: %s", e)
	}

	// A token bound to the pod works until the pod is gone.
	bound := strings.TrimSpace(c.must("create", "token", "robot", "--bound-object-kind", "Pod", "--bound-object-name", "worker"))
	if pod, _ := jwtPayload(t, bound)["kubernetes.io"].(map[string]any)["pod"].(map[string]any); pod["name"] != "worker" || pod["uid"] == "" {
		t.Errorf("bound token claims %v", jwtPayload(t, bound))
	}
	if out, errOut, err := as(bound, "get", "pod", "worker", "-o", "name"); err != nil || strings.TrimSpace(out) != "pod/worker" {
		t.Fatalf("bound token: %v %s %s", err, out, errOut)
	}
	c.must("delete", "pod", "worker", "--wait", "--timeout", "30s")
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, errOut, err := as(bound, "get", "pods")
		if err != nil && strings.Contains(errOut, "Unauthorized") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("token of the deleted pod still accepted: %v %s", err, errOut)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if _, _, err := as(tok, "get", "pods"); err != nil {
		t.Errorf("unbound token stopped working with the pod: %v", err)
	}
	c.must("delete", "serviceaccount", "robot")
	if _, errOut, err := as(tok, "get", "pods"); err == nil || !strings.Contains(errOut, "Unauthorized") {
		t.Errorf("token of a deleted account accepted: %v %s", err, errOut)
	}
}

// jwtPayload decodes a JWT's claims without verifying them.
func jwtPayload(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok)
	}
	data, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
