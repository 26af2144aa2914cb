package podnet

import (
	"fmt"
	"net"
	"net/netip"
	"sort"
)

// Mode is how a node's pods reach the pods of other nodes (--pod-network).
type Mode string

const (
	// ModeHostGW routes each other node's pod CIDR via that node's IP: the
	// nodes must share a link.
	ModeHostGW Mode = "host-gw"
	// ModeVXLAN sends pod traffic to every other node through a VXLAN tunnel.
	ModeVXLAN Mode = "vxlan"
	// ModeAuto is host-gw to nodes on a directly connected subnet, VXLAN to
	// the others (flannel's vxlan backend with DirectRouting).
	ModeAuto Mode = "auto"
)

// ParseMode checks a --pod-network value ("" is auto).
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case "":
		return ModeAuto, nil
	case ModeHostGW, ModeVXLAN, ModeAuto:
		return m, nil
	}
	return "", fmt.Errorf("--pod-network: %q is not vxlan, host-gw or auto", s)
}

// The VXLAN device, as flannel's: VNI 1 on UDP 8472 (the Linux default, not
// IANA's 4789), address learning off, static FDB and neighbour entries.
const (
	VXLANDevice = "svcnet.1"
	VXLANVNI    = 1
	VXLANPort   = 8472
	// vxlanOverhead is what encapsulation adds to a packet (outer IPv4, UDP,
	// VXLAN and Ethernet headers): the device's MTU is its uplink's minus it.
	vxlanOverhead = 50
)

// Peer is another node as the pod network sees it.
type Peer struct {
	Name    string
	PodCIDR netip.Prefix
	NodeIP  netip.Addr // its InternalIP
}

// Route is a route to one peer's pod CIDR: via its node IP (host-gw), or
// through the VXLAN device via its VTEP address (onlink).
type Route struct {
	Dst   netip.Prefix
	Gw    netip.Addr
	VXLAN bool
}

// FDB sends frames for a peer's VTEP MAC to its node IP (bridge fdb).
type FDB struct {
	MAC net.HardwareAddr
	Dst netip.Addr
}

// Neigh resolves a peer's VTEP address to its VTEP MAC on the VXLAN device.
type Neigh struct {
	IP  netip.Addr
	MAC net.HardwareAddr
}

// Plan is what a node programs so its pods reach its peers' pods.
type Plan struct {
	Routes []Route
	FDB    []FDB
	Neigh  []Neigh
}

// VTEP is a node's VXLAN tunnel endpoint: the network address of its pod
// CIDR (as flannel) and a MAC derived from it, 0a:58 and the four address
// bytes (as OVN-Kubernetes), so peers know it from the Node alone.
func VTEP(podCIDR netip.Prefix) (netip.Addr, net.HardwareAddr, bool) {
	a := podCIDR.Masked().Addr()
	if !a.Is4() {
		return netip.Addr{}, nil, false
	}
	b := a.As4()
	return a, net.HardwareAddr{0x0a, 0x58, b[0], b[1], b[2], b[3]}, true
}

// Direct reports whether ip is on one of the node's connected subnets.
func Direct(ip netip.Addr, connected []netip.Prefix) bool {
	for _, p := range connected {
		if p.Bits() < p.Addr().BitLen() && p.Contains(ip) {
			return true
		}
	}
	return false
}

// PlanPeers computes the routes, FDB and neighbour entries to the peers'
// pod CIDRs (pure): host-gw for every peer in ModeHostGW, VXLAN for every
// peer in ModeVXLAN, and in ModeAuto host-gw where the peer's node IP is on a
// connected subnet, VXLAN otherwise. Peers without an IPv4 pod CIDR or node
// IP are left out.
func PlanPeers(mode Mode, peers []Peer, connected []netip.Prefix) Plan {
	var p Plan
	sorted := append([]Peer(nil), peers...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	for _, peer := range sorted {
		if !peer.PodCIDR.IsValid() || !peer.NodeIP.Is4() {
			continue
		}
		vxlan := mode == ModeVXLAN || (mode == ModeAuto && !Direct(peer.NodeIP, connected))
		if !vxlan {
			p.Routes = append(p.Routes, Route{Dst: peer.PodCIDR.Masked(), Gw: peer.NodeIP})
			continue
		}
		ip, mac, ok := VTEP(peer.PodCIDR)
		if !ok {
			continue
		}
		p.Routes = append(p.Routes, Route{Dst: peer.PodCIDR.Masked(), Gw: ip, VXLAN: true})
		p.FDB = append(p.FDB, FDB{MAC: mac, Dst: peer.NodeIP})
		p.Neigh = append(p.Neigh, Neigh{IP: ip, MAC: mac})
	}
	return p
}
