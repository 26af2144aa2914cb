package dns

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"testing"

	mdns "github.com/miekg/dns"
)

// udpAnswer is what serveUDP does with one datagram from ua: the fast path, or
// the full path (which fills the fast path's cache). nil: dropped (not DNS).
func udpAnswer(s *Server, msg []byte, ua *net.UDPAddr) (wire []byte, fast bool) {
	if out, _ := s.fastAnswer(msg, nil, nil, ua.AddrPort().Addr().Unmap()); out != nil {
		return out, true
	}
	req := new(mdns.Msg)
	if req.Unpack(msg) != nil {
		return nil, false
	}
	k, _, ok := question(msg, nil)
	if !ok {
		k = nil
	}
	wire, err := s.respond(req, ua, false, k).Pack()
	if err != nil {
		return nil, false
	}
	return wire, false
}

// tcpWriter is the ResponseWriter of one TCP query: it keeps the answer.
type tcpWriter struct {
	mdns.ResponseWriter
	remote net.Addr
	got    *mdns.Msg
}

func (w *tcpWriter) RemoteAddr() net.Addr       { return w.remote }
func (w *tcpWriter) WriteMsg(m *mdns.Msg) error { w.got = m; return nil }

func wireQuery(name string, qtype uint16, edns bool, mut func(*mdns.Msg)) []byte {
	m := new(mdns.Msg)
	m.SetQuestion(name, qtype)
	m.Id = 0x1234
	if edns {
		m.SetEdns0(1232, true)
	}
	if mut != nil {
		mut(m)
	}
	b, err := m.Pack()
	if err != nil {
		panic(err)
	}
	return b
}

