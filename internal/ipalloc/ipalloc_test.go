package ipalloc

import (
	"errors"
	"net/netip"
	"testing"
)

func TestIPRangeAllocateAndExhaust(t *testing.T) {
	r, err := NewIPRange("10.0.0.0/29") // 8 addresses, 6 usable (no network, no broadcast)
	if err != nil {
		t.Fatal(err)
	}
	if r.Size() != 6 {
		t.Fatalf("size = %d, want 6", r.Size())
	}
	seen := map[netip.Addr]bool{}
	for i := 0; i < 6; i++ {
		ip, err := r.AllocateNext()
		if err != nil {
			t.Fatalf("allocation %d: %v", i, err)
		}
		if seen[ip] || !r.Contains(ip) || ip == netip.MustParseAddr("10.0.0.0") || ip == netip.MustParseAddr("10.0.0.7") {
			t.Fatalf("bad allocation %s (seen=%v)", ip, seen[ip])
		}
		seen[ip] = true
	}
	if _, err := r.AllocateNext(); !errors.Is(err, ErrFull) {
		t.Fatalf("7th allocation: want ErrFull, got %v", err)
	}
	r.Release(netip.MustParseAddr("10.0.0.3"))
	if ip, err := r.AllocateNext(); err != nil || ip != netip.MustParseAddr("10.0.0.3") {
		t.Fatalf("after release got %s, %v; want 10.0.0.3", ip, err)
	}
}

func TestIPRangeRequested(t *testing.T) {
	r, _ := NewIPRange("10.96.0.0/12")
	cases := []struct {
		ip      string
		wantErr string
	}{
		{"10.96.0.10", ""},
		{"10.96.0.10", "provided IP is already allocated"},
		{"1.2.3.4", "provided IP (1.2.3.4) is not in the valid range. The range of valid IPs is 10.96.0.0/12"},
		{"10.96.0.0", "provided IP (10.96.0.0) is not in the valid range. The range of valid IPs is 10.96.0.0/12"},
		{"10.111.255.255", "provided IP (10.111.255.255) is not in the valid range. The range of valid IPs is 10.96.0.0/12"},
		{"10.111.255.254", ""},
	}
	for _, c := range cases {
		err := r.Allocate(netip.MustParseAddr(c.ip))
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != c.wantErr {
			t.Errorf("Allocate(%s) = %q, want %q", c.ip, got, c.wantErr)
		}
	}
}

func TestIPRangeDynamicPrefersUpperBand(t *testing.T) {
	r, _ := NewIPRange("10.96.0.0/24") // 254 usable, lower band 16
	for i := 0; i < 200; i++ {
		ip, err := r.AllocateNext()
		if err != nil {
			t.Fatal(err)
		}
		if ip.As4()[3] <= 16 {
			t.Fatalf("dynamic allocation %s landed in the lower band while the upper band had room", ip)
		}
	}
}

func TestPortRange(t *testing.T) {
	if _, err := ParsePortRange("32767-30000"); err == nil {
		t.Error("reversed range accepted")
	}
	if _, err := ParsePortRange("abc"); err == nil {
		t.Error("garbage range accepted")
	}
	r, err := ParsePortRange("30000-30004")
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Allocate(30002); err != nil {
		t.Fatal(err)
	}
	if err := r.Allocate(30002); !errors.Is(err, ErrPortTaken) {
		t.Fatalf("double allocation: %v", err)
	}
	var oor *PortOutOfRangeError
	if err := r.Allocate(80); !errors.As(err, &oor) || err.Error() != "provided port is not in the valid range. The range of valid ports is 30000-30004" {
		t.Fatalf("out of range: %v", err)
	}
	for i := 0; i < 4; i++ {
		p, err := r.AllocateNext()
		if err != nil || p == 30002 || !r.Contains(p) {
			t.Fatalf("AllocateNext = %d, %v", p, err)
		}
	}
	if _, err := r.AllocateNext(); !errors.Is(err, ErrFull) {
		t.Fatalf("want ErrFull, got %v", err)
	}
	r.Release(30002)
	if r.Has(30002) || r.Free() != 1 {
		t.Fatalf("release did not free 30002")
	}
}

func TestIPv6RangeIsCapped(t *testing.T) {
	r, err := NewIPRange("fd00::/64")
	if err != nil {
		t.Fatal(err)
	}
	if r.Size() != 1<<20-1 {
		t.Fatalf("size = %d", r.Size())
	}
	ip, err := r.AllocateNext()
	if err != nil || !ip.Is6() || !r.Has(ip) {
		t.Fatalf("v6 allocation %s %v", ip, err)
	}
}
