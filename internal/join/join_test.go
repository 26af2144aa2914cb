package join

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"
)

func issue(t *testing.T, tmpl *x509.Certificate, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, key
}

func TestPickCA(t *testing.T) {
	now := time.Now()
	caTmpl := func(cn string) *x509.Certificate {
		return &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	}
	ca, caKey := issue(t, caTmpl("svcnet-ca"), nil, nil)
	other, _ := issue(t, caTmpl("mallory"), nil, nil)
	leaf, _ := issue(t, &x509.Certificate{SerialNumber: big.NewInt(2), NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("192.168.1.10")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, ca, caKey)
	tests := []struct {
		name  string
		chain []*x509.Certificate
		host  string
		pin   string
		want  string // error substring; "" = ca
	}{
		{"pinned", []*x509.Certificate{leaf, ca}, "192.168.1.10", CAHash(ca), ""},
		{"pin in capitals", []*x509.Certificate{leaf, ca}, "192.168.1.10", strings.ToUpper(CAHash(ca)), ""},
		{"no pin: trust on first use", []*x509.Certificate{leaf, ca}, "192.168.1.10", "", ""},
		{"wrong pin", []*x509.Certificate{leaf, ca}, "192.168.1.10", CAHash(other), "does not match"},
		{"pin of a CA that did not sign the server", []*x509.Certificate{leaf, other}, "192.168.1.10", CAHash(other), "the server's certificate"},
		{"wrong host", []*x509.Certificate{leaf, ca}, "192.168.1.11", CAHash(ca), "the server's certificate"},
		{"no CA sent", []*x509.Certificate{leaf}, "192.168.1.10", CAHash(ca), "no CA certificate"},
		{"not sha256", []*x509.Certificate{leaf, ca}, "192.168.1.10", "md5:00", "is not sha256:<hex>"},
	}
	for _, tt := range tests {
		got, err := PickCA(tt.chain, tt.host, tt.pin)
		if tt.want == "" {
			if err != nil || !got.Equal(ca) {
				t.Errorf("%s: PickCA = %v, %v", tt.name, got, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err %v, want %q", tt.name, err, tt.want)
		}
	}
}
