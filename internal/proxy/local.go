package proxy

import (
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strconv"

	corev1 "k8s.io/api/core/v1"
)

// Listener is an address, protocol and port a server of this node answers on
// (the cluster DNS on --cluster-dns-listen). The proxy leaves traffic to it
// alone on this node, whatever Service shares the address and whether that
// Service has endpoints or exists at all: NodeLocal DNSCache's NOTRACK rules,
// built in, so the node's own DNS server answers 10.96.0.10:53 in a cluster
// whose kube-dns Service still points at CoreDNS (or at nothing).
type Listener struct {
	Addr     netip.AddrPort
	Protocol corev1.Protocol
}

func (l Listener) String() string { return fmt.Sprintf("%s/%s", l.Addr, l.Protocol) }

// DNSListeners returns the listeners of a DNS server on hostport (UDP and
// TCP, the order backends write them in); empty hostport gives none.
func DNSListeners(hostport string) ([]Listener, error) {
	if hostport == "" {
		return nil, nil
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil, err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return nil, fmt.Errorf("%q is not an IP address", host)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return nil, fmt.Errorf("%q is not a port", port)
	}
	ap := netip.AddrPortFrom(ip.Unmap(), uint16(p))
	return SortListeners([]Listener{{ap, corev1.ProtocolUDP}, {ap, corev1.ProtocolTCP}}), nil
}

// SortListeners orders listeners by address, port and protocol (in place).
func SortListeners(ls []Listener) []Listener {
	sort.Slice(ls, func(i, j int) bool {
		if c := ls[i].Addr.Compare(ls[j].Addr); c != 0 {
			return c < 0
		}
		return ls[i].Protocol < ls[j].Protocol
	})
	return ls
}

// MarkNodeLocal flags the service ports whose cluster IP, protocol and port
// are one of the node's listeners: every backend then leaves that key alone
// (no DNAT, no reject), so the listener answers. Other keys of the same
// Service (node ports, external IPs, other ports) are proxied as usual.
func MarkNodeLocal(ports []*ServicePort, local []Listener) []*ServicePort {
	for i, sp := range ports {
		if sp.Port == 0 || !sp.ClusterIP.IsValid() {
			continue
		}
		for _, l := range local {
			if l.Addr == netip.AddrPortFrom(sp.ClusterIP, uint16(sp.Port)) && l.Protocol == sp.Protocol {
				cp := *sp
				cp.NodeLocal = true
				ports[i] = &cp
				break
			}
		}
	}
	return ports
}
