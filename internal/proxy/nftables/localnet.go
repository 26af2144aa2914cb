package nftables

import (
	"errors"
	"io/fs"

	"github.com/svcnet/svcnet/internal/proxy"
)

// route_localnet on the pod bridge: a pod's packet DNATed to a loopback
// endpoint (the API server of svcnet up listens on 127.0.0.1) is otherwise a
// martian the kernel drops. It is on only while the table is there: the
// table's guard (filter-prerouting) lets through to 127.0.0.0/8 only
// connections that were DNATed, so pods reach no other loopback service.

// localnetOnce turns route_localnet on after a sync, until it worked once per
// full sync (the bridge may appear later: the next sync tries again).
func (b *Backend) localnetOnce() {
	if b.LocalnetLink == "" || b.localnetOn {
		return
	}
	if err := proxy.SetRouteLocalnet(b.LocalnetLink, true); err == nil {
		b.localnetOn = true
	} else if !errors.Is(err, fs.ErrNotExist) {
		b.log("nftables: turning on route_localnet on the pod bridge failed", err)
	}
}

// localnetOff turns route_localnet off again when the guard goes (Retire, Cleanup).
func (b *Backend) localnetOff() {
	b.localnetOn = false
	if b.LocalnetLink == "" {
		return
	}
	if err := proxy.SetRouteLocalnet(b.LocalnetLink, false); err != nil && !errors.Is(err, fs.ErrNotExist) {
		b.log("nftables: turning off route_localnet on the pod bridge failed", err)
	}
}
