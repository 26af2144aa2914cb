package agent

import (
	"fmt"
	"net"
	"net/netip"
)

// validNodePortAddresses checks kube-proxy's --nodeport-addresses: CIDRs or
// "primary" (the node IP).
func validNodePortAddresses(vals []string) error {
	for _, v := range vals {
		if v == "primary" {
			continue
		}
		if _, err := netip.ParsePrefix(v); err != nil {
			return fmt.Errorf("--nodeport-addresses: %q is not a CIDR or primary", v)
		}
	}
	return nil
}

// nodePortAddrs picks the addresses node ports listen on: the local ones in
// the CIDRs of vals, and the node IP for "primary" (nil: every address).
func nodePortAddrs(vals []string, nodeIP string, local []netip.Addr) []netip.Addr {
	var out []netip.Addr
	seen := map[netip.Addr]bool{}
	add := func(a netip.Addr) {
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	for _, v := range vals {
		if v == "primary" {
			if ip, err := netip.ParseAddr(nodeIP); err == nil {
				add(ip)
			}
			continue
		}
		p, err := netip.ParsePrefix(v)
		if err != nil {
			continue
		}
		for _, a := range local {
			if p.Contains(a) {
				add(a)
			}
		}
	}
	return out
}

// localAddrs lists this node's IPv4 addresses.
func localAddrs() []netip.Addr {
	var out []netip.Addr
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if x, ok := netip.AddrFromSlice(n.IP); ok && x.Unmap().Is4() {
				out = append(out, x.Unmap())
			}
		}
	}
	return out
}
