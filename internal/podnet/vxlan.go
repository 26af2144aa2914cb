package podnet

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// RouteProtocol marks the routes to other nodes' pods, so they can be found
// and removed again.
const RouteProtocol = netlink.RouteProtocol(0x53)

// Connected returns the prefixes of the node's IPv4 addresses (for ModeAuto).
func Connected() ([]netip.Prefix, error) {
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, err
	}
	var out []netip.Prefix
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP.To4())
		ones, _ := a.Mask.Size()
		if ok && !ip.IsLoopback() {
			out = append(out, netip.PrefixFrom(ip, ones).Masked())
		}
	}
	return out, nil
}

// EnsureVXLAN makes the node's VXLAN device (VXLANDevice) what the node
// needs: VNI, port and local address nodeIP, learning off, the VTEP MAC and
// address of podCIDR, the MTU of nodeIP's link less the encapsulation; up.
// A device of another shape is replaced.
func EnsureVXLAN(nodeIP netip.Addr, podCIDR netip.Prefix) (netlink.Link, error) {
	vtep, mac, ok := VTEP(podCIDR)
	if !ok || !nodeIP.Is4() {
		return nil, fmt.Errorf("VXLAN: needs an IPv4 node IP and pod CIDR (have %s, %s)", nodeIP, podCIDR)
	}
	want := &netlink.Vxlan{LinkAttrs: netlink.LinkAttrs{Name: VXLANDevice, HardwareAddr: mac, MTU: 1500 - vxlanOverhead},
		VxlanId: VXLANVNI, SrcAddr: nodeIP.AsSlice(), Port: VXLANPort}
	if up := linkWith(nodeIP); up != nil {
		want.VtepDevIndex, want.MTU = up.Attrs().Index, up.Attrs().MTU-vxlanOverhead
	}
	l, err := netlink.LinkByName(VXLANDevice)
	if err == nil && !sameVXLAN(l, want) {
		if err := netlink.LinkDel(l); err != nil {
			return nil, fmt.Errorf("VXLAN: replace %s: %w", VXLANDevice, err)
		}
		err = netlink.LinkNotFoundError{}
	}
	if errors.As(err, &netlink.LinkNotFoundError{}) {
		if err = netlink.LinkAdd(want); err == nil {
			l, err = netlink.LinkByName(VXLANDevice)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("VXLAN: %s: %w", VXLANDevice, err)
	}
	if l.Attrs().MTU != want.MTU {
		if err := netlink.LinkSetMTU(l, want.MTU); err != nil {
			return nil, fmt.Errorf("VXLAN: %s mtu: %w", VXLANDevice, err)
		}
	}
	addrs, err := netlink.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		return nil, err
	}
	for _, a := range addrs { // a pod CIDR of before
		if !a.IP.Equal(vtep.AsSlice()) {
			_ = netlink.AddrDel(l, &a)
		}
	}
	if err := netlink.AddrReplace(l, &netlink.Addr{IPNet: &net.IPNet{IP: vtep.AsSlice(), Mask: net.CIDRMask(32, 32)}}); err != nil {
		return nil, fmt.Errorf("VXLAN: %s address %s: %w", VXLANDevice, vtep, err)
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return nil, fmt.Errorf("VXLAN: %s up: %w", VXLANDevice, err)
	}
	return l, nil
}

// sameVXLAN reports whether the existing link l can stay as want.
func sameVXLAN(l netlink.Link, want *netlink.Vxlan) bool {
	v, ok := l.(*netlink.Vxlan)
	return ok && v.VxlanId == want.VxlanId && v.Port == want.Port && !v.Learning && v.SrcAddr.Equal(want.SrcAddr) &&
		v.VtepDevIndex == want.VtepDevIndex && v.HardwareAddr.String() == want.HardwareAddr.String()
}

// linkWith returns the link holding ip (nil: none).
func linkWith(ip netip.Addr) netlink.Link {
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil
	}
	for _, a := range addrs {
		if a.IP.Equal(ip.AsSlice()) {
			if l, err := netlink.LinkByIndex(a.LinkIndex); err == nil {
				return l
			}
		}
	}
	return nil
}

// DeleteVXLAN removes the VXLAN device, with its routes and entries.
func DeleteVXLAN() error {
	l, err := netlink.LinkByName(VXLANDevice)
	if errors.As(err, &netlink.LinkNotFoundError{}) {
		return nil
	}
	if err != nil {
		return err
	}
	return netlink.LinkDel(l)
}

