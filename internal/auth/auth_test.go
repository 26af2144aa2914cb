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

func TestAuthorizeNode(t *testing.T) {
	admin := &User{Name: "admin", Groups: []string{GroupMasters}}
	node := &User{Name: "system:node:n1", Groups: []string{GroupNodes}}
	fakeNode := &User{Name: "system:node:n1", Groups: []string{GroupAuthenticated}} // a name without the group is no node
	cases := []struct {
		a    Attributes
		want bool
	}{
		{Attributes{User: admin, Verb: "delete", Resource: "secrets"}, false}, // no opinion: RBAC decides
		{Attributes{User: fakeNode, Verb: "watch", Resource: "services"}, false},
		{Attributes{User: node, Verb: "get", Path: "/api"}, false}, // RBAC's system:discovery
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
		{Attributes{User: node, Verb: "get", Resource: "pods", Subresource: "proxy", Namespace: "x", Name: "p"}, false},
		{Attributes{User: node, Verb: "create", Resource: "nodes", Subresource: "proxy", Name: "n1"}, false},
		{Attributes{User: node, Verb: "create", Resource: "serviceaccounts", Subresource: "token", Namespace: "x", Name: "default"}, true},
		{Attributes{User: node, Verb: "create", Resource: "serviceaccounts", Namespace: "x"}, false},
	}
	for _, c := range cases {
		if got, reason := AuthorizeNode(c.a); got != c.want {
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
