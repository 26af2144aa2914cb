package iptables

import (
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/svcnet/svcnet/internal/proxy"
)

// timed wraps a Runner and records how long its children take.
type timed struct {
	r                  Runner
	save, restore      time.Duration
	restoreIn, saveOut int
}

func (t *timed) Save() (string, error) {
	t0 := time.Now()
	s, err := t.r.Save()
	t.save += time.Since(t0)
	t.saveOut += len(s)
	return s, err
}

func (t *timed) Restore(in string) error {
	t0 := time.Now()
	err := t.r.Restore(in)
	t.restore += time.Since(t0)
	t.restoreIn = len(in)
	return err
}

func scaleState(n int) *proxy.State {
	st := proxy.NewState()
	for i := 0; i < n; i++ {
		k := proxy.Key{Namespace: "default", Name: fmt.Sprintf("s%d", i)}
		st.Services[k] = &proxy.ServicePort{Key: k, Protocol: corev1.ProtocolTCP, ClusterIP: netip.AddrFrom4([4]byte{10, 96, byte(i >> 8), byte(i)}), Port: 80}
		st.Endpoints[k] = []proxy.Endpoint{ep(fmt.Sprintf("10.244.%d.%d:8080", i>>8&255, i&255), true, false), ep(fmt.Sprintf("10.245.%d.%d:8080", i>>8&255, i&255), true, false)}
	}
	return st
}

// TestKernelScale (SCALE=N, root) prints where a full and a partial sync spend their time.
func TestKernelScale(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("SCALE"))
	if n == 0 {
		t.Skip("SCALE=N")
	}
	inFreshNetns(t, func() {
		tr := &timed{r: Exec{}}
		b, _ := New(cfg, tr)
		st := scaleState(n)
		t0 := time.Now()
		if err := b.Sync(st, nil, true); err != nil {
			t.Error(err)
			return
		}
		t.Logf("full: %v (save %v, restore %v, input %d bytes)", time.Since(t0), tr.save, tr.restore, tr.restoreIn)
		for i := 0; i < 5; i++ {
			*tr = timed{r: Exec{}}
			k := proxy.Key{Namespace: "default", Name: fmt.Sprintf("new%d", i)}
			st.Services[k] = &proxy.ServicePort{Key: k, Protocol: corev1.ProtocolTCP, ClusterIP: netip.AddrFrom4([4]byte{10, 97, 0, byte(i)}), Port: 80}
			st.Endpoints[k] = []proxy.Endpoint{ep(fmt.Sprintf("10.246.0.%d:8080", i), true, false)}
			t0 := time.Now()
			if err := b.Sync(st, []proxy.Key{k}, false); err != nil {
				t.Error(err)
				return
			}
			t.Logf("partial: %v (save %v, restore %v, input %d bytes)", time.Since(t0), tr.save, tr.restore, tr.restoreIn)
		}
		*tr = timed{r: Exec{}}
		t0 = time.Now()
		if err := b.Sync(st, nil, true); err != nil {
			t.Error(err)
			return
		}
		t.Logf("full again: %v (save %v %d bytes, restore %v, input %d bytes)", time.Since(t0), tr.save, tr.saveOut, tr.restore, tr.restoreIn)
	})
}
