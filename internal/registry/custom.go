package registry

import (
	"context"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/managedfields"
)

// Custom is what the API server needs to serve a resource defined by a
// CustomResourceDefinition. Its objects are *unstructured.Unstructured and are
// stored as JSON; the schema-driven work (pruning, defaulting, validation,
// printing) is done by the functions here, built from the CRD.
type Custom struct {
	// CRD names the definition (for ownership checks and cleanup).
	CRD    string
	CRDUID types.UID
	// Terminating is true while the CRD is being deleted: no new objects.
	Terminating bool
	// Prune drops fields the version's schema does not know, returning their
	// paths, and coerces metadata, as Kubernetes does when it decodes a request.
	Prune func(u *unstructured.Unstructured, version string) []string
	// Default fills the version's schema defaults (on writes and on every read).
	Default func(u *unstructured.Unstructured, version string)
	// Table renders objects as kubectl's server-side Table (additionalPrinterColumns).
	Table func(ctx context.Context, list *unstructured.UnstructuredList) (*metav1.Table, error)
	// Scale is the scale subresource's paths, nil when the CRD has none.
	Scale *apiextensionsv1.CustomResourceSubresourceScale
	// OpenAPI is the OpenAPI v3 document of each served version (JSON).
	OpenAPI map[string][]byte
	// TypeConverter gives server-side apply the schema's structure.
	TypeConverter managedfields.TypeConverter
}

// IsCustom reports whether obj is a custom resource object.
func IsCustom(obj runtime.Object) bool {
	_, ok := obj.(*unstructured.Unstructured)
	return ok
}
