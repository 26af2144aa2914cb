package pod

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestExpand(t *testing.T) {
	vars := map[string]string{"NAME": "web", "PORT": "8080"}
	for in, want := range map[string]string{
		"--port=$(PORT)":     "--port=8080",
		"$(NAME)-$(MISSING)": "web-$(MISSING)",
		"$$(NAME)":           "$(NAME)",
		"cost $5":            "cost $5",
		"open $(NAME":        "open $(NAME",
	} {
		if got := Expand(in, vars); got != want {
			t.Errorf("Expand(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestValueFrom(t *testing.T) {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u1", Labels: map[string]string{"app": "x"}},
		Spec: corev1.PodSpec{NodeName: "n1"}, Status: corev1.PodStatus{HostIP: "192.0.2.1"}}
	for path, want := range map[string]string{"metadata.name": "p", "metadata.namespace": "ns", "metadata.uid": "u1",
		"spec.nodeName": "n1", "status.podIP": "10.244.0.9", "status.hostIP": "192.0.2.1", "metadata.labels['app']": "x"} {
		got, err := ValueFrom(p, "10.244.0.9", corev1.EnvVar{Name: "V", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}})
		if err != nil || got != want {
			t.Errorf("fieldRef %s = %q, %v; want %q", path, got, err, want)
		}
	}
	_, err := ValueFrom(p, "", corev1.EnvVar{Name: "S", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{}}})
	if err == nil || !strings.Contains(err.Error(), "env S") {
		t.Errorf("secretKeyRef: %v", err)
	}
}

func TestContainerEnv(t *testing.T) {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"}}
	base := []corev1.EnvVar{{Name: "PATH", Value: "/bin"}, {Name: "HOSTNAME", Value: "p"}}
	services := []corev1.EnvVar{{Name: "WEB_SERVICE_HOST", Value: "10.96.0.10"}, {Name: "WEB_SERVICE_PORT", Value: "80"}}
	c := corev1.Container{Name: "c", Env: []corev1.EnvVar{
		{Name: "URL", Value: "http://$(WEB_SERVICE_HOST):$(WEB_SERVICE_PORT)"},
		{Name: "PATH", Value: "/opt:$(PATH)"}, // overrides, keeps PATH first
		{Name: "IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
	}}
	got, err := ContainerEnv(p, "10.244.0.9", base, services, c)
	want := []string{"PATH=/opt:/bin", "HOSTNAME=p", "WEB_SERVICE_HOST=10.96.0.10", "WEB_SERVICE_PORT=80",
		"URL=http://10.96.0.10:80", "IP=10.244.0.9"}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("ContainerEnv = %q, %v; want %q", got, err, want)
	}
	if m := EnvMap(got); m["URL"] != "http://10.96.0.10:80" || len(m) != len(want) {
		t.Errorf("EnvMap = %v", m)
	}
	if got, _ := ContainerEnv(p, "", nil, nil, corev1.Container{Env: []corev1.EnvVar{{Name: "A", Value: "1"}}}); !slices.Equal(got, []string{"A=1"}) {
		t.Errorf("without base or services: %q", got)
	}
	c.EnvFrom = []corev1.EnvFromSource{{}}
	if _, err := ContainerEnv(p, "", base, services, c); err == nil || !strings.Contains(err.Error(), "envFrom") {
		t.Errorf("envFrom: %v", err)
	}
}
