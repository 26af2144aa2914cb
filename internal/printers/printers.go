// Package printers turns API objects into the server-side Tables that `kubectl get`
// prints, with the same columns and cell formats as Kubernetes' own printers.
package printers

import (
	"encoding/json"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
)

// column is one table column: name, type and whether only -o wide shows it.
type column struct {
	name, typ string
	wide      bool
}

// printer renders one kind.
type printer struct {
	columns []column
	cells   func(obj runtime.Object, now time.Time) []any
}

var printers = map[string]printer{}

func register(kind string, cols []column, cells func(runtime.Object, time.Time) []any) {
	printers[kind] = printer{columns: cols, cells: cells}
}

var defaultPrinter = printer{
	columns: []column{{"Name", "string", false}, {"Age", "string", false}},
	cells: func(obj runtime.Object, now time.Time) []any {
		m, _ := meta.Accessor(obj)
		return []any{m.GetName(), age(m.GetCreationTimestamp(), now)}
	},
}

// registerCreatedAt gives kinds Kubernetes' default table: NAME, CREATED AT.
func registerCreatedAt(kinds ...string) {
	cols := []column{{"Name", "string", false}, {"Created At", "date", false}}
	for _, kind := range kinds {
		register(kind, cols, func(obj runtime.Object, _ time.Time) []any {
			m, _ := meta.Accessor(obj)
			return []any{m.GetName(), m.GetCreationTimestamp().UTC().Format(time.RFC3339)}
		})
	}
}

func age(t metav1.Time, now time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(now.Sub(t.Time))
}

func lookup(kind string) printer {
	if p, ok := printers[kind]; ok {
		return p
	}
	return defaultPrinter
}

// Columns returns the column definitions for kind.
func Columns(kind string) []metav1.TableColumnDefinition {
	p := lookup(kind)
	out := make([]metav1.TableColumnDefinition, len(p.columns))
	for i, c := range p.columns {
		out[i] = metav1.TableColumnDefinition{Name: c.name, Type: c.typ}
		if c.name == "Name" {
			out[i].Format = "name"
			out[i].Description = "Name must be unique within a namespace."
		}
		if c.wide {
			out[i].Priority = 1
		}
	}
	return out
}

// Row renders one object of kind. include is the includeObject option: None,
// Metadata (PartialObjectMetadata, the default) or Object (objJSON as given).
func Row(kind string, obj runtime.Object, include string, now time.Time) (metav1.TableRow, error) {
	row := metav1.TableRow{Cells: lookup(kind).cells(obj, now)}
	switch include {
	case "None":
	case "Object":
		raw, err := json.Marshal(obj)
		if err != nil {
			return row, err
		}
		row.Object.Raw = raw
	default:
		pm := metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "PartialObjectMetadata"}}
		acc, ok := obj.(metav1.ObjectMetaAccessor)
		if !ok {
			return row, fmt.Errorf("object %T has no metadata", obj)
		}
		om := acc.GetObjectMeta().(*metav1.ObjectMeta)
		pm.ObjectMeta = *om.DeepCopy()
		pm.ManagedFields = nil
		raw, err := json.Marshal(pm)
		if err != nil {
			return row, err
		}
		row.Object.Raw = raw
	}
	return row, nil
}
