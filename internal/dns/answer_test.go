package dns

import (
	"fmt"
	"strings"
	"testing"

	mdns "github.com/miekg/dns"
)

func testIndex() *Index {
	ix := NewIndex("cluster.local", 5)
	for _, ns := range []string{"default", "kube-public"} {
		ix.SetNamespace(ns, true)
	}
	ix.SetService(&Service{Name: "httpd-svc", Namespace: "default", ClusterIPs: []string{"10.96.12.7"},
		Ports: []Port{{Name: "http", Protocol: "tcp", Port: 8080}, {Name: "dns", Protocol: "udp", Port: 53}}})
	ix.SetService(&Service{Name: "httpd2-svc", Namespace: "kube-public", ClusterIPs: []string{"10.96.12.8"}, Ports: []Port{{Protocol: "tcp", Port: 80}}})
	ix.SetService(&Service{Name: "db", Namespace: "default", Headless: true, Ports: []Port{{Name: "pg", Protocol: "tcp", Port: 5432}},
		Endpoints: []Endpoint{{IP: "10.244.0.5", Hostname: "db-0"}, {IP: "10.244.0.6", Hostname: "10-244-0-6"}}})
	ix.SetService(&Service{Name: "one", Namespace: "default", Headless: true, Endpoints: []Endpoint{{IP: "10.244.1.1", Hostname: "10-244-1-1"}}})
	ix.SetService(&Service{Name: "empty", Namespace: "default", Headless: true, Ports: []Port{{Name: "pg", Protocol: "tcp", Port: 5432}}})
	ix.SetService(&Service{Name: "ext", Namespace: "default", ExternalName: "db.example.com"})
	ix.SetService(&Service{Name: "alias", Namespace: "default", ExternalName: "httpd-svc.default.svc.cluster.local"})
	ix.SetService(&Service{Name: "v6", Namespace: "default", ClusterIPs: []string{"fd00::10"}})
	ix.SetService(&Service{Name: "orphan", Namespace: "gone", ClusterIPs: []string{"10.96.12.9"}})
	ix.SetSynced()
	return ix
}

func ask(ix *Index, name string, qtype uint16, pods PodMode) Result {
	req := new(mdns.Msg)
	req.SetQuestion(name, qtype)
	return ix.Answer(req, pods)
}

func lines(rrs []mdns.RR) []string {
	var out []string
	for _, rr := range rrs {
		s := strings.Join(strings.Fields(rr.String()), " ")
		if _, ok := rr.(*mdns.SOA); ok {
			s = "SOA" // serial varies
		}
		out = append(out, s)
	}
	return out
}