// Apply makes the node's routes to other nodes' pods (RouteProtocol) and the
// VXLAN device's FDB and neighbour entries what plan says, removing the
// others; vxlan is the device (nil: none, so no VXLAN routes).
func Apply(plan Plan, vxlan netlink.Link) error {
	var errs []error
	if vxlan != nil {
		errs = append(errs, syncFDB(vxlan.Attrs().Index, plan.FDB), syncNeigh(vxlan.Attrs().Index, plan.Neigh))
	}
	errs = append(errs, syncRoutes(plan.Routes, vxlan))
	return errors.Join(errs...)
}

func syncFDB(idx int, want []FDB) error {
	have, err := netlink.NeighList(idx, unix.AF_BRIDGE)
	if err != nil {
		return fmt.Errorf("VXLAN fdb: %w", err)
	}
	keep := map[string]bool{}
	for _, f := range want {
		keep[f.MAC.String()+" "+f.Dst.String()] = true
	}
	var errs []error
	for _, n := range have {
		if !keep[n.HardwareAddr.String()+" "+n.IP.String()] {
			if err := netlink.NeighDel(&n); err != nil {
				errs = append(errs, fmt.Errorf("VXLAN fdb: delete %s: %w", n.HardwareAddr, err))
			}
		}
	}
	for _, f := range want {
		n := &netlink.Neigh{LinkIndex: idx, Family: unix.AF_BRIDGE, State: netlink.NUD_PERMANENT, Flags: netlink.NTF_SELF,
			IP: f.Dst.AsSlice(), HardwareAddr: f.MAC}
		if err := netlink.NeighSet(n); err != nil {
			errs = append(errs, fmt.Errorf("VXLAN fdb %s dst %s: %w", f.MAC, f.Dst, err))
		}
	}
	return errors.Join(errs...)
}

func syncNeigh(idx int, want []Neigh) error {
	have, err := netlink.NeighList(idx, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("VXLAN neighbours: %w", err)
	}
	keep := map[string]string{}
	for _, n := range want {
		keep[n.IP.String()] = n.MAC.String()
	}
	var errs []error
	for _, n := range have {
		if keep[n.IP.String()] != n.HardwareAddr.String() {
			if err := netlink.NeighDel(&n); err != nil {
				errs = append(errs, fmt.Errorf("VXLAN neighbour: delete %s: %w", n.IP, err))
			}
		}
	}
	for _, n := range want {
		if err := netlink.NeighSet(&netlink.Neigh{LinkIndex: idx, Family: netlink.FAMILY_V4, State: netlink.NUD_PERMANENT,
			Type: unix.RTN_UNICAST, IP: n.IP.AsSlice(), HardwareAddr: n.MAC}); err != nil {
			errs = append(errs, fmt.Errorf("VXLAN neighbour %s lladdr %s: %w", n.IP, n.MAC, err))
		}
	}
	return errors.Join(errs...)
}

// kernelRoute is r as netlink writes it.
func kernelRoute(r Route, vxlan netlink.Link) *netlink.Route {
	dst := &net.IPNet{IP: r.Dst.Addr().AsSlice(), Mask: net.CIDRMask(r.Dst.Bits(), r.Dst.Addr().BitLen())}
	kr := &netlink.Route{Dst: dst, Gw: r.Gw.AsSlice(), Protocol: RouteProtocol}
	if r.VXLAN && vxlan != nil {
		kr.LinkIndex, kr.Flags = vxlan.Attrs().Index, int(netlink.FLAG_ONLINK)
	}
	return kr
}

func syncRoutes(want []Route, vxlan netlink.Link) error {
	have, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Protocol: RouteProtocol}, netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		return err
	}
	byDst := map[string]*netlink.Route{}
	var errs []error
	for _, r := range want {
		if r.VXLAN && vxlan == nil {
			errs = append(errs, fmt.Errorf("route %s: no VXLAN device", r.Dst))
			continue
		}
		byDst[r.Dst.String()] = kernelRoute(r, vxlan)
	}
	for _, r := range have {
		w := byDst[fmt.Sprint(r.Dst)]
		if r.Dst == nil || w == nil || !r.Gw.Equal(w.Gw) || (w.LinkIndex != 0 && r.LinkIndex != w.LinkIndex) {
			if err := netlink.RouteDel(&r); err != nil {
				errs = append(errs, fmt.Errorf("delete route %v: %w", r.Dst, err))
			}
		}
	}
	for dst, r := range byDst {
		if err := netlink.RouteReplace(r); err != nil {
			errs = append(errs, fmt.Errorf("route %s via %s: %w", dst, r.Gw, err))
		}
	}
	return errors.Join(errs...)
}
