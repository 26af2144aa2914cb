package announce

import (
	"net/netip"
	"slices"
	"sync"
)

// FakeResponder records what it is told to announce, for tests.
type FakeResponder struct {
	mu   sync.Mutex
	ips  []netip.Addr
	GARP []netip.Addr // every address announced anew, in order
}

var _ Responder = (*FakeResponder)(nil)

// Announce implements Responder.
func (f *FakeResponder) Announce(ips []netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ip := range ips {
		if !slices.Contains(f.ips, ip) {
			f.GARP = append(f.GARP, ip)
		}
	}
	f.ips = slices.Clone(ips)
	return nil
}

// IPs returns the addresses answered for now.
func (f *FakeResponder) IPs() []netip.Addr {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.ips)
}
