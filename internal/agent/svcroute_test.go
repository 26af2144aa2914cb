package agent

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/svcnet/svcnet/internal/netnstest"
)

// TestServiceRouteRefusesNodeConnections: with the service CIDR route, a
// node's connection to a cluster IP that a REJECT rule refuses (a Service
// without endpoints in the iptables mode) is refused at once, on a node with
// an address of its own. Through lo the ICMP error never arrives and the
// connection hangs (the bug this route avoids).
func TestServiceRouteRefusesNodeConnections(t *testing.T) {
	if _, err := exec.LookPath("nft"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs nft: apt-get install nftables (scripts/test-deps.sh does)")
		}
		t.Skip("needs nft: apt-get install nftables")
	}
	cidr, nodeIP := netip.MustParsePrefix("10.96.0.0/12"), "10.200.0.2"
	netnstest.InFresh(t, "network namespaces and nftables", func() {
		lo, _ := netlink.LinkByName("lo")
		if err := netlink.LinkSetUp(lo); err != nil {
			t.Fatal(err)
		}
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "node0"}, PeerName: "node1"}
		if err := netlink.LinkAdd(veth); err != nil {
			t.Fatal(err)
		}
		addr, _ := netlink.ParseAddr(nodeIP + "/24")
		if err := netlink.AddrAdd(veth, addr); err != nil {
			t.Fatal(err)
		}
		if err := netlink.LinkSetUp(veth); err != nil {
			t.Fatal(err)
		}
		if err := serviceRoute(cidr, true, nodeIP); err != nil {
			t.Fatal(err)
		}
		routes, err := netlink.RouteGet(net.ParseIP("10.96.5.5"))
		if err != nil || len(routes) != 1 {
			t.Fatalf("route to 10.96.5.5: %v %v", routes, err)
		}
		if l, _ := netlink.LinkByIndex(routes[0].LinkIndex); l == nil || l.Attrs().Name != VIPLink || !routes[0].Src.Equal(net.ParseIP(nodeIP)) {
			t.Fatalf("route to 10.96.5.5 %+v, want through %s from %s", routes[0], VIPLink, nodeIP)
		}
		nft := exec.Command("nft", "-f", "-")
		nft.Stdin = strings.NewReader("table ip t { chain out { type filter hook output priority 0; ip daddr 10.96.5.5 tcp dport 80 reject; }; }")
		if out, err := nft.CombinedOutput(); err != nil {
			t.Fatalf("nft: %v: %s", err, out)
		}
		c, err := net.DialTimeout("tcp", "10.96.5.5:80", 5*time.Second)
		if err == nil {
			c.Close()
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("connect to a rejected cluster IP: %v, want connection refused", err)
		}
		if err := serviceRoute(cidr, false, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := netlink.LinkByName(VIPLink); err == nil {
			t.Errorf("%s left after removing the route", VIPLink)
		}
	})
}
