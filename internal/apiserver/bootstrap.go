package apiserver

import (
	"context"
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/svcnet/svcnet/internal/registry"
)

// SystemNamespaces are created at start, as in Kubernetes.
var SystemNamespaces = []string{"default", "kube-system", "kube-public", "kube-node-lease"}

func (s *Server) res(group, resource string) *registry.Resource {
	return s.reg.Get(schema.GroupResource{Group: group, Resource: resource})
}

func ignoreExists(err error) error {
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// bootstrap creates the system namespaces and the kubernetes Service, and adds this
// server's address to that Service's endpoints.
// createIfMissing creates a built-in Service unless it exists (a create would
// fail on its cluster IP first).
func (s *Server) createIfMissing(ctx context.Context, ns string, svc *corev1.Service) error {
	if _, _, err := s.get(ctx, s.res("", "services"), ns, svc.Name); err == nil {
		return nil
	}
	_, err := s.create(ctx, s.res("", "services"), ns, svc, writeOptions{})
	return ignoreExists(err)
}

func (s *Server) bootstrap(ctx context.Context) error {
	for _, ns := range SystemNamespaces {
		_, err := s.create(ctx, s.res("", "namespaces"), "", &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, writeOptions{})
		if err := ignoreExists(err); err != nil {
			return err
		}
		// The serviceaccount controller would create it too; doing it here lets
		// pods in the system namespaces be admitted before the controllers run
		// (or without them: --no-controllers).
		if _, _, err := s.get(ctx, s.res("", "serviceaccounts"), ns, defaultServiceAccount); apierrors.IsNotFound(err) {
			_, err = s.create(ctx, s.res("", "serviceaccounts"), ns, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: defaultServiceAccount}}, writeOptions{})
			if err := ignoreExists(err); err != nil {
				return err
			}
		}
	}
	if err := s.bootstrapRBAC(ctx); err != nil {
		return err
	}
	s.ensureIngressClass(ctx)
	first, dnsIP := nthAddr(s.cfg.ServiceCIDR, 1), nthAddr(s.cfg.ServiceCIDR, 10)
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: "default",
			Labels: map[string]string{"component": "apiserver", "provider": "kubernetes"}},
		Spec: corev1.ServiceSpec{ClusterIP: first, Ports: []corev1.ServicePort{{
			Name: "https", Port: 443, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(int32(s.cfg.Port))}}},
	}
	if err := s.createIfMissing(ctx, "default", svc); err != nil {
		s.log.Warn("cannot create the kubernetes service", "err", err)
	}
	// The cluster DNS Service: every node agent answers on its IP locally, so it
	// has no selector and proxies skip it (service-proxy-name).
	kubeDNS := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "kube-dns", Namespace: "kube-system", Labels: map[string]string{
			"k8s-app": "kube-dns", "kubernetes.io/name": "svcnet-dns", ServiceProxyNameLabel: NodeLocalDNSProxyName}},
		Spec: corev1.ServiceSpec{ClusterIP: dnsIP, Ports: []corev1.ServicePort{
			{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromInt32(53)},
			{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(53)}}},
	}
	if dnsIP == "" {
		s.log.Warn("service CIDR too small for the cluster DNS IP (the 10th address); no kube-dns Service")
	} else if err := s.createIfMissing(ctx, "kube-system", kubeDNS); err != nil {
		s.log.Warn("cannot create the kube-dns service", "ip", dnsIP, "err", err)
	}
	if s.cfg.AdvertiseAddress == "" {
		return nil
	}
	addr, port := s.cfg.AdvertiseAddress, int32(s.cfg.Port)
	_, _, err := s.modify(ctx, s.res("", "endpoints"), "default", "kubernetes", func(old runtime.Object) (runtime.Object, error) {
		ep := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: "default",
			Labels: map[string]string{"endpointslice.kubernetes.io/skip-mirror": "true"}}}
		if old != nil {
			ep = old.(*corev1.Endpoints)
		}
		var addrs []corev1.EndpointAddress
		if len(ep.Subsets) > 0 {
			addrs = ep.Subsets[0].Addresses
		}
		found := false
		for _, a := range addrs {
			found = found || a.IP == addr
		}
		if !found {
			addrs = append(addrs, corev1.EndpointAddress{IP: addr})
		}
		ep.Subsets = []corev1.EndpointSubset{{Addresses: addrs, Ports: []corev1.EndpointPort{{Name: "https", Port: port, Protocol: corev1.ProtocolTCP}}}}
		return ep, nil
	}, writeOptions{})
	if err != nil {
		return err
	}
	return s.ensureKubernetesSlice(ctx, addr, port)
}

