package crd

import (
	"context"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"
)

const widgetCRD = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, listKind: WidgetList, shortNames: [wd], categories: [all]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale: {specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas}
    additionalPrinterColumns:
    - {name: Size, type: string, jsonPath: .spec.size}
    - {name: Replicas, type: integer, jsonPath: .spec.replicas}
    selectableFields:
    - jsonPath: .spec.size
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            x-kubernetes-validations:
            - rule: "self.replicas <= 10"
              message: "at most 10 replicas"
            properties:
              size: {type: string, enum: [small, large]}
              replicas: {type: integer, minimum: 0, default: 1}
              color: {type: string, pattern: "^[a-z]+$", default: blue}
          status:
            type: object
            properties:
              replicas: {type: integer}
  - name: v1beta1
    served: true
    storage: false
    deprecated: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
`

func widget(t *testing.T) *apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := yaml.UnmarshalStrict([]byte(widgetCRD), crd); err != nil {
		t.Fatal(err)
	}
	DefinitionStrategy{}.PrepareForCreate(crd)
	if errs := (DefinitionStrategy{}).Validate(crd); len(errs) > 0 {
		t.Fatalf("valid CRD refused: %v", errs)
	}
	crd.Status = Status(crd, nil, func(schema.GroupResource) bool { return false }, metav1.Now())
	return crd
}

func object(t *testing.T, y string) *unstructured.Unstructured {
	t.Helper()
	raw, err := yaml.YAMLToJSON([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(raw); err != nil {
		t.Fatal(err)
	}
	return u
}

func TestCustomResourceSchema(t *testing.T) {
	res, err := Build(widget(t))
	if err != nil {
		t.Fatal(err)
	}
	if res.Kind != "Widget" || !res.Namespaced || !res.HasStatus || res.Custom.Scale == nil || len(res.Legacy) != 1 {
		t.Fatalf("resource = %+v", res)
	}
	for _, tc := range []struct {
		name, obj, wantErr string
		unknown            []string
	}{
		{name: "valid", obj: `{apiVersion: example.com/v1, kind: Widget, metadata: {name: a, namespace: default}, spec: {size: small}}`},
		{name: "wrong type", obj: `{apiVersion: example.com/v1, kind: Widget, metadata: {name: a, namespace: default}, spec: {size: small, replicas: "three"}}`,
			wantErr: `spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer`},
		{name: "enum", obj: `{apiVersion: example.com/v1, kind: Widget, metadata: {name: a, namespace: default}, spec: {size: huge}}`,
			wantErr: `spec.size: Unsupported value: "huge"`},
		{name: "required", obj: `{apiVersion: example.com/v1, kind: Widget, metadata: {name: a, namespace: default}, spec: {}}`,
			wantErr: `spec.size: Required value`},
		{name: "minimum", obj: `{apiVersion: example.com/v1, kind: Widget, metadata: {name: a, namespace: default}, spec: {size: small, replicas: -1}}`,
			wantErr: `spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or equal to 0`},
		{name: "pattern", obj: `{apiVersion: example.com/v1, kind: Widget, metadata: {name: a, namespace: default}, spec: {size: small, color: "Red"}}`,
			wantErr: `spec.color: Invalid value: "Red": spec.color in body should match '^[a-z]+$'`},
		{name: "CEL rule", obj: `{apiVersion: example.com/v1, kind: Widget, metadata: {name: a, namespace: default}, spec: {size: small, replicas: 11}}`,
			wantErr: `spec: Invalid value: at most 10 replicas`},
		{name: "unknown fields pruned", obj: `{apiVersion: example.com/v1, kind: Widget, metadata: {name: a, namespace: default}, spec: {size: small, shape: round}, extra: 1}`,
			unknown: []string{"extra", "spec.shape"}},
		{name: "bad name", obj: `{apiVersion: example.com/v1, kind: Widget, metadata: {name: A_b, namespace: default}, spec: {size: small}}`,
			wantErr: `metadata.name: Invalid value: "A_b"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := object(t, tc.obj)
			unknown := res.Custom.Prune(u, "v1")
			if strings.Join(unknown, ",") != strings.Join(tc.unknown, ",") {
				t.Errorf("unknown fields = %v, want %v", unknown, tc.unknown)
			}
			res.Custom.Default(u, "v1")
			res.Strategy.PrepareForCreate(u)
			errs := res.Strategy.Validate(u)
			if tc.wantErr == "" {
				if len(errs) > 0 {
					t.Fatalf("refused: %v", errs)
				}
				if r, _, _ := unstructured.NestedInt64(u.Object, "spec", "replicas"); r != 1 {
					t.Errorf("default replicas = %d, want 1", r)
				}
				if c, _, _ := unstructured.NestedString(u.Object, "spec", "color"); c != "blue" {
					t.Errorf("default color = %q, want blue", c)
				}
				if _, found := u.Object["extra"]; found {
					t.Error("unknown field kept")
				}
				return
			}
			if !strings.Contains(errs.ToAggregate().Error(), tc.wantErr) {
				t.Fatalf("errors = %v, want one containing %q", errs, tc.wantErr)
			}
		})
	}
}

