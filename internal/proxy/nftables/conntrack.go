package nftables

import "github.com/svcnet/svcnet/internal/proxy/conntrack"

// udpOf is what the UDP conntrack cleanup needs of f (nil for none).
func udpOf(f *Fragment) *conntrack.UDP {
	if f == nil {
		return nil
	}
	return f.UDP
}
