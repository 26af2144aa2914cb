package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/svcnet/svcnet/internal/ipalloc"
	"github.com/svcnet/svcnet/internal/registry"
	"github.com/svcnet/svcnet/internal/storage"
)

// serviceAlloc owns the in-memory index of allocated cluster IPs and node ports.
// Storage holds the truth: one claim key per allocated value, written in the same
// transaction as the Service, so API servers sharing an etcd never hand out a value
// twice; the index only makes picking a free value cheap. A cluster IP's claim key
// is its IPAddress object (networking.k8s.io/v1), so the object exists exactly while
// the IP is allocated and an IPAddress a user creates takes the IP for Services.
type serviceAlloc struct {
	mu     sync.Mutex
	ips    *ipalloc.Ranges // the ServiceCIDRs, default first (servicecidr.go)
	ports  *ipalloc.PortRange
	prefix string // storage prefix of node port claim keys
	ipAddr ipAddressCodec
}

func (a *serviceAlloc) ipKey(ip string) string { return a.ipAddr.key(ip) }
func (a *serviceAlloc) portKey(port int32) string {
	return a.prefix + "nodeports/" + strconv.Itoa(int(port))
}

// allocation is what one write needs from the allocator.
type allocation struct {
	claims   []storage.Claim
	releases []string
	undoFns  []func()
	commitFn []func()
	// requested maps claim keys of values the user asked for to the error to
	// report when another API server took them first.
	requested map[string]error
	remark    map[string]func()
	mu        *sync.Mutex
}

func (al *allocation) undo() {
	if al.mu == nil {
		return
	}
	al.mu.Lock()
	defer al.mu.Unlock()
	for _, f := range al.undoFns {
		f()
	}
	al.undoFns = nil
}

func (al *allocation) commit() {
	if al.mu == nil {
		return
	}
	al.mu.Lock()
	defer al.mu.Unlock()
	for _, f := range al.commitFn {
		f()
	}
}

// conflict handles a claim key found taken in storage after undo: the value is
// marked used again; a requested value is an error, a picked one means retry (nil).
func (al *allocation) conflict(key string) error {
	if al.mu == nil {
		return nil
	}
	al.mu.Lock()
	if f := al.remark[key]; f != nil {
		f()
	}
	al.mu.Unlock()
	return al.requested[key]
}

func ownerValue(svc *corev1.Service) []byte {
	return []byte(string(svc.UID) + " " + svc.Namespace + "/" + svc.Name)
}

func servicePortsOf(svc *corev1.Service) map[int32]bool {
	out := map[int32]bool{}
	if svc == nil {
		return out
	}
	for _, p := range svc.Spec.Ports {
		if p.NodePort != 0 {
			out[p.NodePort] = true
		}
	}
	if svc.Spec.HealthCheckNodePort != 0 {
		out[svc.Spec.HealthCheckNodePort] = true
	}
	return out
}

func serviceIPOf(svc *corev1.Service) string {
	if svc == nil || svc.Spec.Type == corev1.ServiceTypeExternalName || svc.Spec.ClusterIP == corev1.ClusterIPNone {
		return ""
	}
	return svc.Spec.ClusterIP
}

func rangeFull(what string) error {
	return apierrors.NewInternalError(fmt.Errorf("failed to allocate a %s: range is full", what))
}

