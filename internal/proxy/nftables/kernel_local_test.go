package nftables

import (
	"net"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/svcnet/svcnet/internal/proxy"
)

// TestKernelNodeLocalDNS: a UDP and a TCP server on 10.96.0.10:53 answer the
// node whether kube-dns has a (here unreachable) CoreDNS endpoint, none, or
// no Service, and also when the rules still DNAT the key (as a kube-proxy
// table left running during a migration would): the raw NOTRACK wins.
func TestKernelNodeLocalDNS(t *testing.T) {
	dnsKeys := []proxy.Key{{Namespace: "kube-system", Name: "kube-dns", Port: "dns"}, {Namespace: "kube-system", Name: "kube-dns", Port: "dns-tcp"}}
	cases := map[string]func(*proxy.State){
		"CoreDNS endpoint": nil,
		"no endpoints": func(st *proxy.State) {
			for _, k := range dnsKeys {
				st.Endpoints[k] = nil
			}
		},
		"no Service": func(st *proxy.State) {
			for _, k := range dnsKeys {
				delete(st.Services, k)
			}
		},
		"rules that DNAT the key": func(st *proxy.State) {
			for _, k := range dnsKeys {
				cp := *st.Services[k]
				cp.NodeLocal = false
				st.Services[k] = &cp
			}
		},
	}
	inFreshNetns(t, func() {
		lo, err := netlink.LinkByName("lo")
		if err == nil {
			err = netlink.LinkSetUp(lo)
		}
		if err == nil {
			err = netlink.AddrAdd(lo, &netlink.Addr{IPNet: &net.IPNet{IP: net.IPv4(10, 96, 0, 10), Mask: net.CIDRMask(32, 32)}})
		}
		if err != nil {
			t.Error(err)
			return
		}
		udp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(10, 96, 0, 10), Port: 53})
		if err != nil {
			t.Error(err)
			return
		}
		defer udp.Close()
		go func() { // echo
			buf := make([]byte, 512)
			for {
				n, from, err := udp.ReadFromUDP(buf)
				if err != nil {
					return
				}
				_, _ = udp.WriteToUDP(buf[:n], from)
			}
		}()
		tcp, err := net.Listen("tcp4", "10.96.0.10:53")
		if err != nil {
			t.Error(err)
			return
		}
		defer tcp.Close()
		go func() {
			for {
				c, err := tcp.Accept()
				if err != nil {
					return
				}
				_, _ = c.Write([]byte("ok"))
				_ = c.Close()
			}
		}()
		b, err := New(cfg)
		if err != nil {
			t.Error(err)
			return
		}
		defer b.Cleanup()
		for name, mutate := range cases {
			st := testState()
			if mutate != nil {
				mutate(st)
			}
			if err := b.Sync(st, nil, true); err != nil {
				t.Errorf("%s: sync: %v", name, err)
				return
			}
			if err := askUDP("10.96.0.10:53"); err != nil {
				t.Errorf("%s: UDP to the node's listener: %v", name, err)
			}
			if err := askTCP("10.96.0.10:53"); err != nil {
				t.Errorf("%s: TCP to the node's listener: %v", name, err)
			}
		}
		// Another port of the address is the proxy's: no Service there, so rejected.
		st := testState()
		cases["rules that DNAT the key"](st)
		delete(st.Services, proxy.Key{Namespace: "kube-system", Name: "kube-dns", Port: "metrics"})
		if err := b.Sync(st, nil, true); err != nil {
			t.Errorf("sync: %v", err)
			return
		}
		if err := askTCP("10.96.0.10:9153"); err == nil {
			t.Error("10.96.0.10:9153 answered although only port 53 is the node's")
		}
		// The check itself: without the listeners the DNAT wins and nothing answers.
		noLocal := cfg
		noLocal.Local = nil
		b2, err := New(noLocal)
		if err != nil {
			t.Error(err)
			return
		}
		if err := b2.Sync(st, nil, true); err != nil {
			t.Errorf("sync without listeners: %v", err)
			return
		}
		if err := askTCP("10.96.0.10:53"); err == nil {
			t.Error("without Config.Local, TCP to 10.96.0.10:53 was not DNATed away")
		}
	})
}

func askUDP(addr string) error {
	c, err := net.Dial("udp4", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("q")); err != nil {
		return err
	}
	buf := make([]byte, 8)
	_, err = c.Read(buf)
	return err
}

func askTCP(addr string) error {
	c, err := net.DialTimeout("tcp4", addr, 2*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 2)
	_, err = c.Read(buf)
	return err
}
