package registry

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestReplicationControllerDefaults(t *testing.T) {
	cases := []struct {
		name         string
		rc           corev1.ReplicationController
		wantSelector map[string]string
		wantLabels   map[string]string
		wantReplicas int32
	}{
		{"from template", corev1.ReplicationController{Spec: corev1.ReplicationControllerSpec{
			Template: &corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}}}}},
			map[string]string{"app": "web"}, map[string]string{"app": "web"}, 1},
		{"own selector and labels kept", corev1.ReplicationController{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"tier": "fe"}},
			Spec: corev1.ReplicationControllerSpec{Replicas: int32p(0), Selector: map[string]string{"app": "web"},
				Template: &corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web", "v": "2"}}}}},
			map[string]string{"app": "web"}, map[string]string{"tier": "fe"}, 0},
		{"no template", corev1.ReplicationController{}, nil, nil, 1},
	}
	for _, c := range cases {
		defaultReplicationController(&c.rc)
		if !equalMaps(c.rc.Spec.Selector, c.wantSelector) || !equalMaps(c.rc.Labels, c.wantLabels) || *c.rc.Spec.Replicas != c.wantReplicas {
			t.Errorf("%s: selector %v labels %v replicas %d", c.name, c.rc.Spec.Selector, c.rc.Labels, *c.rc.Spec.Replicas)
		}
		if c.rc.Spec.Template != nil && c.rc.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyAlways {
			t.Errorf("%s: pod spec not defaulted", c.name)
		}
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

func TestReplicationControllerValidation(t *testing.T) {
	base := func() *corev1.ReplicationController {
		rc := &corev1.ReplicationController{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "x"},
			Spec: corev1.ReplicationControllerSpec{Template: &corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i"}}}}}}
		defaultReplicationController(rc)
		return rc
	}
	cases := []struct {
		name string
		mut  func(*corev1.ReplicationController)
		want string
	}{
		{"valid", func(*corev1.ReplicationController) {}, ""},
		{"selector mismatch", func(rc *corev1.ReplicationController) { rc.Spec.Selector = map[string]string{"app": "other"} },
			"spec.template.metadata.labels: Invalid value: {\"app\":\"web\"}: `selector` does not match template `labels`"},
		{"no selector", func(rc *corev1.ReplicationController) { rc.Spec.Selector = nil }, "spec.selector: Required value"},
		{"no template", func(rc *corev1.ReplicationController) { rc.Spec.Template = nil }, "spec.template: Required value"},
		{"negative replicas", func(rc *corev1.ReplicationController) { rc.Spec.Replicas = int32p(-1) },
			"spec.replicas: Invalid value: -1: must be greater than or equal to 0"},
		{"negative minReadySeconds", func(rc *corev1.ReplicationController) { rc.Spec.MinReadySeconds = -2 },
			"spec.minReadySeconds: Invalid value: -2: must be greater than or equal to 0"},
		{"restart never", func(rc *corev1.ReplicationController) {
			rc.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever
		},
			`spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"`},
		{"active deadline", func(rc *corev1.ReplicationController) {
			d := int64(5)
			rc.Spec.Template.Spec.ActiveDeadlineSeconds = &d
		},
			"spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in ReplicationController is not Supported"},
		{"no image", func(rc *corev1.ReplicationController) { rc.Spec.Template.Spec.Containers[0].Image = "" },
			"spec.template.spec.containers[0].image: Required value"},
		{"bad name", func(rc *corev1.ReplicationController) { rc.Name = "Web" }, "metadata.name: Invalid value: \"Web\""},
	}
	strategy := Default().Get(schema.GroupResource{Resource: "replicationcontrollers"}).Strategy
	for _, c := range cases {
		rc := base()
		c.mut(rc)
		errs := strategy.Validate(rc).ToAggregate()
		if (c.want == "") != (errs == nil) || (errs != nil && !strings.Contains(errs.Error(), c.want)) {
			t.Errorf("%s: errors = %v, want %q", c.name, errs, c.want)
		}
	}
	// The selector of a ReplicationController may change (unlike a ReplicaSet's).
	old, rc := base(), base()
	old.ResourceVersion, rc.ResourceVersion = "1", "1"
	rc.Spec.Selector["tier"], rc.Spec.Template.Labels["tier"] = "fe", "fe"
	if errs := strategy.ValidateUpdate(rc, old); len(errs) > 0 {
		t.Errorf("selector update refused: %v", errs)
	}
}

func TestServiceAccountStrategy(t *testing.T) {
	r := Default().Get(schema.GroupResource{Resource: "serviceaccounts"})
	if r == nil || r.Kind != "ServiceAccount" || len(r.ShortNames) != 1 || r.ShortNames[0] != "sa" {
		t.Fatalf("serviceaccounts resource = %+v", r)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "builder", Namespace: "x"},
		Secrets: []corev1.ObjectReference{{Name: "tok", Namespace: "other", Kind: "Secret", UID: "u"}}}
	r.Strategy.PrepareForCreate(sa)
	if sa.Secrets[0] != (corev1.ObjectReference{Name: "tok"}) {
		t.Errorf("secret reference not cleaned: %+v", sa.Secrets[0])
	}
	if errs := r.Strategy.Validate(sa); len(errs) > 0 {
		t.Errorf("valid service account: %v", errs)
	}
	for name, want := range map[string]string{"Bad_Name": "metadata.name: Invalid value: \"Bad_Name\"", "": "metadata.name: Required value"} {
		bad := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "x"}}
		if errs := r.Strategy.Validate(bad).ToAggregate(); errs == nil || !strings.Contains(errs.Error(), want) {
			t.Errorf("name %q: errors %v, want %q", name, errs, want)
		}
	}
}
