package fakekube

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
)

// Runner is a controller: Run works until ctx ends.
type Runner interface {
	Run(ctx context.Context, workers int)
}

// Env is a fake clientset and an informer factory over it, for one test.
type Env struct {
	Client  *fake.Clientset
	Factory informers.SharedInformerFactory
	Ctx     context.Context // ends when the test does
}

// NewEnv returns an Env whose clientset holds objs.
func NewEnv(t testing.TB, objs ...runtime.Object) *Env {
	c := NewClientset(objs...)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return &Env{Client: c, Factory: informers.NewSharedInformerFactory(c, 0), Ctx: ctx}
}

// Run starts the informers and runs each controller, built on e.Factory, with workers.
func (e *Env) Run(workers int, ctls ...Runner) {
	e.Factory.Start(e.Ctx.Done())
	for _, c := range ctls {
		go c.Run(e.Ctx, workers)
	}
}

// Eventually polls cond every 20ms for up to within and reports whether it held.
func Eventually(within time.Duration, cond func() bool) bool {
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, within, true,
		func(context.Context) (bool, error) { return cond(), nil })
	return err == nil
}

// Namespace returns a namespace in phase, being deleted if deleting.
func Namespace(name string, phase corev1.NamespacePhase, deleting bool) *corev1.Namespace {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.NamespaceStatus{Phase: phase}}
	if deleting {
		now := metav1.Now()
		ns.DeletionTimestamp = &now
	}
	return ns
}

// Kubelet plays every node for the pods in ns: pods get an IP and turn Running
// and Ready, and pods being deleted go away, until ctx ends.
func Kubelet(ctx context.Context, c *fake.Clientset, ns string) {
	n := 0
	for ctx.Err() == nil {
		pods, _ := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		for i := range pods.Items {
			p := &pods.Items[i]
			if p.DeletionTimestamp != nil {
				_ = c.CoreV1().Pods(ns).Delete(ctx, p.Name, metav1.DeleteOptions{})
				continue
			}
			if p.Status.Phase != corev1.PodRunning {
				n++
				p.Status.Phase, p.Status.PodIP = corev1.PodRunning, fmt.Sprintf("10.244.0.%d", n)
				p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}}
				_, _ = c.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{})
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}