// allocate fills in and claims the Service's cluster IP and node ports, releasing
// what old had and svc no longer has. old is nil on create.
func (a *serviceAlloc) allocate(svc, old *corev1.Service) (*allocation, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	al := &allocation{requested: map[string]error{}, remark: map[string]func(){}, mu: &a.mu}
	owner := ownerValue(svc)
	var errs field.ErrorList
	fail := func(err error) (*allocation, error) {
		for _, f := range al.undoFns {
			f()
		}
		return nil, err
	}

	oldIP, newIP := serviceIPOf(old), ""
	if svc.Spec.Type != corev1.ServiceTypeExternalName && svc.Spec.ClusterIP != corev1.ClusterIPNone {
		switch ip := svc.Spec.ClusterIP; {
		case ip == "":
			addr, err := a.ips.AllocateNext(a.family(svc))
			if err != nil {
				return fail(rangeFull("serviceIP"))
			}
			newIP = addr.String()
			svc.Spec.ClusterIP, svc.Spec.ClusterIPs = newIP, []string{newIP}
			svc.Spec.IPFamilies = []corev1.IPFamily{ipFamily(addr)}
			al.undoFns = append(al.undoFns, func() { a.ips.Release(addr) })
			al.remark[a.ipKey(newIP)] = func() { _ = a.ips.Allocate(addr) }
		case ip == oldIP:
			newIP = ip
		default:
			addr, err := netip.ParseAddr(ip)
			if err == nil {
				err = a.ips.Allocate(addr)
			}
			if err != nil {
				errs = append(errs, field.Invalid(field.NewPath("spec", "clusterIPs"), svc.Spec.ClusterIPs, fmt.Sprintf("failed to allocate IP %s: %v", ip, err)))
				break
			}
			newIP = ip
			al.undoFns = append(al.undoFns, func() { a.ips.Release(addr) })
			al.remark[a.ipKey(ip)] = func() { _ = a.ips.Allocate(addr) }
			al.requested[a.ipKey(ip)] = apierrors.NewInvalid(corev1.SchemeGroupVersion.WithKind("Service").GroupKind(), svc.Name,
				field.ErrorList{field.Invalid(field.NewPath("spec", "clusterIPs"), svc.Spec.ClusterIPs, fmt.Sprintf("failed to allocate IP %s: %v", ip, ipalloc.ErrAllocated))})
		}
		if newIP != "" && newIP != oldIP {
			value, err := a.ipAddr.value(newIP, svc)
			if err != nil {
				return fail(err)
			}
			al.claims = append(al.claims, storage.Claim{Key: a.ipKey(newIP), Value: value})
		}
	}
	if oldIP != "" && oldIP != newIP {
		al.releases = append(al.releases, a.ipKey(oldIP))
		if addr, err := netip.ParseAddr(oldIP); err == nil {
			al.commitFn = append(al.commitFn, func() { a.ips.Release(addr) })
		}
	}

	oldPorts, newPorts := servicePortsOf(old), map[int32]bool{}
	type pp struct {
		port  int32
		proto corev1.Protocol
	}
	seen := map[pp]bool{}
	take := func(port *int32, fp *field.Path, proto corev1.Protocol) {
		switch {
		case *port == 0:
			n, err := a.ports.AllocateNext()
			if err != nil {
				errs = append(errs, field.InternalError(fp, errors.New("failed to allocate a nodePort: range is full")))
				return
			}
			*port = int32(n)
			al.undoFns = append(al.undoFns, func() { a.ports.Release(n) })
			al.remark[a.portKey(*port)] = func() { _ = a.ports.Allocate(n) }
		case seen[pp{*port, proto}]:
			errs = append(errs, field.Duplicate(fp, *port))
			return
		case oldPorts[*port] || newPorts[*port]:
		default:
			p := int(*port)
			if err := a.ports.Allocate(p); err != nil {
				errs = append(errs, field.Invalid(fp, *port, err.Error()))
				return
			}
			al.undoFns = append(al.undoFns, func() { a.ports.Release(p) })
			al.remark[a.portKey(*port)] = func() { _ = a.ports.Allocate(p) }
			al.requested[a.portKey(*port)] = apierrors.NewInvalid(corev1.SchemeGroupVersion.WithKind("Service").GroupKind(), svc.Name,
				field.ErrorList{field.Invalid(fp, *port, ipalloc.ErrPortTaken.Error())})
		}
		seen[pp{*port, proto}] = true
		newPorts[*port] = true
	}
	if registry.NeedsNodePorts(svc) {
		for i := range svc.Spec.Ports {
			take(&svc.Spec.Ports[i].NodePort, field.NewPath("spec", "ports").Index(i).Child("nodePort"), svc.Spec.Ports[i].Protocol)
		}
	}
	if registry.NeedsHealthCheckNodePort(svc) {
		take(&svc.Spec.HealthCheckNodePort, field.NewPath("spec", "healthCheckNodePort"), "health")
	}
	if len(errs) > 0 {
		return fail(apierrors.NewInvalid(corev1.SchemeGroupVersion.WithKind("Service").GroupKind(), svc.Name, errs))
	}
	for p := range newPorts {
		if !oldPorts[p] {
			al.claims = append(al.claims, storage.Claim{Key: a.portKey(p), Value: owner})
		}
	}
	for p := range oldPorts {
		if !newPorts[p] {
			al.releases = append(al.releases, a.portKey(p))
			n := int(p)
			al.commitFn = append(al.commitFn, func() { a.ports.Release(n) })
		}
	}
	return al, nil
}

