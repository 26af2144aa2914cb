package registry

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestSetCustom(t *testing.T) {
	reg := Default()
	builtin := len(reg.All())
	widget := &Resource{Group: "example.com", Version: "v1", Resource: "widgets", Kind: "Widget", Custom: &Custom{},
		New:    func() runtime.Object { return &unstructured.Unstructured{} },
		Legacy: []Legacy{{GroupVersion: schema.GroupVersion{Group: "example.com", Version: "v1beta1"}}}}
	shadow := &Resource{Group: "", Version: "v1", Resource: "pods", Kind: "NotAPod", Custom: &Custom{}}
	reg.SetCustom([]*Resource{widget, shadow})
	if got := len(reg.All()); got != builtin+1 {
		t.Fatalf("%d resources after adding one custom and one shadowing a built-in, want %d", got, builtin+1)
	}
	if r, l := reg.Lookup(schema.GroupVersion{Group: "example.com", Version: "v1beta1"}, "widgets"); r != widget || l == nil {
		t.Errorf("lookup of the served old version = %v, %v", r, l)
	}
	if r, _ := reg.Lookup(schema.GroupVersion{Version: "v1"}, "pods"); r == nil || r.Kind != "Pod" {
		t.Errorf("a custom resource shadowed pods: %v", r)
	}
	if reg.Get(schema.GroupResource{Group: "example.com", Resource: "widgets"}) != widget || widget.ListKind != "WidgetList" {
		t.Error("custom resource not found by group/resource or list kind not defaulted")
	}
	reg.SetCustom(nil)
	if r, _ := reg.Lookup(schema.GroupVersion{Group: "example.com", Version: "v1"}, "widgets"); r != nil || len(reg.All()) != builtin {
		t.Error("custom resource still served after it was removed")
	}
}
