package apiserver

import (
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/uuid"

	"github.com/svcnet/svcnet/internal/registry"
	"github.com/svcnet/svcnet/internal/storage"
)

// ipAddressCodec writes the IPAddress object that is a cluster IP's claim key.
type ipAddressCodec struct {
	prefix string // storage prefix of IPAddress objects
	res    *registry.Resource
	now    func() time.Time
}

func (s *Server) newIPAddressCodec() ipAddressCodec {
	res := s.res(networkingv1.GroupName, "ipaddresses")
	return ipAddressCodec{prefix: s.listPrefix(res, ""), res: res, now: s.now}
}

func (c ipAddressCodec) key(ip string) string { return c.prefix + ip }

// object is the IPAddress Kubernetes' allocator writes for a Service's cluster IP.
func (c ipAddressCodec) object(ip string, svc *corev1.Service) *networkingv1.IPAddress {
	family := corev1.IPv4Protocol
	if addr, err := netip.ParseAddr(ip); err == nil {
		family = ipFamily(addr)
	}
	return &networkingv1.IPAddress{
		ObjectMeta: metav1.ObjectMeta{Name: ip, UID: types.UID(uuid.NewUUID()),
			CreationTimestamp: metav1.NewTime(c.now().Truncate(time.Second)),
			Labels: map[string]string{
				networkingv1.LabelIPAddressFamily: string(family),
				networkingv1.LabelManagedBy:       registry.IPAllocatorName,
			}},
		Spec: networkingv1.IPAddressSpec{ParentRef: &networkingv1.ParentReference{
			Group: "", Resource: "services", Namespace: svc.Namespace, Name: svc.Name}},
	}
}

// value encodes the claim value of ip for svc.
func (c ipAddressCodec) value(ip string, svc *corev1.Service) ([]byte, error) {
	return encodeStored(c.res, c.object(ip, svc))
}

// parent returns the parentRef of a stored IPAddress, nil when unreadable.
func (c ipAddressCodec) parent(kv storage.KV) *networkingv1.ParentReference {
	obj, err := decodeStored(c.res, kv)
	if err != nil {
		return nil
	}
	return obj.(*networkingv1.IPAddress).Spec.ParentRef
}

func ipFamily(addr netip.Addr) corev1.IPFamily {
	if addr.Unmap().Is4() {
		return corev1.IPv4Protocol
	}
	return corev1.IPv6Protocol
}

// family says which family a Service's new cluster IP comes from: its first
// ipFamilies entry when some ServiceCIDR serves that family, else the default
// ServiceCIDR's (Services are defaulted to IPv4 before allocation).
func (a *serviceAlloc) family(svc *corev1.Service) (ipv6 bool) {
	if len(svc.Spec.IPFamilies) > 0 {
		want := svc.Spec.IPFamilies[0] == corev1.IPv6Protocol
		if a.ips.HasFamily(want) {
			return want
		}
	}
	return a.ips.Family()
}

// markIPAddress marks the IP of an IPAddress a user creates as taken; storage
// decides conflicts, as the object's key is the IP's claim key.
func (a *serviceAlloc) markIPAddress(ip *networkingv1.IPAddress) *allocation {
	al := &allocation{mu: &a.mu}
	addr, err := netip.ParseAddr(ip.Name)
	if err != nil {
		return al
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.ips.Has(addr) {
		a.ips.Mark(addr)
		al.undoFns = append(al.undoFns, func() { a.ips.Release(addr) })
	}
	return al
}

// releaseIPAddress frees the IP of a deleted IPAddress, unless the object named a
// Service: then the Service still holds the IP and repair writes the object again.
func (a *serviceAlloc) releaseIPAddress(ip *networkingv1.IPAddress) {
	if ref := ip.Spec.ParentRef; ref != nil && ref.Group == "" && ref.Resource == "services" {
		return
	}
	if addr, err := netip.ParseAddr(ip.Name); err == nil {
		a.mu.Lock()
		a.ips.Release(addr)
		a.mu.Unlock()
	}
}
