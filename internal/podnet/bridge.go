package podnet

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
)

// DefaultBridge is the bridge pods are plugged into when Config.Bridge is empty.
const DefaultBridge = "svcnet0"

// EnsureBridge creates the pod bridge (up, no address yet) unless it exists.
// The CNI bridge plugin takes an existing bridge as it is and adds the gateway
// address with the first pod; creating it first lets the node set the
// bridge's sysctls (route_localnet, for the service proxy) before any pod
// sends a packet.
func EnsureBridge(name string) error {
	if name == "" {
		name = DefaultBridge
	}
	l, err := netlink.LinkByName(name)
	var notFound netlink.LinkNotFoundError
	if errors.As(err, &notFound) {
		err = netlink.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name, TxQLen: -1}})
		if err == nil {
			l, err = netlink.LinkByName(name)
		}
	}
	if err != nil {
		return fmt.Errorf("pod bridge %s: %w", name, err)
	}
	if _, ok := l.(*netlink.Bridge); !ok {
		return fmt.Errorf("pod bridge %s: the link exists and is a %s, not a bridge", name, l.Type())
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return fmt.Errorf("pod bridge %s: set up: %w", name, err)
	}
	return nil
}
