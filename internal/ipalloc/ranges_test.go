package ipalloc

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func cidr(name string, serving bool, ps ...string) CIDR {
	c := CIDR{Name: name, Serving: serving}
	for _, p := range ps {
		c.Prefixes = append(c.Prefixes, netip.MustParsePrefix(p))
	}
	return c
}

func TestRangesDefaultFirstThenNext(t *testing.T) {
	// The default has 2 addresses (/30 minus network and broadcast), the extra 6.
	rs, err := NewRanges([]CIDR{cidr("kubernetes", true, "10.0.0.0/30"), cidr("extra", true, "10.1.0.0/29")})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i := 0; i < 8; i++ {
		ip, err := rs.AllocateNext(false)
		if err != nil {
			t.Fatalf("allocation %d: %v", i, err)
		}
		got = append(got, ip.String())
	}
	slices.Sort(got[:2])
	if got[0] != "10.0.0.1" || got[1] != "10.0.0.2" {
		t.Fatalf("first two IPs %v, want the default range's", got[:2])
	}
	for _, ip := range got[2:] {
		if !netip.MustParsePrefix("10.1.0.0/29").Contains(netip.MustParseAddr(ip)) {
			t.Fatalf("IP %s after the default is full is not from the extra range", ip)
		}
	}
	if _, err := rs.AllocateNext(false); !errors.Is(err, ErrFull) {
		t.Fatalf("all full: %v", err)
	}
	rs.Release(netip.MustParseAddr("10.1.0.3"))
	if ip, err := rs.AllocateNext(false); err != nil || ip.String() != "10.1.0.3" {
		t.Fatalf("after release: %v %v", ip, err)
	}
}

func TestRangesRequestedAndServing(t *testing.T) {
	rs, err := NewRanges([]CIDR{cidr("kubernetes", true, "10.0.0.0/24"), cidr("going", false, "10.2.0.0/24"),
		cidr("dual", true, "10.3.0.0/24", "fd00::/120")})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		ip   string
		want string // "" = ok
	}{
		{"10.0.0.5", ""},
		{"10.0.0.5", ErrAllocated.Error()},
		{"10.3.0.9", ""},
		{"fd00::9", ""},
		{"10.2.0.9", "provided IP (10.2.0.9) is not in the valid range. The range of valid IPs is 10.0.0.0/24,10.3.0.0/24,fd00::/120"},
		{"192.0.2.1", "not in the valid range"},
		{"10.0.0.0", "not in the valid range"}, // network address
	}
	for _, c := range cases {
		err := rs.Allocate(netip.MustParseAddr(c.ip))
		if (err == nil) != (c.want == "") || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("Allocate(%s) = %v, want %q", c.ip, err, c.want)
		}
	}
	if ip, err := rs.AllocateNext(true); err != nil || !ip.Is6() {
		t.Errorf("IPv6 allocation: %v %v", ip, err)
	}
	if !rs.HasFamily(true) || rs.Family() {
		t.Errorf("families: has v6 %v, default v6 %v", rs.HasFamily(true), rs.Family())
	}
	// A range that starts serving later knows the IPs taken in it.
	rs.Mark(netip.MustParseAddr("10.2.0.7"))
	if err := rs.SetCIDRs([]CIDR{cidr("kubernetes", true, "10.0.0.0/24"), cidr("going", true, "10.2.0.0/24")}); err != nil {
		t.Fatal(err)
	}
	if err := rs.Allocate(netip.MustParseAddr("10.2.0.7")); !errors.Is(err, ErrAllocated) {
		t.Errorf("IP marked before its range served: %v", err)
	}
	if err := rs.Allocate(netip.MustParseAddr("10.0.0.5")); !errors.Is(err, ErrAllocated) {
		t.Errorf("IP allocated before SetCIDRs: %v", err)
	}
}

func TestRangesOverlap(t *testing.T) {
	// An IP taken through the small range is taken in the large one too.
	rs, err := NewRanges([]CIDR{cidr("small", true, "10.0.0.0/30"), cidr("large", true, "10.0.0.0/24")})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := rs.AllocateNext(false)
	b, _ := rs.AllocateNext(false)
	seen := map[netip.Addr]bool{a: true, b: true}
	for i := 0; i < 252; i++ {
		ip, err := rs.AllocateNext(false)
		if err != nil {
			t.Fatalf("allocation %d: %v", i, err)
		}
		if seen[ip] {
			t.Fatalf("%s handed out twice", ip)
		}
		seen[ip] = true
	}
	if _, err := rs.AllocateNext(false); !errors.Is(err, ErrFull) {
		t.Fatalf("full: %v", err)
	}
}

func TestOrphans(t *testing.T) {
	p := func(ss ...string) (out []netip.Prefix) {
		for _, s := range ss {
			out = append(out, netip.MustParsePrefix(s))
		}
		return out
	}
	a := func(ss ...string) (out []netip.Addr) {
		for _, s := range ss {
			out = append(out, netip.MustParseAddr(s))
		}
		return out
	}
	cases := []struct {
		name        string
		own, others []netip.Prefix
		ips, want   []netip.Addr
	}{
		{"empty", p("10.0.0.0/24"), nil, nil, nil},
		{"ip inside, nothing else covers", p("10.0.0.0/24"), p("10.96.0.0/12"), a("10.0.0.5", "10.96.0.1"), a("10.0.0.5")},
		{"covered by a larger one", p("10.0.0.0/24"), p("10.0.0.0/16"), a("10.0.0.5"), nil},
		{"covered by an identical one", p("10.0.0.0/24"), p("10.0.0.0/24"), a("10.0.0.5"), nil},
		{"only outside", p("10.0.0.0/24"), nil, a("10.0.1.5"), nil},
		{"dual stack, v6 left", p("10.0.0.0/24", "fd00::/120"), p("10.0.0.0/16"), a("10.0.0.5", "fd00::5"), a("fd00::5")},
	}
	for _, c := range cases {
		if got := Orphans(c.own, c.others, c.ips); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
