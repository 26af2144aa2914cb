package nftables

import (
	"context"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/svcnet/svcnet/internal/proxy"
	"github.com/svcnet/svcnet/internal/proxy/proxytest"
)

// nft runs nft in the test's namespace (the calling thread's).
func nft(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("nft", args...).CombinedOutput(); err != nil {
		t.Errorf("nft %v: %v %s", args, err, out)
	}
}

// TestKernelVerify: Verify is quiet while the table holds what was written,
// through partial syncs and other writers' transactions, and names the drift
// after a hand-made flush or deletion.
func TestKernelVerify(t *testing.T) {
	inFreshNetns(t, func() {
		b, err := New(cfg)
		if err != nil {
			t.Error(err)
			return
		}
		st := bigState(50)
		aff := proxy.Key{Namespace: "default", Name: "aff"}
		st.Services[aff] = &proxy.ServicePort{Key: aff, Protocol: corev1.ProtocolUDP, ClusterIP: netip.MustParseAddr("10.100.0.1"), Port: 53, AffinityTimeout: 60}
		st.Endpoints[aff] = []proxy.Endpoint{ep("10.244.9.9:53", true, true)}
		if err := b.Sync(st, nil, true); err != nil {
			t.Error(err)
			return
		}
		quiet := func(step string) {
			t.Helper()
			if err := b.Verify(); err != nil {
				t.Errorf("%s: Verify: %v", step, err)
			}
			if err := b.compare(); err != nil { // the slow path too, whatever the generation says
				t.Errorf("%s: compare: %v", step, err)
			}
		}
		quiet("after a full sync")
		// Partial: a Service with 3 endpoints (a new slot map), one with none, one gone.
		add := proxy.Key{Namespace: "default", Name: "new"}
		st.Services[add] = &proxy.ServicePort{Key: add, Protocol: corev1.ProtocolTCP, ClusterIP: netip.MustParseAddr("10.100.0.2"), Port: 80}
		st.Endpoints[add] = []proxy.Endpoint{ep("10.244.8.1:80", true, true), ep("10.244.8.2:80", true, true), ep("10.244.8.3:80", true, true)}
		none := proxy.Key{Namespace: "default", Name: "s1"}
		st.Endpoints[none] = nil
		del := proxy.Key{Namespace: "default", Name: "s2"}
		delete(st.Services, del)
		delete(st.Endpoints, del)
		if err := b.Sync(st, []proxy.Key{add, none, del}, false); err != nil {
			t.Error(err)
			return
		}
		quiet("after a partial sync")
		nft(t, "add", "table", "ip", "someone-else")
		quiet("after another table was written")

		nft(t, "delete", "element", "ip", Table, SetClusterIPs, "{ 10.96.0.5 }")
		if err := b.Verify(); err == nil || !strings.Contains(err.Error(), "set "+SetClusterIPs) {
			t.Errorf("after an element was deleted by hand: Verify %v, want the set named", err)
		}
		nft(t, "flush", "table", "ip", Table)
		if err := b.Verify(); err == nil || !strings.Contains(err.Error(), "rules, want") {
			t.Errorf("after nft flush table: Verify %v, want the emptied chains named", err)
		}
		if err := b.Sync(st, nil, true); err != nil {
			t.Error(err)
			return
		}
		quiet("after the repairing full sync")
		if err := b.Cleanup(); err != nil {
			t.Error(err)
		}
	})
}

// TestKernelDriftRepairedWithinPeriod: with the proxy's loop running, `nft
// flush table ip svcnet` by hand is undone by the next periodic check.
func TestKernelDriftRepairedWithinPeriod(t *testing.T) {
	inFreshNetns(t, func() {
		b, err := New(cfg)
		if err != nil {
			t.Error(err)
			return
		}
		defer func() { _ = b.Cleanup() }()
		const period = 200 * time.Millisecond
		want := "10.96.0.7 . tcp . 80 . 0x00000000 : 10.244.0.7 . 8080"
		proxytest.Run(t, proxy.Options{Backend: b, SyncPeriod: period}, proxytest.Service("web", "10.96.0.7", "10.244.0.7"), func(tid int) {
			list := func() string {
				out, err := proxytest.InNetns(tid, "nft", "list", "table", "ip", Table)
				if err != nil {
					t.Error(err)
				}
				return out
			}
			if l := list(); !strings.Contains(l, want) {
				t.Errorf("after the first sync the table lacks %q:\n%s", want, l)
				return
			}
			if _, err := proxytest.InNetns(tid, "nft", "flush", "table", "ip", Table); err != nil {
				t.Error(err)
				return
			}
			if l := list(); strings.Contains(l, "jump services") {
				t.Errorf("nft flush table left the rules:\n%s", l)
			}
			restored := func(context.Context) (bool, error) {
				l := list()
				return strings.Contains(l, want) && strings.Contains(l, "jump services"), nil
			}
			if err := wait.PollUntilContextTimeout(t.Context(), period/4, 20*period, true, restored); err != nil {
				t.Errorf("table not restored within 20 periods of %v:\n%s", period, list())
			}
		})
	})
}
