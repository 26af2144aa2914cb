package nsobject

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/svcnet/svcnet/internal/controller/fakekube"
)

func TestActiveAndGone(t *testing.T) {
	for _, c := range []struct {
		ns   *corev1.Namespace
		want bool
	}{
		{fakekube.Namespace("a", corev1.NamespaceActive, false), true},
		{fakekube.Namespace("b", "", false), true},
		{fakekube.Namespace("c", corev1.NamespaceTerminating, false), false},
		{fakekube.Namespace("d", corev1.NamespaceActive, true), false},
	} {
		if got := Active(c.ns); got != c.want {
			t.Errorf("Active(%s) = %v, want %v", c.ns.Name, got, c.want)
		}
	}
	terminating := apierrors.NewForbidden(schema.GroupResource{Resource: "configmaps"}, "x", errors.New("terminating"))
	terminating.ErrStatus.Details.Causes = []metav1.StatusCause{{Type: corev1.NamespaceTerminatingCause}}
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"namespace not found", apierrors.NewNotFound(schema.GroupResource{Resource: "namespaces"}, "x"), true},
		{"namespace terminating", terminating, true},
		{"other forbidden", apierrors.NewForbidden(schema.GroupResource{Resource: "configmaps"}, "x", errors.New("no")), false},
		{"already exists", apierrors.NewAlreadyExists(schema.GroupResource{Resource: "configmaps"}, "x"), false},
	} {
		if got := Gone(c.err); got != c.want {
			t.Errorf("Gone(%s) = %v, want %v", c.name, got, c.want)
		}
	}
}

// recorder counts Ensure calls by namespace.
type recorder struct {
	mu sync.Mutex
	n  map[string]int
}

func (r *recorder) ensure(_ context.Context, ns string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n[ns]++
	return nil
}

func (r *recorder) count(ns string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n[ns]
}

func TestEnsuresActiveNamespacesOnTheirEvents(t *testing.T) {
	for _, repair := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			obj := func(ns, name string) *corev1.ConfigMap {
				return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
			}
			e := fakekube.NewEnv(t, fakekube.Namespace("app", corev1.NamespaceActive, false), fakekube.Namespace("old", corev1.NamespaceTerminating, true),
				obj("app", "ours"), obj("app", "other"))
			c, ctx := e.Client, e.Ctx
			r := &recorder{n: map[string]int{}}
			e.Run(1, New(Config{Name: "test", Object: "ours", Objects: e.Factory.Core().V1().ConfigMaps().Informer(), Repair: repair, Ensure: r.ensure},
				e.Factory, slog.New(slog.DiscardHandler)))
			if !fakekube.Eventually(5*time.Second, func() bool { return r.count("app") == 1 }) || r.count("old") != 0 {
				t.Fatalf("repair %v: ensure calls app %d old %d, want 1 and 0", repair, r.count("app"), r.count("old"))
			}
			steps := []struct {
				what string
				do   func() error
				adds int
			}{
				{"other edited", func() error {
					_, err := c.CoreV1().ConfigMaps("app").Update(ctx, obj("app", "other"), metav1.UpdateOptions{})
					return err
				}, 0},
				{"other deleted", func() error { return c.CoreV1().ConfigMaps("app").Delete(ctx, "other", metav1.DeleteOptions{}) }, 0},
				{"ours edited", func() error {
					o := obj("app", "ours")
					o.Data = map[string]string{"k": "v"}
					_, err := c.CoreV1().ConfigMaps("app").Update(ctx, o, metav1.UpdateOptions{})
					return err
				}, map[bool]int{false: 0, true: 1}[repair]},
				{"ours deleted", func() error { return c.CoreV1().ConfigMaps("app").Delete(ctx, "ours", metav1.DeleteOptions{}) }, 1},
			}
			want := 1
			for _, s := range steps {
				if err := s.do(); err != nil {
					t.Fatal(err)
				}
				want += s.adds
				synctest.Wait() // the controller has handled the step: exactly want calls, none late
				if r.count("app") != want {
					t.Fatalf("repair %v, %s: %d ensure calls, want %d", repair, s.what, r.count("app"), want)
				}
			}
		})
	}
}
