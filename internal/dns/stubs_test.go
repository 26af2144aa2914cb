package dns

import (
	"log/slog"
	"reflect"
	"strings"
	"testing"

	mdns "github.com/miekg/dns"
)

func TestParseKubeDNSConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		data map[string]string
		want Upstreams
		err  string
	}{
		{name: "empty", data: nil},
		{name: "stub and upstream", data: map[string]string{
			"stubDomains":         `{"acme.local":["10.244.0.7"], "Corp.Example.": ["10.0.0.1:5353", "10.0.0.2"]}`,
			"upstreamNameservers": `["10.244.0.7"]`},
			want: Upstreams{Stubs: map[string][]string{"acme.local.": {"10.244.0.7:53"}, "corp.example.": {"10.0.0.1:5353", "10.0.0.2:53"}},
				Nameservers: []string{"10.244.0.7:53"}}},
		{name: "ipv6", data: map[string]string{"upstreamNameservers": `["2001:db8::1", "[2001:db8::2]:5353"]`},
			want: Upstreams{Nameservers: []string{"[2001:db8::1]:53", "[2001:db8::2]:5353"}}},
		{name: "bad json", data: map[string]string{"stubDomains": `{"acme.local":"10.0.0.1"}`}, err: "stubDomains:"},
		{name: "bad domain", data: map[string]string{"stubDomains": `{"bad_domain":["10.0.0.1"]}`}, err: `stubDomains: "bad_domain"`},
		{name: "hostname server", data: map[string]string{"stubDomains": `{"acme.local":["ns.acme.local"]}`}, err: "is not an IP address"},
		{name: "too many upstreams", data: map[string]string{"upstreamNameservers": `["1.1.1.1","1.1.1.2","1.1.1.3","1.1.1.4"]`},
			err: "upstreamNameservers: 4 entries, at most 3"},
	} {
		got, err := ParseKubeDNSConfig(tc.data)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %+v, %v; want %+v", tc.name, got, err, tc.want)
		}
	}
}

func TestForwarderRoutes(t *testing.T) {
	f := NewForwarder([]string{"192.0.2.1:53"}, 10)
	addrs := func(name string) []string {
		var out []string
		for _, u := range f.upstreamsFor(name) {
			out = append(out, u.addr)
		}
		return out
	}
	if got := addrs("example.com."); !reflect.DeepEqual(got, []string{"192.0.2.1:53"}) {
		t.Errorf("no configuration: %v, want the node's resolver", got)
	}
	f.SetUpstreams(Upstreams{Stubs: map[string][]string{"acme.local.": {"10.0.0.1:53"}, "b.acme.local.": {"10.0.0.2:53"}},
		Nameservers: []string{"10.0.0.9:53"}})
	for name, want := range map[string]string{
		"abc.acme.local.": "10.0.0.1:53", "ACME.local": "10.0.0.1:53", "x.b.acme.local.": "10.0.0.2:53",
		"notacme.local.": "10.0.0.9:53", "widget.local.": "10.0.0.9:53", "123.2.0.192.in-addr.arpa.": "10.0.0.9:53",
	} {
		if got := addrs(name); !reflect.DeepEqual(got, []string{want}) {
			t.Errorf("%s: %v, want %s", name, got, want)
		}
	}
	if n := len(f.all()); n != 4 {
		t.Errorf("all: %d upstreams, want 4", n)
	}
	f.SetUpstreams(Upstreams{})
	if got := addrs("abc.acme.local."); !reflect.DeepEqual(got, []string{"192.0.2.1:53"}) {
		t.Errorf("configuration removed: %v, want the node's resolver", got)
	}
}

// An ExternalName's target in a stub domain is chased through the stub's
// server; routes set later replace cached answers of the servers before.
func TestServerStubDomains(t *testing.T) {
	up := fakeUpstream(t)
	deadAddr := silentAddr(t)
	ix := testIndex()
	ix.SetService(&Service{Name: "ext", Namespace: "default", ExternalName: "db.example.com"})
	fw := NewForwarder([]string{deadAddr}, 100)
	addr := startServer(t, &Server{Index: ix, Forwarder: fw, Allowed: DefaultAllowed, Log: slog.New(slog.DiscardHandler)})

	m := query(t, addr, "ext.default.svc.cluster.local.", mdns.TypeA, "udp")
	if len(m.Answer) != 1 || m.Answer[0].Header().Rrtype != mdns.TypeCNAME {
		t.Fatalf("before: %v, want the CNAME alone (the target's server is down)", m.Answer)
	}
	fw.SetUpstreams(Upstreams{Stubs: map[string][]string{"example.com.": {up}}})
	m = query(t, addr, "ext.default.svc.cluster.local.", mdns.TypeA, "udp")
	if len(m.Answer) != 2 || m.Answer[1].(*mdns.A).A.String() != "192.0.2.81" {
		t.Fatalf("with the stub domain: %v, want the CNAME and db.example.com's A", m.Answer)
	}
	if m := query(t, addr, "other.test.", mdns.TypeA, "udp"); m.Rcode != mdns.RcodeServerFailure {
		t.Errorf("a name outside the stub: rcode %s, want SERVFAIL from the node's (dead) resolver", mdns.RcodeToString[m.Rcode])
	}
	fw.SetUpstreams(Upstreams{Nameservers: []string{up}})
	if m := query(t, addr, "example.com.", mdns.TypeA, "udp"); len(m.Answer) != 1 {
		t.Errorf("upstreamNameservers: %v, want example.com's A", m.Answer)
	}
	fw.SetUpstreams(Upstreams{})
	if m := query(t, addr, "example.com.", mdns.TypeA, "udp"); m.Rcode != mdns.RcodeServerFailure {
		t.Errorf("configuration removed: rcode %s, want SERVFAIL (no cached answer of the old server)", mdns.RcodeToString[m.Rcode])
	}
}
