package storage

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"

	"go.etcd.io/etcd/client/pkg/v3/types"
	"go.etcd.io/etcd/server/v3/embed"
)

// Member makes the embedded etcd one member of a cluster of several, one per
// `svcnet server` (--etcd-name, --etcd-initial-cluster, --etcd-client-url):
// the control plane then survives the loss of a minority of its machines.
type Member struct {
	Name string // this member's name in InitialCluster
	// InitialCluster is every member's name and peer URL, as etcd's
	// --initial-cluster: a=http://10.0.0.1:2380,b=http://10.0.0.2:2380,...
	InitialCluster string
	ClientURL      string // where this member serves etcd clients (etcdctl); "" = a free loopback port
}

// Validate checks the member's flags; the zero Member is valid (one member).
func (m Member) Validate() error {
	if m.InitialCluster == "" {
		if m.Name != "" || m.ClientURL != "" {
			return fmt.Errorf("--etcd-name and --etcd-client-url need --etcd-initial-cluster")
		}
		return nil
	}
	peers, err := types.NewURLsMap(m.InitialCluster)
	if err != nil {
		return fmt.Errorf("--etcd-initial-cluster: %q is not name=http://host:port,...: %w", m.InitialCluster, err)
	}
	if m.Name == "" {
		return fmt.Errorf("--etcd-name: required with --etcd-initial-cluster (one of %s)", memberNames(peers))
	}
	own, ok := peers[m.Name]
	if !ok {
		return fmt.Errorf("--etcd-name: %q is not a member of --etcd-initial-cluster (%s)", m.Name, memberNames(peers))
	}
	if len(own) != 1 {
		return fmt.Errorf("--etcd-initial-cluster: member %q has %d peer URLs, want one", m.Name, len(own))
	}
	for name, us := range peers {
		for _, u := range us {
			if u.Scheme != "http" || u.Port() == "" {
				return fmt.Errorf("--etcd-initial-cluster: peer URL %s of %q: want http://host:port", u.String(), name)
			}
		}
	}
	if m.ClientURL != "" {
		if u, err := url.Parse(m.ClientURL); err != nil || u.Scheme != "http" || u.Port() == "" {
			return fmt.Errorf("--etcd-client-url: %q is not http://host:port", m.ClientURL)
		}
	}
	return nil
}

func memberNames(peers types.URLsMap) string {
	names := slices.Sorted(maps.Keys(peers))
	return strings.Join(names, ", ")
}

// configure sets cfg's name and cluster and replaces the client and peer URLs
// it was given (free loopback ports) by the member's own.
func (m Member) configure(cfg *embed.Config, client, peer *url.URL) error {
	if m.InitialCluster == "" {
		return nil
	}
	if err := m.Validate(); err != nil {
		return err
	}
	peers, _ := types.NewURLsMap(m.InitialCluster)
	cfg.Name, cfg.InitialCluster = m.Name, peers.String()
	cfg.InitialClusterToken = "svcnet"
	*peer = peers[m.Name][0]
	if m.ClientURL != "" {
		u, _ := url.Parse(m.ClientURL)
		*client = *u
	}
	return nil
}