// ensureKubernetesSlice adds addr to the kubernetes EndpointSlice, creating it.
func (s *Server) ensureKubernetesSlice(ctx context.Context, addr string, port int32) error {
	t := true
	name, proto := "https", corev1.ProtocolTCP
	add := func(es *discoveryv1.EndpointSlice) *discoveryv1.EndpointSlice {
		for _, e := range es.Endpoints {
			for _, a := range e.Addresses {
				if a == addr {
					return es
				}
			}
		}
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{Addresses: []string{addr}, Conditions: discoveryv1.EndpointConditions{Ready: &t}})
		es.Ports = []discoveryv1.EndpointPort{{Name: &name, Port: &port, Protocol: &proto}}
		return es
	}
	res := s.res("discovery.k8s.io", "endpointslices")
	_, _, err := s.modify(ctx, res, "default", "kubernetes", func(old runtime.Object) (runtime.Object, error) {
		return add(old.(*discoveryv1.EndpointSlice)), nil
	}, writeOptions{})
	if !apierrors.IsNotFound(err) {
		return err
	}
	es := add(&discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: "default",
		Labels: map[string]string{discoveryv1.LabelServiceName: "kubernetes", discoveryv1.LabelManagedBy: "svcnet-apiserver"}},
		AddressType: discoveryv1.AddressTypeIPv4})
	_, err = s.create(ctx, res, "default", es, writeOptions{})
	return ignoreExists(err)
}

// runNamespaceFinalizer empties namespaces being deleted and then removes them,
// the work Kubernetes' namespace controller does.
func (s *Server) runNamespaceFinalizer(ctx context.Context) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		s.finalizeNamespaces(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.nsWake:
		}
	}
}

func (s *Server) finalizeNamespaces(ctx context.Context) {
	nsRes := s.res("", "namespaces")
	kvs, _, err := listAll(ctx, s.store, s.listPrefix(nsRes, ""), 0)
	if err != nil {
		return
	}
	for _, kv := range kvs {
		obj, err := decodeStored(nsRes, kv)
		if err != nil {
			continue
		}
		ns := obj.(*corev1.Namespace)
		if ns.DeletionTimestamp == nil {
			continue
		}
		if remaining := s.emptyNamespace(ctx, ns.Name); remaining > 0 {
			s.log.Debug("namespace still has content", "namespace", ns.Name, "objects", remaining)
			continue
		}
		_, _, err = s.modify(ctx, nsRes, "", ns.Name, func(old runtime.Object) (runtime.Object, error) {
			n := old.(*corev1.Namespace)
			var keep []corev1.FinalizerName
			for _, f := range n.Spec.Finalizers {
				if f != corev1.FinalizerKubernetes {
					keep = append(keep, f)
				}
			}
			n.Spec.Finalizers = keep
			return n, nil
		}, writeOptions{sub: "finalize"})
		if err != nil && !apierrors.IsNotFound(err) {
			s.log.Warn("cannot finalize namespace", "namespace", ns.Name, "err", err)
		}
	}
}

// emptyNamespace deletes everything in ns and returns how many objects remain.
func (s *Server) emptyNamespace(ctx context.Context, ns string) int {
	remaining := 0
	for _, r := range s.reg.All() {
		if !r.Namespaced {
			continue
		}
		kvs, _, err := listAll(ctx, s.store, s.listPrefix(r, ns), 0)
		if err != nil {
			remaining++
			continue
		}
		for _, kv := range kvs {
			obj, err := decodeStored(r, kv)
			if err != nil {
				continue
			}
			_, deleted, err := s.deleteObject(ctx, r, ns, accessor(obj).GetName(), &metav1.DeleteOptions{}, writeOptions{})
			if err != nil && !apierrors.IsNotFound(err) || err == nil && !deleted {
				remaining++
			}
		}
	}
	return remaining
}

// Labels of the cluster DNS Service.
const (
	ServiceProxyNameLabel = "service.kubernetes.io/service-proxy-name"
	NodeLocalDNSProxyName = "svcnet-node-local-dns"
)

// nthAddr returns the n-th address of a CIDR (1 = the first after the network
// address): 10.96.0.0/12 -> 10.96.0.1 for 1, 10.96.0.10 for 10.
// KubernetesServiceIP is the cluster IP of the kubernetes Service, the first
// address of the service CIDR (as in Kubernetes; "": the default CIDR). The
// API server's certificate names it.
func KubernetesServiceIP(serviceCIDR string) string {
	if serviceCIDR == "" {
		serviceCIDR = defaultServiceCIDR
	}
	return nthAddr(serviceCIDR, 1)
}

func nthAddr(cidr string, n int) string {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return ""
	}
	a := p.Masked().Addr()
	for i := 0; i < n; i++ {
		a = a.Next()
	}
	if !p.Contains(a) {
		return ""
	}
	return a.String()
}
