// Package system wires svcnet's pieces into the processes the CLI starts: storage
// (embedded or external etcd), security material in the data directory, and the API
// server. Only cmd/svcnet imports it.
package system

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/svcnet/svcnet/internal/apiserver"
	"github.com/svcnet/svcnet/internal/auth"
	"github.com/svcnet/svcnet/internal/controller"
	"github.com/svcnet/svcnet/internal/controller/csr"
	"github.com/svcnet/svcnet/internal/controller/lbipam"
	"github.com/svcnet/svcnet/internal/controller/nodeipam"
	"github.com/svcnet/svcnet/internal/ipalloc"
	"github.com/svcnet/svcnet/internal/netpol"
	"github.com/svcnet/svcnet/internal/nodeaddr"
	"github.com/svcnet/svcnet/internal/storage"
)

// Version is set at build time.
var Version = "v0.1.0-dev"

// ServerOptions configure the control plane.
type ServerOptions struct {
	DataDir          string
	EtcdServers      []string       // empty = embedded etcd in DataDir
	Etcd             storage.Member // the embedded etcd's place in a cluster of several (zero: alone)
	EtcdPrefix       string
	BindAddress      string
	SecurePort       int
	AdvertiseAddress string
	ServiceCIDR      string
	NodePortRange    string
	// NoControllers leaves the controllers off (benchmarks of the bare API server).
	NoControllers          bool
	NodeMonitorGracePeriod time.Duration
	ClusterCIDR            string // pod network; nodes get /NodeCIDRMaskSize pieces ("" = off)
	NodeCIDRMaskSize       int
	LoadBalancerPool       []string      // addresses of the LoadBalancerPool "default" (--load-balancer-pool)
	ClusterSigningDuration time.Duration // lifetime of node client certificates (--cluster-signing-duration)
	IsolateNamespaces      bool          // --isolate-namespaces: one NetworkPolicy per namespace admits only its own pods
	Log                    *slog.Logger
}

// ControlPlane is a running API server and its storage.
type ControlPlane struct {
	Opts            ServerOptions
	CA              *auth.CA
	Tokens          *auth.Tokens
	Store           *storage.Etcd
	API             *apiserver.Server
	URL             string // https://host:port clients use
	embedded        *storage.Embedded
	httpSrv         *http.Server
	listener        net.Listener
	stopConns       context.CancelFunc // ends long-running requests (watches) on Close
	stopControllers context.CancelFunc
}

// Validate checks the options and fills defaults.
func (o *ServerOptions) Validate() error {
	if o.DataDir == "" {
		return errors.New("--data-dir: required")
	}
	if o.SecurePort < 0 || o.SecurePort > 65535 {
		return fmt.Errorf("--secure-port: %d is not a port number", o.SecurePort)
	}
	if ip := net.ParseIP(o.BindAddress); ip == nil {
		return fmt.Errorf("--bind-address: %q is not an IP address", o.BindAddress)
	}
	if o.AdvertiseAddress == "" {
		o.AdvertiseAddress = defaultAdvertiseAddress(o.BindAddress)
	} else if net.ParseIP(o.AdvertiseAddress) == nil {
		return fmt.Errorf("--advertise-address: %q is not an IP address", o.AdvertiseAddress)
	}
	if _, err := ipalloc.NewIPRange(o.ServiceCIDR); o.ServiceCIDR != "" && err != nil {
		return fmt.Errorf("--service-cluster-ip-range: %w", err)
	}
	if _, err := ipalloc.ParsePortRange(o.NodePortRange); o.NodePortRange != "" && err != nil {
		return fmt.Errorf("--service-node-port-range: %w", err)
	}
	if err := o.Etcd.Validate(); err != nil {
		return err
	}
	if len(o.EtcdServers) > 0 && o.Etcd.InitialCluster != "" {
		return errors.New("--etcd-initial-cluster: runs an embedded member; not with --etcd-servers (an external etcd)")
	}
	for _, e := range o.EtcdServers {
		if u, err := url.Parse(e); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("--etcd-servers: %q is not an http(s)://host:port URL", e)
		}
	}
	if o.ClusterCIDR != "" {
		if _, err := nodeipam.NewBlocks(o.ClusterCIDR, o.NodeCIDRMaskSize); err != nil {
			return err
		}
	}
	if len(o.LoadBalancerPool) > 0 {
		if _, err := lbipam.ParseAddresses(o.LoadBalancerPool); err != nil {
			return fmt.Errorf("--load-balancer-pool: %w", err)
		}
	}
	if o.NodeMonitorGracePeriod < 0 {
		return fmt.Errorf("--node-monitor-grace-period: %v is negative", o.NodeMonitorGracePeriod)
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return nil
}

