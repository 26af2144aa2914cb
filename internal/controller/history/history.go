// Package history keeps the ControllerRevisions of a DaemonSet or StatefulSet
// as Kubernetes' controllers do: every distinct pod template the set had is an
// immutable apps/v1 ControllerRevision named <set>-<hash>, labelled with the
// template's labels and controller-revision-hash=<hash>, owned by the set, its
// data the strategic merge patch that puts the template back
// ({"spec":{"template":{...,"$patch":"replace"}}}). The revision whose data is
// the set's template is the current one and has the highest revision number: a
// new template gets max+1, going back to an older one (rollback) renumbers
// that revision instead of making a new one. A name taken by a revision with
// other data is a hash collision: the set's status.collisionCount goes up and
// the sync is tried again. Revisions no pod runs beyond revisionHistoryLimit
// are deleted, oldest first.
//
// Plan decides from the listed revisions and does no I/O; Sync applies it.
package history

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/svcnet/svcnet/internal/controller/workload"
)

// HashLabel is the label naming a revision's hash, on revisions and on pods.
const HashLabel = appsv1.ControllerRevisionHashLabelKey

// ErrCollision says a revision of another template holds the wanted name: the
// caller raises status.collisionCount and syncs again.
var ErrCollision = errors.New("controller revision name collision")

// Data is the revision data of a pod template: the patch that restores it.
func Data(t *corev1.PodTemplateSpec) ([]byte, error) {
	raw, err := json.Marshal(t)
	if err != nil {
		return nil, err
	}
	var tmpl map[string]any
	if err := json.Unmarshal(raw, &tmpl); err != nil {
		return nil, err
	}
	tmpl["$patch"] = "replace"
	return json.Marshal(map[string]any{"spec": map[string]any{"template": tmpl}})
}

// Template reads the pod template back from a revision's data.
func Template(r *appsv1.ControllerRevision) (*corev1.PodTemplateSpec, error) {
	var patch struct {
		Spec struct {
			Template *corev1.PodTemplateSpec `json:"template"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(r.Data.Raw, &patch); err != nil {
		return nil, fmt.Errorf("controller revision %s: %w", r.Name, err)
	}
	if patch.Spec.Template == nil {
		return nil, fmt.Errorf("controller revision %s: no spec.template in its data", r.Name)
	}
	return patch.Spec.Template, nil
}

// Set is what Plan needs of the set whose history it keeps.
type Set struct {
	Name     string
	Template *corev1.PodTemplateSpec
	Data     []byte // Data(Template)
	// Collisions is status.collisionCount, part of the new revision's hash.
	Collisions *int32
	// Limit is spec.revisionHistoryLimit: old revisions no pod runs that are kept.
	Limit int32
	// Live tells the revisions pods still run (and any the set's status names).
	Live func(*appsv1.ControllerRevision) bool
	// Dedupe deletes the other revisions with the current data (the DaemonSet
	// controller does; the StatefulSet one keeps them).
	Dedupe bool
}

// Decision is what one sync does to a set's history.
type Decision struct {
	// Current is the revision of the set's template: an existing one, or New.
	Current  *appsv1.ControllerRevision
	New      bool // Current is to be created
	Renumber bool // Current exists and gets Current.Revision (rollback)
	// Dups are other revisions with the current data (Dedupe): their pods are
	// relabelled to Current's hash, then they are deleted.
	Dups   []*appsv1.ControllerRevision
	Delete []*appsv1.ControllerRevision // past the history limit
}

// Plan decides a sync of the history revs (the revisions the set controls).
func Plan(s Set, revs []*appsv1.ControllerRevision) Decision {
	revs = append([]*appsv1.ControllerRevision(nil), revs...)
	sort.SliceStable(revs, func(a, b int) bool { return revs[a].Revision < revs[b].Revision })
	var equal, old []*appsv1.ControllerRevision
	for _, r := range revs {
		if bytes.Equal(r.Data.Raw, s.Data) {
			equal = append(equal, r)
		} else {
			old = append(old, r)
		}
	}
	var d Decision
	next := int64(1)
	if len(old) > 0 {
		next = old[len(old)-1].Revision + 1
	}
	switch {
	case len(equal) == 0:
		hash := workload.TemplateHash(s.Template, s.Collisions)
		labels := map[string]string{}
		for k, v := range s.Template.Labels {
			labels[k] = v
		}
		labels[HashLabel] = hash
		d.Current, d.New = &appsv1.ControllerRevision{ObjectMeta: metav1.ObjectMeta{Name: s.Name + "-" + hash, Labels: labels},
			Data: runtime.RawExtension{Raw: s.Data}, Revision: next}, true
	default:
		cur := equal[len(equal)-1] // the highest revision
		if s.Dedupe {
			d.Dups = equal[:len(equal)-1]
		} else {
			old = append(old, equal[:len(equal)-1]...)
		}
		if cur.Revision < next {
			cur = cur.DeepCopy()
			cur.Revision, d.Renumber = next, true
		}
		d.Current = cur
	}
	// history limit: the oldest revisions no pod runs go first
	var dead []*appsv1.ControllerRevision
	for _, r := range old {
		if s.Live == nil || !s.Live(r) {
			dead = append(dead, r)
		}
	}
	sort.SliceStable(dead, func(a, b int) bool { return dead[a].Revision < dead[b].Revision })
	if extra := len(dead) - int(max(s.Limit, 0)); extra > 0 {
		d.Delete = append(d.Delete, dead[:extra]...)
	}
	return d
}
