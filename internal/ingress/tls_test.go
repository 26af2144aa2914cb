package ingress

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net/netip"
	"testing"
	"time"

	certutil "k8s.io/client-go/util/cert"
)

// ecdsaCert is a self-signed P-256 certificate for host.
func ecdsaCert(t *testing.T, host string) *tls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func rsaCert(t *testing.T, host string) *tls.Certificate {
	crt, key, err := certutil.GenerateSelfSignedCertKey(host, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := tls.X509KeyPair(crt, key)
	if err != nil {
		t.Fatal(err)
	}
	return &c
}

// TestServerTLSResumption: an RSA or an ECDSA certificate serves handshakes,
// and a client that comes back resumes its session (ticket) instead of a full
// handshake, over TLS 1.2 and 1.3.
func TestServerTLSResumption(t *testing.T) {
	b := backendServer(t, "b")
	for _, tt := range []struct {
		name string
		cert func(*testing.T, string) *tls.Certificate
		sig  string
	}{{"rsa", rsaCert, "RSA"}, {"ecdsa", ecdsaCert, "ECDSA"}} {
		port := freePort(t)
		startServer(t, &Table{Ports: map[int]*Port{port: {TLS: true, Certs: []Cert{{Hosts: []string{"s.test"}, Cert: tt.cert(t, "s.test")}},
			Hosts: map[string]*Host{"s.test": {Routes: []*Route{{Source: "s", Path: PathPrefix, Value: "/",
				Backends: []*Backend{{Weight: 1, Endpoints: []netip.AddrPort{b}}}}}}}}}})
		for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			t.Run(fmt.Sprintf("%s/%s", tt.name, tls.VersionName(version)), func(t *testing.T) {
				cfg := &tls.Config{InsecureSkipVerify: true, ServerName: "s.test", MinVersion: version, MaxVersion: version,
					ClientSessionCache: tls.NewLRUClientSessionCache(8)}
				var resumed []bool
				for range 3 {
					conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port), cfg)
					if err != nil {
						t.Fatal(err)
					}
					// TLS 1.3 tickets arrive after the handshake: a request reads them.
					fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: s.test\r\nConnection: close\r\n\r\n")
					buf := make([]byte, 4096)
					_, _ = conn.Read(buf)
					st := conn.ConnectionState()
					resumed = append(resumed, st.DidResume)
					if !st.DidResume {
						if got := fmt.Sprintf("%T", st.PeerCertificates[0].PublicKey); got != map[string]string{"RSA": "*rsa.PublicKey", "ECDSA": "*ecdsa.PublicKey"}[tt.sig] {
							t.Errorf("served a %s key, want %s", got, tt.sig)
						}
					}
					conn.Close()
				}
				if resumed[0] || !resumed[1] || !resumed[2] {
					t.Errorf("resumed %v, want [false true true]", resumed)
				}
			})
		}
	}
}
