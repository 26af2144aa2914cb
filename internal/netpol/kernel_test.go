package netpol

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/svcnet/svcnet/internal/netnstest"
)

// TestKernelTable writes the table into a fresh network namespace, then
// changes a label and checks that the kernel's sets answer as Decide does.
func TestKernelTable(t *testing.T) {
	s := model(t, `
metadata: {name: allow-b, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress, Egress]
  ingress: [{from: [{podSelector: {matchLabels: {pod: b}}}, {ipBlock: {cidr: 192.168.0.0/16, except: [192.168.1.0/24]}}], ports: [{port: 80, endPort: 81}]}]
  egress: [{to: [{namespaceSelector: {matchLabels: {ns: "y"}}}], ports: [{port: serve-81-tcp}]}, {to: [{podSelector: {matchLabels: {pod: c}}}]}]`)
	netnstest.InFresh(t, "nftables in a network namespace", func() {
		tb, err := NewTable()
		if err != nil {
			t.Error(err)
			return
		}
		has := func(set, elem string) bool {
			return exec.Command("nft", "get", "element", "ip", TableName, set, "{ "+elem+" }").Run() == nil
		}
		check := func(when string, want map[string]bool) {
			for q, w := range want {
				set, elem, _ := strings.Cut(q, " ")
				if got := has(set, elem); got != w {
					out, _ := exec.Command("nft", "list", "table", "ip", TableName).CombinedOutput()
					t.Errorf("%s: %s has %s = %v, want %v\n%s", when, set, elem, got, w, out)
				}
			}
		}
		for i := 0; i < 2; i++ { // the second full write replaces the first
			tb.written = nil
			if err := tb.Sync(Compile(s, "n1")); err != nil {
				t.Errorf("full sync: %v", err)
				return
			}
		}
		check("first sync", map[string]bool{
			"ingress-isolated 10.244.1.2":                       true,
			"ingress-isolated 10.244.1.3":                       false,
			"ingress-ports 10.244.1.2 . 10.244.1.3 . tcp . 81":  true,
			"ingress-ports 10.244.1.2 . 10.244.1.3 . tcp . 82":  false,
			"ingress-ports 10.244.1.2 . 10.244.1.4 . tcp . 80":  false,
			"ingress-ports 10.244.1.2 . 192.168.7.9 . tcp . 80": true,
			"ingress-ports 10.244.1.2 . 192.168.1.9 . tcp . 80": false,
			"egress-flows 10.244.1.2 . 10.244.2.3 . tcp . 81":   true,
			"egress-flows 10.244.1.2 . 10.244.2.3 . tcp . 80":   false,
			"egress-pairs 10.244.1.2 . 10.244.1.4":              true,
			"egress-pairs 10.244.1.2 . 10.244.1.3":              false,
		})
		// x/c becomes pod=b: an element change, the rules stay.
		before, _ := exec.Command("nft", "-a", "list", "chain", "ip", TableName, "ingress").CombinedOutput()
		for _, p := range s.Pods {
			if p.Key() == "x/c" {
				p.Labels = map[string]string{"pod": "b"}
			}
		}
		if err := tb.Sync(Compile(s, "n1")); err != nil {
			t.Errorf("partial sync: %v", err)
			return
		}
		check("after the label change", map[string]bool{
			"ingress-ports 10.244.1.2 . 10.244.1.4 . tcp . 80": true,
			"ingress-ports 10.244.1.2 . 10.244.1.3 . tcp . 80": true,
		})
		after, _ := exec.Command("nft", "-a", "list", "chain", "ip", TableName, "ingress").CombinedOutput()
		if string(before) != string(after) {
			t.Errorf("a label change rewrote rules:\n%s\n%s", before, after)
		}
		if err := Delete(); err != nil {
			t.Error(err)
		}
		if out, err := exec.Command("nft", "list", "table", "ip", TableName).CombinedOutput(); err == nil {
			t.Errorf("table left after Delete:\n%s", out)
		}
	})
}
