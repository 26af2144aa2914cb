package nftables

import (
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
)

// staleUDP lists the conntrack entries a change of one UDP service port leaves
// wrong, as kube-proxy clears them: flows DNATed to an endpoint that is gone
// (they would keep going to it), and flows to the service's IPs when it gets
// its first endpoint (they may have been tracked before any rule existed).
func staleUDP(old, cur *Fragment) (gone []netip.AddrPort, fresh []netip.Addr) {
	if (old == nil || old.Protocol != corev1.ProtocolUDP) && (cur == nil || cur.Protocol != corev1.ProtocolUDP) {
		return nil, nil
	}
	keep := map[netip.AddrPort]bool{}
	if cur != nil {
		for _, b := range cur.Backends {
			keep[b] = true
		}
	}
	if old != nil {
		for _, b := range old.Backends {
			if !keep[b] {
				gone = append(gone, b)
			}
		}
	}
	if cur != nil && len(cur.Backends) > 0 && (old == nil || len(old.Backends) == 0) {
		for k := range cur.IPs {
			fresh = append(fresh, k.IP)
		}
	}
	return gone, fresh
}

// udpFilters builds conntrack filters for the gone endpoints of fragment f:
// flows to one of its service IPs or node ports answered by that endpoint.
func udpFilters(f *Fragment, gone []netip.AddrPort) []netlink.CustomConntrackFilter {
	var out []netlink.CustomConntrackFilter
	for _, b := range gone {
		for k := range f.IPs {
			c := &netlink.ConntrackFilter{}
			_ = c.AddProtocol(unix.IPPROTO_UDP)
			_ = c.AddIP(netlink.ConntrackReplySrcIP, net.IP(b.Addr().AsSlice()))
			_ = c.AddIP(netlink.ConntrackOrigDstIP, net.IP(k.IP.AsSlice()))
			out = append(out, c)
		}
		for k := range f.NodePorts {
			c := &netlink.ConntrackFilter{}
			_ = c.AddProtocol(unix.IPPROTO_UDP)
			_ = c.AddIP(netlink.ConntrackReplySrcIP, net.IP(b.Addr().AsSlice()))
			_ = c.AddPort(netlink.ConntrackOrigDstPort, k.Port)
			out = append(out, c)
		}
	}
	return out
}

// clearConntrack deletes the entries matching filters, and every UDP flow to the fresh IPs.
func clearConntrack(filters []netlink.CustomConntrackFilter, fresh []netip.Addr) error {
	for _, ip := range fresh {
		f := &netlink.ConntrackFilter{}
		_ = f.AddProtocol(unix.IPPROTO_UDP)
		_ = f.AddIP(netlink.ConntrackOrigDstIP, net.IP(ip.AsSlice()))
		filters = append(filters, f)
	}
	if len(filters) == 0 {
		return nil
	}
	_, err := netlink.ConntrackDeleteFilters(netlink.ConntrackTable, unix.AF_INET, filters...)
	return err
}
