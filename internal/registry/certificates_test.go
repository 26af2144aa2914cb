package registry

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"strings"
	"testing"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func testCSRPEM(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "system:node:n1", Organization: []string{"system:nodes"}}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func TestValidateCSR(t *testing.T) {
	req := testCSRPEM(t)
	good := func() *certificatesv1.CertificateSigningRequest {
		return &certificatesv1.CertificateSigningRequest{ObjectMeta: metav1.ObjectMeta{Name: "node-csr-1"},
			Spec: certificatesv1.CertificateSigningRequestSpec{Request: req, SignerName: certificatesv1.KubeAPIServerClientKubeletSignerName,
				Usages: []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth}}}
	}
	short := int32(60)
	tests := []struct {
		name   string
		modify func(*certificatesv1.CertificateSigningRequest)
		want   string // substring of the errors; "" = valid
	}{
		{"valid", func(*certificatesv1.CertificateSigningRequest) {}, ""},
		{"garbage request", func(c *certificatesv1.CertificateSigningRequest) { c.Spec.Request = []byte("x") }, "spec.request: Invalid value"},
		{"no signer", func(c *certificatesv1.CertificateSigningRequest) { c.Spec.SignerName = "" }, "spec.signerName: Required value"},
		{"signer without path", func(c *certificatesv1.CertificateSigningRequest) { c.Spec.SignerName = "example.com" }, "spec.signerName: Invalid value"},
		{"no usages", func(c *certificatesv1.CertificateSigningRequest) { c.Spec.Usages = nil }, "spec.usages: Required value"},
		{"unknown usage", func(c *certificatesv1.CertificateSigningRequest) { c.Spec.Usages = []certificatesv1.KeyUsage{"flying"} }, "spec.usages[0]: Unsupported value"},
		{"duplicate usage", func(c *certificatesv1.CertificateSigningRequest) {
			c.Spec.Usages = []certificatesv1.KeyUsage{certificatesv1.UsageClientAuth, certificatesv1.UsageClientAuth}
		}, "spec.usages[1]: Duplicate value"},
		{"short expiration", func(c *certificatesv1.CertificateSigningRequest) { c.Spec.ExpirationSeconds = &short }, "spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 600 seconds"},
		{"approved and denied", func(c *certificatesv1.CertificateSigningRequest) {
			c.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{{Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue}, {Type: certificatesv1.CertificateDenied, Status: corev1.ConditionTrue}}
		}, "Approved and Denied conditions are mutually exclusive"},
		{"approved false", func(c *certificatesv1.CertificateSigningRequest) {
			c.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{{Type: certificatesv1.CertificateApproved, Status: corev1.ConditionFalse}}
		}, "status.conditions[0].status: Unsupported value"},
		{"certificate before approval", func(c *certificatesv1.CertificateSigningRequest) { c.Status.Certificate = []byte("x") }, "status.certificate: Invalid value"},
	}
	for _, tt := range tests {
		c := good()
		tt.modify(c)
		errs := CSRStrategy{}.Validate(c)
		if tt.want == "" {
			if len(errs) > 0 {
				t.Errorf("%s: unexpected errors %v", tt.name, errs)
			}
			continue
		}
		if !strings.Contains(errs.ToAggregate().Error(), tt.want) {
			t.Errorf("%s: errors %v, want %q", tt.name, errs, tt.want)
		}
	}
}

func TestCSRSpecImmutable(t *testing.T) {
	old := &certificatesv1.CertificateSigningRequest{Spec: certificatesv1.CertificateSigningRequestSpec{SignerName: "a.io/b"}}
	obj := &certificatesv1.CertificateSigningRequest{Spec: certificatesv1.CertificateSigningRequestSpec{SignerName: "c.io/d"}}
	CSRStrategy{}.PrepareForUpdate(obj, old)
	if obj.Spec.SignerName != "a.io/b" {
		t.Errorf("signerName = %q, want the stored a.io/b", obj.Spec.SignerName)
	}
}
