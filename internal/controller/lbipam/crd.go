package lbipam

import (
	"context"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
)

// PoolResource is the LoadBalancerPool resource.
var PoolResource = schema.GroupVersionResource{Group: "svcnet.io", Version: "v1alpha1", Resource: "loadbalancerpools"}

// selectorSchema is metav1.LabelSelector's.
func selectorSchema(desc string) apiextensionsv1.JSONSchemaProps {
	str := apiextensionsv1.JSONSchemaProps{Type: "string"}
	return apiextensionsv1.JSONSchemaProps{Type: "object", Description: desc, XMapType: ptr.To("atomic"),
		Properties: map[string]apiextensionsv1.JSONSchemaProps{
			"matchLabels": {Type: "object", AdditionalProperties: &apiextensionsv1.JSONSchemaPropsOrBool{Allows: true, Schema: &str}},
			"matchExpressions": {Type: "array", Items: &apiextensionsv1.JSONSchemaPropsOrArray{Schema: &apiextensionsv1.JSONSchemaProps{
				Type: "object", Required: []string{"key", "operator"},
				Properties: map[string]apiextensionsv1.JSONSchemaProps{
					"key": str, "operator": {Type: "string", Enum: []apiextensionsv1.JSON{{Raw: []byte(`"In"`)}, {Raw: []byte(`"NotIn"`)}, {Raw: []byte(`"Exists"`)}, {Raw: []byte(`"DoesNotExist"`)}}},
					"values": {Type: "array", Items: &apiextensionsv1.JSONSchemaPropsOrArray{Schema: &str}},
				}}}},
		}}
}

// PoolCRD is the CustomResourceDefinition of LoadBalancerPool.
func PoolCRD() *apiextensionsv1.CustomResourceDefinition {
	return &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: PoolResource.Resource + "." + PoolResource.Group},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: PoolResource.Group, Scope: apiextensionsv1.ClusterScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: PoolResource.Resource, Singular: "loadbalancerpool",
				Kind: "LoadBalancerPool", ListKind: "LoadBalancerPoolList", ShortNames: []string{"lbpool"}},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: PoolResource.Version, Served: true, Storage: true,
				AdditionalPrinterColumns: []apiextensionsv1.CustomResourceColumnDefinition{
					{Name: "Addresses", Type: "string", JSONPath: ".spec.addresses"},
					{Name: "Age", Type: "date", JSONPath: ".metadata.creationTimestamp"}},
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object", Description: "Addresses svcnet gives LoadBalancer Services (status.loadBalancer.ingress), announced on the LAN by one node each.",
					Required: []string{"spec"},
					Properties: map[string]apiextensionsv1.JSONSchemaProps{
						"apiVersion": {Type: "string"}, "kind": {Type: "string"}, "metadata": {Type: "object"},
						"spec": {Type: "object", Required: []string{"addresses"}, Properties: map[string]apiextensionsv1.JSONSchemaProps{
							"addresses": {Type: "array", MinItems: ptr.To[int64](1), Description: "ranges a-b, CIDRs or single addresses",
								Items: &apiextensionsv1.JSONSchemaPropsOrArray{Schema: &apiextensionsv1.JSONSchemaProps{Type: "string", MinLength: ptr.To[int64](1)}}},
							"serviceSelector":   selectorSchema("Services that may get addresses of this pool (empty: all)"),
							"namespaceSelector": selectorSchema("namespaces whose Services may get addresses of this pool (empty: all)"),
						}},
					}}},
			}},
		},
	}
}

// EnsureCRD creates or updates the LoadBalancerPool CRD and waits (bounded)
// until it is established.
func EnsureCRD(ctx context.Context, client apiextensionsclient.Interface) error {
	want := PoolCRD()
	crds := client.ApiextensionsV1().CustomResourceDefinitions()
	got, err := crds.Get(ctx, want.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		if _, err := crds.Create(ctx, want, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	case err != nil:
		return err
	default:
		got.Spec = want.Spec
		if _, err := crds.Update(ctx, got, metav1.UpdateOptions{}); err != nil {
			return err
		}
	}
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		c, err := crds.Get(ctx, want.Name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		for _, cond := range c.Status.Conditions {
			if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
}