// defaultAdvertiseAddress picks the bind address, or the node address of this
// host (the default route's interface, internal/nodeaddr), or loopback.
func defaultAdvertiseAddress(bind string) string {
	if ip := net.ParseIP(bind); ip != nil && !ip.IsUnspecified() {
		return bind
	}
	if a, err := nodeaddr.Detect(); err == nil {
		return a
	}
	return "127.0.0.1"
}

// servingHosts are the names and addresses the API server's certificate
// covers: the node's, and the kubernetes Service's as pods reach it
// (kubernetes.default.svc, its cluster IP), which client-go's in-cluster
// config verifies.
func servingHosts(o ServerOptions, hostname string) []string {
	hosts := []string{"localhost", "127.0.0.1", "::1", o.AdvertiseAddress, "kubernetes", "kubernetes.default",
		"kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}
	if ip := apiserver.KubernetesServiceIP(o.ServiceCIDR); ip != "" {
		hosts = append(hosts, ip)
	}
	if hostname != "" {
		hosts = append(hosts, hostname)
	}
	if ip := net.ParseIP(o.BindAddress); ip != nil && !ip.IsUnspecified() {
		hosts = append(hosts, o.BindAddress)
	}
	return hosts
}

// StartControlPlane starts storage and the API server and returns once it serves.
func StartControlPlane(ctx context.Context, o ServerOptions) (*ControlPlane, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("--data-dir: %w", err)
	}
	cp := &ControlPlane{Opts: o}
	ok := false
	defer func() {
		if !ok {
			cp.Close()
		}
	}()
	pki := filepath.Join(o.DataDir, "pki")
	var err error
	if cp.CA, err = auth.LoadOrCreateCA(pki); err != nil {
		return nil, fmt.Errorf("cluster CA: %w", err)
	}
	if cp.Tokens, err = auth.LoadOrCreateTokens(filepath.Join(o.DataDir, "tokens.csv")); err != nil {
		return nil, err
	}
	saKey, err := auth.LoadOrCreateServiceAccountKey(pki)
	if err != nil {
		return nil, fmt.Errorf("service account key: %w", err)
	}
	if len(o.EtcdServers) == 0 {
		cp.embedded, err = storage.StartMember(ctx, o.DataDir, o.Etcd, o.Log)
		if err != nil {
			return nil, err
		}
		cp.Store = storage.NewEtcd(cp.embedded.Client)
	} else {
		c, err := storage.DialEtcd(o.EtcdServers)
		if err != nil {
			return nil, fmt.Errorf("--etcd-servers: %w", err)
		}
		cp.Store = storage.NewEtcd(c)
		go storage.RunCompactor(ctx, cp.Store, 5*time.Minute, o.Log)
	}
	nodeCert, nodeKey, err := cp.CA.Issue("kube-apiserver-kubelet-client", []string{auth.GroupMasters}, nil, 365*24*time.Hour)
	if err != nil {
		return nil, err
	}
	nodeClient, err := tls.X509KeyPair(nodeCert, nodeKey)
	if err != nil {
		return nil, err
	}
	cp.API, err = apiserver.New(apiserver.Config{NodeClientCert: &nodeClient,
		Store: cp.Store, Prefix: o.EtcdPrefix, ServiceCIDR: o.ServiceCIDR, NodePortRange: o.NodePortRange,
		Authn: &auth.Authenticator{Tokens: cp.Tokens}, ServiceAccountKey: saKey, AdvertiseAddress: o.AdvertiseAddress, Port: o.SecurePort,
		Version: Version, Log: o.Log,
	})
	if err != nil {
		return nil, err
	}
	hostname, _ := os.Hostname()
	certFile, keyFile, err := cp.CA.ServingCert(pki, servingHosts(o, hostname))
	if err != nil {
		return nil, fmt.Errorf("serving certificate: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	cert.Certificate = append(cert.Certificate, cp.CA.Cert.Raw) // joining nodes pin the CA by its hash
	addr := net.JoinHostPort(o.BindAddress, strconv.Itoa(o.SecurePort))
	cp.listener, err = net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--secure-port: listen on %s: %w", addr, err)
	}
	port := cp.listener.Addr().(*net.TCPAddr).Port
	host := o.BindAddress
	if ip := net.ParseIP(host); ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	cp.URL = "https://" + net.JoinHostPort(host, strconv.Itoa(port))
	if err := cp.API.Start(ctx); err != nil {
		return nil, err
	}
	connCtx, stop := context.WithCancel(context.Background())
	cp.stopConns = stop
	cp.httpSrv = &http.Server{
		BaseContext:       func(net.Listener) context.Context { return connCtx },
		Handler:           cp.API,
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          slog.NewLogLogger(o.Log.Handler(), slog.LevelDebug),
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{cert},
			ClientAuth:   tls.VerifyClientCertIfGiven,
			ClientCAs:    cp.CA.Pool(),
			MinVersion:   tls.VersionTLS12,
			NextProtos:   []string{"h2", "http/1.1"},
		},
	}
	go func() {
		if err := cp.httpSrv.ServeTLS(cp.listener, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			o.Log.Error("API server stopped", "err", err)
		}
	}()
	o.Log.Info("API server serving", "url", cp.URL, "etcd", etcdDescription(o))
	if !o.NoControllers {
		cfg, err := cp.ClientConfig("system:svcnet-controller-manager", auth.GroupMasters)
		if err != nil {
			return nil, err
		}
		var blocks *nodeipam.Blocks
		if o.ClusterCIDR != "" {
			blocks, _ = nodeipam.NewBlocks(o.ClusterCIDR, o.NodeCIDRMaskSize)
		}
		ctrlCtx, stop := context.WithCancel(ctx)
		cp.stopControllers = stop
		go func() {
			if err := controller.Run(ctrlCtx, cfg, controller.Options{LeaderElect: len(o.EtcdServers) > 0 || o.Etcd.InitialCluster != "",
				NodeMonitorGracePeriod: o.NodeMonitorGracePeriod, PodCIDRs: blocks, RootCA: cp.CA.CertPEM, Log: o.Log,
				CSRSigner: &csr.Signer{Cert: cp.CA.Cert, Key: cp.CA.Key, Duration: o.ClusterSigningDuration}, LoadBalancerPool: o.LoadBalancerPool}); err != nil {
				o.Log.Error("controllers stopped", "err", err)
			}
		}()
		if o.IsolateNamespaces {
			go func() {
				cs, err := kubernetes.NewForConfig(cfg)
				if err == nil {
					err = netpol.IsolateNamespaces(ctrlCtx, cs, o.Log.With("component", "isolate-namespaces"))
				}
				if err != nil {
					o.Log.Error("namespace isolation stopped", "err", err)
				}
			}()
		}
	}
	ok = true
	return cp, nil
}

