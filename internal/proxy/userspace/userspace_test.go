package userspace

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/svcnet/svcnet/internal/proxy"
)

func freePort(t *testing.T) uint16 {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return uint16(ln.Addr().(*net.TCPAddr).Port)
}

// backend serves its name over HTTP on a loopback port.
func backend(t *testing.T, name string) netip.AddrPort {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, name) })}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

// TestNodePortRetriesDeadEndpoints runs without root: node ports on loopback.
func TestNodePortRetriesDeadEndpoints(t *testing.T) {
	live := backend(t, "live")
	dead := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), freePort(t)) // nothing listens
	nodePort := freePort(t)
	k := proxy.Key{Namespace: "ns", Name: "web"}
	st := proxy.NewState()
	st.Services[k] = &proxy.ServicePort{Key: k, Protocol: corev1.ProtocolTCP, ClusterIP: netip.MustParseAddr("10.96.0.5"), Port: 80, NodePort: int32(nodePort)}
	st.Endpoints[k] = []proxy.Endpoint{{Addr: dead, Ready: true, Serving: true}, {Addr: live, Ready: true, Serving: true}}
	b := New(Options{NodePortAddresses: []netip.Addr{netip.MustParseAddr("127.0.0.1")}})
	defer b.Cleanup()
	if err := b.Sync(st, nil, true); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for i := 0; i < 20; i++ {
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/", nodePort))
		if err != nil {
			t.Fatalf("request %d: %v (a dead endpoint must be skipped)", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "live" {
			t.Fatalf("request %d: %q", i, body)
		}
	}
	// Endpoints gone: connections fail at once; the Service gone: the port closes.
	st.Endpoints[k] = nil
	if err := b.Sync(st, []proxy.Key{k}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/", nodePort)); err == nil {
		t.Error("no endpoints: the request should fail")
	}
	delete(st.Services, k)
	if err := b.Sync(st, []proxy.Key{k}, false); err != nil {
		t.Fatal(err)
	}
	if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", nodePort)); err == nil {
		c.Close()
		t.Error("node port still listening after the Service went")
	}
}

func TestCandidatesOrder(t *testing.T) {
	eps := []netip.AddrPort{netip.MustParseAddrPort("10.244.0.2:80"), netip.MustParseAddrPort("10.244.0.3:80"), netip.MustParseAddrPort("10.244.0.4:80")}
	client := netip.MustParseAddr("10.244.1.9")
	t.Run("round-robin", func(t *testing.T) {
		p := &servicePort{sp: &proxy.ServicePort{}, o: &Options{RoundRobin: true}, endpoints: eps}
		for i := 0; i < 7; i++ {
			c := p.candidates(client)
			if c[0] != eps[i%3] || len(c) != 3 || c[1] != eps[(i+1)%3] {
				t.Fatalf("connection %d tries %v; want %v first, then the next ones", i, c, eps[i%3])
			}
		}
	})
	t.Run("affinity wins over round-robin", func(t *testing.T) {
		p := &servicePort{sp: &proxy.ServicePort{AffinityTimeout: 60}, o: &Options{RoundRobin: true}, endpoints: eps, affinity: map[netip.Addr]affinityEntry{}}
		p.remember(client, eps[2])
		for i := 0; i < 4; i++ {
			if c := p.candidates(client); c[0] != eps[2] {
				t.Fatalf("pinned client tries %v first; want %v", c[0], eps[2])
			}
		}
	})
	t.Run("expired affinity entries are swept", func(t *testing.T) {
		p := &servicePort{sp: &proxy.ServicePort{AffinityTimeout: 1}, o: &Options{}, endpoints: eps, affinity: map[netip.Addr]affinityEntry{}}
		old := netip.MustParseAddr("10.244.7.7")
		p.affinity[old] = affinityEntry{ep: eps[0], last: time.Now().Add(-time.Hour)}
		for i := 0; i < 1024; i++ {
			p.remember(client, eps[1])
		}
		if _, ok := p.affinity[old]; ok || len(p.affinity) != 1 {
			t.Errorf("affinity map after a sweep: %v; want only the live client", p.affinity)
		}
	})
}

