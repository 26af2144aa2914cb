package agent

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/vishvananda/netlink"
)

// DNSLink is the dummy interface that holds the cluster DNS address on a node.
const DNSLink = "svcnet-dns"

func isLocal(ip netip.Addr) bool {
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if x, ok := netip.AddrFromSlice(n.IP); ok && x.Unmap() == ip {
				return true
			}
		}
	}
	return false
}

// ServiceLink is the dummy interface the userspace proxy puts cluster IPs on.
const ServiceLink = "svcnet-svc"

// ensureLocal makes ip an address of this node for the cluster DNS.
func ensureLocal(ip netip.Addr) (func(), error) { return ensureLocalOn(DNSLink, ip) }

// ensureLocalOn makes ip an address of this node: if no interface has it, it
// goes on the dummy interface linkName, or on lo where the kernel has no dummy
// links (root only). The returned function removes what was added.
func ensureLocalOn(linkName string, ip netip.Addr) (func(), error) {
	if ip.IsUnspecified() || ip.IsLoopback() || isLocal(ip) {
		return func() {}, nil
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("%s is not an address of this node, and adding it needs root", ip)
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(ip.BitLen(), ip.BitLen())}}
	created := false
	link, err := netlink.LinkByName(linkName)
	var notFound netlink.LinkNotFoundError
	if errors.As(err, &notFound) {
		if netlink.LinkAdd(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: linkName}}) == nil {
			created = true
			link, err = netlink.LinkByName(linkName)
		} else {
			link, err = netlink.LinkByName("lo") // no dummy links in this kernel
		}
	}
	if err != nil {
		return nil, fmt.Errorf("find an interface for %s: %w", ip, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return nil, fmt.Errorf("bring %s up: %w", link.Attrs().Name, err)
	}
	if err := netlink.AddrAdd(link, addr); err != nil {
		return nil, fmt.Errorf("add %s to %s: %w", ip, link.Attrs().Name, err)
	}
	return func() {
		if created {
			_ = netlink.LinkDel(link)
		} else {
			_ = netlink.AddrDel(link, addr)
		}
	}, nil
}
