package cri

import (
	"encoding/base64"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestPullPolicyDefault(t *testing.T) {
	for image, want := range map[string]corev1.PullPolicy{
		"httpd":                         corev1.PullAlways,
		"nginx:latest":                  corev1.PullAlways,
		"nginx:1.17.1":                  corev1.PullIfNotPresent,
		"localhost:5000/app":            corev1.PullAlways,
		"localhost:5000/app:v2":         corev1.PullIfNotPresent,
		"busybox@sha256:" + sha("a"):    corev1.PullIfNotPresent,
		"registry.k8s.io/pause:3.10":    corev1.PullIfNotPresent,
		"registry.k8s.io/e2e/agnhost:2": corev1.PullIfNotPresent,
	} {
		if got := pullPolicy(corev1.Container{Image: image}); got != want {
			t.Errorf("pullPolicy(%q) = %s, want %s", image, got, want)
		}
	}
	if got := pullPolicy(corev1.Container{Image: "httpd", ImagePullPolicy: corev1.PullNever}); got != corev1.PullNever {
		t.Errorf("an explicit policy is kept, got %s", got)
	}
}

func sha(s string) string {
	out := ""
	for len(out) < 64 {
		out += s
	}
	return out[:64]
}

func TestCredentials(t *testing.T) {
	auth := base64.StdEncoding.EncodeToString([]byte("bob:s3cret"))
	secrets := []*corev1.Secret{
		{Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(
			`{"auths":{"10.0.0.5:5000":{"auth":"` + auth + `"},"https://index.docker.io/v1/":{"username":"hub","password":"pw"}}}`)}},
		{Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"x": []byte("y")}},
		{Type: corev1.SecretTypeDockercfg, Data: map[string][]byte{corev1.DockerConfigKey: []byte(`{"10.0.0.5:5000":{"username":"old","password":"cfg"}}`)}},
	}
	got, err := credentials("10.0.0.5:5000/team/app:v1", secrets)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Username != "bob" || got[0].Password != "s3cret" || got[1].Username != "old" {
		t.Fatalf("credentials for the private registry = %v", got)
	}
	got, err = credentials("httpd", secrets)
	if err != nil || len(got) != 1 || got[0].Username != "hub" {
		t.Fatalf("credentials for Docker Hub = %v, %v", got, err)
	}
	if got, _ := credentials("quay.io/x/y", secrets); len(got) != 0 {
		t.Fatalf("no credentials for another registry, got %v", got)
	}
	bad := []*corev1.Secret{{Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte("{")}}}
	if _, err := credentials("httpd", bad); err == nil {
		t.Fatal("a malformed docker config must be an error")
	}
}
