package apiserver

import (
	"encoding/json"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/svcnet/svcnet/internal/printers"
)

// tableRow prints o, an object in the request's version. The printers know the
// storage version only, so other versions (apps/v1beta1 Deployments,
// events.k8s.io/v1 Events) are printed from their storage form, and embed the
// object in the version the client asked for.
func tableRow(q *request, o runtime.Object, now time.Time) (metav1.TableRow, error) {
	if q.legacy == nil {
		return printers.Row(q.res.Kind, o, q.accept.includeObject, now)
	}
	stored, err := q.legacy.ToStorage(o.DeepCopyObject())
	if err != nil {
		return metav1.TableRow{}, err
	}
	row, err := printers.Row(q.res.Kind, stored, q.accept.includeObject, now)
	if err != nil || q.accept.includeObject != "Object" {
		return row, err
	}
	row.Object.Raw, err = json.Marshal(o)
	return row, err
}
