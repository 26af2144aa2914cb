// Package proxytest runs the proxy's sync loop over a real backend in a
// kernel test: fed by a fake clientset, on the test's network-namespace
// thread, while the test acts on that namespace from outside through nsenter.
// It is imported only by tests.
package proxytest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"testing"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/svcnet/svcnet/internal/proxy"
)

// Service returns a ClusterIP Service on port 80 with one ready endpoint
// (its EndpointSlice), as the API would hold them.
func Service(name, clusterIP, endpoint string) []runtime.Object {
	port, ready := int32(8080), true
	return []runtime.Object{
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
			Spec: corev1.ServiceSpec{ClusterIP: clusterIP, Ports: []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP}}}},
		&discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name + "-x",
			Labels: map[string]string{discoveryv1.LabelServiceName: name}}, AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{endpoint}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
			Ports:     []discoveryv1.EndpointPort{{Port: &port}}},
	}
}

// Run runs a proxier over o.Backend for objs on the calling goroutine, which
// must be locked to the thread of the test's network namespace; once its first
// sync is done, check runs on another goroutine with that thread's id (for
// InNetns), and the proxier stops when check returns.
func Run(t *testing.T, o proxy.Options, objs []runtime.Object, check func(tid int)) {
	t.Helper()
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	p := proxy.New(o)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ready := make(chan struct{})
	tid := unix.Gettid()
	go func() {
		defer cancel()
		select {
		case <-ready:
			check(tid)
		case <-ctx.Done():
		}
	}()
	p.Run(ctx, fake.NewClientset(objs...), ready)
}

// InNetns runs a command in the network namespace of thread tid of this
// process. nsenter fails when that thread is gone: the command never runs in
// the host's namespace.
func InNetns(tid int, name string, args ...string) (string, error) {
	ns := fmt.Sprintf("--net=/proc/%d/task/%d/ns/net", os.Getpid(), tid)
	out, err := exec.Command("nsenter", append([]string{ns, "--", name}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %v: %w: %s", name, args, err, out)
	}
	return string(out), nil
}
