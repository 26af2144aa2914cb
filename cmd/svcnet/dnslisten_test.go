package main

import (
	"testing"

	"github.com/spf13/cobra"
)

// TestJoinServesClusterDNS: a joined node runs pods, so it serves the
// cluster DNS on their nameserver as svcnet up's node does (it did not, and
// pods on joined nodes had no DNS); --cluster-dns-listen and --pod-runtime
// off still decide.
func TestJoinServesClusterDNS(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "10.96.0.10:53"},
		{[]string{"--cluster-dns", "10.0.0.10"}, "10.0.0.10:53"},
		{[]string{"--cluster-dns-listen", "127.0.0.53:53"}, "127.0.0.53:53"},
		{[]string{"--cluster-dns-listen", ""}, ""},
		{[]string{"--pod-runtime", "off"}, ""},
	} {
		cmd := &cobra.Command{Use: "join"}
		var f agentFlags
		f.add(cmd.Flags())
		if err := cmd.Flags().Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		if err := f.resolve(); err != nil {
			t.Fatal(err)
		}
		f.defaultDNSListen(cmd)
		if f.o.DNSListen != tc.want {
			t.Errorf("%v: DNS listens on %q, want %q", tc.args, f.o.DNSListen, tc.want)
		}
	}
}