func TestAnswers(t *testing.T) {
	ix := testIndex()
	const nx, ok = mdns.RcodeNameError, mdns.RcodeSuccess
	cases := []struct {
		name  string
		qtype uint16
		rcode int
		ans   []string
		extra []string
		soa   bool // authority carries the SOA (NXDOMAIN / NODATA)
	}{
		{"httpd-svc.default.svc.cluster.local.", mdns.TypeA, ok, []string{"httpd-svc.default.svc.cluster.local. 5 IN A 10.96.12.7"}, nil, false},
		{"HTTPD-Svc.Default.SVC.cluster.local.", mdns.TypeA, ok, []string{"HTTPD-Svc.Default.SVC.cluster.local. 5 IN A 10.96.12.7"}, nil, false},
		{"httpd-svc.default.svc.cluster.local.", mdns.TypeAAAA, ok, nil, nil, true},
		{"httpd-svc.default.svc.cluster.local.", mdns.TypeTXT, ok, nil, nil, true},
		{"httpd2-svc.kube-public.svc.cluster.local.", mdns.TypeA, ok, []string{"httpd2-svc.kube-public.svc.cluster.local. 5 IN A 10.96.12.8"}, nil, false},
		{"v6.default.svc.cluster.local.", mdns.TypeAAAA, ok, []string{"v6.default.svc.cluster.local. 5 IN AAAA fd00::10"}, nil, false},
		{"v6.default.svc.cluster.local.", mdns.TypeA, ok, nil, nil, true},
		{"nope.default.svc.cluster.local.", mdns.TypeA, nx, nil, nil, true},
		{"orphan.gone.svc.cluster.local.", mdns.TypeA, nx, nil, nil, true},
		{"gone.svc.cluster.local.", mdns.TypeA, nx, nil, nil, true},
		{"default.svc.cluster.local.", mdns.TypeA, ok, nil, nil, true},
		{"svc.cluster.local.", mdns.TypeA, ok, nil, nil, true},
		{"cluster.local.", mdns.TypeA, ok, nil, nil, true},
		{"cluster.local.", mdns.TypeSOA, ok, []string{"SOA"}, nil, false},
		{"cluster.local.", mdns.TypeNS, ok, []string{"cluster.local. 5 IN NS ns.dns.cluster.local."}, nil, false},
		{"dns-version.cluster.local.", mdns.TypeTXT, ok, []string{`dns-version.cluster.local. 5 IN TXT "1.1.0"`}, nil, false},
		// SRV for named ports, with the target's address in the additional section.
		{"_http._tcp.httpd-svc.default.svc.cluster.local.", mdns.TypeSRV, ok,
			[]string{"_http._tcp.httpd-svc.default.svc.cluster.local. 5 IN SRV 0 100 8080 httpd-svc.default.svc.cluster.local."},
			[]string{"httpd-svc.default.svc.cluster.local. 5 IN A 10.96.12.7"}, false},
		{"_dns._udp.httpd-svc.default.svc.cluster.local.", mdns.TypeSRV, ok,
			[]string{"_dns._udp.httpd-svc.default.svc.cluster.local. 5 IN SRV 0 100 53 httpd-svc.default.svc.cluster.local."},
			[]string{"httpd-svc.default.svc.cluster.local. 5 IN A 10.96.12.7"}, false},
		{"_http._udp.httpd-svc.default.svc.cluster.local.", mdns.TypeSRV, nx, nil, nil, true},
		{"_tcp.httpd-svc.default.svc.cluster.local.", mdns.TypeSRV, ok, nil, nil, true},
		{"_http._tcp.httpd2-svc.kube-public.svc.cluster.local.", mdns.TypeSRV, nx, nil, nil, true}, // unnamed port
		// Headless: one A per ready endpoint, per-endpoint names, SRV per endpoint.
		{"db.default.svc.cluster.local.", mdns.TypeA, ok,
			[]string{"db.default.svc.cluster.local. 5 IN A 10.244.0.5", "db.default.svc.cluster.local. 5 IN A 10.244.0.6"}, nil, false},
		{"db-0.db.default.svc.cluster.local.", mdns.TypeA, ok, []string{"db-0.db.default.svc.cluster.local. 5 IN A 10.244.0.5"}, nil, false},
		{"10-244-0-6.db.default.svc.cluster.local.", mdns.TypeA, ok, []string{"10-244-0-6.db.default.svc.cluster.local. 5 IN A 10.244.0.6"}, nil, false},
		{"_pg._tcp.db.default.svc.cluster.local.", mdns.TypeSRV, ok, []string{
			"_pg._tcp.db.default.svc.cluster.local. 5 IN SRV 0 50 5432 db-0.db.default.svc.cluster.local.",
			"_pg._tcp.db.default.svc.cluster.local. 5 IN SRV 0 50 5432 10-244-0-6.db.default.svc.cluster.local."},
			[]string{"db-0.db.default.svc.cluster.local. 5 IN A 10.244.0.5", "10-244-0-6.db.default.svc.cluster.local. 5 IN A 10.244.0.6"}, false},
		{"one.default.svc.cluster.local.", mdns.TypeA, ok, []string{"one.default.svc.cluster.local. 5 IN A 10.244.1.1"}, nil, false},
		{"empty.default.svc.cluster.local.", mdns.TypeA, nx, nil, nil, true},
		{"_pg._tcp.empty.default.svc.cluster.local.", mdns.TypeSRV, nx, nil, nil, true},
		// ExternalName: a CNAME (chased by the server when out of zone).
		{"ext.default.svc.cluster.local.", mdns.TypeA, ok, []string{"ext.default.svc.cluster.local. 5 IN CNAME db.example.com."}, nil, false},
		{"alias.default.svc.cluster.local.", mdns.TypeA, ok, []string{"alias.default.svc.cluster.local. 5 IN CNAME httpd-svc.default.svc.cluster.local.",
			"httpd-svc.default.svc.cluster.local. 5 IN A 10.96.12.7"}, nil, false},
		// PTR for cluster IPs and ready headless endpoints.
		{"7.12.96.10.in-addr.arpa.", mdns.TypePTR, ok, []string{"7.12.96.10.in-addr.arpa. 5 IN PTR httpd-svc.default.svc.cluster.local."}, nil, false},
		{"5.0.244.10.in-addr.arpa.", mdns.TypePTR, ok, []string{"5.0.244.10.in-addr.arpa. 5 IN PTR db-0.db.default.svc.cluster.local."}, nil, false},
		{"pod.cluster.local.", mdns.TypeA, ok, nil, nil, true},
		{"10-244-0-9.default.pod.cluster.local.", mdns.TypeA, nx, nil, nil, true}, // pods disabled
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s/%s", c.name, mdns.TypeToString[c.qtype]), func(t *testing.T) {
			r := ask(ix, c.name, c.qtype, PodsDisabled)
			if !r.Ours {
				t.Fatal("not answered from the index")
			}
			m := r.Msg
			if m.Rcode != c.rcode || !m.Authoritative {
				t.Fatalf("rcode %s aa=%v, want %s", mdns.RcodeToString[m.Rcode], m.Authoritative, mdns.RcodeToString[c.rcode])
			}
			if got := lines(m.Answer); fmt.Sprint(got) != fmt.Sprint(c.ans) {
				t.Fatalf("answer\n got %q\nwant %q", got, c.ans)
			}
			if got := lines(m.Extra); fmt.Sprint(got) != fmt.Sprint(c.extra) {
				t.Fatalf("additional\n got %q\nwant %q", got, c.extra)
			}
			if soa := len(m.Ns) == 1 && lines(m.Ns)[0] == "SOA"; soa != c.soa {
				t.Fatalf("authority %q, want SOA=%v", lines(m.Ns), c.soa)
			}
		})
	}
}

