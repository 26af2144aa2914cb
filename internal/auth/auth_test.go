package auth

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
)

func TestAuthorize(t *testing.T) {
	admin := &User{Name: "admin", Groups: []string{GroupMasters}}
	viewer := &User{Name: "viewer", Groups: []string{GroupViewers}}
	node := &User{Name: "system:node:n1", Groups: []string{GroupNodes}}
	nobody := &User{Name: "mallory", Groups: []string{GroupAuthenticated}}
	robot := &User{Name: "system:serviceaccount:x:robot", Groups: []string{GroupServiceAccounts, GroupServiceAccounts + ":x", GroupAuthenticated}}
	fake := &User{Name: "system:serviceaccount:x:robot", Groups: []string{GroupAuthenticated}} // a name without the group is nobody
	cases := []struct {
		a    Attributes
		want bool
	}{
		{Attributes{User: admin, Verb: "delete", Resource: "secrets"}, true},
		{Attributes{User: viewer, Verb: "list", Resource: "services"}, true},
		{Attributes{User: viewer, Verb: "create", Resource: "services"}, false},
		{Attributes{User: viewer, Verb: "get", Resource: "secrets"}, false},
		{Attributes{User: viewer, Verb: "get"}, true}, // discovery
		{Attributes{User: nobody, Verb: "get", Resource: "services"}, false},
		{Attributes{User: node, Verb: "watch", Resource: "services"}, true},
		{Attributes{User: node, Verb: "update", Resource: "nodes", Name: "n1", Subresource: "status"}, true},
		{Attributes{User: node, Verb: "update", Resource: "nodes", Name: "n2", Subresource: "status"}, false},
		{Attributes{User: node, Verb: "create", Resource: "nodes"}, true},
		{Attributes{User: node, Verb: "update", APIGroup: "coordination.k8s.io", Resource: "leases", Namespace: "kube-node-lease", Name: "n1"}, true},
		{Attributes{User: node, Verb: "update", APIGroup: "coordination.k8s.io", Resource: "leases", Namespace: "default", Name: "n1"}, false},
		{Attributes{User: node, Verb: "patch", Resource: "pods", Subresource: "status", Namespace: "x", Name: "p"}, true},
		{Attributes{User: node, Verb: "patch", Resource: "pods", Namespace: "x", Name: "p"}, false},
		{Attributes{User: node, Verb: "create", Resource: "events", Namespace: "x"}, true},
		{Attributes{User: node, Verb: "create", Resource: "services", Namespace: "x"}, false},
		{Attributes{User: viewer, Verb: "get", Resource: "services", Subresource: "proxy", Namespace: "x", Name: "web:80"}, true},
		{Attributes{User: viewer, Verb: "create", Resource: "pods", Subresource: "proxy", Namespace: "x", Name: "p"}, false},
		{Attributes{User: node, Verb: "get", Resource: "pods", Subresource: "proxy", Namespace: "x", Name: "p"}, false},
		{Attributes{User: node, Verb: "create", Resource: "nodes", Subresource: "proxy", Name: "n1"}, false},
		{Attributes{User: admin, Verb: "options", Resource: "nodes", Subresource: "proxy", Name: "n1"}, true},
		{Attributes{User: robot, Verb: "list", Resource: "pods", Namespace: "x"}, true},
		{Attributes{User: robot, Verb: "watch", APIGroup: "apps", Resource: "deployments"}, true},
		{Attributes{User: robot, Verb: "get", Resource: "secrets", Namespace: "x", Name: "s"}, false},
		{Attributes{User: robot, Verb: "create", Resource: "pods", Namespace: "x"}, false},
		{Attributes{User: robot, Verb: "create", Resource: "serviceaccounts", Subresource: "token", Namespace: "x", Name: "robot"}, false},
		{Attributes{User: robot, Verb: "get"}, true}, // discovery
		{Attributes{User: fake, Verb: "get", Resource: "pods", Namespace: "x"}, false},
		{Attributes{User: node, Verb: "create", Resource: "serviceaccounts", Subresource: "token", Namespace: "x", Name: "default"}, true},
		{Attributes{User: node, Verb: "create", Resource: "serviceaccounts", Namespace: "x"}, false},
		{Attributes{User: viewer, Verb: "create", Resource: "serviceaccounts", Subresource: "token", Namespace: "x", Name: "default"}, false},
	}
	for _, c := range cases {
		if got, reason := Authorize(c.a); got != c.want {
			t.Errorf("%s %s %s/%s %s: got %v (%s), want %v", c.a.User.Name, c.a.Verb, c.a.Resource, c.a.Subresource, c.a.Name, got, reason, c.want)
		}
	}
}

func TestTokensAndCertificates(t *testing.T) {
	if _, err := ParseTokens("onlytoken\n"); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("malformed token file accepted: %v", err)
	}
	dir := t.TempDir()
	tokens, err := LoadOrCreateTokens(dir + "/tokens.csv")
	if err != nil {
		t.Fatal(err)
	}
	again, _ := LoadOrCreateTokens(dir + "/tokens.csv")
	tok, _ := tokens.TokenFor(ViewerUser)
	if tok2, _ := again.TokenFor(ViewerUser); tok == "" || tok != tok2 {
		t.Fatal("token file not kept across loads")
	}
	a := &Authenticator{Tokens: tokens}
	r, _ := http.NewRequest("GET", "/", nil)
	if _, ok := a.Authenticate(r); ok {
		t.Fatal("anonymous request authenticated")
	}
	r.Header.Set("Authorization", "Bearer "+tok)
	if u, ok := a.Authenticate(r); !ok || u.Name != ViewerUser || !u.In(GroupViewers) {
		t.Fatalf("viewer token: %+v %v", u, ok)
	}

	ca, err := LoadOrCreateCA(dir + "/pki")
	if err != nil {
		t.Fatal(err)
	}
	ca2, _ := LoadOrCreateCA(dir + "/pki")
	if !ca.Cert.Equal(ca2.Cert) {
		t.Fatal("CA regenerated on second load")
	}
	certPEM, keyPEM, err := ca.Issue("system:node:n1", []string{GroupNodes}, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pair, _ := tls.X509KeyPair(certPEM, keyPEM)
	leaf, _ := x509.ParseCertificate(pair.Certificate[0])
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("issued client cert does not verify: %v", err)
	}
	r.Header.Del("Authorization")
	r.TLS = &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{leaf}}}
	if u, ok := a.Authenticate(r); !ok {
		t.Fatal("client cert not accepted")
	} else if n, ok := u.NodeName(); !ok || n != "n1" {
		t.Fatalf("node identity: %+v", u)
	}
	if _, _, err := ca.ServingCert(dir+"/pki", []string{"localhost", "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []Identity{"admin", "viewer", "system:node:n1"} {
		data, err := KubeconfigFor(ca, tokens, "https://127.0.0.1:6443", id)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		cfg, err := clientcmd.Load(data)
		if err != nil || cfg.Clusters["svcnet"].Server != "https://127.0.0.1:6443" {
			t.Fatalf("%s kubeconfig: %v", id, err)
		}
	}
	if _, err := KubeconfigFor(ca, tokens, "https://x", "system:node:"); err == nil {
		t.Fatal("empty node name accepted")
	}
}
