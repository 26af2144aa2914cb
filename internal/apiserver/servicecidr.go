package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/svcnet/svcnet/internal/ipalloc"
	"github.com/svcnet/svcnet/internal/registry"
	"github.com/svcnet/svcnet/internal/storage"
)

// ServiceCIDRs: the API server keeps the default one (--service-cluster-ip-range),
// sets Ready, holds the finalizer of a deleted one while IPs allocated from it would
// be orphaned, and feeds the serving ranges to the cluster IP allocator. Kubernetes
// splits this between kube-apiserver and kube-controller-manager; svcnet has one
// process, so it runs here, from a storage watch.

const (
	// serviceCIDRDeletionGrace is how long a deleted ServiceCIDR with no IPs left keeps
	// its finalizer, so that every API server sharing the store has seen the deletion
	// and stopped allocating from it (Kubernetes' controller waits the same 10s).
	serviceCIDRDeletionGrace = 10 * time.Second
	// serviceCIDRRetry is the pause after a failed sync or a broken watch.
	serviceCIDRRetry = time.Second
	readyMessage     = "Kubernetes Service CIDR is ready"
	terminatingMsg   = "There are still IPAddresses referencing the ServiceCIDR, please remove them or create a new ServiceCIDR"
)

func prefixesOf(sc *networkingv1.ServiceCIDR) []netip.Prefix {
	var out []netip.Prefix
	for _, c := range sc.Spec.CIDRs {
		if p, err := netip.ParsePrefix(c); err == nil {
			out = append(out, p.Masked())
		}
	}
	return out
}

func isReady(sc *networkingv1.ServiceCIDR) bool {
	return meta.IsStatusConditionTrue(sc.Status.Conditions, networkingv1.ServiceCIDRConditionReady)
}