// allocate runs the allocators a resource needs (Services; IPAddresses users create
// mark their IP in the index).
func (s *Server) allocate(res *registry.Resource, obj, old runtime.Object) (*allocation, error) {
	if ip, ok := obj.(*networkingv1.IPAddress); ok && old == nil {
		return s.alloc.markIPAddress(ip), nil
	}
	svc, ok := obj.(*corev1.Service)
	if !ok {
		return &allocation{}, nil
	}
	var oldSvc *corev1.Service
	if old != nil {
		oldSvc = old.(*corev1.Service)
	}
	return s.alloc.allocate(svc, oldSvc)
}

// releasesOf lists the claim keys deleting obj frees.
func (s *Server) releasesOf(_ *registry.Resource, obj runtime.Object) []string {
	svc, ok := obj.(*corev1.Service)
	if !ok {
		return nil
	}
	var keys []string
	if ip := serviceIPOf(svc); ip != "" {
		keys = append(keys, s.alloc.ipKey(ip))
	}
	for p := range servicePortsOf(svc) {
		keys = append(keys, s.alloc.portKey(p))
	}
	return keys
}

// released frees a deleted object's values in the in-memory index.
func (s *Server) released(_ *registry.Resource, obj runtime.Object) {
	if ip, ok := obj.(*networkingv1.IPAddress); ok {
		s.alloc.releaseIPAddress(ip)
		return
	}
	svc, ok := obj.(*corev1.Service)
	if !ok {
		return
	}
	s.alloc.mu.Lock()
	defer s.alloc.mu.Unlock()
	if addr, err := netip.ParseAddr(serviceIPOf(svc)); err == nil {
		s.alloc.ips.Release(addr)
	}
	for p := range servicePortsOf(svc) {
		s.alloc.ports.Release(int(p))
	}
}

// RepairReport says what a repair pass changed.
type RepairReport struct {
	Services, Restored, Removed, Conflicts int
}

