package lbipam

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/labels"
)

func TestParseAddresses(t *testing.T) {
	tests := []struct {
		in   []string
		want string // ranges joined by " ", or "error: substring"
	}{
		{[]string{"192.168.1.240-192.168.1.250"}, "192.168.1.240-192.168.1.250"},
		{[]string{"192.168.1.240/30, 10.0.0.7"}, "192.168.1.240-192.168.1.243 10.0.0.7"},
		{[]string{"192.168.1.241/30"}, "192.168.1.240-192.168.1.243"},
		{[]string{"2001:db8::/126", "10.0.0.1-10.0.0.2"}, "2001:db8::-2001:db8::3 10.0.0.1-10.0.0.2"},
		{[]string{"10.0.0.9-10.0.0.1"}, "error: ends before it starts"},
		{[]string{"10.0.0.1-2001:db8::1"}, "error: one IP family"},
		{[]string{"pool"}, "error: not an address, range or CIDR"},
		{[]string{" , "}, "error: no addresses"},
	}
	for _, tt := range tests {
		rs, err := ParseAddresses(tt.in)
		got := ""
		if err != nil {
			got = "error: " + err.Error()
		} else {
			var parts []string
			for _, r := range rs {
				parts = append(parts, r.String())
			}
			got = strings.Join(parts, " ")
		}
		if (strings.HasPrefix(tt.want, "error: ") && !strings.Contains(got, strings.TrimPrefix(tt.want, "error: "))) ||
			(!strings.HasPrefix(tt.want, "error: ") && got != tt.want) {
			t.Errorf("ParseAddresses(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestAssign(t *testing.T) {
	a := netip.MustParseAddr
	pool := func(name, addrs, svcSel, nsSel string) Pool {
		rs, err := ParseAddresses([]string{addrs})
		if err != nil {
			t.Fatal(err)
		}
		p := Pool{Name: name, Ranges: rs}
		if svcSel != "" {
			p.Services, _ = labels.Parse(svcSel)
		}
		if nsSel != "" {
			p.Namespaces, _ = labels.Parse(nsSel)
		}
		return p
	}
	def := pool("default", "192.168.1.240-192.168.1.242", "", "")
	web := pool("a-web", "192.168.2.1-192.168.2.1", "tier=web", "")
	prod := pool("prod", "10.0.0.1-10.0.0.2", "", "env=prod")
	v6 := pool("v6", "2001:db8::10-2001:db8::11", "", "")
	svc := func(mod func(*Service)) Service {
		s := Service{Key: "default/s", IPv4: true}
		if mod != nil {
			mod(&s)
		}
		return s
	}
	tests := []struct {
		name  string
		svc   Service
		pools []Pool
		inUse map[netip.Addr]string
		want  string // addresses joined by " ", or "error: substring"
	}{
		{"first free", svc(nil), []Pool{def}, nil, "192.168.1.240"},
		{"skips used", svc(nil), []Pool{def}, map[netip.Addr]string{a("192.168.1.240"): "default/x"}, "192.168.1.241"},
		{"keeps its own", svc(func(s *Service) { s.Current = []netip.Addr{a("192.168.1.242")} }), []Pool{def},
			map[netip.Addr]string{a("192.168.1.242"): "default/s"}, "192.168.1.242"},
		{"current outside pools moves", svc(func(s *Service) { s.Current = []netip.Addr{a("172.16.0.1")} }), []Pool{def}, nil, "192.168.1.240"},
		{"exhausted", svc(nil), []Pool{def}, map[netip.Addr]string{a("192.168.1.240"): "x/a", a("192.168.1.241"): "x/b", a("192.168.1.242"): "x/c"},
			"error: no free IPv4 address in pools [default]"},
		{"requested", svc(func(s *Service) { s.Requested = []netip.Addr{a("192.168.1.241")} }), []Pool{def}, nil, "192.168.1.241"},
		{"requested outside pools", svc(func(s *Service) { s.Requested = []netip.Addr{a("192.168.9.9")} }), []Pool{def}, nil,
			"error: requested address 192.168.9.9 is in no pool"},
		{"requested taken", svc(func(s *Service) { s.Requested = []netip.Addr{a("192.168.1.241")} }), []Pool{def},
			map[netip.Addr]string{a("192.168.1.241"): "default/other"}, "error: already in use by default/other"},
		{"service selector: pools in name order", svc(func(s *Service) { s.Labels = map[string]string{"tier": "web"} }), []Pool{def, web}, nil, "192.168.2.1"},
		{"service selector not matching", svc(nil), []Pool{web}, nil, "error: no pool admits this Service"},
		{"namespace selector", svc(func(s *Service) { s.NamespaceLabels = map[string]string{"env": "prod"} }), []Pool{prod}, nil, "10.0.0.1"},
		{"namespace selector not matching", svc(func(s *Service) { s.NamespaceLabels = map[string]string{"env": "dev"} }), []Pool{prod}, nil,
			"error: no pool admits"},
		{"dual stack", svc(func(s *Service) { s.IPv6 = true }), []Pool{v6, def}, nil, "192.168.1.240 2001:db8::10"},
		{"IPv6 only", svc(func(s *Service) { s.IPv4, s.IPv6 = false, true }), []Pool{def, v6}, nil, "2001:db8::10"},
		{"no IPv6 pool", svc(func(s *Service) { s.IPv4, s.IPv6 = false, true }), []Pool{def}, nil, "error: no free IPv6 address"},
	}
	for _, tt := range tests {
		got, err := Assign(tt.svc, tt.pools, tt.inUse)
		s := fmt.Sprint(got)
		s = strings.Trim(s, "[]")
		if err != nil {
			s = "error: " + err.Error()
		}
		if (strings.HasPrefix(tt.want, "error: ") && !strings.Contains(s, strings.TrimPrefix(tt.want, "error: "))) ||
			(!strings.HasPrefix(tt.want, "error: ") && s != tt.want) {
			t.Errorf("%s: Assign = %s, want %s", tt.name, s, tt.want)
		}
	}
}
