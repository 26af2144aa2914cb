package dns

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"testing"

	mdns "github.com/miekg/dns"
)

// fakeUpstream answers A queries for *.example.com. with 192.0.2.x on loopback.
func fakeUpstream(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &mdns.Server{PacketConn: pc, Handler: mdns.HandlerFunc(func(w mdns.ResponseWriter, r *mdns.Msg) {
		m := new(mdns.Msg)
		m.SetReply(r)
		switch r.Question[0].Name {
		case "example.com.":
			m.Answer = append(m.Answer, &mdns.A{Hdr: mdns.RR_Header{Name: "example.com.", Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, 2, 80)})
		case "db.example.com.":
			m.Answer = append(m.Answer, &mdns.A{Hdr: mdns.RR_Header{Name: "db.example.com.", Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, 2, 81)})
		default:
			m.Rcode = mdns.RcodeNameError
		}
		_ = w.WriteMsg(m)
	})}
	go func() { _ = srv.ActivateAndServe() }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return pc.LocalAddr().String()
}

func startServer(t *testing.T, s *Server) string {
	t.Helper()
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ready := make(chan struct{})
	go func() { _ = s.ListenAndServe(ctx, addr, ready) }()
	<-ready
	return addr
}

func query(t *testing.T, addr, name string, qtype uint16, net string) *mdns.Msg {
	t.Helper()
	req := new(mdns.Msg)
	req.SetQuestion(name, qtype)
	c := &mdns.Client{Net: net}
	m, _, err := c.Exchange(req, addr)
	if err != nil {
		t.Fatalf("%s %s over %s: %v", name, mdns.TypeToString[qtype], net, err)
	}
	return m
}

// silentAddr is a UDP address that was bound and closed: an upstream that
// never answers.
func silentAddr(t *testing.T) string {
	t.Helper()
	dead, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	return dead.LocalAddr().String()
}

func TestServer(t *testing.T) {
	up := fakeUpstream(t)
	deadAddr := silentAddr(t)
	ix := testIndex()
	var many []Endpoint
	for i := 0; i < 60; i++ {
		ip := fmt.Sprintf("10.244.2.%d", i+1)
		many = append(many, Endpoint{IP: ip, Hostname: dashed(ip)})
	}
	ix.SetService(&Service{Name: "big", Namespace: "default", Headless: true, Endpoints: many})
	fw := NewForwarder([]string{deadAddr, up}, 100)
	s := &Server{Index: ix, Forwarder: fw, Allowed: DefaultAllowed, Log: slog.New(slog.DiscardHandler)}
	addr := startServer(t, s)

	if m := query(t, addr, "httpd-svc.default.svc.cluster.local.", mdns.TypeA, "udp"); len(m.Answer) != 1 || !m.Authoritative {
		t.Fatalf("cluster name: %v", m)
	}
	if m := query(t, addr, "example.com.", mdns.TypeA, "udp"); len(m.Answer) != 1 || m.Answer[0].(*mdns.A).A.String() != "192.0.2.80" {
		t.Fatalf("forwarded (after the dead upstream failed): %v", m)
	}
	if m := query(t, addr, "example.com.", mdns.TypeA, "udp"); len(m.Answer) != 1 || fw.Hits.Load() != 1 {
		t.Fatalf("second lookup should be a cache hit (hits %d): %v", fw.Hits.Load(), m)
	}
	if m := query(t, addr, "nothing.example.com.", mdns.TypeA, "udp"); m.Rcode != mdns.RcodeNameError {
		t.Fatalf("upstream NXDOMAIN passed through: %s", mdns.RcodeToString[m.Rcode])
	}
	m := query(t, addr, "ext.default.svc.cluster.local.", mdns.TypeA, "udp")
	if len(m.Answer) != 2 || m.Answer[0].Header().Rrtype != mdns.TypeCNAME || m.Answer[1].(*mdns.A).A.String() != "192.0.2.81" {
		t.Fatalf("ExternalName chase: %v", m.Answer)
	}
	if m := query(t, addr, "db.default.svc.cluster.local.", mdns.TypeA, "tcp"); len(m.Answer) != 2 {
		t.Fatalf("TCP: %v", m)
	}
	if m := query(t, addr, "big.default.svc.cluster.local.", mdns.TypeA, "udp"); !m.Truncated {
		t.Fatal("60 A records over 512-byte UDP must be truncated")
	}
	if m := query(t, addr, "big.default.svc.cluster.local.", mdns.TypeA, "tcp"); len(m.Answer) != 60 || m.Truncated {
		t.Fatalf("TCP retry got %d answers", len(m.Answer))
	}

	closed := startServer(t, &Server{Index: ix, Forwarder: fw, Allowed: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}})
	if m := query(t, closed, "example.com.", mdns.TypeA, "udp"); m.Rcode != mdns.RcodeRefused {
		t.Fatalf("client outside the allowed networks: %s", mdns.RcodeToString[m.Rcode])
	}
}

