package rootca

import (
	"context"
	"log/slog"
	"maps"
	"testing"
	"testing/synctest"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/svcnet/svcnet/internal/controller/fakekube"
)

const caPEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

func start(t *testing.T, objs ...runtime.Object) (*fake.Clientset, context.Context) {
	t.Helper()
	e := fakekube.NewEnv(t, objs...)
	c, ctx := e.Client, e.Ctx
	e.Run(1, New(c, e.Factory, []byte(caPEM), slog.New(slog.DiscardHandler)))
	return c, ctx
}

// published reports whether ns holds the ConfigMap as Kubernetes writes it,
// keeping labels and annotations of others.
func published(ctx context.Context, c *fake.Clientset, ns string) bool {
	cm, err := c.CoreV1().ConfigMaps(ns).Get(ctx, ConfigMapName, metav1.GetOptions{})
	return err == nil && maps.Equal(cm.Data, map[string]string{Key: caPEM}) && cm.Annotations[DescriptionAnnotation] == Description
}

func TestPublishes(t *testing.T) {
	stale := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: ConfigMapName, Namespace: "stale", Labels: map[string]string{"keep": "me"}},
		Data: map[string]string{Key: "old CA", "extra": "x"}}
	noAnnotation := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: ConfigMapName, Namespace: "bare"}, Data: map[string]string{Key: caPEM}}
	cases := []struct {
		name string
		ns   *corev1.Namespace
		objs []runtime.Object
		want bool
	}{
		{"new namespace", fakekube.Namespace("app", corev1.NamespaceActive, false), nil, true},
		{"stale content replaced", fakekube.Namespace("stale", corev1.NamespaceActive, false), []runtime.Object{stale}, true},
		{"missing annotation added", fakekube.Namespace("bare", corev1.NamespaceActive, false), []runtime.Object{noAnnotation}, true},
		{"namespace being deleted", fakekube.Namespace("gone", corev1.NamespaceTerminating, true), nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c, ctx := start(t, append([]runtime.Object{tc.ns}, tc.objs...)...)
				if !tc.want {
					synctest.Wait() // the controller has done all it will
					if _, err := c.CoreV1().ConfigMaps(tc.ns.Name).Get(ctx, ConfigMapName, metav1.GetOptions{}); err == nil {
						t.Fatal("ConfigMap published in a namespace being deleted")
					}
					return
				}
				if !fakekube.Eventually(5*time.Second, func() bool { return published(ctx, c, tc.ns.Name) }) {
					cm, err := c.CoreV1().ConfigMaps(tc.ns.Name).Get(ctx, ConfigMapName, metav1.GetOptions{})
					t.Fatalf("not published: %+v %v", cm, err)
				}
				if tc.ns.Name == "stale" {
					cm, _ := c.CoreV1().ConfigMaps("stale").Get(ctx, ConfigMapName, metav1.GetOptions{})
					if cm.Labels["keep"] != "me" {
						t.Errorf("labels lost: %v", cm.Labels)
					}
				}
			})
		})
	}
}

func TestRepairsEditsAndDeletes(t *testing.T) {
	c, ctx := start(t, fakekube.Namespace("app", corev1.NamespaceActive, false))
	if !fakekube.Eventually(5*time.Second, func() bool { return published(ctx, c, "app") }) {
		t.Fatal("not published")
	}
	cm, _ := c.CoreV1().ConfigMaps("app").Get(ctx, ConfigMapName, metav1.GetOptions{})
	cm.Data[Key] = "tampered"
	if _, err := c.CoreV1().ConfigMaps("app").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if !fakekube.Eventually(5*time.Second, func() bool { return published(ctx, c, "app") }) {
		t.Fatal("edited ConfigMap not repaired")
	}
	if err := c.CoreV1().ConfigMaps("app").Delete(ctx, ConfigMapName, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if !fakekube.Eventually(5*time.Second, func() bool { return published(ctx, c, "app") }) {
		t.Fatal("deleted ConfigMap not re-created")
	}
}
