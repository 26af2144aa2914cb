// Package conntrack clears the UDP conntrack entries a change of a Service's
// endpoints leaves wrong, as kube-proxy's conntrack cleanup does: UDP has no
// connection end, so a tracked flow keeps going where it was first sent.
package conntrack

import (
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"

	"github.com/svcnet/svcnet/internal/proxy"
)

// UDP is what the cleanup needs of one UDP service port.
type UDP struct {
	Port     uint16       // the service port
	VIPs     []netip.Addr // cluster, external and load-balancer IPs
	NodePort uint16       // 0: none
	// Serving are the endpoints whose flows stay: every serving one, ready or
	// terminating, near or far (a terminating endpoint keeps its flows until
	// it stops serving or goes).
	Serving []netip.AddrPort
}

// Of returns what the cleanup needs of sp with eps (nil unless sp is UDP and
// proxied here).
func Of(sp *proxy.ServicePort, eps []proxy.Endpoint) *UDP {
	if sp == nil || sp.Protocol != corev1.ProtocolUDP || sp.Port == 0 {
		return nil
	}
	u := &UDP{Port: uint16(sp.Port), NodePort: uint16(sp.NodePort)}
	if sp.ClusterIP.IsValid() && !sp.NodeLocal {
		u.VIPs = append(u.VIPs, sp.ClusterIP)
	}
	u.VIPs = append(append(u.VIPs, sp.ExternalIPs...), sp.LoadBalancerIPs...)
	for _, e := range eps {
		if e.Ready || e.Serving {
			u.Serving = append(u.Serving, e.Addr)
		}
	}
	return u
}

// Stale lists what a change from old to cur leaves wrong: flows answered by
// an endpoint that no longer serves (they would keep going to it), and flows
// to the service's IPs when it gets its first serving endpoint (tracked before
// any rule sent them anywhere). Either may be nil.
func Stale(old, cur *UDP) (gone []netip.AddrPort, fresh []netip.Addr) {
	if old != nil {
		for _, b := range old.Serving {
			if cur == nil || !slices.Contains(cur.Serving, b) {
				gone = append(gone, b)
			}
		}
	}
	if cur != nil && len(cur.Serving) > 0 && (old == nil || len(old.Serving) == 0) {
		fresh = append([]netip.Addr{}, cur.VIPs...)
	}
	return gone, fresh
}

// Filters are the conntrack filters of the flows Stale finds: flows to one
// of the old service port's IPs and port, or to its node port, answered by a
// gone endpoint; and every flow to a fresh IP and port or to the node port.
func Filters(old, cur *UDP) []netlink.CustomConntrackFilter {
	gone, fresh := Stale(old, cur)
	var out []netlink.CustomConntrackFilter
	filter := func(port uint16, ip, replySrc netip.Addr) {
		f := &netlink.ConntrackFilter{}
		_ = f.AddProtocol(unix.IPPROTO_UDP)
		_ = f.AddPort(netlink.ConntrackOrigDstPort, port)
		if ip.IsValid() {
			_ = f.AddIP(netlink.ConntrackOrigDstIP, net.IP(ip.AsSlice()))
		}
		if replySrc.IsValid() {
			_ = f.AddIP(netlink.ConntrackReplySrcIP, net.IP(replySrc.AsSlice()))
		}
		out = append(out, f)
	}
	for _, b := range gone {
		for _, ip := range old.VIPs {
			filter(old.Port, ip, b.Addr())
		}
		if old.NodePort != 0 {
			filter(old.NodePort, netip.Addr{}, b.Addr())
		}
	}
	for _, ip := range fresh {
		filter(cur.Port, ip, netip.Addr{})
	}
	if fresh != nil && cur.NodePort != 0 {
		filter(cur.NodePort, netip.Addr{}, netip.Addr{})
	}
	return out
}

// Clear deletes the IPv4 entries matching filters.
func Clear(filters []netlink.CustomConntrackFilter) error {
	if len(filters) == 0 {
		return nil
	}
	_, err := netlink.ConntrackDeleteFilters(netlink.ConntrackTable, unix.AF_INET, filters...)
	return err
}
