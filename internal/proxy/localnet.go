package proxy

import (
	"os"
	"path/filepath"
)

// SetRouteLocalnet sets net.ipv4.conf.<link>.route_localnet: the kernel then
// routes packets from link to 127.0.0.0/8 (after DNAT) instead of dropping them
// as martians, and lets the replies out. Backends turn it on for the pod bridge
// only while their guard on 127.0.0.0/8 is in place.
func SetRouteLocalnet(link string, on bool) error {
	v := "0"
	if on {
		v = "1"
	}
	return os.WriteFile(filepath.Join("/proc/sys/net/ipv4/conf", link, "route_localnet"), []byte(v), 0o644)
}