func TestCustomResourceUpdate(t *testing.T) {
	res, err := Build(widget(t))
	if err != nil {
		t.Fatal(err)
	}
	old := object(t, `{apiVersion: example.com/v1, kind: Widget, metadata: {name: a, namespace: default, generation: 1, resourceVersion: "5"}, spec: {size: small, replicas: 1}, status: {replicas: 1}}`)
	upd := object(t, `{apiVersion: example.com/v1, kind: Widget, metadata: {name: a, namespace: default, generation: 1, resourceVersion: "5", labels: {x: z}}, spec: {size: large, replicas: 1}, status: {replicas: 9}}`)
	res.Strategy.PrepareForUpdate(upd, old)
	if upd.GetGeneration() != 2 {
		t.Errorf("generation = %d, want 2 after a spec change", upd.GetGeneration())
	}
	if r, _, _ := unstructured.NestedInt64(upd.Object, "status", "replicas"); r != 1 {
		t.Errorf("status.replicas = %d: a main-resource write changed status", r)
	}
	if errs := res.Strategy.ValidateUpdate(upd, old); len(errs) > 0 {
		t.Fatalf("update refused: %v", errs)
	}
}

func TestCustomResourceTable(t *testing.T) {
	res, err := Build(widget(t))
	if err != nil {
		t.Fatal(err)
	}
	u := object(t, `{apiVersion: example.com/v1, kind: Widget, metadata: {name: a, namespace: default, creationTimestamp: "2026-01-01T00:00:00Z"}, spec: {size: small, replicas: 3}}`)
	tbl, err := res.Custom.Table(context.Background(), &unstructured.UnstructuredList{Items: []unstructured.Unstructured{*u}})
	if err != nil {
		t.Fatal(err)
	}
	var cols []string
	for _, c := range tbl.ColumnDefinitions {
		cols = append(cols, c.Name)
	}
	if strings.Join(cols, ",") != "Name,Size,Replicas" {
		t.Errorf("columns = %v", cols)
	}
	if len(tbl.Rows) != 1 || tbl.Rows[0].Cells[0] != "a" || tbl.Rows[0].Cells[1] != "small" || tbl.Rows[0].Cells[2] != int64(3) {
		t.Errorf("rows = %+v", tbl.Rows)
	}
	if got := res.Fields(u)["spec.size"]; got != "small" {
		t.Errorf("selectable field spec.size = %q", got)
	}
	if res.Legacy[0].Warning != "example.com/v1beta1 Widget is deprecated" {
		t.Errorf("deprecation warning = %q", res.Legacy[0].Warning)
	}
	if len(res.Custom.OpenAPI["v1"]) == 0 {
		t.Error("no OpenAPI document for v1")
	}
}

func TestDefinitionValidation(t *testing.T) {
	for _, tc := range []struct{ name, mutate, want string }{
		{"no storage version", "nostorage", "spec.versions: Invalid value"},
		{"not structural", "nontype", "spec.versions[0].schema.openAPIV3Schema.properties[spec].type: Required value"},
		{"plural mismatch", "name", "metadata.name: Invalid value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			crd := &apiextensionsv1.CustomResourceDefinition{}
			if err := yaml.Unmarshal([]byte(widgetCRD), crd); err != nil {
				t.Fatal(err)
			}
			switch tc.mutate {
			case "nostorage":
				crd.Spec.Versions[0].Storage = false
			case "nontype":
				s := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"]
				s.Type = ""
				crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"] = s
			case "name":
				crd.Name = "gadgets.example.com"
			}
			DefinitionStrategy{}.PrepareForCreate(crd)
			errs := DefinitionStrategy{}.Validate(crd)
			if !strings.Contains(errs.ToAggregate().Error(), tc.want) {
				t.Fatalf("errors = %v, want one containing %q", errs, tc.want)
			}
		})
	}
}

func TestStatusNames(t *testing.T) {
	now := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	none := func(schema.GroupResource) bool { return false }
	a := widget(t)
	a.Status = Status(a, nil, none, now)
	if !Established(a) || a.Status.AcceptedNames.Plural != "widgets" {
		t.Fatalf("status = %+v", a.Status)
	}
	b := widget(t)
	b.Name, b.Status = "widgets2.example.com", apiextensionsv1.CustomResourceDefinitionStatus{}
	b.Status = Status(b, []*apiextensionsv1.CustomResourceDefinition{a}, none, now)
	if Established(b) {
		t.Fatal("a CRD whose plural is taken was established")
	}
	if c := b.Status.Conditions[0]; c.Type != apiextensionsv1.NamesAccepted || c.Reason != "NameConflict" || c.Message != `"widgets" is already in use` {
		t.Errorf("NamesAccepted = %+v", c)
	}
	builtin := func(gr schema.GroupResource) bool { return gr.Resource == "widgets" }
	c := widget(t)
	c.Status = apiextensionsv1.CustomResourceDefinitionStatus{}
	if c.Status = Status(c, nil, builtin, now); Established(c) {
		t.Fatal("a CRD shadowing a built-in resource was established")
	}
}
