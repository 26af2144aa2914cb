package system

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestBadFlagsChangeNothing(t *testing.T) {
	cases := []struct {
		mut  func(*ServerOptions)
		want string
	}{
		{func(o *ServerOptions) { o.ServiceCIDR = "10.96.0.0/33" }, "--service-cluster-ip-range"},
		{func(o *ServerOptions) { o.NodePortRange = "32767-30000" }, "--service-node-port-range"},
		{func(o *ServerOptions) { o.BindAddress = "localhost" }, "--bind-address"},
		{func(o *ServerOptions) { o.SecurePort = 70000 }, "--secure-port"},
		{func(o *ServerOptions) { o.AdvertiseAddress = "nope" }, "--advertise-address"},
		{func(o *ServerOptions) { o.EtcdServers = []string{"10.0.0.1:2379"} }, "--etcd-servers"},
		{func(o *ServerOptions) { o.DataDir = "" }, "--data-dir"},
	}
	for _, c := range cases {
		dir := filepath.Join(t.TempDir(), "data")
		o := ServerOptions{DataDir: dir, BindAddress: "127.0.0.1", SecurePort: 0}
		c.mut(&o)
		_, err := StartControlPlane(context.Background(), o)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want one naming %s", err, c.want)
		}
		if _, statErr := os.Stat(dir); statErr == nil {
			t.Errorf("%s: a rejected start created %s", c.want, dir)
		}
	}
}

func TestServingHosts(t *testing.T) {
	for _, tc := range []struct {
		o    ServerOptions
		want []string
	}{
		{ServerOptions{BindAddress: "127.0.0.1", AdvertiseAddress: "127.0.0.1"},
			[]string{"kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "10.96.0.1", "node-a"}},
		{ServerOptions{BindAddress: "0.0.0.0", AdvertiseAddress: "192.0.2.1", ServiceCIDR: "10.100.0.0/16"},
			[]string{"192.0.2.1", "kubernetes.default.svc", "10.100.0.1"}},
	} {
		got := servingHosts(tc.o, "node-a")
		for _, h := range tc.want {
			if !slices.Contains(got, h) {
				t.Errorf("%+v: hosts %v lack %s", tc.o, got, h)
			}
		}
		if slices.Contains(got, "0.0.0.0") {
			t.Errorf("%+v: hosts %v name the unspecified address", tc.o, got)
		}
	}
}