// ClientConfig is a loopback client of this API server for an in-process
// component, authenticated by a client certificate for user in group.
func (cp *ControlPlane) ClientConfig(user, group string) (*rest.Config, error) {
	cert, key, err := cp.CA.Issue(user, []string{group}, nil, 365*24*time.Hour)
	if err != nil {
		return nil, err
	}
	return &rest.Config{Host: cp.URL, QPS: 1000, Burst: 2000, UserAgent: user,
		TLSClientConfig: rest.TLSClientConfig{CAData: cp.CA.CertPEM, CertData: cert, KeyData: key}}, nil
}

func etcdDescription(o ServerOptions) string {
	if o.Etcd.InitialCluster != "" {
		return fmt.Sprintf("embedded member %s of %s in %s", o.Etcd.Name, o.Etcd.InitialCluster, filepath.Join(o.DataDir, "etcd"))
	}
	if len(o.EtcdServers) == 0 {
		return "embedded in " + filepath.Join(o.DataDir, "etcd")
	}
	return fmt.Sprint(o.EtcdServers)
}

// WriteKubeconfig writes an admin kubeconfig for this control plane to path.
func (cp *ControlPlane) WriteKubeconfig(path string) error {
	data, err := auth.KubeconfigFor(cp.CA, cp.Tokens, cp.URL, auth.AdminUser)
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o600)
}

// Close stops serving and closes storage.
func (cp *ControlPlane) Close() {
	if cp.stopControllers != nil {
		cp.stopControllers()
	}
	if cp.stopConns != nil {
		cp.stopConns()
	}
	if cp.httpSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = cp.httpSrv.Shutdown(ctx)
		cancel()
	} else if cp.listener != nil {
		cp.listener.Close()
	}
	if cp.embedded != nil {
		cp.embedded.Close()
	}
}
