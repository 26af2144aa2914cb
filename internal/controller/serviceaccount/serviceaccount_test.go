package serviceaccount

import (
	"context"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/svcnet/svcnet/internal/controller/fakekube"
)

func start(t *testing.T, objs ...runtime.Object) (*fake.Clientset, context.Context) {
	t.Helper()
	e := fakekube.NewEnv(t, objs...)
	c, ctx := e.Client, e.Ctx
	e.Run(1, New(c, e.Factory, slog.New(slog.DiscardHandler)))
	return c, ctx
}

func hasDefault(ctx context.Context, c *fake.Clientset, ns string) bool {
	_, err := c.CoreV1().ServiceAccounts(ns).Get(ctx, DefaultName, metav1.GetOptions{})
	return err == nil
}

func TestDefaultServiceAccount(t *testing.T) {
	cases := []struct {
		name string
		ns   *corev1.Namespace
		want bool
	}{
		{"active namespace", fakekube.Namespace("app", corev1.NamespaceActive, false), true},
		{"terminating namespace", fakekube.Namespace("old", corev1.NamespaceTerminating, true), false},
		{"deletion requested", fakekube.Namespace("going", corev1.NamespaceActive, true), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c, ctx := start(t, tc.ns)
				if tc.want {
					if !fakekube.Eventually(5*time.Second, func() bool { return hasDefault(ctx, c, tc.ns.Name) }) {
						t.Fatal("default ServiceAccount not created")
					}
					return
				}
				synctest.Wait() // the controller has done all it will
				if hasDefault(ctx, c, tc.ns.Name) {
					t.Fatal("default ServiceAccount created in a namespace being deleted")
				}
			})
		})
	}
}

func TestDefaultServiceAccountRecreatedAndOthersLeftAlone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		own := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: DefaultName, Namespace: "app", Labels: map[string]string{"mine": "yes"}}}
		c, ctx := start(t, fakekube.Namespace("app", corev1.NamespaceActive, false), own,
			&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "builder", Namespace: "app"}})
		synctest.Wait() // the controller has done all it will
		if sa, err := c.CoreV1().ServiceAccounts("app").Get(ctx, DefaultName, metav1.GetOptions{}); err != nil || sa.Labels["mine"] != "yes" {
			t.Fatalf("existing default ServiceAccount replaced: %+v %v", sa, err)
		}
		if err := c.CoreV1().ServiceAccounts("app").Delete(ctx, "builder", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := c.CoreV1().ServiceAccounts("app").Delete(ctx, DefaultName, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		if !fakekube.Eventually(5*time.Second, func() bool { return hasDefault(ctx, c, "app") }) {
			t.Fatal("deleted default ServiceAccount not re-created")
		}
		if _, err := c.CoreV1().ServiceAccounts("app").Get(ctx, "builder", metav1.GetOptions{}); err == nil {
			t.Fatal("other ServiceAccounts must not be re-created")
		}
		if _, err := c.CoreV1().Namespaces().Create(ctx, fakekube.Namespace("later", corev1.NamespaceActive, false), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if !fakekube.Eventually(5*time.Second, func() bool { return hasDefault(ctx, c, "later") }) {
			t.Fatal("new namespace got no default ServiceAccount")
		}
	})
}
