package podnet

import (
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	"github.com/svcnet/svcnet/internal/netnstest"
)

// TestVXLANKernel: in a fresh network namespace, EnsureVXLAN makes the device
// (VNI 1, port 8472, learning off, VTEP MAC and address, MTU uplink-50) and
// Apply writes the routes, FDB and neighbour entries of a plan, replaces them
// when the plan changes, and removes them for an empty plan.
func TestVXLANKernel(t *testing.T) {
	netnstest.InFresh(t, "netlink in a network namespace", func() {
		ip := func(args ...string) string {
			out, err := exec.Command("ip", args...).CombinedOutput()
			if err != nil {
				t.Fatalf("ip %v: %v %s", args, err, out)
			}
			return string(out)
		}
		ip("link", "add", "up0", "mtu", "1400", "type", "veth", "peer", "name", "up1", "mtu", "1400")
		ip("link", "set", "up1", "up")
		ip("link", "set", "up0", "up")
		ip("addr", "add", "192.168.84.1/24", "dev", "up0")
		ip("route", "add", "192.168.85.0/24", "via", "192.168.84.254")
		node := netip.MustParseAddr("192.168.84.1")
		l, err := EnsureVXLAN(node, netip.MustParsePrefix("10.244.0.0/24"))
		if err != nil {
			t.Fatal(err)
		}
		link := ip("-d", "link", "show", VXLANDevice)
		for _, want := range []string{"mtu 1350", "link/ether 0a:58:0a:f4:00:00", "vxlan id 1 local 192.168.84.1 dev up0", "dstport 8472", "nolearning"} {
			if !strings.Contains(link, want) {
				t.Errorf("device lacks %q:\n%s", want, link)
			}
		}
		if a := ip("-4", "addr", "show", VXLANDevice); !strings.Contains(a, "inet 10.244.0.0/32") {
			t.Errorf("VTEP address:\n%s", a)
		}
		if l2, err := EnsureVXLAN(node, netip.MustParsePrefix("10.244.0.0/24")); err != nil || l2.Attrs().Index != l.Attrs().Index {
			t.Errorf("EnsureVXLAN again replaced the device or failed: %v", err)
		}
		peers := []Peer{{Name: "b", PodCIDR: netip.MustParsePrefix("10.244.1.0/24"), NodeIP: netip.MustParseAddr("192.168.84.2")},
			{Name: "c", PodCIDR: netip.MustParsePrefix("10.244.2.0/24"), NodeIP: netip.MustParseAddr("192.168.85.1")}}
		connected, err := Connected()
		if err != nil {
			t.Fatal(err)
		}
		if err := Apply(PlanPeers(ModeAuto, peers, connected), l); err != nil {
			t.Fatal(err)
		}
		state := func() string {
			return ip("route", "show", "proto", "0x53") + ip("neigh", "show", "dev", VXLANDevice) + strings.Join(strings.Fields(
				string(must(exec.Command("bridge", "fdb", "show", "dev", VXLANDevice).CombinedOutput()))), " ")
		}
		got := state()
		for _, want := range []string{"10.244.1.0/24 via 192.168.84.2 dev up0", "10.244.2.0/24 via 10.244.2.0 dev svcnet.1 onlink",
			"10.244.2.0 lladdr 0a:58:0a:f4:02:00 PERMANENT", "0a:58:0a:f4:02:00 dst 192.168.85.1 self permanent"} {
			if !strings.Contains(got, want) {
				t.Errorf("after auto plan, missing %q:\n%s", want, got)
			}
		}
		// All over VXLAN: b's route moves to the tunnel.
		if err := Apply(PlanPeers(ModeVXLAN, peers, connected), l); err != nil {
			t.Fatal(err)
		}
		if got := state(); !strings.Contains(got, "10.244.1.0/24 via 10.244.1.0 dev svcnet.1 onlink") || strings.Contains(got, "via 192.168.84.2") ||
			!strings.Contains(got, "0a:58:0a:f4:01:00 dst 192.168.84.2 self permanent") {
			t.Errorf("after vxlan plan:\n%s", got)
		}
		// Node c leaves: its entries go.
		if err := Apply(PlanPeers(ModeVXLAN, peers[:1], connected), l); err != nil {
			t.Fatal(err)
		}
		if got := state(); strings.Contains(got, "10.244.2.0") || strings.Contains(got, "0a:58:0a:f4:02:00") {
			t.Errorf("after c left:\n%s", got)
		}
		if err := Apply(Plan{}, nil); err != nil {
			t.Fatal(err)
		}
		if r := ip("route", "show", "proto", "0x53"); strings.TrimSpace(r) != "" {
			t.Errorf("routes left: %s", r)
		}
		if err := DeleteVXLAN(); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("ip", "link", "show", VXLANDevice).CombinedOutput(); err == nil {
			t.Errorf("device left: %s", out)
		}
	})
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
