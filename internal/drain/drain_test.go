package drain

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"
)

var (
	a = netip.MustParseAddr("10.244.0.2")
	b = netip.MustParseAddr("10.244.0.3")
)

func TestRouted(t *testing.T) {
	for _, tc := range []struct {
		name string
		do   func(p *Paths)
		want map[netip.Addr]bool
	}{
		{"no path: nothing routed", func(*Paths) {}, map[netip.Addr]bool{a: false}},
		{"an expected path that has not reported routes everything", func(p *Paths) { p.Expect("proxy") },
			map[netip.Addr]bool{a: true, b: true}},
		{"after its first report only what it reported", func(p *Paths) {
			p.Expect("proxy")
			p.Replace("proxy", map[netip.Addr]int{a: 1})
		}, map[netip.Addr]bool{a: true, b: false}},
		{"two paths: routed while either routes it", func(p *Paths) {
			p.Replace("proxy", map[netip.Addr]int{a: 1})
			p.Replace("ingress", map[netip.Addr]int{a: 1, b: 1})
			p.Update("ingress", map[netip.Addr]int{a: -1})
		}, map[netip.Addr]bool{a: true, b: true}},
		{"counts: an IP of two service ports stays until both drop it", func(p *Paths) {
			p.Replace("proxy", map[netip.Addr]int{a: 2})
			p.Update("proxy", map[netip.Addr]int{a: -1, b: 1})
		}, map[netip.Addr]bool{a: true, b: true}},
		{"removed from every port", func(p *Paths) {
			p.Replace("proxy", map[netip.Addr]int{a: 2, b: 1})
			p.Update("proxy", map[netip.Addr]int{a: -2})
		}, map[netip.Addr]bool{a: false, b: true}},
		{"a forgotten path routes nothing", func(p *Paths) {
			p.Replace("proxy", map[netip.Addr]int{a: 1})
			p.Forget("proxy")
		}, map[netip.Addr]bool{a: false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := NewPaths()
			tc.do(p)
			for ip, want := range tc.want {
				if got := p.Routed(ip); got != want {
					t.Errorf("Routed(%s) = %v, want %v", ip, got, want)
				}
			}
		})
	}
}

func TestWaitReturnsWhenTheLastPathDropsTheIP(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := NewPaths()
		p.Expect("proxy")
		p.Expect("ingress")
		p.Replace("ingress", map[netip.Addr]int{a: 1})
		done := make(chan error, 1)
		go func() { done <- p.Wait(context.Background(), a) }()
		steps := []func(){
			func() { p.Replace("proxy", map[netip.Addr]int{a: 1, b: 1}) }, // both report a
			func() { p.Update("proxy", map[netip.Addr]int{a: -1}) },       // the proxy drops it
			func() { p.Update("ingress", map[netip.Addr]int{b: 1}) },      // unrelated change
		}
		for i, step := range steps {
			step()
			synctest.Wait()
			select {
			case err := <-done:
				t.Fatalf("Wait returned after step %d (%v) while the ingress still routes %s", i, err, a)
			default:
			}
		}
		p.Update("ingress", map[netip.Addr]int{a: -1})
		synctest.Wait()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatal("Wait still blocked after no path routes the IP")
		}
	})
}

func TestWaitEndsWithItsContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := NewPaths()
		p.Replace("proxy", map[netip.Addr]int{a: 1})
		ctx, cancel := context.WithTimeout(context.Background(), Limit(30*time.Second))
		defer cancel()
		start := time.Now()
		if err := p.Wait(ctx, a); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Wait = %v, want the deadline", err)
		}
		if took := time.Since(start); took != MaxWait {
			t.Errorf("waited %v, want MaxWait %v", took, MaxWait)
		}
		if len(p.waiters) != 0 {
			t.Errorf("waiters left: %v", p.waiters)
		}
	})
}

func TestLimit(t *testing.T) {
	for grace, want := range map[time.Duration]time.Duration{0: 0, time.Second: 500 * time.Millisecond, 5 * time.Second: 2500 * time.Millisecond, 30 * time.Second: MaxWait} {
		if got := Limit(grace); got != want {
			t.Errorf("Limit(%v) = %v, want %v", grace, got, want)
		}
	}
}

func TestBegin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		block := func(ctx context.Context, _ string) { <-ctx.Done() }
		for _, tc := range []struct {
			name  string
			wait  func(context.Context, string)
			ip    string
			grace time.Duration
			want  time.Duration // when done closes
		}{
			{"nothing to wait for", nil, "10.244.0.2", 30 * time.Second, 0},
			{"no IP (host network)", block, "", 30 * time.Second, 0},
			{"grace 0", block, "10.244.0.2", 0, 0},
			{"never drained: half the grace", block, "10.244.0.2", 4 * time.Second, 2 * time.Second},
			{"drained at once", func(context.Context, string) {}, "10.244.0.2", 30 * time.Second, 0},
		} {
			done := make(chan struct{})
			start := time.Now()
			Begin(tc.wait, tc.ip, tc.grace, done)
			<-done
			if took := time.Since(start); took != tc.want {
				t.Errorf("%s: done after %v, want %v", tc.name, took, tc.want)
			}
		}
	})
}
