package agent

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// serviceRouteProtocol marks the agent's route for the service CIDR.
const serviceRouteProtocol = netlink.RouteProtocol(0x54)

// VIPLink is the interface without ports the service CIDR is routed through
// on a node that has an address of its own (a dummy link, or a bridge without
// ports where the kernel has no dummy links).
const VIPLink = "svcnet-vip"

// serviceRoute adds (or removes) a route for the service CIDR: the node's own
// connections to cluster IPs then reach the output hook (where they are
// DNATed) even on a node without a default route, and a cluster IP packet
// that is not DNATed can never leave the node.
//
// Where the node IP is a local, non-loopback address, the route goes through
// VIPLink with the node IP as its source. Not through lo: the kernel takes a
// packet routed through lo as addressed to the node itself, so the ICMP error
// of a REJECT (a Service without endpoints, in the iptables mode and for UDP
// in the nftables mode) would be sent from the cluster IP, find no route and
// never arrive: the node's connection would hang instead of being refused.
// A node whose only address is loopback (a test namespace) keeps the route
// through lo, without a source hint: the kernel would take an address of lo,
// which can be a cluster IP made local (the cluster DNS's).
func serviceRoute(cidr netip.Prefix, add bool, nodeIP string) error {
	dst := &net.IPNet{IP: cidr.Addr().AsSlice(), Mask: net.CIDRMask(cidr.Bits(), 32)}
	if !add {
		err := netlink.RouteDel(&netlink.Route{Dst: dst, Scope: netlink.SCOPE_LINK, Protocol: serviceRouteProtocol})
		if l, lerr := netlink.LinkByName(VIPLink); lerr == nil {
			_ = netlink.LinkDel(l)
		}
		return err
	}
	// RouteReplace replaces the route to dst whichever link it went through.
	if ip, err := netip.ParseAddr(nodeIP); err == nil && ip.Is4() && !ip.IsLoopback() && isLocal(ip) {
		link, err := ensureVIPLink()
		if err != nil {
			return err
		}
		return netlink.RouteReplace(&netlink.Route{LinkIndex: link.Attrs().Index, Dst: dst, Src: ip.AsSlice(),
			Scope: netlink.SCOPE_LINK, Protocol: serviceRouteProtocol})
	}
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return err
	}
	return netlink.RouteReplace(&netlink.Route{LinkIndex: lo.Attrs().Index, Dst: dst, Scope: netlink.SCOPE_LINK, Protocol: serviceRouteProtocol})
}

// ensureVIPLink returns VIPLink, up, making it first if it is missing.
func ensureVIPLink() (netlink.Link, error) {
	link, err := netlink.LinkByName(VIPLink)
	var notFound netlink.LinkNotFoundError
	if errors.As(err, &notFound) {
		attrs := netlink.LinkAttrs{Name: VIPLink}
		if err = netlink.LinkAdd(&netlink.Dummy{LinkAttrs: attrs}); err != nil {
			err = netlink.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}) // no dummy links in this kernel
		}
		if err != nil {
			return nil, fmt.Errorf("make %s for the service CIDR route: %w", VIPLink, err)
		}
		link, err = netlink.LinkByName(VIPLink)
	}
	if err != nil {
		return nil, err
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return nil, fmt.Errorf("bring %s up: %w", VIPLink, err)
	}
	return link, nil
}
