// Package nodeaddr picks a node's InternalIP when none is given: the address of
// the interface holding the default route, else the first non-loopback global
// address, as the kubelet and kubeadm do. The choice is a pure function of the
// route table and the interfaces' addresses; Detect reads them from the host.
package nodeaddr

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
)

// Iface is one network interface and its addresses.
type Iface struct {
	Name  string
	Addrs []netip.Prefix
}

// Choose returns the node address: the first global unicast IPv4 (then IPv6)
// address of defaultIface, else of any interface in order.
func Choose(defaultIface string, ifaces []Iface) (netip.Addr, bool) {
	pick := func(list []Iface) (netip.Addr, bool) {
		for _, v4 := range []bool{true, false} {
			for _, ifc := range list {
				for _, p := range ifc.Addrs {
					a := p.Addr()
					if a.IsGlobalUnicast() && !a.IsLoopback() && a.Is4() == v4 {
						return a, true
					}
				}
			}
		}
		return netip.Addr{}, false
	}
	if defaultIface != "" {
		for _, ifc := range ifaces {
			if ifc.Name == defaultIface {
				if a, ok := pick([]Iface{ifc}); ok {
					return a, true
				}
			}
		}
	}
	return pick(ifaces)
}

// DefaultRouteIface returns the interface of the first IPv4 default route in
// /proc/net/route content ("" when there is none).
func DefaultRouteIface(procNetRoute string) string {
	sc := bufio.NewScanner(strings.NewReader(procNetRoute))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 8 && f[1] == "00000000" && f[7] == "00000000" {
			return f[0]
		}
	}
	return ""
}

// Detect returns this host's node address.
func Detect() (string, error) {
	routes, _ := os.ReadFile("/proc/net/route")
	list, err := net.Interfaces()
	if err != nil {
		return "", err
	}
	var ifaces []Iface
	for _, l := range list {
		if l.Flags&net.FlagUp == 0 {
			continue
		}
		addrs, err := l.Addrs()
		if err != nil {
			continue
		}
		ifc := Iface{Name: l.Name}
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil {
				ifc.Addrs = append(ifc.Addrs, netip.PrefixFrom(p.Addr().Unmap(), p.Bits()))
			}
		}
		ifaces = append(ifaces, ifc)
	}
	a, ok := Choose(DefaultRouteIface(string(routes)), ifaces)
	if !ok {
		return "", fmt.Errorf("no non-loopback global address on any interface: give --node-ip")
	}
	return a.String(), nil
}