// FuzzServeWire feeds raw datagrams to the server's UDP path (fast and full)
// and TCP handler. Beyond not panicking: every answer parses, carries the
// query's ID and question, fits the client's UDP size, and the fast path's
// answer is byte for byte the full path's.
func FuzzServeWire(f *testing.F) {
	for _, seed := range [][]byte{
		wireQuery("httpd-svc.default.svc.cluster.local.", mdns.TypeA, false, nil),
		wireQuery("httpd-svc.default.svc.cluster.local.", mdns.TypeA, true, nil),
		wireQuery("HTTPD-svc.default.svc.cluster.local.", mdns.TypeAAAA, false, nil),
		wireQuery("_http._tcp.httpd-svc.default.svc.cluster.local.", mdns.TypeSRV, true, nil),
		wireQuery("db.default.svc.cluster.local.", mdns.TypeA, false, nil),
		wireQuery("db-0.db.default.svc.cluster.local.", mdns.TypeANY, false, nil),
		wireQuery("big.default.svc.cluster.local.", mdns.TypeA, false, nil),
		wireQuery("ext.default.svc.cluster.local.", mdns.TypeA, false, nil),
		wireQuery("10-244-0-5.default.pod.cluster.local.", mdns.TypeA, false, nil),
		wireQuery("7.12.96.10.in-addr.arpa.", mdns.TypePTR, false, nil),
		wireQuery("httpd2-svc.kube-public.default.svc.cluster.local.", mdns.TypeA, false, nil), // autopath
		wireQuery("cluster.local.", mdns.TypeSOA, false, nil),
		wireQuery("example.com.", mdns.TypeA, false, nil),
		wireQuery("httpd-svc.default.svc.cluster.local.", mdns.TypeA, false, func(m *mdns.Msg) { m.Opcode = mdns.OpcodeNotify }),
		wireQuery("httpd-svc.default.svc.cluster.local.", mdns.TypeA, false, func(m *mdns.Msg) { m.Response = true }),
		wireQuery("httpd-svc.default.svc.cluster.local.", mdns.TypeA, false, func(m *mdns.Msg) {
			m.Question = append(m.Question, m.Question[0])
		}),
		wireQuery("httpd-svc.default.svc.cluster.local.", mdns.TypeA, true, func(m *mdns.Msg) {
			m.IsEdns0().Option = append(m.IsEdns0().Option, &mdns.EDNS0_COOKIE{Code: mdns.EDNS0COOKIE, Cookie: "0102030405060708"})
		}),
		wireQuery("httpd-svc.default.svc.cluster.local.", mdns.TypeA, true, func(m *mdns.Msg) { m.IsEdns0().SetUDPSize(0) }),
		{0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 0x0c, 0, 1, 0, 1},  // a compression loop
		{0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 1, 0, 0, 41}, // a cut OPT record
		{}, {0}, bytes.Repeat([]byte{0xff}, 12),
	} {
		f.Add(seed, true)
	}
	f.Add(wireQuery("httpd-svc.default.svc.cluster.local.", mdns.TypeA, false, nil), false)

	ix := testIndex()
	var many []Endpoint
	for i := range 60 {
		ip := fmt.Sprintf("10.244.2.%d", i+1)
		many = append(many, Endpoint{IP: ip, Hostname: dashed(ip)})
	}
	ix.SetService(&Service{Name: "big", Namespace: "default", Headless: true, Endpoints: many})
	pods := &PodIPs{}
	pods.Set("default/client", "default", netip.MustParseAddr("10.244.0.9"))
	s := &Server{Index: ix, Allowed: DefaultAllowed, Pods: PodsInsecure, Autopath: pods}
	pod := &net.UDPAddr{IP: net.IPv4(10, 244, 0, 9), Port: 40000}
	outside := &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 40000}

	f.Fuzz(func(t *testing.T, msg []byte, allowed bool) {
		from := outside
		if allowed {
			from = pod
		}
		query := new(mdns.Msg)
		parsed := query.Unpack(msg) == nil
		check := func(wire []byte, fast bool) {
			t.Helper()
			if !parsed {
				t.Fatalf("%q does not parse as DNS but was answered (fast path %v)", msg, fast)
			}
			resp := new(mdns.Msg)
			if err := resp.Unpack(wire); err != nil {
				t.Fatalf("answer to %q does not parse: %v", msg, err)
			}
			if resp.Id != query.Id || !resp.Response {
				t.Fatalf("answer to %q: id %d response %v, want id %d", msg, resp.Id, resp.Response, query.Id)
			}
			if len(query.Question) == 1 && resp.Rcode != mdns.RcodeFormatError && (len(resp.Question) != 1 || resp.Question[0] != query.Question[0]) {
				t.Fatalf("answer to %q has question %v, want %v", msg, resp.Question, query.Question)
			}
			size := mdns.MinMsgSize
			if o := query.IsEdns0(); o != nil {
				size = max(int(o.UDPSize()), mdns.MinMsgSize)
			}
			if len(wire) > size {
				t.Fatalf("UDP answer to %q is %d bytes, the client takes %d", msg, len(wire), size)
			}
		}
		wire, fast := udpAnswer(s, msg, from)
		if wire == nil {
			if parsed {
				t.Fatalf("query %q parses but got no answer", msg)
			}
			return
		}
		check(wire, fast)
		// The full path filled the cache: the same question under another ID may
		// hit it, and must get the same answer under its own ID. (A name
		// compressed into the header reads the ID: then it is another question.)
		other := append([]byte{^msg[0], ^msg[1]}, msg[2:]...)
		if q := new(mdns.Msg); !fast && q.Unpack(other) == nil && fmt.Sprint(q.Question) == fmt.Sprint(query.Question) {
			query.Id = ^query.Id
			again, fast := udpAnswer(s, other, from)
			check(again, fast)
			want := append([]byte{other[0], other[1]}, wire[2:]...)
			if fast && !bytes.Equal(again, want) {
				t.Fatalf("fast path answer to %q differs from the full path's:\n%v\n%v", other, again, want)
			}
			query.Id = ^query.Id
		}
		// TCP: the server parses first (miekg/dns), then the handler answers whole.
		if !parsed {
			return
		}
		w := &tcpWriter{remote: &net.TCPAddr{IP: from.IP, Port: from.Port}}
		s.ServeDNS(w, query)
		if w.got == nil {
			t.Fatalf("no TCP answer to %q", msg)
		}
		if _, err := w.got.Pack(); err != nil {
			t.Fatalf("TCP answer to %q does not pack: %v", msg, err)
		}
		if w.got.Truncated {
			t.Fatalf("TCP answer to %q is truncated", msg)
		}
	})
}
