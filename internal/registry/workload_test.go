package registry

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	appsv1beta1 "k8s.io/api/apps/v1beta1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestLegacyDeploymentConversion(t *testing.T) {
	in := &appsv1beta1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "demo"},
		Spec: appsv1beta1.DeploymentSpec{
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web", "tier": "fe"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i"}}},
			},
			RollbackTo: &appsv1beta1.RollbackConfig{Revision: 3},
		},
	}
	out, err := deploymentLegacy[0].ToStorage(in)
	if err != nil {
		t.Fatal(err)
	}
	d := out.(*appsv1.Deployment)
	if d.APIVersion != "apps/v1" || d.Spec.Selector == nil || d.Spec.Selector.MatchLabels["tier"] != "fe" || len(d.Spec.Selector.MatchLabels) != 2 {
		t.Fatalf("converted = %s %+v", d.APIVersion, d.Spec.Selector)
	}
	defaultDeployment(d)
	if errs := validateDeployment(d); len(errs) > 0 {
		t.Fatalf("converted deployment invalid: %v", errs)
	}
	if *d.Spec.Replicas != 1 || d.Spec.Strategy.RollingUpdate.MaxSurge.StrVal != "25%" || *d.Spec.RevisionHistoryLimit != 10 {
		t.Fatalf("defaults not applied: %+v", d.Spec)
	}
	back, err := deploymentLegacy[0].FromStorage(d)
	if err != nil || back.(*appsv1beta1.Deployment).APIVersion != "apps/v1beta1" {
		t.Fatalf("back = %+v, %v", back, err)
	}
}

func TestDeploymentValidation(t *testing.T) {
	base := func() *appsv1.Deployment {
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "x"},
			Spec: appsv1.DeploymentSpec{
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i"}}}}}}
		defaultDeployment(d)
		return d
	}
	cases := []struct {
		name string
		mut  func(*appsv1.Deployment)
		want string
	}{
		{"valid", func(*appsv1.Deployment) {}, ""},
		{"selector mismatch", func(d *appsv1.Deployment) { d.Spec.Template.Labels = map[string]string{"app": "other"} }, "`selector` does not match template `labels`"},
		{"no selector", func(d *appsv1.Deployment) { d.Spec.Selector = nil }, "spec.selector: Required value"},
		{"no containers", func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers = nil }, "spec.template.spec.containers: Required value"},
		{"no image", func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "" }, "spec.template.spec.containers[0].image: Required value"},
		{"negative replicas", func(d *appsv1.Deployment) { n := int32(-1); d.Spec.Replicas = &n }, "spec.replicas: Invalid value: -1"},
		{"zero surge and unavailable", func(d *appsv1.Deployment) {
			z := intstr.FromInt32(0)
			d.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{MaxSurge: &z, MaxUnavailable: &z}
		}, "may not be 0 when `maxSurge` is 0"},
	}
	for _, c := range cases {
		d := base()
		c.mut(d)
		errs := validateDeployment(d).ToAggregate()
		if (c.want == "") != (errs == nil) || (errs != nil && !strings.Contains(errs.Error(), c.want)) {
			t.Errorf("%s: errors = %v, want %q", c.name, errs, c.want)
		}
	}
}

func TestSecretStringDataMerged(t *testing.T) {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "x"}, StringData: map[string]string{"a": "b"}, Data: map[string][]byte{"c": []byte("d")}}
	defaultSecret(s)
	if s.StringData != nil || string(s.Data["a"]) != "b" || string(s.Data["c"]) != "d" || s.Type != corev1.SecretTypeOpaque {
		t.Fatalf("secret = %+v", s)
	}
	tls := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "t", Namespace: "x"}, Type: corev1.SecretTypeTLS, Data: map[string][]byte{"tls.crt": nil}}
	if errs := validateSecret(tls).ToAggregate(); errs == nil || !strings.Contains(errs.Error(), "data[tls.key]: Required value") {
		t.Fatalf("tls secret without key: %v", errs)
	}
}
