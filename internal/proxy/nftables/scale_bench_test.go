package nftables

import (
	"net/netip"
	"slices"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
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

// threadCPU is the CPU time (user + system, the kernel's netlink work included)
// the calling thread has used: a cost that the load of other processes does
// not inflate, unlike wall time.
func threadCPU() time.Duration {
	var ru unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_THREAD, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkKernelScale measures the backend alone in the kernel of a fresh
// namespace: with N Services x 2 endpoints written by one full sync
// (full-sync-s), each op is one change, a new Service with its endpoints
// written by a partial sync (p50/p99 per change reported, wall and CPU time of
// the syncing thread), then removed again.
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
				start, cpu0 := time.Now(), threadCPU()
				if err := be.Sync(st, nil, true); err != nil {
					b.Error(err)
					return
				}
				full, fullCPU := time.Since(start), threadCPU()-cpu0
				k := proxy.Key{Namespace: "default", Name: "change"}
				var took, cpu []time.Duration
				b.ResetTimer()
				for range b.N {
					st.Services[k] = &proxy.ServicePort{Key: k, Protocol: corev1.ProtocolTCP, ClusterIP: netip.MustParseAddr("10.111.255.254"), Port: 80}
					st.Endpoints[k] = []proxy.Endpoint{{Addr: netip.MustParseAddrPort("10.127.0.2:8080"), Ready: true, Serving: true},
						{Addr: netip.MustParseAddrPort("10.127.0.3:8080"), Ready: true, Serving: true}}
					t0, c0 := time.Now(), threadCPU()
					if err := be.Sync(st, []proxy.Key{k}, false); err != nil {
						b.Error(err)
						return
					}
					took, cpu = append(took, time.Since(t0)), append(cpu, threadCPU()-c0)
					delete(st.Services, k)
					delete(st.Endpoints, k)
					if err := be.Sync(st, []proxy.Key{k}, false); err != nil {
						b.Error(err)
						return
					}
				}
				b.StopTimer()
				slices.Sort(took)
				slices.Sort(cpu)
				ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
				b.ReportMetric(full.Seconds(), "full-sync-s")
				b.ReportMetric(fullCPU.Seconds(), "full-sync-cpu-s")
				b.ReportMetric(ms(took[len(took)/2]), "change-p50-ms")
				b.ReportMetric(ms(took[len(took)*99/100]), "change-p99-ms")
				b.ReportMetric(ms(cpu[len(cpu)/2]), "change-cpu-p50-ms")
				b.ReportMetric(ms(cpu[len(cpu)*99/100]), "change-cpu-p99-ms")
			})
		})
	}
}
