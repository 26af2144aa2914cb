package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/svcnet/svcnet/internal/apilb"
	"github.com/svcnet/svcnet/internal/auth"
	"github.com/svcnet/svcnet/internal/join"
	"github.com/svcnet/svcnet/internal/nodeaddr"
	"github.com/svcnet/svcnet/internal/system"
)

// newJoinCmd is `svcnet join https://SERVER:6443 --token T`: a node agent
// whose identity comes from a CSR approved for the bootstrap token.
func newJoinCmd() *cobra.Command {
	var f agentFlags
	var c join.Config
	var dataDir string
	cmd := &cobra.Command{
		Use:   "join https://SERVER:6443[,https://SERVER2:6443,...] --token TOKEN [--ca-cert-hash sha256:...]",
		Short: "Join this machine to a cluster as a node (bootstrap token -> node client certificate through a CSR, renewed before expiry)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			servers, err := apilb.Addresses("server", splitList(args[0]))
			if err != nil {
				return err
			}
			if _, ok := auth.ParseBootstrapToken(c.Token); !ok {
				return fmt.Errorf("--token: %q is not a bootstrap token [a-z0-9]{6}.[a-z0-9]{16} (printed by svcnet up)", c.Token)
			}
			if f.o.NodeIP == "" {
				ip, err := nodeaddr.Detect()
				if err != nil {
					return fmt.Errorf("--node-ip: %w", err)
				}
				f.o.NodeIP = ip
			} else if net.ParseIP(f.o.NodeIP) == nil {
				return fmt.Errorf("--node-ip: %q is not an IP address", f.o.NodeIP)
			}
			if !cmd.Flags().Changed("root-dir") {
				f.o.RootDir = filepath.Join(dataDir, "agent")
			}
			if err := f.resolve(); err != nil {
				return err
			}
			f.defaultDNSListen(cmd)
			if c.Server, err = failoverURL(cmd.Context(), servers); err != nil {
				return err
			}
			c.NodeName, c.Dir, c.Log = f.o.NodeName, dataDir, slog.Default()
			cfg, ca, err := join.Start(cmd.Context(), c)
			if err != nil {
				return err
			}
			f.o.ClientCA = ca // the agent's port trusts the API server's client certificate by it
			return f.runAnnounced(cmd, cfg)
		},
	}
	cmd.Flags().StringVar(&c.Token, "token", "", "bootstrap token (printed by svcnet up)")
	cmd.Flags().StringVar(&c.CAHash, "ca-cert-hash", "", "pin of the cluster CA, sha256:<hex of its public key> (printed by svcnet up; empty: trust the CA the server sends)")
	cmd.Flags().StringVar(&dataDir, "data-dir", defaultDataDir(), "directory for this node's certificates (pki/) and pods (agent/)")
	cmd.Flags().StringVar(&f.o.NodeIP, "node-ip", "", "this node's IP address (default: the address of the interface holding the default route)")
	cmd.Flags().StringVar(&f.o.ClusterCIDR, "cluster-cidr", "10.244.0.0/16", "pod network of the cluster")
	cmd.Flags().StringVar(&f.o.ServiceCIDR, "service-cluster-ip-range", "10.96.0.0/12", "cluster IP range")
	f.add(cmd.Flags())
	return cmd
}

// joinLine creates a bootstrap token valid for ttl and returns the command
// that joins a machine to cp with it.
func joinLine(ctx context.Context, cp *system.ControlPlane, ttl time.Duration) (string, error) {
	cfg, err := cp.ClientConfig("system:svcnet-bootstrap-signer", auth.GroupMasters)
	if err != nil {
		return "", err
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "", err
	}
	tok := auth.NewBootstrapToken()
	sec := auth.BootstrapSecret(tok, ttl, time.Now(), "svcnet up: joining nodes")
	if _, err := client.CoreV1().Secrets(sec.Namespace).Create(ctx, sec, metav1.CreateOptions{}); err != nil {
		return "", fmt.Errorf("bootstrap token: %w", err)
	}
	server := cp.URL
	if ip := net.ParseIP(cp.Opts.BindAddress); ip != nil && ip.IsUnspecified() {
		server = "https://" + net.JoinHostPort(cp.Opts.AdvertiseAddress, fmt.Sprint(cp.Opts.SecurePort))
	}
	line := fmt.Sprintf("Join nodes (token valid %v) with: svcnet join %s --token %s --ca-cert-hash %s", ttl, server, tok, join.CAHash(cp.CA.Cert))
	if ip := net.ParseIP(cp.Opts.BindAddress); ip != nil && ip.IsLoopback() {
		line += " (listening on loopback only: start svcnet up with --bind-address 0.0.0.0 for other machines)"
	}
	return line, nil
}

// failoverURL is the URL of the only server in servers (host:port), or of a
// loopback failover proxy to all of them (internal/apilb) that lives as long
// as ctx.
func failoverURL(ctx context.Context, servers []string) (string, error) {
	if len(servers) == 1 {
		return "https://" + servers[0], nil
	}
	lb, err := apilb.Start(ctx, servers, slog.Default().With("component", "apilb"))
	if err != nil {
		return "", err
	}
	return lb.URL(), nil
}
