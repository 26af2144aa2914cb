package agent

import (
	"fmt"
	"net/netip"
	"testing"
)

func TestNodePortAddrs(t *testing.T) {
	local := []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("192.168.1.5"), netip.MustParseAddr("10.0.0.7")}
	for _, tc := range []struct {
		vals []string
		want string
	}{
		{nil, "[]"},
		{[]string{"192.168.0.0/16"}, "[192.168.1.5]"},
		{[]string{"primary"}, "[192.168.1.5]"},
		{[]string{"127.0.0.0/8", "10.0.0.0/8", "primary"}, "[127.0.0.1 10.0.0.7 192.168.1.5]"},
		{[]string{"172.16.0.0/12"}, "[]"},
	} {
		if got := fmt.Sprint(nodePortAddrs(tc.vals, "192.168.1.5", local)); got != tc.want {
			t.Errorf("%v: %s, want %s", tc.vals, got, tc.want)
		}
	}
	if err := validNodePortAddresses([]string{"primary", "10.0.0.0/8"}); err != nil {
		t.Error(err)
	}
	if err := validNodePortAddresses([]string{"10.0.0.1"}); err == nil {
		t.Error("10.0.0.1 is not a CIDR: want an error")
	}
}