func TestFastPathNeverStale(t *testing.T) {
	ix := testIndex()
	s := &Server{Index: ix, Allowed: DefaultAllowed}
	addr := startServer(t, s)
	a := func(name string, edns bool) *mdns.Msg {
		req := new(mdns.Msg)
		req.SetQuestion(name, mdns.TypeA)
		if edns {
			req.SetEdns0(1232, false)
		}
		m, _, err := (&mdns.Client{}).Exchange(req, addr)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	for i := 0; i < 3; i++ { // the first fills the cache, the others are served from it
		if m := a("httpd-svc.default.svc.cluster.local.", i == 2); len(m.Answer) != 1 || m.Answer[0].(*mdns.A).A.String() != "10.96.12.7" || !m.Authoritative {
			t.Fatalf("query %d: %v", i, m)
		}
	}
	s.wire.mu.RLock()
	cached := len(s.wire.m)
	s.wire.mu.RUnlock()
	if cached == 0 {
		t.Fatal("nothing cached for the fast path")
	}
	ix.SetService(&Service{Name: "httpd-svc", Namespace: "default", ClusterIPs: []string{"10.96.99.1"}})
	if m := a("httpd-svc.default.svc.cluster.local.", false); m.Answer[0].(*mdns.A).A.String() != "10.96.99.1" {
		t.Fatalf("stale answer after the index changed: %v", m.Answer)
	}
	if m := a("HTTPD-svc.default.svc.cluster.local.", false); m.Answer[0].Header().Name != "HTTPD-svc.default.svc.cluster.local." {
		t.Fatalf("case not echoed: %v", m.Answer)
	}
	ix.DeleteService("default", "httpd-svc")
	if m := a("httpd-svc.default.svc.cluster.local.", false); m.Rcode != mdns.RcodeNameError {
		t.Fatalf("deleted service still answered from the cache: %v", m)
	}
}

func TestAutopath(t *testing.T) {
	up := fakeUpstream(t)
	ix := testIndex()
	pods := &PodIPs{}
	pods.Set("default/client", "default", netip.MustParseAddr("127.0.0.1"))
	s := &Server{Index: ix, Forwarder: NewForwarder([]string{up}, 0), Allowed: DefaultAllowed, Autopath: pods}
	addr := startServer(t, s)
	cases := []struct {
		q    string
		want []string
	}{
		// A pod in "default" resolving "httpd2-svc.kube-public": its first search expansion.
		{"httpd2-svc.kube-public.default.svc.cluster.local.", []string{
			"httpd2-svc.kube-public.default.svc.cluster.local. 5 IN CNAME httpd2-svc.kube-public.svc.cluster.local.",
			"httpd2-svc.kube-public.svc.cluster.local. 5 IN A 10.96.12.8"}},
		// "example.com" with ndots:5: found upstream on the last step.
		{"example.com.default.svc.cluster.local.", []string{
			"example.com.default.svc.cluster.local. 5 IN CNAME example.com.",
			"example.com. 60 IN A 192.0.2.80"}},
		// Names that exist are answered as they are.
		{"httpd-svc.default.svc.cluster.local.", []string{"httpd-svc.default.svc.cluster.local. 5 IN A 10.96.12.7"}},
	}
	for _, c := range cases {
		m := query(t, addr, c.q, mdns.TypeA, "udp")
		if got := lines(m.Answer); fmt.Sprint(got) != fmt.Sprint(c.want) || m.Rcode != mdns.RcodeSuccess {
			t.Errorf("%s: %s %q, want %q", c.q, mdns.RcodeToString[m.Rcode], got, c.want)
		}
	}
	if m := query(t, addr, "nothing.anywhere.default.svc.cluster.local.", mdns.TypeA, "udp"); m.Rcode != mdns.RcodeNameError {
		t.Errorf("nothing on the path: %s", mdns.RcodeToString[m.Rcode])
	}
	// A client that is not a known pod gets no rewriting.
	pods.Delete("default/client")
	if m := query(t, addr, "httpd2-svc.kube-public.default.svc.cluster.local.", mdns.TypeA, "udp"); m.Rcode != mdns.RcodeNameError {
		t.Errorf("unknown client: %s %v", mdns.RcodeToString[m.Rcode], m.Answer)
	}
}
