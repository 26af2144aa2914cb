package nftables

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
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
	if err := setRouteLocalnet(b.LocalnetLink, true); err == nil {
		b.localnetOn = true
	} else if !errors.Is(err, fs.ErrNotExist) {
		b.log("nftables: turning on route_localnet on the pod bridge failed", err)
	}
}

// setRouteLocalnet sets net.ipv4.conf.<link>.route_localnet: the kernel then
// routes packets from link to 127.0.0.0/8 (after DNAT) instead of dropping them
// as martians, and lets the replies out.
func setRouteLocalnet(link string, on bool) error {
	v := "0"
	if on {
		v = "1"
	}
	return os.WriteFile(filepath.Join("/proc/sys/net/ipv4/conf", link, "route_localnet"), []byte(v), 0o644)
}

// localnetOff turns route_localnet off again when the guard goes (Retire, Cleanup).
func (b *Backend) localnetOff() {
	b.localnetOn = false
	if b.LocalnetLink == "" {
		return
	}
	if err := setRouteLocalnet(b.LocalnetLink, false); err != nil && !errors.Is(err, fs.ErrNotExist) {
		b.log("nftables: turning off route_localnet on the pod bridge failed", err)
	}
}
