package nodeaddr

import (
	"net/netip"
	"testing"
)

func TestChoose(t *testing.T) {
	p := netip.MustParsePrefix
	lo := Iface{Name: "lo", Addrs: []netip.Prefix{p("127.0.0.1/8"), p("::1/128")}}
	eth0 := Iface{Name: "eth0", Addrs: []netip.Prefix{p("fe80::1/64"), p("192.168.1.10/24")}}
	eth1 := Iface{Name: "eth1", Addrs: []netip.Prefix{p("10.0.0.5/24")}}
	v6 := Iface{Name: "eth2", Addrs: []netip.Prefix{p("fe80::2/64"), p("2001:db8::5/64")}}
	tests := []struct {
		name   string
		def    string
		ifaces []Iface
		want   string
	}{
		{"default route interface", "eth1", []Iface{lo, eth0, eth1}, "10.0.0.5"},
		{"no default route: first global", "", []Iface{lo, eth0, eth1}, "192.168.1.10"},
		{"default route interface without address", "tun0", []Iface{lo, eth1}, "10.0.0.5"},
		{"link-local skipped, IPv6 global", "eth2", []Iface{lo, v6}, "2001:db8::5"},
		{"IPv4 preferred without default route", "", []Iface{lo, v6, eth1}, "10.0.0.5"},
		{"only loopback", "", []Iface{lo}, ""},
	}
	for _, tt := range tests {
		got, ok := Choose(tt.def, tt.ifaces)
		if (tt.want == "" && ok) || (tt.want != "" && got.String() != tt.want) {
			t.Errorf("%s: Choose = %v, %v; want %q", tt.name, got, ok, tt.want)
		}
	}
}

func TestDefaultRouteIface(t *testing.T) {
	const routes = `Iface	Destination	Gateway 	Flags	RefCnt	Use	Metric	Mask		MTU	Window	IRTT
br0	0001A8C0	00000000	0001	0	0	0	00FFFFFF	0	0	0
eth0	00000000	0101A8C0	0003	0	0	100	00000000	0	0	0
`
	if got := DefaultRouteIface(routes); got != "eth0" {
		t.Errorf("DefaultRouteIface = %q, want eth0", got)
	}
	if got := DefaultRouteIface("Iface\tDestination\n"); got != "" {
		t.Errorf("no default route: %q", got)
	}
}
