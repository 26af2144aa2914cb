package history

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
)

func template(image string) *corev1.PodTemplateSpec {
	return &corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: image}}}}
}

func set(image string, limit int32, live ...string) Set {
	t := template(image)
	data, _ := Data(t)
	return Set{Name: "web", Template: t, Data: data, Limit: limit,
		Live: func(r *appsv1.ControllerRevision) bool { return slices.Contains(live, r.Name) }}
}

// rev is a stored revision of image's template.
func rev(name, image string, n int64) *appsv1.ControllerRevision {
	data, _ := Data(template(image))
	return &appsv1.ControllerRevision{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{HashLabel: name}},
		Data: runtime.RawExtension{Raw: data}, Revision: n}
}

func names(rs []*appsv1.ControllerRevision) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Name)
	}
	return out
}

func TestData(t *testing.T) {
	data, err := Data(template("nginx"))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Spec struct {
			Template map[string]any `json:"template"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(data, &got); err != nil || got.Spec.Template["$patch"] != "replace" || got.Spec.Template["spec"] == nil {
		t.Fatalf("data %s (%v): want the template under spec.template with $patch replace", data, err)
	}
	back, err := Template(rev("a", "nginx", 1))
	if err != nil || back.Spec.Containers[0].Image != "nginx" || back.Labels["app"] != "web" {
		t.Fatalf("template read back: %v %v", back, err)
	}
	if _, err := Template(&appsv1.ControllerRevision{Data: runtime.RawExtension{Raw: []byte(`{"spec":{}}`)}}); err == nil {
		t.Fatal("a revision without a template was read")
	}
}

func TestPlan(t *testing.T) {
	for _, tc := range []struct {
		name     string
		set      Set
		revs     []*appsv1.ControllerRevision
		current  string // "" = a new one
		number   int64
		renumber bool
		dups     []string
		deleted  []string
	}{
		{"first revision", set("v1", 10), nil, "", 1, false, nil, nil},
		{"unchanged", set("v1", 10), []*appsv1.ControllerRevision{rev("a", "v1", 1)}, "a", 1, false, nil, nil},
		{"new template", set("v2", 10), []*appsv1.ControllerRevision{rev("a", "v1", 1)}, "", 2, false, nil, nil},
		{"rollback renumbers the old revision", set("v1", 10), []*appsv1.ControllerRevision{rev("a", "v1", 1), rev("b", "v2", 2)},
			"a", 3, true, nil, nil},
		{"duplicates: the highest kept", func() Set { s := set("v1", 10); s.Dedupe = true; return s }(),
			[]*appsv1.ControllerRevision{rev("a", "v1", 1), rev("b", "v1", 2)}, "b", 2, false, []string{"a"}, nil},
		{"duplicates kept without dedupe", set("v1", 10), []*appsv1.ControllerRevision{rev("a", "v1", 1), rev("b", "v1", 2)},
			"b", 2, false, nil, nil},
		{"history limit: oldest dead go", set("v4", 1, "b"),
			[]*appsv1.ControllerRevision{rev("c", "v3", 3), rev("a", "v1", 1), rev("b", "v2", 2), rev("d", "v4", 4)},
			"d", 4, false, nil, []string{"a"}},
		{"history limit 0", set("v3", 0),
			[]*appsv1.ControllerRevision{rev("a", "v1", 1), rev("b", "v2", 2)}, "", 3, false, nil, []string{"a", "b"}},
	} {
		d := Plan(tc.set, tc.revs)
		cur := d.Current.Name
		if tc.current == "" {
			cur = ""
			if !d.New || d.Current.Name != "web-"+d.Current.Labels[HashLabel] || d.Current.Labels["app"] != "web" {
				t.Errorf("%s: new %v %s labels %v, want a new web-<hash> with the template's labels", tc.name, d.New, d.Current.Name, d.Current.Labels)
			}
		}
		if cur != tc.current || d.Current.Revision != tc.number || d.Renumber != tc.renumber ||
			!slices.Equal(names(d.Dups), tc.dups) || !slices.Equal(names(d.Delete), tc.deleted) {
			t.Errorf("%s: current %q #%d renumber %v dups %v deleted %v; want %q #%d %v %v %v", tc.name, cur, d.Current.Revision,
				d.Renumber, names(d.Dups), names(d.Delete), tc.current, tc.number, tc.renumber, tc.dups, tc.deleted)
		}
	}
}

// Sync creates the revision once, owned by the set; a name held by another
// template's revision is a collision.
func TestSync(t *testing.T) {
	ctx := context.Background()
	owner := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: types.UID("uid-1")}}
	gvk := appsv1.SchemeGroupVersion.WithKind("DaemonSet")
	client := fake.NewClientset()
	revs := informers.NewSharedInformerFactory(client, 0).Apps().V1().ControllerRevisions()
	st := Store{Client: client, Revisions: revs.Lister()}
	s := set("v1", 10)
	cur, err := st.Sync(ctx, owner, gvk, labels.Everything(), s, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ref := metav1.GetControllerOf(cur); ref == nil || ref.UID != owner.UID || cur.Namespace != "ns" || cur.Revision != 1 {
		t.Fatalf("created %+v", cur.ObjectMeta)
	}
	// the cache has not seen it: the create finds it and takes it
	again, err := st.Sync(ctx, owner, gvk, labels.Everything(), s, nil)
	if err != nil || again.Name != cur.Name {
		t.Fatalf("second sync: %v %v", again, err)
	}
	// another template's revision under the wanted name
	other := set("v2", 10)
	name := "web-" + Plan(other, nil).Current.Labels[HashLabel]
	taken := rev(name, "v9", 1)
	taken.Namespace, taken.OwnerReferences = "ns", []metav1.OwnerReference{*metav1.NewControllerRef(owner, gvk)}
	if _, err := client.AppsV1().ControllerRevisions("ns").Create(ctx, taken, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Sync(ctx, owner, gvk, labels.Everything(), other, nil); err != ErrCollision {
		t.Fatalf("collision: %v", err)
	}
	// once in the cache, a deleted revision past the limit is removed
	for _, r := range []*appsv1.ControllerRevision{cur, taken} {
		got, _ := client.AppsV1().ControllerRevisions("ns").Get(ctx, r.Name, metav1.GetOptions{})
		_ = revs.Informer().GetIndexer().Add(got)
	}
	if _, err := st.Sync(ctx, owner, gvk, labels.Everything(), set("v3", 0), nil); err != nil {
		t.Fatal(err)
	}
	list, _ := client.AppsV1().ControllerRevisions("ns").List(ctx, metav1.ListOptions{})
	if len(list.Items) != 1 || list.Items[0].Revision != 2 {
		t.Fatalf("after a sync with history limit 0: %d revisions %v", len(list.Items), list.Items)
	}
}