// repairAllocations makes the claim keys match the stored Services exactly, from
// one consistent snapshot: claims missing for a Service are restored (an IPAddress
// object per cluster IP, a key per node port), claims with no owning Service are
// removed (only if unchanged since the snapshot; IPAddresses only when they name a
// Service as parent), and the in-memory index is rebuilt from the Services, the
// IPAddresses and the ServiceCIDRs. Claim keys of older versions
// (<prefix>/svcnet/clusterips/<ip>) are owned by nothing now and go: that is the
// migration to IPAddress objects. It runs at start and periodically.
func (s *Server) repairAllocations(ctx context.Context) (RepairReport, error) {
	var rep RepairReport
	svcRes := s.res("", "services")
	kvs, rev, err := listAll(ctx, s.store, s.listPrefix(svcRes, ""), 0)
	if err != nil {
		return rep, err
	}
	claimKVs, _, err := listAll(ctx, s.store, s.alloc.prefix, rev)
	if err != nil {
		return rep, err
	}
	ipKVs, _, err := listAll(ctx, s.store, s.alloc.ipAddr.prefix, rev)
	if err != nil {
		return rep, err
	}
	cidrs, err := s.listServiceCIDRs(ctx, rev)
	if err != nil {
		return rep, err
	}
	ips, err := ipalloc.NewRanges(s.allocCIDRs(cidrs))
	if err != nil {
		return rep, err
	}
	ports, err := ipalloc.ParsePortRange(s.alloc.ports.String())
	if err != nil {
		return rep, err
	}
	want := map[string][]byte{}
	wantIP := map[string]*corev1.Service{}
	for _, kv := range kvs {
		obj, err := decodeStored(svcRes, kv)
		if err != nil {
			s.log.Warn("repair: unreadable service", "key", kv.Key, "err", err)
			continue
		}
		svc := obj.(*corev1.Service)
		rep.Services++
		owner := ownerValue(svc)
		if ip := serviceIPOf(svc); ip != "" {
			wantIP[ip] = svc
			if addr, err := netip.ParseAddr(ip); err == nil {
				ips.Mark(addr)
			}
		}
		for p := range servicePortsOf(svc) {
			want[s.alloc.portKey(p)] = owner
			_ = ports.Allocate(int(p))
		}
	}
	haveIP := map[string]storage.KV{}
	for _, kv := range ipKVs {
		haveIP[kv.Key] = kv
	}
	for ip, svc := range wantIP {
		k := s.alloc.ipKey(ip)
		cur, ok := haveIP[k]
		if !ok {
			value, err := s.alloc.ipAddr.value(ip, svc)
			if err != nil {
				return rep, err
			}
			if _, err := s.store.Create(ctx, k, value, nil); err == nil {
				rep.Restored++
			} else if _, exists := storage.IsExists(err); !exists {
				return rep, err
			}
			continue
		}
		if ref := s.alloc.ipAddr.parent(cur); ref == nil || ref.Group != "" || ref.Resource != "services" ||
			ref.Namespace != svc.Namespace || ref.Name != svc.Name {
			rep.Conflicts++
			s.log.Error("repair: cluster IP of a service held by another IPAddress parent", "ip", ip, "service", svc.Namespace+"/"+svc.Name, "parentRef", ref)
		}
	}
	for k, kv := range haveIP {
		ip := strings.TrimPrefix(k, s.alloc.ipAddr.prefix)
		if _, ok := wantIP[ip]; ok {
			continue
		}
		if ref := s.alloc.ipAddr.parent(kv); ref != nil && ref.Group == "" && ref.Resource == "services" {
			if _, err := s.store.Delete(ctx, k, kv.Rev, nil); err == nil {
				rep.Removed++
			}
			continue
		}
		if addr, err := netip.ParseAddr(ip); err == nil {
			ips.Mark(addr) // an IPAddress of someone else's: the IP is not for Services
		}
	}
	have := map[string]storage.KV{}
	for _, kv := range claimKVs {
		have[kv.Key] = kv
	}
	for k, owner := range want {
		cur, ok := have[k]
		switch {
		case !ok:
			if _, err := s.store.Create(ctx, k, owner, nil); err == nil {
				rep.Restored++
			} else if _, exists := storage.IsExists(err); !exists {
				return rep, err
			}
		case string(cur.Value) != string(owner):
			rep.Conflicts++
			s.log.Error("repair: value allocated to two services", "key", strings.TrimPrefix(k, s.alloc.prefix), "claim", string(cur.Value), "service", string(owner))
		}
	}
	for k, kv := range have {
		if _, ok := want[k]; !ok {
			if _, err := s.store.Delete(ctx, k, kv.Rev, nil); err == nil {
				rep.Removed++
			}
		}
	}
	s.alloc.mu.Lock()
	s.alloc.ips, s.alloc.ports = ips, ports
	s.alloc.mu.Unlock()
	return rep, nil
}

// listAll reads every key under prefix at rev (0 = latest) page by page.
func listAll(ctx context.Context, st storage.Store, prefix string, rev int64) ([]storage.KV, int64, error) {
	var out []storage.KV
	from := ""
	for {
		kvs, r, more, err := st.List(ctx, prefix, storage.Page{Rev: rev, From: from, Limit: 5000})
		if err != nil {
			return nil, 0, err
		}
		rev = r
		out = append(out, kvs...)
		if !more || len(kvs) == 0 {
			return out, rev, nil
		}
		from = kvs[len(kvs)-1].Key + "\x00"
	}
}
