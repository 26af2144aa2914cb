package nftables

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"

	"github.com/svcnet/svcnet/internal/netnstest"
	"github.com/svcnet/svcnet/internal/proxy"
)

// inFreshNetns runs f on a locked thread inside a new network namespace.
func inFreshNetns(t *testing.T, f func()) {
	t.Helper()
	netnstest.InFresh(t, "nftables in a network namespace", f)
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
		if list := nftList(t); strings.Contains(list, "10.96.0.2 . tcp . 80") || !strings.Contains(list, "10.96.0.3 . tcp . 80") {
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
		for _, want := range []string{"10.100.0.1 . udp . 53 : jump service-default/new/udp/p53", "chain endpoint-default/new/udp/p53__10.244.9.9:53",
			"set affinity-default/new/udp/p53__10.244.9.9:53", "10.96.0.5 . tcp . 80 . 0x00000001 : 10.245.0.5 . 8080",
			"10.96.0.3 . tcp . 80 . 0x00000000 : 10.244.0.3 . 8080"} {
			if !strings.Contains(list, want) {
				t.Errorf("kernel table lacks %q", want)
			}
		}
		for _, gone := range []string{"10.96.0.4 . tcp . 80", "10.245.0.3 . 8080", "map ip-endpoints-2 {\n\t\ttype ipv4_addr . inet_proto . inet_service . mark : ipv4_addr . inet_service\n\t\telements = { 10.96.0.3 "} {
			if strings.Contains(list, gone) {
				t.Errorf("kernel table still has %q", gone)
			}
		}
		if got, want := normalize(list), normalize(b.Rules()); got != want {
			t.Errorf("the kernel holds something else than the computed rules:\n%s", lineDiff(want, got))
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

var elementsRE = regexp.MustCompile(`elements = \{([^}]*)\}`)

// normalize makes nft text comparable whatever the order: one line per rule,
// set line or element, sorted.
func normalize(text string) string {
	text = elementsRE.ReplaceAllStringFunc(text, func(m string) string {
		items := strings.Split(elementsRE.FindStringSubmatch(m)[1], ",")
		for i := range items {
			items[i] = strings.TrimSpace(items[i])
		}
		return strings.Join(items, "\n")
	})
	var lines []string
	for _, l := range strings.Split(text, "\n") {
		if l = strings.TrimSpace(l); l != "" && l != "}" {
			lines = append(lines, l)
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// lineDiff lists the lines only in want (-) and only in got (+).
func lineDiff(want, got string) string {
	count := map[string]int{}
	for _, l := range strings.Split(want, "\n") {
		count[l]++
	}
	for _, l := range strings.Split(got, "\n") {
		count[l]--
	}
	var out []string
	for l, n := range count {
		switch {
		case n > 0:
			out = append(out, "- "+l)
		case n < 0:
			out = append(out, "+ "+l)
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// TestKernelFollowsPartialSyncs applies random changes as partial syncs and
// checks after each that the kernel holds exactly the rules computed from
// scratch for the new state: reference-counted shared elements (a cluster IP
// of two ports), slot maps appearing and going as endpoint counts change, keys
// moving between picks, chains, reject and drop.
func TestKernelFollowsPartialSyncs(t *testing.T) {
	inFreshNetns(t, func() {
		b, err := New(cfg)
		if err != nil {
			t.Error(err)
			return
		}
		defer b.Cleanup()
		st := testState()
		// A second port of web shares its cluster IP.
		web2 := proxy.Key{Namespace: "default", Name: "web", Port: "alt"}
		st.Services[web2] = &proxy.ServicePort{Key: web2, Protocol: corev1.ProtocolTCP, ClusterIP: netip.MustParseAddr("10.96.0.20"), Port: 81, NodePort: 30081}
		st.Endpoints[web2] = []proxy.Endpoint{ep("10.244.0.2:8081", true, true)}
		if err := b.Sync(st, nil, true); err != nil {
			t.Errorf("full sync: %v", err)
			return
		}
		if got, want := normalize(nftList(t)), normalize(b.Rules()); got != want {
			t.Errorf("after the full sync the kernel differs:\n%s", lineDiff(want, got))
		}
		rng := rand.New(rand.NewPCG(1, 2))
		keys := st.Keys()
		for step := 0; step < 40; step++ {
			k := keys[rng.IntN(len(keys))]
			what := rng.IntN(5)
			switch {
			case what == 0: // the port goes (or comes back)
				if _, ok := st.Services[k]; ok {
					delete(st.Services, k)
				} else {
					st.Services[k] = testState().Services[k]
					if k == web2 {
						st.Services[k] = &proxy.ServicePort{Key: web2, Protocol: corev1.ProtocolTCP, ClusterIP: netip.MustParseAddr("10.96.0.20"), Port: 81, NodePort: 30081}
					}
				}
			case what == 1: // no endpoints
				st.Endpoints[k] = nil
			default: // 1-5 endpoints, some local, some not ready
				var eps []proxy.Endpoint
				for i := 0; i <= rng.IntN(5); i++ {
					eps = append(eps, ep(fmt.Sprintf("10.244.%d.%d:8080", rng.IntN(2), 20+i), rng.IntN(4) != 0, rng.IntN(2) == 0))
				}
				st.Endpoints[k] = eps
			}
			if err := b.Sync(st, []proxy.Key{k}, false); err != nil {
				t.Errorf("step %d (%s, change %d): %v", step, k, what, err)
				return
			}
			if got, want := normalize(nftList(t)), normalize(Render(cfg, ComputeAll(cfg, st))); got != want {
				t.Errorf("step %d (%s, change %d): the kernel differs from the computed rules:\n%s", step, k, what, lineDiff(want, got))
				return
			}
		}
	})
}

// TestKernelRoundRobin: --proxy-scheduler round-robin puts numgen inc into the
// slot rules and the affinity chains, as computed.
func TestKernelRoundRobin(t *testing.T) {
	inFreshNetns(t, func() {
		rr := cfg
		rr.RoundRobin = true
		b, err := New(rr)
		if err != nil {
			t.Error(err)
			return
		}
		defer b.Cleanup()
		if err := b.Sync(testState(), nil, true); err != nil {
			t.Errorf("full sync: %v", err)
			return
		}
		list := nftList(t)
		for _, want := range []string{"dnat ip to ip daddr . meta l4proto . th dport . numgen inc mod 3 map @ip-endpoints-3",
			"numgen inc mod 2 0 goto endpoint-default/sticky/tcp/p80__10.244.0.2:8080"} {
			if !strings.Contains(list, want) {
				t.Errorf("kernel table lacks %q", want)
			}
		}
		if got, want := normalize(list), normalize(b.Rules()); got != want {
			t.Errorf("the kernel differs from the computed rules:\n%s", lineDiff(want, got))
		}
	})
}

// TestKernelLocalnet: route_localnet on the pod bridge follows the table (on
// after a sync, once the bridge exists; off when the backend retires), and the
// guard on 127.0.0.0/8 is in the kernel as computed.
func TestKernelLocalnet(t *testing.T) {
	inFreshNetns(t, func() {
		sysctl := "/proc/sys/net/ipv4/conf/br-test/route_localnet"
		read := func() string {
			b, err := os.ReadFile(sysctl)
			if err != nil {
				t.Error(err)
			}
			return strings.TrimSpace(string(b))
		}
		b, err := New(cfg)
		if err != nil {
			t.Error(err)
			return
		}
		defer b.Cleanup()
		b.LocalnetLink = "br-test"
		if err := b.Sync(testState(), nil, true); err != nil { // no bridge yet: not an error
			t.Errorf("full sync without the bridge: %v", err)
			return
		}
		if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br-test"}}); err != nil {
			t.Error(err)
			return
		}
		if got := read(); got != "0" {
			t.Errorf("route_localnet of a new bridge = %s", got)
			return
		}
		if err := b.Sync(testState(), nil, false); err != nil {
			t.Errorf("partial sync: %v", err)
			return
		}
		if got := read(); got != "1" {
			t.Errorf("route_localnet after a sync with the bridge = %s, want 1", got)
		}
		list := nftList(t)
		if want := `iifname != "lo" ip daddr 127.0.0.0/8 ct status ! dnat drop`; !strings.Contains(list, want) {
			t.Errorf("kernel table lacks the guard %q", want)
		}
		if got, want := normalize(list), normalize(b.Rules()); got != want {
			t.Errorf("the kernel differs from the computed rules:\n%s", lineDiff(want, got))
		}
		if err := b.Retire(); err != nil {
			t.Error(err)
		}
		if got := read(); got != "0" {
			t.Errorf("route_localnet after Retire = %s, want 0", got)
		}
	})
}