func TestChaseSyncRefuseForward(t *testing.T) {
	ix := testIndex()
	if r := ask(ix, "ext.default.svc.cluster.local.", mdns.TypeA, PodsDisabled); r.Chase != "db.example.com." {
		t.Fatalf("ExternalName chase target %q", r.Chase)
	}
	if r := ask(ix, "cluster.local.", mdns.TypeAXFR, PodsDisabled); r.Msg.Rcode != mdns.RcodeRefused {
		t.Fatalf("AXFR: %s", mdns.RcodeToString[r.Msg.Rcode])
	}
	if r := ask(ix, "example.com.", mdns.TypeA, PodsDisabled); r.Ours {
		t.Fatal("out-of-zone name answered from the index")
	}
	if r := ask(ix, "1.2.0.192.in-addr.arpa.", mdns.TypePTR, PodsDisabled); r.Ours {
		t.Fatal("unknown reverse name must be forwarded")
	}
	fresh := NewIndex("cluster.local", 5)
	if r := ask(fresh, "x.default.svc.cluster.local.", mdns.TypeA, PodsDisabled); r.Msg.Rcode != mdns.RcodeServerFailure {
		t.Fatalf("before sync: %s, want SERVFAIL", mdns.RcodeToString[r.Msg.Rcode])
	}
	r := ask(ix, "10-244-0-9.default.pod.cluster.local.", mdns.TypeA, PodsInsecure)
	if got := lines(r.Msg.Answer); fmt.Sprint(got) != "[10-244-0-9.default.pod.cluster.local. 5 IN A 10.244.0.9]" {
		t.Fatalf("pods insecure: %q", got)
	}
	if r := ask(ix, "10-244-0-9.gone.pod.cluster.local.", mdns.TypeA, PodsInsecure); r.Msg.Rcode != mdns.RcodeNameError {
		t.Fatal("pod name in an unknown namespace answered")
	}
	// Deleting a Service removes every record it had, PTR included.
	ix.DeleteService("default", "httpd-svc")
	if r := ask(ix, "httpd-svc.default.svc.cluster.local.", mdns.TypeA, PodsDisabled); r.Msg.Rcode != mdns.RcodeNameError {
		t.Fatal("deleted service still answers")
	}
	if r := ask(ix, "7.12.96.10.in-addr.arpa.", mdns.TypePTR, PodsDisabled); r.Ours {
		t.Fatal("deleted service's PTR still answered")
	}
	if r := ask(ix, "default.svc.cluster.local.", mdns.TypeA, PodsDisabled); r.Msg.Rcode != mdns.RcodeSuccess {
		t.Fatal("namespace name vanished with one of its services")
	}
}
