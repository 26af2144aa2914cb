package nftables

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	goruntime "runtime"
	"strings"
	"testing"

	"github.com/vishvananda/netns"
	corev1 "k8s.io/api/core/v1"

	"github.com/svcnet/svcnet/internal/proxy"
)

// inFreshNetns runs f on a locked thread inside a new network namespace.
func inFreshNetns(t *testing.T, f func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true: this test needs root (nftables in a network namespace)")
		}
		t.Skip("needs root (nftables in a network namespace)")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		goruntime.LockOSThread() // never unlocked: the thread goes away with the namespace
		ns, err := netns.New()
		if err != nil {
			t.Error(err)
			return
		}
		defer ns.Close()
		f()
	}()
	<-done
}

func bigState(n int) *proxy.State {
	st := proxy.NewState()
	for i := 0; i < n; i++ {
		k := proxy.Key{Namespace: "default", Name: fmt.Sprintf("s%d", i)}
		st.Services[k] = &proxy.ServicePort{Key: k, Protocol: corev1.ProtocolTCP, ClusterIP: netip.AddrFrom4([4]byte{10, 96, byte(i / 250), byte(i%250 + 2)}), Port: 80}
		st.Endpoints[k] = []proxy.Endpoint{ep(fmt.Sprintf("10.244.%d.%d:8080", i/250, i%250+2), true, true), ep(fmt.Sprintf("10.245.%d.%d:8080", i/250, i%250+2), true, false)}
	}
	return st
}

// nftList lists the table the way a person would check it.
func nftList(t *testing.T) string {
	out, err := exec.Command("nft", "list", "table", "ip", Table).CombinedOutput()
	if err != nil {
		t.Fatalf("nft list: %v %s", err, out)
	}
	return string(out)
}

// TestKernelSyncs applies full and partial syncs to the real kernel.
func TestKernelSyncs(t *testing.T) {
	inFreshNetns(t, func() {
		b, err := New(cfg)
		if err != nil {
			t.Error(err)
			return
		}
		st := bigState(1000)
		if err := b.Sync(st, nil, true); err != nil {
			t.Errorf("full sync of 1000 services: %v", err)
			return
		}
		gone := proxy.Key{Namespace: "default", Name: "s0"}
		delete(st.Services, gone)
		delete(st.Endpoints, gone)
		if err := b.Sync(st, nil, true); err != nil {
			t.Errorf("second full sync (table present): %v", err)
			return
		}
		if list := nftList(t); strings.Contains(list, "default/s0/") || !strings.Contains(list, "default/s1/") {
			t.Errorf("a full sync over an existing table must leave exactly the new state")
		}
		// Partial: add a service, change one's endpoints, delete one.
		add := proxy.Key{Namespace: "default", Name: "new"}
		st.Services[add] = &proxy.ServicePort{Key: add, Protocol: corev1.ProtocolUDP, ClusterIP: netip.MustParseAddr("10.100.0.1"), Port: 53, AffinityTimeout: 60}
		st.Endpoints[add] = []proxy.Endpoint{ep("10.244.9.9:53", true, true)}
		chg := proxy.Key{Namespace: "default", Name: "s1"}
		st.Endpoints[chg] = st.Endpoints[chg][:1]
		del := proxy.Key{Namespace: "default", Name: "s2"}
		delete(st.Services, del)
		delete(st.Endpoints, del)
		if err := b.Sync(st, []proxy.Key{add, chg, del}, false); err != nil {
			t.Errorf("partial sync: %v", err)
			return
		}
		list := nftList(t)
		for _, want := range []string{"10.100.0.1 . udp . 53 : goto service-default/new/udp/p53", "chain endpoint-default/new/udp/p53__10.244.9.9:53",
			"set affinity-default/new/udp/p53__10.244.9.9:53", "numgen random mod 2 0 goto endpoint-default/s3/tcp/p80__10.244.0.5:8080"} {
			if !strings.Contains(list, want) {
				t.Errorf("kernel table lacks %q", want)
			}
		}
		for _, gone := range []string{"10.96.0.4 . tcp . 80", "endpoint-default/s2/", "10.245.0.3:8080"} {
			if strings.Contains(list, gone) {
				t.Errorf("kernel table still has %q", gone)
			}
		}
		// Remove the new service again (its affinity set and chains go too).
		delete(st.Services, add)
		delete(st.Endpoints, add)
		if err := b.Sync(st, []proxy.Key{add}, false); err != nil {
			t.Errorf("partial delete: %v", err)
		}
		if list := nftList(t); strings.Contains(list, "default/new/") {
			t.Errorf("deleted service left objects behind")
		}
		if err := b.Cleanup(); err != nil {
			t.Error(err)
		}
	})
}
