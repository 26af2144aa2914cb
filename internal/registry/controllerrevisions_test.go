package registry

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func TestValidateControllerRevision(t *testing.T) {
	s := strategy("controllerrevisions")
	rev := func(data string, n int64) *appsv1.ControllerRevision {
		cr := &appsv1.ControllerRevision{ObjectMeta: metav1.ObjectMeta{Name: "ds-1", Namespace: "ns"}, Revision: n}
		if data != "" {
			cr.Data = runtime.RawExtension{Raw: []byte(data)}
		}
		return cr
	}
	for _, tc := range []struct {
		name string
		rev  *appsv1.ControllerRevision
		want string
	}{
		{"template patch", rev(`{"spec":{"template":{"$patch":"replace"}}}`, 1), ""},
		{"no data", rev("", 1), "data: Required value: data is mandatory"},
		{"null", rev("null", 1), "data: Required value: data is mandatory"},
		{"not an object", rev(`[1]`, 1), "data must be a valid JSON object"},
		{"not JSON", rev(`{`, 1), "error parsing data"},
		{"negative revision", rev(`{}`, -1), "revision: Invalid value: -1"},
	} {
		got := s.Validate(tc.rev).ToAggregate()
		if tc.want == "" && got != nil || tc.want != "" && (got == nil || !strings.Contains(got.Error(), tc.want)) {
			t.Errorf("%s: %v, want %q", tc.name, got, tc.want)
		}
	}
	old, cur := rev(`{"a":1}`, 1), rev(`{"a":1}`, 2)
	cur.Labels, cur.ResourceVersion, old.ResourceVersion = map[string]string{"x": "y"}, "1", "1"
	if errs := s.ValidateUpdate(cur, old); len(errs) != 0 {
		t.Errorf("labels and revision number are mutable: %v", errs.ToAggregate())
	}
	cur.Data.Raw = []byte(`{"a":2}`)
	if got := s.ValidateUpdate(cur, old).ToAggregate(); got == nil || !strings.Contains(got.Error(), "data: Invalid value: \"<value omitted>\": field is immutable") {
		t.Errorf("data changed: %v", got)
	}
}
