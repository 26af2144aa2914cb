package iptables

import (
	"context"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/svcnet/svcnet/internal/proxy"
	"github.com/svcnet/svcnet/internal/proxy/proxytest"
)

// without drops the lines of save that contain s.
func without(save, s string) string {
	var out []string
	for _, l := range strings.Split(save, "\n") {
		if !strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestDrift(t *testing.T) {
	rs := Build(cfg, ComputeAll(cfg, testState()))
	save := rs.Save()
	svcChain := ServiceChain(testState().Services[proxy.Key{Namespace: "default", Name: "httpd-svc"}])
	for _, tc := range []struct{ name, save, want string }{
		{"as written", save, ""},
		{"with the kubelet's chains", strings.Replace(save, "*nat\n", "*nat\n:KUBE-KUBELET-CANARY - [0:0]\n-A KUBE-KUBELET-CANARY -j RETURN\n", 1), ""},
		{"KUBE-SERVICES flushed", without(save, "-A KUBE-SERVICES "), "nat/KUBE-SERVICES: 0 rules"},
		{"a service chain deleted", without(save, svcChain), "nat/" + svcChain + " missing"},
		{"a jump deleted", without(save, "-A PREROUTING "), "nat/PREROUTING: the jump to KUBE-SERVICES missing"},
		{"a rule added by hand", strings.Replace(save, "-A KUBE-SERVICES ", "-A KUBE-SERVICES -j ACCEPT\n-A KUBE-SERVICES ", 1), "KUBE-SERVICES: 3 rules, want 2"},
	} {
		err := Drift(rs, tc.save)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

// TestKernelDriftRepairedWithinPeriod: with the proxy's loop running, a
// KUBE-SERVICES flushed by hand is written again by the next periodic check.
func TestKernelDriftRepairedWithinPeriod(t *testing.T) {
	inFreshNetns(t, func() {
		b, err := New(cfg, nil)
		if err != nil {
			t.Error(err)
			return
		}
		defer func() { _ = b.Cleanup() }()
		const period = 200 * time.Millisecond
		want := "-A KUBE-SERVICES -d 10.96.0.7/32 -p tcp -m comment --comment \"default/web cluster IP\""
		proxytest.Run(t, proxy.Options{Backend: b, SyncPeriod: period}, proxytest.Service("web", "10.96.0.7", "10.244.0.7"), func(tid int) {
			save := func() string {
				out, err := proxytest.InNetns(tid, "iptables-save", "-t", "nat")
				if err != nil {
					t.Error(err)
				}
				return out
			}
			if s := save(); !strings.Contains(s, want) {
				t.Errorf("after the first sync iptables-save lacks %q:\n%s", want, s)
				return
			}
			if _, err := proxytest.InNetns(tid, "iptables", "-t", "nat", "-F", ChainServices); err != nil {
				t.Error(err)
				return
			}
			if s := save(); strings.Contains(s, want) {
				t.Errorf("iptables -F left the rule:\n%s", s)
			}
			restored := func(context.Context) (bool, error) { return strings.Contains(save(), want), nil }
			if err := wait.PollUntilContextTimeout(t.Context(), period/4, 20*period, true, restored); err != nil {
				t.Errorf("KUBE-SERVICES not restored within 20 periods of %v:\n%s", period, save())
			}
		})
	})
}