// TestNodeLocalPortIsLeftToItsListener: a service port on the address of a
// node listener (the cluster DNS) gets no proxy listener, so the node's
// server keeps the address (binding it would fail or steal its traffic).
func TestNodeLocalPortIsLeftToItsListener(t *testing.T) {
	dnsServer, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer dnsServer.Close()
	addr := dnsServer.Addr().(*net.TCPAddr).AddrPort()
	k := proxy.Key{Namespace: "kube-system", Name: "kube-dns", Port: "dns-tcp"}
	sp := &proxy.ServicePort{Key: k, Protocol: corev1.ProtocolTCP, ClusterIP: addr.Addr(), Port: int32(addr.Port())}
	st := proxy.NewState()
	st.Services[k] = proxy.MarkNodeLocal([]*proxy.ServicePort{sp}, []proxy.Listener{{Addr: addr, Protocol: corev1.ProtocolTCP}})[0]
	st.Endpoints[k] = []proxy.Endpoint{{Addr: netip.MustParseAddrPort("10.244.1.53:53"), Ready: true, Serving: true}}
	b := New(Options{MakeLocal: func(netip.Addr) (func(), error) { return func() {}, nil }})
	defer b.Cleanup()
	if err := b.Sync(st, nil, true); err != nil {
		t.Fatalf("sync: %v", err)
	}
	if len(b.ports) != 0 {
		t.Errorf("the proxy listens for the node-local port: %v", b.ports)
	}
	st.Services[k] = sp // unmarked: the proxy would take the address, and fails to
	if err := b.Sync(st, []proxy.Key{k}, false); err == nil {
		t.Error("unmarked, the proxy bound the listener's address")
	}
}

// udpBackend answers every datagram with its name on a loopback port.
func udpBackend(t *testing.T, name string) netip.AddrPort {
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			_, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteToUDPAddrPort([]byte(name), from)
		}
	}()
	return pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

// TestTerminatingEndpointKeepsSessions: once an endpoint is terminating new
// connections go elsewhere, while the TCP connection and the UDP session
// already on it stay there until it is gone from the EndpointSlice.
func TestTerminatingEndpointKeepsSessions(t *testing.T) {
	nodePort := freePort(t)
	ready := proxy.Endpoint{Ready: true, Serving: true}
	terminating := proxy.Endpoint{Serving: true, Terminating: true}
	ep := func(e proxy.Endpoint, a netip.AddrPort) proxy.Endpoint { e.Addr = a; return e }
	tcpKey, udpKey := proxy.Key{Namespace: "ns", Name: "web", Port: "tcp"}, proxy.Key{Namespace: "ns", Name: "web", Port: "udp"}
	oldTCP, newTCP := backend(t, "old"), backend(t, "new")
	oldUDP, newUDP := udpBackend(t, "old"), udpBackend(t, "new")
	st := proxy.NewState()
	st.Services[tcpKey] = &proxy.ServicePort{Key: tcpKey, Protocol: corev1.ProtocolTCP, ClusterIP: netip.MustParseAddr("10.96.0.5"), Port: 80, NodePort: int32(nodePort)}
	st.Services[udpKey] = &proxy.ServicePort{Key: udpKey, Protocol: corev1.ProtocolUDP, ClusterIP: netip.MustParseAddr("10.96.0.5"), Port: 53, NodePort: int32(nodePort)}
	st.Endpoints[tcpKey] = []proxy.Endpoint{ep(ready, oldTCP)}
	st.Endpoints[udpKey] = []proxy.Endpoint{ep(ready, oldUDP)}
	b := New(Options{NodePortAddresses: []netip.Addr{netip.MustParseAddr("127.0.0.1")}})
	defer b.Cleanup()
	if err := b.Sync(st, nil, true); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", nodePort)
	kept := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}} // one keep-alive connection
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	get := func(c *http.Client) string {
		t.Helper()
		resp, err := c.Get("http://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	session, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer session.Close()
	ask := func(c net.Conn) string {
		t.Helper()
		_ = c.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := c.Write([]byte("who")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 16)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		return string(buf[:n])
	}
	if got, gotUDP := get(kept), ask(session); got != "old" || gotUDP != "old" {
		t.Fatalf("before: TCP %q, UDP %q", got, gotUDP)
	}

	// The old pod terminates; the new one is ready.
	st.Endpoints[tcpKey] = []proxy.Endpoint{ep(terminating, oldTCP), ep(ready, newTCP)}
	st.Endpoints[udpKey] = []proxy.Endpoint{ep(terminating, oldUDP), ep(ready, newUDP)}
	if err := b.Sync(st, []proxy.Key{tcpKey, udpKey}, false); err != nil {
		t.Fatal(err)
	}
	other, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	for i := 0; i < 5; i++ {
		if got := get(fresh); got != "new" {
			t.Fatalf("new connection %d went to %q, want the ready endpoint", i, got)
		}
	}
	if got := ask(other); got != "new" {
		t.Errorf("new UDP session went to %q, want the ready endpoint", got)
	}
	if got, gotUDP := get(kept), ask(session); got != "old" || gotUDP != "old" {
		t.Errorf("while terminating, the established connection and session got TCP %q, UDP %q; want both still on the old endpoint", got, gotUDP)
	}

	// The old pod is gone: its session moves.
	st.Endpoints[udpKey] = []proxy.Endpoint{ep(ready, newUDP)}
	if err := b.Sync(st, []proxy.Key{udpKey}, false); err != nil {
		t.Fatal(err)
	}
	if got := ask(session); got != "new" {
		t.Errorf("after the endpoint went, the UDP session got %q, want the new endpoint", got)
	}
}
