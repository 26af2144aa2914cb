package e2e

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/svcnet/svcnet/internal/auth"
)

// userKubeconfig writes a kubeconfig for a client certificate user (CN user,
// O groups) signed by the cluster's CA, as an administrator would hand out.
func userKubeconfig(t *testing.T, dir, server, user string, groups ...string) string {
	t.Helper()
	ca, err := auth.LoadOrCreateCA(filepath.Join(dir, "pki"))
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := ca.Issue(user, groups, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["svcnet"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: ca.CertPEM}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{ClientCertificateData: cert, ClientKeyData: key}
	cfg.Contexts[user] = &clientcmdapi.Context{Cluster: "svcnet", AuthInfo: user, Namespace: "default"}
	cfg.CurrentContext = user
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, filepath.Join(dir, user+".kubeconfig"), string(data), 0o600)
}

// TestRBAC: Roles, ClusterRoles and bindings made with kubectl govern a
// certificate user, can-i answers as Kubernetes would, escalation is refused,
// and the viewer identity still reads everything but secrets.
func TestRBAC(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	c := startCluster(t, dir, port)
	server := fmt.Sprintf("https://127.0.0.1:%d", port)
	jane := userKubeconfig(t, dir, server, "jane", "devs")
	asJane := func(args ...string) (string, string, error) {
		return c.kubectl(append([]string{"--kubeconfig", jane}, args...)...)
	}
	// eventually retries a command until it succeeds: bindings reach the
	// authorizer through a watch, as in Kubernetes.
	eventually := func(what string, run func() (string, string, error)) string {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			out, errOut, err := run()
			if err == nil {
				return out
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %v %s %s", what, err, out, errOut)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// The default policy is there, with Kubernetes' columns.
	rows := wantHeader(t, c.must("get", "clusterroles"), "NAME", "CREATED", "AT")
	names := map[string]bool{}
	for _, r := range rows {
		names[r[0]] = true
	}
	for _, n := range []string{"cluster-admin", "admin", "edit", "view", "system:discovery", "system:basic-user", "system:node", "svcnet:viewer"} {
		if !names[n] {
			t.Errorf("clusterrole %s missing: %v", n, rows)
		}
	}
	if out := c.must("get", "clusterrolebinding", "cluster-admin", "-o", "jsonpath={.subjects[0].name}"); out != "system:masters" {
		t.Errorf("cluster-admin binding subject %q", out)
	}

	c.must("create", "namespace", "dev")
	c.must("create", "namespace", "prod")
	if _, e, err := asJane("get", "pods", "-n", "dev"); err == nil ||
		!strings.Contains(e, `pods is forbidden: User "jane" cannot list resource "pods" in API group "" in the namespace "dev"`) {
		t.Fatalf("jane before any binding: %v %s", err, e)
	}

	// view in dev: read there, not write, not elsewhere.
	c.must("create", "rolebinding", "jane-view", "--clusterrole=view", "--user=jane", "-n", "dev")
	wantHeader(t, c.must("get", "rolebindings", "-n", "dev"), "NAME", "ROLE", "AGE")
	if rb := table(c.must("get", "rolebindings", "-n", "dev", "-o", "wide")); len(rb) < 2 || strings.Join(rb[0], " ") != "NAME ROLE AGE USERS GROUPS SERVICEACCOUNTS" ||
		rb[1][1] != "ClusterRole/view" || rb[1][3] != "jane" {
		t.Errorf("rolebindings -o wide: %v", rb)
	}
	eventually("jane lists pods in dev", func() (string, string, error) { return asJane("get", "pods", "-n", "dev") })
	asJaneFails := func(want string, args ...string) {
		t.Helper()
		if _, e, err := asJane(args...); err == nil || !strings.Contains(e, want) {
			t.Errorf("jane %s: %v %s, want %q", strings.Join(args, " "), err, e, want)
		}
	}
	asJaneFails(`pods is forbidden: User "jane" cannot list resource "pods" in API group "" in the namespace "prod"`, "get", "pods", "-n", "prod")
	asJaneFails(`configmaps is forbidden: User "jane" cannot create resource "configmaps" in API group "" in the namespace "dev"`,
		"create", "configmap", "settings", "-n", "dev", "--from-literal=a=b")
	asJaneFails(`secrets is forbidden`, "get", "secrets", "-n", "dev")

	// can-i, for her and through impersonation, as Kubernetes answers.
	canI := func(want string, args ...string) {
		t.Helper()
		out, _, _ := c.kubectl(append([]string{"auth", "can-i"}, args...)...)
		if strings.TrimSpace(out) != want {
			t.Errorf("can-i %s = %q, want %q", strings.Join(args, " "), out, want)
		}
	}
	canI("yes", "list", "pods", "-n", "dev", "--as=jane")
	canI("no", "list", "pods", "-n", "prod", "--as=jane")
	canI("no", "create", "pods", "--as=system:serviceaccount:default:default")
	canI("yes", "create", "pods", "--as=system:serviceaccount:default:default", "--as-group=system:masters")
	if out, _, _ := asJane("auth", "can-i", "create", "configmaps", "-n", "dev"); strings.TrimSpace(out) != "no" {
		t.Errorf("jane can-i create configmaps: %q", out)
	}
	if out := c.must("auth", "can-i", "--list", "-n", "dev", "--as=jane"); !strings.Contains(out, "pods ") || !strings.Contains(out, "selfsubjectaccessreviews") {
		t.Errorf("can-i --list:\n%s", out)
	}
	c.must("get", "configmaps", "-n", "dev", "--as=jane", "--as-group=devs")

	// A Role and a RoleBinding to her group grant create.
	c.must("create", "role", "cm-writer", "--verb=create,get", "--resource=configmaps", "-n", "dev")
	wantHeader(t, c.must("get", "roles", "-n", "dev"), "NAME", "CREATED", "AT")
	c.must("create", "rolebinding", "devs-cm", "--role=cm-writer", "--group=devs", "-n", "dev")
	eventually("jane creates a configmap", func() (string, string, error) {
		return asJane("create", "configmap", "settings", "-n", "dev", "--from-literal=a=b")
	})

	// Escalation: as admin of dev she may write roles, but not grant what she lacks.
	c.must("create", "rolebinding", "jane-admin", "--clusterrole=admin", "--user=jane", "-n", "dev")
	eventually("jane creates a role she holds", func() (string, string, error) {
		return asJane("create", "role", "cm-reader", "--verb=get", "--resource=configmaps", "-n", "dev")
	})
	asJaneFails(`is attempting to grant RBAC permissions not currently held`, "create", "role", "node-reader", "--verb=get", "--resource=nodes", "-n", "dev")
	asJaneFails(`is attempting to grant RBAC permissions not currently held`, "create", "rolebinding", "joe-root", "--clusterrole=cluster-admin", "--user=joe", "-n", "dev")
	if _, e, err := asJane("create", "rolebinding", "joe-view", "--clusterrole=view", "--user=joe", "-n", "dev"); err != nil {
		t.Errorf("jane binds view, which she holds: %v %s", err, e)
	}
	// ClusterRoles and ClusterRoleBindings from kubectl.
	c.must("create", "clusterrole", "pod-reader", "--verb=get,list,watch", "--resource=pods")
	c.must("create", "clusterrolebinding", "jane-pods", "--clusterrole=pod-reader", "--user=jane")
	eventually("jane lists pods everywhere", func() (string, string, error) { return asJane("get", "pods", "-A") })

	// The viewer identity reads everything but secrets, as before RBAC.
	out, err := exec.Command(svcnetBin, "kubeconfig", "--data-dir", dir, "--server", server, "--user", "viewer").Output()
	if err != nil {
		t.Fatal(err)
	}
	viewer := writeFile(t, filepath.Join(dir, "viewer.kubeconfig"), string(out), 0o600)
	asViewer := func(args ...string) (string, string, error) {
		return c.kubectl(append([]string{"--kubeconfig", viewer}, args...)...)
	}
	for _, args := range [][]string{{"get", "nodes"}, {"get", "pods", "-A"}, {"get", "svc", "-A"}, {"get", "configmaps", "-n", "dev"},
		{"get", "clusterroles"}, {"get", "rolebindings", "-A"}, {"get", "deployments", "-A"}} {
		if _, e, err := asViewer(args...); err != nil {
			t.Errorf("viewer %s: %v %s", strings.Join(args, " "), err, e)
		}
	}
	if _, e, err := asViewer("get", "secrets", "-A"); err == nil || !strings.Contains(e, `User "viewer" cannot list resource "secrets"`) {
		t.Errorf("viewer secrets: %v %s", err, e)
	}
	if _, e, err := asViewer("create", "configmap", "v", "-n", "dev"); err == nil || !strings.Contains(e, `User "viewer" cannot create resource "configmaps"`) {
		t.Errorf("viewer create: %v %s", err, e)
	}
}
