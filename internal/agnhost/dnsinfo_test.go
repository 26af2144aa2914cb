package agnhost

import (
	"os"
	"path/filepath"
	"testing"
)

func TestDNSInfo(t *testing.T) {
	kubelet := "nameserver 10.96.0.10\nsearch test-dns.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n"
	for _, tc := range []struct {
		name, conf         string
		suffix, servers    string
		suffixErr, srvsErr bool
	}{
		{"kubelet's", kubelet, "test-dns.svc.cluster.local,svc.cluster.local,cluster.local", "10.96.0.10", false, false},
		{"dnsConfig None", "nameserver 1.1.1.1\nsearch resolv.conf.local\n", "resolv.conf.local", "1.1.1.1", false, false},
		{"several servers, comments, tabs", "# generated\nnameserver 10.0.0.1\nnameserver\t10.0.0.2\nsearch  a.b   c.d\n", "a.b,c.d", "10.0.0.1,10.0.0.2", false, false},
		{"no search list", "nameserver 8.8.8.8\n", "", "8.8.8.8", true, false},
		{"empty", "", "", "", true, true},
	} {
		path := filepath.Join(t.TempDir(), "resolv.conf")
		if err := os.WriteFile(path, []byte(tc.conf), 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := DNSSuffix(path)
		if s != tc.suffix || (err != nil) != tc.suffixErr {
			t.Errorf("%s: dns-suffix %q %v", tc.name, s, err)
		}
		n, err := DNSServerList(path)
		if n != tc.servers || (err != nil) != tc.srvsErr {
			t.Errorf("%s: dns-server-list %q %v", tc.name, n, err)
		}
	}
	if _, err := DNSSuffix(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("a missing resolv.conf should be an error")
	}
	hosts := filepath.Join(t.TempDir(), "hosts")
	_ = os.WriteFile(hosts, []byte("127.0.0.1 localhost\n10.244.0.5 web-0\n"), 0o644)
	if got, err := EtcHosts(hosts); err != nil || got != "127.0.0.1 localhost\n10.244.0.5 web-0\n" {
		t.Errorf("etc-hosts: %q %v", got, err)
	}
}
