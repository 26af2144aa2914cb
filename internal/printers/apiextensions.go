package printers

import (
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func init() {
	register("CustomResourceDefinition", []column{{"Name", "string", false}, {"Created At", "date", false}},
		func(o runtime.Object, _ time.Time) []any {
			crd := o.(*apiextensionsv1.CustomResourceDefinition)
			return []any{crd.Name, crd.CreationTimestamp.UTC().Format(time.RFC3339)}
		})
}
