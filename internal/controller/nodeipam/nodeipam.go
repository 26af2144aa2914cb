// Package nodeipam gives every Node a pod CIDR (spec.podCIDR) carved from
// --cluster-cidr, as kube-controller-manager's range allocator does, and never
// hands out one that another Node holds.
package nodeipam

import (
	"context"
	"fmt"
	"log/slog"
	"math/big"
	"net/netip"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/svcnet/svcnet/internal/controller/queue"
)

// Blocks splits a cluster CIDR into per-node subnets of the given size.
type Blocks struct {
	base  netip.Prefix
	bits  int
	count int
}

// NewBlocks parses a cluster CIDR such as 10.244.0.0/16 with per-node mask 24.
func NewBlocks(clusterCIDR string, nodeMask int) (*Blocks, error) {
	p, err := netip.ParsePrefix(clusterCIDR)
	if err != nil {
		return nil, fmt.Errorf("--cluster-cidr: %w", err)
	}
	p = p.Masked()
	if nodeMask < p.Bits() || nodeMask > p.Addr().BitLen() || nodeMask-p.Bits() > 16 {
		return nil, fmt.Errorf("--node-cidr-mask-size: /%d does not fit in %s (at most 65536 nodes)", nodeMask, p)
	}
	return &Blocks{base: p, bits: nodeMask, count: 1 << (nodeMask - p.Bits())}, nil
}

// Nth returns the i-th node subnet.
func (b *Blocks) Nth(i int) netip.Prefix {
	a := b.base.Addr().As16()
	shift := b.base.Addr().BitLen() - b.bits
	// add i << shift to the address, big-endian
	carry := uint64(i)
	for k := 15; k >= 0 && (carry > 0 || shift > 0); k-- {
		if shift >= 8 {
			shift -= 8
			continue
		}
		v := uint64(a[k]) + (carry << shift)
		a[k] = byte(v)
		carry = v >> 8
		shift = 0
	}
	addr := netip.AddrFrom16(a)
	if b.base.Addr().Is4() {
		addr = addr.Unmap()
	}
	return netip.PrefixFrom(addr, b.bits)
}

// Index returns which subnet p is, or -1 (computed, not searched).
func (b *Blocks) Index(p netip.Prefix) int {
	if p.Bits() != b.bits || !b.base.Contains(p.Addr()) || p.Addr().Is4() != b.base.Addr().Is4() {
		return -1
	}
	x, base := p.Addr().As16(), b.base.Addr().As16()
	shift := b.base.Addr().BitLen() - b.bits
	var off big.Int
	off.Sub(new(big.Int).SetBytes(x[:]), new(big.Int).SetBytes(base[:]))
	if off.Sign() < 0 || off.TrailingZeroBits() < uint(shift) && off.Sign() != 0 {
		return -1
	}
	i := off.Rsh(&off, uint(shift))
	if !i.IsInt64() || i.Int64() >= int64(b.count) {
		return -1
	}
	return int(i.Int64())
}

// Controller assigns pod CIDRs.
type Controller struct {
	client kubernetes.Interface
	nodes  corelisters.NodeLister
	synced cache.InformerSynced
	loop   *queue.Loop
	blocks *Blocks
	mu     sync.Mutex
	// assigned are subnets this controller gave nodes whose new podCIDR the
	// cache may not show yet: they stay taken until it does.
	assigned map[string]int
}

// New wires the controller to informers from factory.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, blocks *Blocks, log *slog.Logger) *Controller {
	c := &Controller{client: client, blocks: blocks, assigned: map[string]int{}}
	c.loop = queue.New("node-ipam", c.sync, log)
	inf := factory.Core().V1().Nodes()
	c.nodes, c.synced = inf.Lister(), inf.Informer().HasSynced
	_, _ = inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(o any) { c.loop.AddObject(o) }, UpdateFunc: func(_, o any) { c.loop.AddObject(o) },
		DeleteFunc: func(o any) { c.loop.AddObject(o) }})
	return c
}

// Run runs the controller until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) { c.loop.Run(ctx, workers, c.synced) }

func (c *Controller) sync(ctx context.Context, name string) error {
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	used := map[int]bool{}
	var target *corev1.Node
	for _, n := range nodes {
		if p, err := netip.ParsePrefix(n.Spec.PodCIDR); err == nil {
			if i := c.blocks.Index(p); i >= 0 {
				used[i] = true
			}
			delete(c.assigned, n.Name) // the cache shows it now
		}
		if n.Name == name {
			target = n
		}
	}
	if target == nil {
		delete(c.assigned, name) // deleted: its subnet is free again
		return nil
	}
	for _, i := range c.assigned {
		used[i] = true
	}
	if target.Spec.PodCIDR != "" {
		return nil
	}
	if _, pending := c.assigned[name]; pending {
		return nil
	}
	for i := 0; i < c.blocks.count; i++ {
		if used[i] {
			continue
		}
		cp := target.DeepCopy()
		cidr := c.blocks.Nth(i).String()
		cp.Spec.PodCIDR, cp.Spec.PodCIDRs = cidr, []string{cidr}
		_, err := c.client.CoreV1().Nodes().Update(ctx, cp, metav1.UpdateOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err == nil {
			c.assigned[name] = i
		}
		return err
	}
	return fmt.Errorf("no pod CIDR left in %s for node %s", c.blocks.base, name)
}
