package agnhost

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io/fs"
	"math/big"
	"net"
	"path/filepath"
	"time"
)

// imageCert is the file name of the localhost certificate (and imageCert's
// key, "localhost.key") that upstream's image carries at / and that e2e tests
// name in --tls-cert-file or porter's CERT_FILE.
const imageCert = "localhost.crt"

// loadCert loads certFile and keyFile; when they are the image's localhost
// pair and do not exist here, it makes an equivalent self-signed certificate
// (SAN 127.0.0.1, ::1, example.com and localhost) in memory.
func loadCert(certFile, keyFile string) (tls.Certificate, error) {
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil && errors.Is(err, fs.ErrNotExist) && filepath.Base(certFile) == imageCert {
		return localhostCert(time.Now())
	}
	return c, err
}

// localhostCert makes a self-signed CA certificate for localhost valid from now for 100 years.
func localhostCert(now time.Time) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"Acme Co"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(100, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"example.com", "localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// tlsListener wraps ln in TLS with the certificate from certFile and keyFile (see loadCert).
func tlsListener(ln net.Listener, certFile, keyFile string) (net.Listener, error) {
	c, err := loadCert(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	return tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{c}, NextProtos: []string{"http/1.1"}}), nil
}
