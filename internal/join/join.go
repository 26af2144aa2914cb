// Package join makes a machine a node of an existing svcnet cluster with a
// bootstrap token, as the kubelet's TLS bootstrap does: it pins the cluster CA
// by the hash of its public key (kubeadm's --discovery-token-ca-cert-hash),
// asks for a node client certificate through a CertificateSigningRequest
// (authenticated by the token), keeps the certificate and key in its data
// directory and renews them before they expire (client-go's certificate
// manager, from the node's own identity).
package join

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/certificate"
	"k8s.io/client-go/util/connrotation"
)

// CAHash is kubeadm's CA pin: sha256 of the certificate's SubjectPublicKeyInfo.
func CAHash(c *x509.Certificate) string {
	sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// PickCA returns the certificate of chain (the server's, leaf first) whose
// hash is pin and that signed the leaf for host; with no pin the last
// certificate of the chain, trusted on first use.
func PickCA(chain []*x509.Certificate, host, pin string) (*x509.Certificate, error) {
	if len(chain) < 2 {
		return nil, errors.New("the server sent no CA certificate with its own")
	}
	var ca *x509.Certificate
	if pin == "" {
		ca = chain[len(chain)-1]
	} else {
		pin = strings.ToLower(pin)
		if !strings.HasPrefix(pin, "sha256:") {
			return nil, fmt.Errorf("--ca-cert-hash: %q is not sha256:<hex>", pin)
		}
		for _, c := range chain[1:] {
			if CAHash(c) == pin {
				ca = c
			}
		}
		if ca == nil {
			return nil, fmt.Errorf("--ca-cert-hash: the server's CA does not match %s", pin)
		}
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	if _, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, DNSName: host}); err != nil {
		return nil, fmt.Errorf("the server's certificate: %w", err)
	}
	return ca, nil
}

// DiscoverCA connects to server (https://host:port) and returns the PEM of the
// CA pinned by pin (see PickCA).
func DiscoverCA(ctx context.Context, server, pin string) ([]byte, error) {
	u, err := url.Parse(server)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("server %q is not https://host:port", server)
	}
	d := tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}} // verified by PickCA
	conn, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	chain := conn.(*tls.Conn).ConnectionState().PeerCertificates
	host, _, _ := net.SplitHostPort(u.Host)
	ca, err := PickCA(chain, host, pin)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw}), nil
}

// Config says whom to join as what.
type Config struct {
	Server   string // https://host:port
	Token    string // bootstrap token <id>.<secret>
	CAHash   string // sha256:<hex>; empty: trust the CA the server sends
	NodeName string
	Dir      string // certificates go to Dir/pki
	Log      *slog.Logger
	// Timeout bounds the wait for the first certificate.
	Timeout time.Duration
}

// Start gets the node's certificate (from Dir, or through a CSR) and returns a
// client config presenting whatever certificate the manager holds now, and the
// cluster CA (PEM). The manager runs until ctx ends; when it renews the
// certificate, open connections are closed so that new ones present it.
func Start(ctx context.Context, c Config) (*rest.Config, []byte, error) {
	if c.Timeout <= 0 {
		c.Timeout = 2 * time.Minute
	}
	caPEM, err := DiscoverCA(ctx, c.Server, c.CAHash)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster CA of %s: %w", c.Server, err)
	}
	if c.CAHash == "" {
		c.Log.Warn("join: trusting the CA the server sent without --ca-cert-hash")
	}
	pki := filepath.Join(c.Dir, "pki")
	if err := os.MkdirAll(pki, 0o700); err != nil {
		return nil, nil, fmt.Errorf("--data-dir: %w", err)
	}
	if err := os.WriteFile(filepath.Join(pki, "ca.crt"), caPEM, 0o644); err != nil {
		return nil, nil, err
	}
	store, err := certificate.NewFileStore("node-client", pki, pki, "", "")
	if err != nil {
		return nil, nil, err
	}
	base := rest.Config{Host: c.Server, TLSClientConfig: rest.TLSClientConfig{CAData: caPEM}, UserAgent: "svcnet-join/" + c.NodeName}
	clients := func(current *tls.Certificate) (kubernetes.Interface, error) {
		cfg := base
		if current == nil { // first certificate: as the bootstrap token's user
			if c.Token == "" {
				return nil, errors.New("no node certificate yet and no --token")
			}
			cfg.BearerToken = c.Token
			return kubernetes.NewForConfig(&cfg)
		}
		cfg.CertFile, cfg.KeyFile = store.CurrentPath(), store.CurrentPath() // renewal: as the node itself
		return kubernetes.NewForConfig(&cfg)
	}
	m, err := certificate.NewManager(&certificate.Config{
		ClientsetFn:      clients,
		Template:         &x509.CertificateRequest{Subject: pkix.Name{CommonName: "system:node:" + c.NodeName, Organization: []string{"system:nodes"}}},
		SignerName:       certificatesv1.KubeAPIServerClientKubeletSignerName,
		Usages:           []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth},
		CertificateStore: store,
		Name:             "node-client",
	})
	if err != nil {
		return nil, nil, err
	}
	m.Start()
	go func() { <-ctx.Done(); m.Stop() }()
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, c.Timeout, true, func(context.Context) (bool, error) {
		return m.Current() != nil, nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("no node certificate after %v (is the token valid? kubectl get csr): %w", c.Timeout, err)
	}
	cert := m.Current().Leaf
	c.Log.Info("join: node certificate", "subject", cert.Subject.CommonName, "expires", cert.NotAfter, "file", store.CurrentPath())
	cfg, err := rotatingConfig(ctx, c, caPEM, m)
	return cfg, caPEM, err
}

// rotatingConfig is a client config whose TLS handshakes present m's current
// certificate, as the kubelet's: connections are closed when it changes.
func rotatingConfig(ctx context.Context, c Config, caPEM []byte, m certificate.Manager) (*rest.Config, error) {
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("cluster CA: no certificate")
	}
	u, _ := url.Parse(c.Server)
	host, _, _ := net.SplitHostPort(u.Host)
	dialer := connrotation.NewDialer((&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext)
	tr := utilnet.SetTransportDefaults(&http.Transport{
		Proxy: http.ProxyFromEnvironment, TLSHandshakeTimeout: 10 * time.Second, MaxIdleConnsPerHost: 25, DialContext: dialer.DialContext,
		TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: host, MinVersion: tls.VersionTLS12,
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				if cur := m.Current(); cur != nil {
					return cur, nil
				}
				return &tls.Certificate{}, nil
			}},
	})
	go func() {
		last := m.Current()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if cur := m.Current(); cur != last && cur != nil {
				last = cur
				c.Log.Info("join: node certificate renewed, reconnecting", "expires", cur.Leaf.NotAfter)
				dialer.CloseAll()
			}
		}
	}()
	return &rest.Config{Host: c.Server, Transport: tr, UserAgent: "svcnet-agent/" + c.NodeName, QPS: 50, Burst: 100}, nil
}
