package nftables

import (
	"net/netip"
	"slices"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/svcnet/svcnet/internal/netnstest"
	"github.com/svcnet/svcnet/internal/proxy"
)

// scaleState is n ClusterIP Services x 2 endpoints, with distinct addresses
// for any n up to a million.
func scaleState(n int) *proxy.State {
	st := proxy.NewState()
	addr := func(base [4]byte, i int) netip.Addr {
		return netip.AddrFrom4([4]byte{base[0], base[1] + byte(i>>16), byte(i >> 8), byte(i)})
	}
	for i := range n {
		k := proxy.Key{Namespace: "default", Name: "s" + strconv.Itoa(i)}
		st.Services[k] = &proxy.ServicePort{Key: k, Protocol: corev1.ProtocolTCP, ClusterIP: addr([4]byte{10, 96}, i+1), Port: 80}
		st.Endpoints[k] = []proxy.Endpoint{
			{Addr: netip.AddrPortFrom(addr([4]byte{10, 128}, 2*i+2), 8080), Ready: true, Serving: true},
			{Addr: netip.AddrPortFrom(addr([4]byte{10, 128}, 2*i+3), 8080), Ready: true, Serving: true}}
	}
	return st
}

// BenchmarkKernelScale measures the backend alone in the kernel of a fresh
// namespace: with N Services x 2 endpoints written by one full sync
// (full-sync-s), each op is one change, a new Service with its endpoints
// written by a partial sync (p50/p99 per change reported), then removed again.
//
//	go test ./internal/proxy/nftables/ -run '^$' -bench KernelScale -benchtime 200x
func BenchmarkKernelScale(b *testing.B) {
	for _, n := range []int{10000, 100000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			netnstest.InFresh(b, "nftables in a network namespace", func() {
				be, err := New(Config{ClusterCIDR: netip.MustParsePrefix("10.244.0.0/16"), ServiceCIDR: netip.MustParsePrefix("10.96.0.0/12")})
				if err != nil {
					b.Error(err)
					return
				}
				defer func() { _ = be.Cleanup() }()
				st := scaleState(n)
				start := time.Now()
				if err := be.Sync(st, nil, true); err != nil {
					b.Error(err)
					return
				}
				full := time.Since(start)
				k := proxy.Key{Namespace: "default", Name: "change"}
				var took []time.Duration
				b.ResetTimer()
				for range b.N {
					st.Services[k] = &proxy.ServicePort{Key: k, Protocol: corev1.ProtocolTCP, ClusterIP: netip.MustParseAddr("10.111.255.254"), Port: 80}
					st.Endpoints[k] = []proxy.Endpoint{{Addr: netip.MustParseAddrPort("10.127.0.2:8080"), Ready: true, Serving: true},
						{Addr: netip.MustParseAddrPort("10.127.0.3:8080"), Ready: true, Serving: true}}
					t0 := time.Now()
					if err := be.Sync(st, []proxy.Key{k}, false); err != nil {
						b.Error(err)
						return
					}
					took = append(took, time.Since(t0))
					delete(st.Services, k)
					delete(st.Endpoints, k)
					if err := be.Sync(st, []proxy.Key{k}, false); err != nil {
						b.Error(err)
						return
					}
				}
				b.StopTimer()
				slices.Sort(took)
				b.ReportMetric(full.Seconds(), "full-sync-s")
				b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "change-p50-ms")
				b.ReportMetric(float64(took[len(took)*99/100].Microseconds())/1000, "change-p99-ms")
			})
		})
	}
}