// allocCIDRs orders the ServiceCIDRs for the allocator: the default first, then by
// age and name. Only Ready ones not being deleted serve new IPs. With none stored
// (before the default exists), the configured range serves.
func (s *Server) allocCIDRs(list []*networkingv1.ServiceCIDR) []ipalloc.CIDR {
	if len(list) == 0 {
		return defaultCIDR(s.cfg.ServiceCIDR)
	}
	sorted := slices.Clone(list)
	slices.SortStableFunc(sorted, func(a, b *networkingv1.ServiceCIDR) int {
		if (a.Name == registry.DefaultServiceCIDRName) != (b.Name == registry.DefaultServiceCIDRName) {
			if a.Name == registry.DefaultServiceCIDRName {
				return -1
			}
			return 1
		}
		if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	out := make([]ipalloc.CIDR, 0, len(sorted))
	for _, sc := range sorted {
		out = append(out, ipalloc.CIDR{Name: sc.Name, Prefixes: prefixesOf(sc), Serving: isReady(sc) && sc.DeletionTimestamp == nil})
	}
	return out
}

func defaultCIDR(cidr string) []ipalloc.CIDR {
	p, _ := netip.ParsePrefix(strings.TrimSpace(cidr))
	return []ipalloc.CIDR{{Name: registry.DefaultServiceCIDRName, Prefixes: []netip.Prefix{p.Masked()}, Serving: true}}
}

// defaultRanges is the allocator before the ServiceCIDRs are read: the configured range.
func defaultRanges(cidr string) (*ipalloc.Ranges, error) {
	if _, err := ipalloc.NewIPRange(cidr); err != nil {
		return nil, err
	}
	return ipalloc.NewRanges(defaultCIDR(cidr))
}

// listServiceCIDRs reads every ServiceCIDR at rev (0 = latest).
func (s *Server) listServiceCIDRs(ctx context.Context, rev int64) ([]*networkingv1.ServiceCIDR, error) {
	res := s.res(networkingv1.GroupName, "servicecidrs")
	kvs, _, err := listAll(ctx, s.store, s.listPrefix(res, ""), rev)
	if err != nil {
		return nil, err
	}
	var out []*networkingv1.ServiceCIDR
	for _, kv := range kvs {
		if obj, err := decodeStored(res, kv); err == nil {
			out = append(out, obj.(*networkingv1.ServiceCIDR))
		}
	}
	return out, nil
}

// ensureDefaultServiceCIDR creates the ServiceCIDR `kubernetes` for the configured
// range, Ready at once, so that allocation works before the sync loop runs. A stored
// one with other CIDRs (the flag changed) is kept, with a warning.
func (s *Server) ensureDefaultServiceCIDR(ctx context.Context) error {
	res := s.res(networkingv1.GroupName, "servicecidrs")
	obj, _, err := s.get(ctx, res, "", registry.DefaultServiceCIDRName)
	if apierrors.IsNotFound(err) {
		obj, err = s.create(ctx, res, "", &networkingv1.ServiceCIDR{
			ObjectMeta: metav1.ObjectMeta{Name: registry.DefaultServiceCIDRName},
			Spec:       networkingv1.ServiceCIDRSpec{CIDRs: []string{s.cfg.ServiceCIDR}}}, writeOptions{})
		if apierrors.IsAlreadyExists(err) {
			obj, _, err = s.get(ctx, res, "", registry.DefaultServiceCIDRName)
		}
	}
	if err != nil {
		return err
	}
	sc := obj.(*networkingv1.ServiceCIDR)
	if want, _ := netip.ParsePrefix(s.cfg.ServiceCIDR); !slices.Contains(prefixesOf(sc), want.Masked()) {
		s.log.Warn("the default ServiceCIDR has other CIDRs than --service-cluster-ip-range; keeping the stored one",
			"servicecidr", sc.Name, "cidrs", sc.Spec.CIDRs, "flag", s.cfg.ServiceCIDR)
	}
	if sc.DeletionTimestamp == nil && !isReady(sc) {
		return s.setServiceCIDRCondition(ctx, sc.Name, readyCondition())
	}
	return nil
}

func readyCondition() metav1.Condition {
	return metav1.Condition{Type: networkingv1.ServiceCIDRConditionReady, Status: metav1.ConditionTrue, Reason: "", Message: readyMessage}
}

// serviceCIDRPlan is what the sync does to one ServiceCIDR.
type serviceCIDRPlan struct {
	addFinalizer, removeFinalizer bool
	condition                     *metav1.Condition // to set when it differs
	after                         time.Duration     // look again after this long (0: no need)
	orphans                       []netip.Addr
}

// planServiceCIDR decides, without I/O, what sc needs: a live one has the finalizer
// and Ready=True; a deleted one keeps the finalizer (Ready=False, Terminating) while
// some allocated ip in it lies in no other live ServiceCIDR, and loses it once none
// does and the grace period since deletion has passed.
func planServiceCIDR(sc *networkingv1.ServiceCIDR, all []*networkingv1.ServiceCIDR, ips []netip.Addr, now time.Time) serviceCIDRPlan {
	var plan serviceCIDRPlan
	hasFinalizer := slices.Contains(sc.Finalizers, registry.ServiceCIDRFinalizer)
	want := func(c metav1.Condition) {
		cur := meta.FindStatusCondition(sc.Status.Conditions, c.Type)
		if cur == nil || cur.Status != c.Status || cur.Reason != c.Reason || cur.Message != c.Message {
			plan.condition = &c
		}
	}
	if sc.DeletionTimestamp == nil {
		plan.addFinalizer = !hasFinalizer
		want(readyCondition())
		return plan
	}
	if !hasFinalizer {
		return plan
	}
	var others []netip.Prefix
	for _, o := range all {
		if o.Name != sc.Name && o.DeletionTimestamp == nil {
			others = append(others, prefixesOf(o)...)
		}
	}
	if plan.orphans = ipalloc.Orphans(prefixesOf(sc), others, ips); len(plan.orphans) > 0 {
		want(metav1.Condition{Type: networkingv1.ServiceCIDRConditionReady, Status: metav1.ConditionFalse,
			Reason: networkingv1.ServiceCIDRReasonTerminating, Message: terminatingMsg})
		return plan
	}
	if left := sc.DeletionTimestamp.Add(serviceCIDRDeletionGrace).Sub(now); left > 0 {
		plan.after = left
		return plan
	}
	plan.removeFinalizer = true
	return plan
}

// runServiceCIDRs syncs the ServiceCIDRs whenever one changes or an IPAddress is
// deleted (which may free a ServiceCIDR being deleted), until ctx ends.
func (s *Server) runServiceCIDRs(ctx context.Context) {
	wake := make(chan struct{}, 1)
	poke := func() {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	watchWake := func(res *registry.Resource, relevant func(storage.Event) bool) {
		for ctx.Err() == nil {
			rev, err := s.store.Rev(ctx)
			if err == nil {
				poke()
				for ev := range s.store.Watch(ctx, s.listPrefix(res, ""), rev) {
					if ev.Err != nil {
						break
					}
					if relevant(ev) {
						poke()
					}
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(serviceCIDRRetry):
			}
		}
	}
	go watchWake(s.res(networkingv1.GroupName, "servicecidrs"), func(storage.Event) bool { return true })
	go watchWake(s.alloc.ipAddr.res, func(ev storage.Event) bool { return ev.Type == storage.Delete })
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-timer.C:
		}
		after, err := s.syncServiceCIDRs(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.Warn("servicecidr sync failed", "err", err)
			after = serviceCIDRRetry
		}
		if after == 0 {
			after = time.Hour
		}
		timer.Reset(after)
	}
}

// syncServiceCIDRs applies planServiceCIDR to every ServiceCIDR and hands the
// serving ranges to the allocator. It returns when to look again.
func (s *Server) syncServiceCIDRs(ctx context.Context) (time.Duration, error) {
	list, err := s.listServiceCIDRs(ctx, 0)
	if err != nil {
		return 0, err
	}
	s.alloc.mu.Lock()
	err = s.alloc.ips.SetCIDRs(s.allocCIDRs(list))
	s.alloc.mu.Unlock()
	if err != nil {
		return 0, err
	}
	var ips []netip.Addr
	if slices.ContainsFunc(list, func(sc *networkingv1.ServiceCIDR) bool { return sc.DeletionTimestamp != nil }) {
		if ips, err = s.allocatedIPs(ctx); err != nil {
			return 0, err
		}
	}
	var next time.Duration
	var errs []error
	res := s.res(networkingv1.GroupName, "servicecidrs")
	for _, sc := range list {
		plan := planServiceCIDR(sc, list, ips, s.now())
		if plan.after > 0 && (next == 0 || plan.after < next) {
			next = plan.after
		}
		if plan.condition != nil {
			errs = append(errs, s.setServiceCIDRCondition(ctx, sc.Name, *plan.condition))
		}
		if plan.addFinalizer || plan.removeFinalizer {
			_, _, err := s.modify(ctx, res, "", sc.Name, func(obj runtime.Object) (runtime.Object, error) {
				m := accessor(obj)
				fins := slices.DeleteFunc(m.GetFinalizers(), func(f string) bool { return f == registry.ServiceCIDRFinalizer })
				if plan.addFinalizer {
					fins = append(fins, registry.ServiceCIDRFinalizer)
				}
				m.SetFinalizers(fins)
				return obj, nil
			}, writeOptions{})
			if !apierrors.IsNotFound(err) {
				errs = append(errs, err)
			}
			if err == nil && plan.removeFinalizer {
				s.log.Info("servicecidr deleted: no IPs left in it", "servicecidr", sc.Name)
			}
		}
	}
	return next, errors.Join(errs...)
}

// allocatedIPs lists the IPs of the allocator's IPAddress objects (as Kubernetes,
// by the managed-by label).
func (s *Server) allocatedIPs(ctx context.Context) ([]netip.Addr, error) {
	kvs, _, err := listAll(ctx, s.store, s.alloc.ipAddr.prefix, 0)
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, kv := range kvs {
		obj, err := decodeStored(s.alloc.ipAddr.res, kv)
		if err != nil {
			continue
		}
		ip := obj.(*networkingv1.IPAddress)
		if ip.Labels[networkingv1.LabelManagedBy] != registry.IPAllocatorName {
			continue
		}
		if addr, err := netip.ParseAddr(ip.Name); err == nil {
			out = append(out, addr)
		}
	}
	return out, nil
}

// setServiceCIDRCondition writes one status condition through the status subresource.
func (s *Server) setServiceCIDRCondition(ctx context.Context, name string, c metav1.Condition) error {
	_, _, err := s.modify(ctx, s.res(networkingv1.GroupName, "servicecidrs"), "", name, func(obj runtime.Object) (runtime.Object, error) {
		sc := obj.(*networkingv1.ServiceCIDR)
		c.ObservedGeneration = sc.Generation
		c.LastTransitionTime = metav1.NewTime(s.now().Truncate(time.Second))
		meta.SetStatusCondition(&sc.Status.Conditions, c)
		return sc, nil
	}, writeOptions{sub: "status"})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("servicecidr %s status: %w", name, err)
	}
	return nil
}
