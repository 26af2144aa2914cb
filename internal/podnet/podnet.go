// Package podnet gives pods their network the way container runtimes do: one
// network namespace per pod, set up and torn down through the standard CNI
// plugins (loopback, and bridge with host-local IPAM over the node's pod CIDR)
// invoked with libcni.
package podnet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/containernetworking/cni/libcni"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// DefaultPluginDirs are where Debian's containernetworking-plugins and the usual
// manual installs put the plugins.
var DefaultPluginDirs = []string{"/usr/lib/cni", "/opt/cni/bin"}

// Network is the pod network of one node.
type Network struct {
	cni      *libcni.CNIConfig
	bridge   *libcni.NetworkConfigList
	loopback *libcni.PluginConfig
}

// Config describes the node's pod network.
type Config struct {
	PodCIDR    string // the node's spec.podCIDR
	Bridge     string // bridge name, e.g. svcnet0
	DataDir    string // CNI cache and host-local IPAM state
	PluginDirs []string
}

// New builds the CNI configuration for the node.
func New(c Config) (*Network, error) {
	raw, err := ConfList(c, false)
	if err != nil {
		return nil, err
	}
	list, err := libcni.ConfListFromBytes(raw)
	if err != nil {
		return nil, err
	}
	lo, err := libcni.ConfFromBytes([]byte(`{"cniVersion":"1.0.0","name":"lo","type":"loopback"}`))
	if err != nil {
		return nil, err
	}
	if len(c.PluginDirs) == 0 {
		c.PluginDirs = DefaultPluginDirs
	}
	return &Network{cni: libcni.NewCNIConfigWithCacheDir(c.PluginDirs, filepath.Join(c.DataDir, "cache"), nil), bridge: list, loopback: lo}, nil
}

// ConfList is the node's pod network as a CNI conflist: a bridge with
// host-local IPAM over the pod CIDR, plus portmap (hostPort) when asked — the
// form a container runtime's CNI config directory takes.
func ConfList(c Config, portmap bool) ([]byte, error) {
	p, err := netip.ParsePrefix(c.PodCIDR)
	if err != nil {
		return nil, fmt.Errorf("pod CIDR: %w", err)
	}
	if c.Bridge == "" {
		c.Bridge = DefaultBridge
	}
	def := "0.0.0.0/0"
	if p.Addr().Is6() {
		def = "::/0"
	}
	plugins := []any{map[string]any{
		"type": "bridge", "bridge": c.Bridge, "isGateway": true, "ipMasq": false, "hairpinMode": true,
		"ipam": map[string]any{"type": "host-local", "ranges": [][]map[string]string{{{"subnet": p.Masked().String()}}},
			"routes": []map[string]string{{"dst": def}}, "dataDir": filepath.Join(c.DataDir, "ipam")},
	}}
	if portmap {
		plugins = append(plugins, map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}})
	}
	return json.MarshalIndent(map[string]any{"cniVersion": "1.0.0", "name": "svcnet", "plugins": plugins}, "", "  ")
}

// NetnsPath is where a pod's network namespace is kept.
func NetnsPath(name string) string { return filepath.Join("/var/run/netns", name) }

// isNetns reports whether path is a mounted network namespace (nsfs), not
// just the empty file a namespace mount leaves when its mount namespace ends.
func isNetns(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Type == unix.NSFS_MAGIC
}

// newNetns creates a named network namespace without moving this process into it.
func newNetns(name string) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return err
	}
	defer orig.Close()
	h, err := netns.NewNamed(name)
	if err != nil {
		_ = netns.Set(orig)
		return fmt.Errorf("create network namespace %s: %w", name, err)
	}
	h.Close()
	return netns.Set(orig)
}

// cleanupTimeout bounds undoing a failed Setup, which runs even when the
// caller's context has ended.
const cleanupTimeout = 30 * time.Second

// Setup creates the pod's network namespace and network, returning its IP. When
// it fails it leaves nothing behind: what it created is torn down again.
func (n *Network) Setup(ctx context.Context, id, nsName string) (ip netip.Addr, err error) {
	if !isNetns(NetnsPath(nsName)) {
		_ = os.Remove(NetnsPath(nsName)) // a mount point whose mount is gone (it lived in another mount namespace)
		if err := newNetns(nsName); err != nil {
			return netip.Addr{}, err
		}
	}
	defer func() {
		if err != nil {
			ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
			defer cancel()
			err = errors.Join(err, n.undo(ctx, id, nsName))
		}
	}()
	rt := &libcni.RuntimeConf{ContainerID: id, NetNS: NetnsPath(nsName), IfName: "eth0"}
	if _, err := n.cni.AddNetwork(ctx, n.loopback, &libcni.RuntimeConf{ContainerID: id, NetNS: NetnsPath(nsName), IfName: "lo"}); err != nil {
		return netip.Addr{}, fmt.Errorf("CNI loopback: %w", err)
	}
	res, err := n.cni.AddNetworkList(ctx, n.bridge, rt)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("CNI bridge: %w", err)
	}
	r, err := types100.NewResultFromResult(res)
	if err != nil || len(r.IPs) == 0 {
		return netip.Addr{}, fmt.Errorf("CNI result without an IP: %v", err)
	}
	ip, _ = netip.AddrFromSlice(r.IPs[0].Address.IP)
	return ip.Unmap(), nil
}

// undo releases what a failed Setup may have added (CNI DEL, which also frees
// an allocated IP) and deletes the namespace. A DEL that fails because the
// plugin is missing had nothing to undo; the namespace must go regardless.
func (n *Network) undo(ctx context.Context, id, nsName string) error {
	rt := &libcni.RuntimeConf{ContainerID: id, NetNS: NetnsPath(nsName), IfName: "eth0"}
	_ = n.cni.DelNetworkList(ctx, n.bridge, rt)
	_ = n.cni.DelNetwork(ctx, n.loopback, &libcni.RuntimeConf{ContainerID: id, NetNS: NetnsPath(nsName), IfName: "lo"})
	_ = unix.Unmount(NetnsPath(nsName), unix.MNT_DETACH)
	if err := os.Remove(NetnsPath(nsName)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete network namespace %s: %w", nsName, err)
	}
	return nil
}

// Teardown releases the pod's network (CNI DEL) and deletes its namespace. It
// is safe to call again.
func (n *Network) Teardown(ctx context.Context, id, nsName string) error {
	rt := &libcni.RuntimeConf{ContainerID: id, NetNS: NetnsPath(nsName), IfName: "eth0"}
	if !isNetns(rt.NetNS) {
		_ = os.Remove(rt.NetNS)
		rt.NetNS = "" // gone already: DEL still frees the IP
	}
	if err := n.cni.DelNetworkList(ctx, n.bridge, rt); err != nil {
		return fmt.Errorf("CNI DEL: %w", err)
	}
	if rt.NetNS != "" {
		if err := netns.DeleteNamed(nsName); err != nil {
			return fmt.Errorf("delete network namespace %s: %w", nsName, err)
		}
	}
	return nil
}

// PluginDir is the first of dirs (default DefaultPluginDirs) holding the
// bridge plugin: a container runtime takes one plugin directory.
func PluginDir(dirs []string) (string, error) {
	if len(dirs) == 0 {
		dirs = DefaultPluginDirs
	}
	for _, d := range dirs {
		if st, err := os.Stat(filepath.Join(d, "bridge")); err == nil && !st.IsDir() {
			return d, nil
		}
	}
	return "", fmt.Errorf("no CNI bridge plugin in %s (apt-get install containernetworking-plugins)", strings.Join(dirs, ", "))
}
