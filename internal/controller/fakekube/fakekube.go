// Package fakekube is client-go's fake clientset made to behave a little more like
// an API server (generateName; status writes change only status), with an Env
// that runs controllers over it and a fake kubelet, for controller tests.
package fakekube

import (
	"fmt"
	"reflect"
	"sync/atomic"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// NewClientset returns a fake clientset holding objs that fills in names from
// generateName on create.
func NewClientset(objs ...runtime.Object) *fake.Clientset {
	c := fake.NewClientset(objs...)
	var n atomic.Int64
	c.PrependReactor("create", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if ca, ok := a.(k8stesting.CreateAction); ok {
			if m, ok := ca.GetObject().(metav1.Object); ok && m.GetName() == "" && m.GetGenerateName() != "" {
				m.SetName(fmt.Sprintf("%s%05d", m.GetGenerateName(), n.Add(1)))
			}
		}
		return false, nil, nil
	})
	c.PrependReactor("update", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		ua, ok := a.(k8stesting.UpdateAction)
		if !ok || ua.GetSubresource() != "status" {
			return false, nil, nil
		}
		obj := ua.GetObject()
		m, ok := obj.(metav1.Object)
		if !ok {
			return false, nil, nil
		}
		cur, err := c.Tracker().Get(ua.GetResource(), ua.GetNamespace(), m.GetName())
		if err != nil {
			return true, nil, err
		}
		cur = cur.DeepCopyObject()
		src, dst := reflect.ValueOf(obj).Elem().FieldByName("Status"), reflect.ValueOf(cur).Elem().FieldByName("Status")
		if !src.IsValid() || !dst.IsValid() {
			return false, nil, nil
		}
		dst.Set(src)
		if err := c.Tracker().Update(ua.GetResource(), cur, ua.GetNamespace()); err != nil {
			return true, nil, err
		}
		return true, cur, nil
	})
	return c
}
