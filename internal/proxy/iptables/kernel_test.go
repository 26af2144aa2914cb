package iptables

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/svcnet/svcnet/internal/netnstest"
	"github.com/svcnet/svcnet/internal/proxy"
)

// inFreshNetns runs f on a locked thread inside a new network namespace (the
// iptables tools it runs inherit the thread's namespace).
func inFreshNetns(t *testing.T, f func()) {
	t.Helper()
	netnstest.InFresh(t, "iptables in a network namespace", f)
}

// ours keeps the lines of an iptables-save dump that are ours (our chains and
// the jumps into them), sorted: what two dumps are compared by.
func ours(save string) string {
	var out []string
	table := ""
	for _, l := range strings.Split(save, "\n") {
		switch {
		case strings.HasPrefix(l, "*"):
			table = l
		case strings.HasPrefix(l, ":KUBE-"), strings.HasPrefix(l, "-A KUBE-"), strings.HasPrefix(l, "-A ") && strings.Contains(l, "-j KUBE-"):
			out = append(out, table+" "+l)
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

func TestKernelPartialSyncsMatchFromScratch(t *testing.T) {
	inFreshNetns(t, func() {
		b, err := New(cfg, nil)
		if err != nil {
			t.Error(err)
			return
		}
		r := rand.New(rand.NewPCG(3, 4))
		st := testState()
		if err := b.Sync(st, nil, true); err != nil {
			t.Errorf("full sync: %v", err)
			return
		}
		save, _ := Exec{}.Save()
		if !strings.Contains(ours(save), "-A KUBE-SVC-IYRDZZKXS5EOQ6Q6 ") {
			t.Errorf("the tutorial's chain is not in the kernel:\n%s", save)
		}
		if got, want := ours(save), ours(Build(cfg, ComputeAll(cfg, st)).Save()); got != want {
			t.Errorf("the kernel's iptables-save is not the computed one:\n%s\nwant\n%s", got, want)
			return
		}
		for step := 0; step < 40; step++ {
			k := proxy.Key{Namespace: "default", Name: fmt.Sprintf("s%d", r.IntN(6))}
			if r.IntN(4) == 0 {
				delete(st.Services, k)
			} else {
				sp := &proxy.ServicePort{Key: k, Protocol: corev1.ProtocolTCP, ClusterIP: netip.AddrFrom4([4]byte{10, 96, 1, byte(r.IntN(6) + 1)}), Port: 80,
					NodePort: int32(30100 + r.IntN(6)), AffinityTimeout: int32(60 * r.IntN(2))}
				var eps []proxy.Endpoint
				for i := 0; i < r.IntN(4); i++ {
					eps = append(eps, ep(fmt.Sprintf("10.244.%d.%d:8080", r.IntN(2), i+2), true, r.IntN(2) == 0))
				}
				st.Services[k], st.Endpoints[k] = sp, eps
			}
			if err := b.Sync(st, []proxy.Key{k}, false); err != nil {
				t.Errorf("step %d: partial sync: %v", step, err)
				return
			}
		}
		partial, _ := Exec{}.Save()
		// From scratch: clean up, then one full sync of the same state.
		if err := b.Cleanup(); err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		if left, _ := (Exec{}).Save(); strings.Contains(left, "KUBE-") {
			t.Errorf("cleanup left chains:\n%s", left)
		}
		if err := b.Sync(st, nil, true); err != nil {
			t.Errorf("full sync: %v", err)
			return
		}
		scratch, _ := Exec{}.Save()
		if a, b := ours(partial), ours(scratch); a != b {
			t.Errorf("after partial syncs:\n%s\nfrom scratch:\n%s", a, b)
		}
		// A second full sync (a restart) inserts no jump twice and leaves the same rules.
		b2, _ := New(cfg, nil)
		if err := b2.Sync(st, nil, true); err != nil {
			t.Errorf("restart: %v", err)
			return
		}
		again, _ := Exec{}.Save()
		if a, b := ours(scratch), ours(again); a != b {
			t.Errorf("after a restart:\n%s\nbefore:\n%s", b, a)
		}
	})
}
