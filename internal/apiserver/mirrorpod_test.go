package apiserver

import (
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestAdmitMirrorPod(t *testing.T) {
	mirror := func(mut func(*corev1.Pod)) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "dns", Namespace: "kube-system",
			Annotations:     map[string]string{mirrorPodAnnotation: "v1"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: "n1"}}},
			Spec: corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "c"}}}}
		if mut != nil {
			mut(p)
		}
		return p
	}
	deny := func(msg string) error { return errors.New(msg) }
	for _, tc := range []struct {
		name string
		pod  *corev1.Pod
		want string
	}{
		{"mirror pod of the node", mirror(nil), ""},
		{"not a mirror", mirror(func(p *corev1.Pod) { p.Annotations = nil }), "can only create mirror pods"},
		{"other node", mirror(func(p *corev1.Pod) { p.Spec.NodeName = "n2" }), "spec.nodeName set to itself"},
		{"owned by another", mirror(func(p *corev1.Pod) { p.OwnerReferences[0].Name = "n2" }), "single owner reference"},
		{"service account", mirror(func(p *corev1.Pod) { p.Spec.ServiceAccountName = "default" }), "service account"},
		{"secret volume", mirror(func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "x"}}}}
		}), "secrets"},
		{"config map env", mirror(func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "A", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{Key: "k"}}}}
		}), "configmaps"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := admitMirrorPod(tc.pod, "n1", deny)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}
