package nftables

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
)

// Named maps and sets of the table. Keys are `ip . proto . port` (IPs) or
// `proto . port` (node ports); "-N" maps hold the slots of Services with N
// endpoints.
const (
	MapServiceIPs       = "service-ips"       // ip . proto . port : jump chain (affinity, source ranges)
	MapServiceNodePorts = "service-nodeports" // proto . port : jump chain
	SetMasqFromOutside  = "masq-from-outside" // cluster IPs: masquerade sources outside the pod network
	SetMasqIPs          = "masq-ips"          // external and LB IPs with policy Cluster: masquerade
	SetMasqNodePorts    = "masq-nodeports"    // node ports with policy Cluster: masquerade
	SetRejectIPs        = "reject-ips"        // no endpoints
	SetRejectNodePorts  = "reject-nodeports"
	SetDropIPs          = "drop-ips" // a Local policy without a local endpoint
	SetDropNodePorts    = "drop-nodeports"
	SetClusterIPs       = "cluster-ips"     // every allocated cluster IP
	SetHairpin          = "hairpin"         // ip . ip of local endpoints: a pod that reached itself
	SetLocal            = "local-listeners" // ip . proto . port of this node's servers (Config.Local): not tracked
	ipSlotsPrefix       = "ip-endpoints-"
	portSlotsPrefix     = "nodeport-endpoints-"
	ChainReject         = "reject-chain"
)

// staticSets are created by every full sync, in this order.
var staticSets = []string{MapServiceIPs, MapServiceNodePorts, SetMasqFromOutside, SetMasqIPs, SetMasqNodePorts,
	SetRejectIPs, SetRejectNodePorts, SetDropIPs, SetDropNodePorts, SetClusterIPs, SetHairpin}

// localElements are the elements of SetLocal (written by full syncs only:
// the listeners do not change while the backend runs).
func localElements(c Config) []element {
	var out []element
	for _, l := range c.Local {
		k := IPProtoPort{l.Addr.Addr(), l.Protocol, l.Addr.Port()}
		out = append(out, element{set: SetLocal, keyText: k.String(), key: ipProtoPortKey(k)})
	}
	return out
}

// ipSlots and portSlots name the maps of Services with n endpoints.
func ipSlots(n int) string   { return ipSlotsPrefix + strconv.Itoa(n) }
func portSlots(n int) string { return portSlotsPrefix + strconv.Itoa(n) }

// slotsOf parses a slot map's name: its kind (ip or node port) and N.
func slotsOf(name string) (ip bool, n int, ok bool) {
	rest, ip := strings.CutPrefix(name, ipSlotsPrefix)
	if !ip {
		if rest, ok = strings.CutPrefix(name, portSlotsPrefix); !ok {
			return false, 0, false
		}
	}
	n, err := strconv.Atoi(rest)
	return ip, n, err == nil && n > 0
}

// element is one element of a named set or map: its netlink key and value,
// and what its nft text (as `nft list` prints it) is made of.
type element struct {
	set     string
	key     []byte
	val     []byte // map data
	jump    string // verdict map data
	keyText string
	slot    int // slot maps: the slot and its endpoint
	ep      netip.AddrPort
}

func (e element) id() string { return e.set + "\x00" + string(e.key) }

// full identifies the element with its data.
func (e element) full() string { return e.id() + "\x00" + string(e.val) + e.jump }

// text is the element as nft prints it.
func (e element) text() string {
	switch {
	case e.jump != "":
		return e.keyText + " : jump " + e.jump
	case e.ep.IsValid():
		return fmt.Sprintf("%s . 0x%08x : %s . %d", e.keyText, e.slot, e.ep.Addr(), e.ep.Port())
	}
	return e.keyText
}

func (k IPProtoPort) String() string {
	return fmt.Sprintf("%s . %s . %d", k.IP, strings.ToLower(string(k.Proto)), k.Port)
}

func (k ProtoPort) String() string {
	return fmt.Sprintf("%s . %d", strings.ToLower(string(k.Proto)), k.Port)
}

func addrPortData(a netip.AddrPort) []byte {
	ip := a.Addr().As4()
	return append(ip[:], pad4(be16(a.Port()))...)
}

// elements lists everything a fragment puts into the table's sets and maps.
func (f *Fragment) elements() []element {
	if f == nil {
		return nil
	}
	var out []element
	target := func(keyText string, key []byte, t Target, ips bool) {
		set := func(ipName, portName string) string {
			if ips {
				return ipName
			}
			return portName
		}
		switch t.Masq {
		case MasqOffCluster:
			out = append(out, element{set: SetMasqFromOutside, keyText: keyText, key: key})
		case MasqAlways:
			out = append(out, element{set: set(SetMasqIPs, SetMasqNodePorts), keyText: keyText, key: key})
		}
		switch {
		case t.Reject:
			out = append(out, element{set: set(SetRejectIPs, SetRejectNodePorts), keyText: keyText, key: key})
		case t.Drop:
			out = append(out, element{set: set(SetDropIPs, SetDropNodePorts), keyText: keyText, key: key})
		}
		if t.Chain != "" {
			out = append(out, element{set: set(MapServiceIPs, MapServiceNodePorts), keyText: keyText, key: key, jump: t.Chain})
		}
		if len(t.Pick) == 0 {
			return
		}
		name := set(ipSlots(len(t.Pick)), portSlots(len(t.Pick)))
		for slot, ep := range t.Pick {
			out = append(out, element{set: name, keyText: keyText, slot: slot, ep: ep,
				key: append(append([]byte{}, key...), u32(uint32(slot))...), val: addrPortData(ep)})
		}
	}
	for _, e := range f.IPs {
		target(e.Key.String(), ipProtoPortKey(e.Key), e.Target, true)
	}
	for _, e := range f.NodePorts {
		target(e.Key.String(), protoPortKey(e.Key), e.Target, false)
	}
	for _, ip := range f.ClusterIPs {
		a := ip.As4()
		out = append(out, element{set: SetClusterIPs, keyText: ip.String(), key: a[:]})
	}
	for _, ip := range f.Hairpin {
		a := ip.As4()
		out = append(out, element{set: SetHairpin, keyText: ip.String() + " . " + ip.String(), key: append(a[:], a[:]...)})
	}
	return out
}

// sortSlots orders slot map names: ip maps first, then by N.
func sortSlots(names []string) {
	sort.Slice(names, func(i, j int) bool {
		ai, an, _ := slotsOf(names[i])
		bi, bn, _ := slotsOf(names[j])
		if ai != bi {
			return ai
		}
		return an < bn
	})
}
