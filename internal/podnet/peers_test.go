package podnet

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

// render writes a plan as ip(8)/bridge(8) would list it.
func render(p Plan) string {
	var s []string
	for _, r := range p.Routes {
		if r.VXLAN {
			s = append(s, fmt.Sprintf("route %s via %s dev %s onlink", r.Dst, r.Gw, VXLANDevice))
		} else {
			s = append(s, fmt.Sprintf("route %s via %s", r.Dst, r.Gw))
		}
	}
	for _, f := range p.FDB {
		s = append(s, fmt.Sprintf("fdb %s dst %s", f.MAC, f.Dst))
	}
	for _, n := range p.Neigh {
		s = append(s, fmt.Sprintf("neigh %s lladdr %s", n.IP, n.MAC))
	}
	return strings.Join(s, "\n")
}

func TestPlanPeers(t *testing.T) {
	peer := func(name, cidr, ip string) Peer {
		p := Peer{Name: name}
		if cidr != "" {
			p.PodCIDR = netip.MustParsePrefix(cidr)
		}
		if ip != "" {
			p.NodeIP = netip.MustParseAddr(ip)
		}
		return p
	}
	peers := []Peer{peer("c", "10.244.2.0/24", "192.168.85.1"), peer("b", "10.244.1.0/24", "192.168.84.2"),
		peer("d", "", "192.168.84.3"), peer("e", "10.244.4.0/24", "")}
	connected := []netip.Prefix{netip.MustParsePrefix("192.168.84.0/24"), netip.MustParsePrefix("10.244.0.0/32")}
	for _, c := range []struct {
		mode Mode
		want string
	}{
		{ModeHostGW, `route 10.244.1.0/24 via 192.168.84.2
route 10.244.2.0/24 via 192.168.85.1`},
		{ModeVXLAN, `route 10.244.1.0/24 via 10.244.1.0 dev svcnet.1 onlink
route 10.244.2.0/24 via 10.244.2.0 dev svcnet.1 onlink
fdb 0a:58:0a:f4:01:00 dst 192.168.84.2
fdb 0a:58:0a:f4:02:00 dst 192.168.85.1
neigh 10.244.1.0 lladdr 0a:58:0a:f4:01:00
neigh 10.244.2.0 lladdr 0a:58:0a:f4:02:00`},
		{ModeAuto, `route 10.244.1.0/24 via 192.168.84.2
route 10.244.2.0/24 via 10.244.2.0 dev svcnet.1 onlink
fdb 0a:58:0a:f4:02:00 dst 192.168.85.1
neigh 10.244.2.0 lladdr 0a:58:0a:f4:02:00`},
	} {
		if got := render(PlanPeers(c.mode, peers, connected)); got != c.want {
			t.Errorf("%s:\n%s\nwant\n%s", c.mode, got, c.want)
		}
	}
	if got := render(PlanPeers(ModeAuto, nil, connected)); got != "" {
		t.Errorf("no peers: %q", got)
	}
}

func TestDirect(t *testing.T) {
	connected := []netip.Prefix{netip.MustParsePrefix("192.168.84.0/24"), netip.MustParsePrefix("10.0.0.7/32")}
	for ip, want := range map[string]bool{"192.168.84.9": true, "192.168.85.1": false, "10.0.0.7": false, "10.0.0.8": false} {
		if got := Direct(netip.MustParseAddr(ip), connected); got != want {
			t.Errorf("Direct(%s) = %v, want %v", ip, got, want)
		}
	}
}

func TestParseMode(t *testing.T) {
	for in, want := range map[string]string{"": "auto", "auto": "auto", "vxlan": "vxlan", "host-gw": "host-gw",
		"udp": `error: --pod-network: "udp" is not vxlan, host-gw or auto`} {
		m, err := ParseMode(in)
		got := string(m)
		if err != nil {
			got = "error: " + err.Error()
		}
		if got != want {
			t.Errorf("ParseMode(%q) = %s, want %s", in, got, want)
		}
	}
}
