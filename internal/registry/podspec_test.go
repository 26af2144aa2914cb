package registry

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestValidatePodSpecNames(t *testing.T) {
	ok := corev1.PodSpec{RestartPolicy: corev1.RestartPolicyAlways,
		Volumes:        []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
		InitContainers: []corev1.Container{{Name: "init", Image: "busybox", VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/d"}}}},
		Containers:     []corev1.Container{{Name: "app", Image: "nginx", VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/d", SubPath: "logs/app"}}}}}
	if errs := ValidatePodSpec(&ok, field.NewPath("spec")); len(errs) != 0 {
		t.Fatalf("valid spec: %v", errs)
	}
	for _, tt := range []struct {
		name string
		edit func(s *corev1.PodSpec)
		want string
	}{
		{"volume name escaping the pod directory", func(s *corev1.PodSpec) { s.Volumes[0].Name = "../../etc" }, "spec.volumes[0].name: Invalid value"},
		{"duplicate volume", func(s *corev1.PodSpec) { s.Volumes = append(s.Volumes, s.Volumes[0]) }, "spec.volumes[1].name: Duplicate value"},
		{"init container name", func(s *corev1.PodSpec) { s.InitContainers[0].Name = "../x" }, "spec.initContainers[0].name: Invalid value"},
		{"init and app containers share a name", func(s *corev1.PodSpec) { s.InitContainers[0].Name = "app" }, "spec.containers[0].name: Duplicate value"},
		{"mount of no volume", func(s *corev1.PodSpec) { s.Containers[0].VolumeMounts[0].Name = "nope" }, "spec.containers[0].volumeMounts[0].name: Not found"},
		{"subPath leaving the volume", func(s *corev1.PodSpec) { s.Containers[0].VolumeMounts[0].SubPath = "a/../../b" }, "spec.containers[0].volumeMounts[0].subPath: Invalid value"},
		{"absolute subPath", func(s *corev1.PodSpec) { s.Containers[0].VolumeMounts[0].SubPath = "/etc" }, "subPath: Invalid value"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := ok.DeepCopy()
			tt.edit(s)
			errs := ValidatePodSpec(s, field.NewPath("spec"))
			if !strings.Contains(errs.ToAggregate().Error(), tt.want) {
				t.Errorf("errors = %v, want %q", errs, tt.want)
			}
		})
	}
}
