package crd

import (
	"context"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/svcnet/svcnet/internal/registry"
)

// libStrategy is the part of apiextensions-apiserver's custom resource strategy
// svcnet uses.
type libStrategy interface {
	PrepareForCreate(ctx context.Context, obj runtime.Object)
	PrepareForUpdate(ctx context.Context, obj, old runtime.Object)
	Validate(ctx context.Context, obj runtime.Object) field.ErrorList
	ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList
}

// objectStrategy adapts the library's strategy (status reset, generation, schema,
// metadata, list-type and CEL validation) to registry.Strategy.
type objectStrategy struct{ lib libStrategy }

var _ registry.Strategy = objectStrategy{}

func (s objectStrategy) PrepareForCreate(obj runtime.Object) {
	s.lib.PrepareForCreate(context.Background(), obj)
}

func (s objectStrategy) Validate(obj runtime.Object) field.ErrorList {
	return s.lib.Validate(context.Background(), obj)
}

func (s objectStrategy) PrepareForUpdate(obj, old runtime.Object) {
	s.lib.PrepareForUpdate(context.Background(), obj, old)
}

func (s objectStrategy) ValidateUpdate(obj, old runtime.Object) field.ErrorList {
	return s.lib.ValidateUpdate(context.Background(), obj, old)
}
