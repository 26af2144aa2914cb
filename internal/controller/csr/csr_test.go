package csr

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func request(t *testing.T, tmpl x509.CertificateRequest) (*x509.CertificateRequest, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	req, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	return req, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

var client = []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth}

func TestNodeClientRequest(t *testing.T) {
	node := pkix.Name{CommonName: "system:node:n1", Organization: []string{"system:nodes"}}
	tests := []struct {
		name   string
		tmpl   x509.CertificateRequest
		usages []certificatesv1.KeyUsage
		want   string
	}{
		{"node client", x509.CertificateRequest{Subject: node}, client, "n1"},
		{"with key encipherment", x509.CertificateRequest{Subject: node}, append(client, certificatesv1.UsageKeyEncipherment), "n1"},
		{"not a node", x509.CertificateRequest{Subject: pkix.Name{CommonName: "jane", Organization: []string{"system:nodes"}}}, client, ""},
		{"masters too", x509.CertificateRequest{Subject: pkix.Name{CommonName: "system:node:n1", Organization: []string{"system:nodes", "system:masters"}}}, client, ""},
		{"with an IP", x509.CertificateRequest{Subject: node, IPAddresses: []net.IP{net.ParseIP("10.0.0.1")}}, client, ""},
		{"server auth", x509.CertificateRequest{Subject: node}, append(client, certificatesv1.UsageServerAuth), ""},
		{"no client auth", x509.CertificateRequest{Subject: node}, []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature}, ""},
	}
	for _, tt := range tests {
		req, _ := request(t, tt.tmpl)
		got, ok := NodeClientRequest(req, tt.usages)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("%s: NodeClientRequest = %q, %v, want %q", tt.name, got, ok, tt.want)
		}
	}
}

func testSigner(t *testing.T, d time.Duration) Signer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(10 * 365 * 24 * time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	return Signer{Cert: ca, Key: key, Duration: d}
}

func TestSign(t *testing.T) {
	s := testSigner(t, 24*time.Hour)
	req, _ := request(t, x509.CertificateRequest{Subject: pkix.Name{CommonName: "system:node:n1", Organization: []string{"system:nodes"}}})
	now := time.Now()
	exp := int32(3600)
	for _, tt := range []struct {
		name string
		exp  *int32
		want time.Duration
	}{{"signer duration", nil, 24 * time.Hour}, {"expirationSeconds", &exp, time.Hour}} {
		certPEM, err := s.Sign(req, client, tt.exp, now)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := pem.Decode(certPEM)
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if c.Subject.CommonName != "system:node:n1" || c.Subject.Organization[0] != "system:nodes" {
			t.Errorf("%s: subject %v", tt.name, c.Subject)
		}
		if got := c.NotAfter.Sub(now); got < tt.want-time.Second || got > tt.want+time.Second {
			t.Errorf("%s: lifetime %v, want %v", tt.name, got, tt.want)
		}
		if _, err := c.Verify(x509.VerifyOptions{Roots: pool(s.Cert), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("%s: does not verify: %v", tt.name, err)
		}
	}
}

func pool(c *x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c)
	return p
}

// TestApproveAndSign runs the controller on a fake API: a bootstrapper's
// request is approved (the SubjectAccessReview allows nodeclient) and signed;
// one the review refuses stays pending.
func TestApproveAndSign(t *testing.T) {
	_, reqPEM := request(t, x509.CertificateRequest{Subject: pkix.Name{CommonName: "system:node:n1", Organization: []string{"system:nodes"}}})
	mk := func(name, user string) *certificatesv1.CertificateSigningRequest {
		return &certificatesv1.CertificateSigningRequest{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: certificatesv1.CertificateSigningRequestSpec{Request: reqPEM, SignerName: certificatesv1.KubeAPIServerClientKubeletSignerName,
				Usages: client, Username: user, Groups: []string{"system:bootstrappers"}}}
	}
	_, janePEM := request(t, x509.CertificateRequest{Subject: pkix.Name{CommonName: "jane"}})
	byHand := mk("by-hand", "jane")
	byHand.Spec.Request = janePEM
	byHand.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{{Type: certificatesv1.CertificateApproved, Status: "True"}}
	cs := fake.NewClientset(mk("ok", "system:bootstrap:abcdef"), mk("refused", "jane"), byHand)
	var asked []string
	cs.PrependReactor("create", "subjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		sar := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SubjectAccessReview)
		asked = append(asked, sar.Spec.User+" "+sar.Spec.ResourceAttributes.Subresource)
		sar.Status.Allowed = sar.Spec.User == "system:bootstrap:abcdef" && sar.Spec.ResourceAttributes.Subresource == "nodeclient"
		return true, sar, nil
	})
	factory := informers.NewSharedInformerFactory(cs, 0)
	c := New(cs, factory, testSigner(t, time.Hour), slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	for _, name := range []string{"ok", "refused", "by-hand"} {
		if err := c.sync(ctx, name); err != nil {
			t.Fatalf("sync %s: %v", name, err)
		}
	}
	got, _ := cs.CertificatesV1().CertificateSigningRequests().Get(ctx, "ok", metav1.GetOptions{})
	if !approved(got) || len(got.Status.Certificate) == 0 {
		t.Errorf("ok: approved %v, certificate %d bytes", approved(got), len(got.Status.Certificate))
	}
	got, _ = cs.CertificatesV1().CertificateSigningRequests().Get(ctx, "refused", metav1.GetOptions{})
	if approved(got) || len(got.Status.Certificate) > 0 {
		t.Errorf("refused: approved %v", approved(got))
	}
	got, _ = cs.CertificatesV1().CertificateSigningRequests().Get(ctx, "by-hand", metav1.GetOptions{})
	if len(got.Status.Certificate) > 0 || len(got.Status.Conditions) != 2 || got.Status.Conditions[1].Type != certificatesv1.CertificateFailed {
		t.Errorf("approved by hand for another subject: conditions %v, certificate %d bytes", got.Status.Conditions, len(got.Status.Certificate))
	}
	if len(asked) != 2 || asked[0] != "system:bootstrap:abcdef nodeclient" || asked[1] != "jane nodeclient" {
		t.Errorf("reviews asked: %v", asked)
	}
}
