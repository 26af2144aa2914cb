package owned

import (
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

func pod(name, kind, owner string, uid types.UID, controller bool) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: map[string]string{"app": "web"}}}
	if owner != "" {
		p.OwnerReferences = []metav1.OwnerReference{{Kind: kind, Name: owner, UID: uid, Controller: &controller}}
	}
	return p
}

func names(pods []*corev1.Pod) string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Name)
	}
	return strings.Join(out, " ")
}

func TestPods(t *testing.T) {
	idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	for _, p := range []*corev1.Pod{
		pod("a", "ReplicaSet", "web", "uid-1", true),
		pod("b", "ReplicaSet", "web", "uid-1", true),
		pod("stale", "ReplicaSet", "web", "uid-0", true),
		pod("not-controller", "ReplicaSet", "web", "uid-1", false),
		pod("bare", "", "", "", false),
	} {
		_ = idx.Add(p)
	}
	other := pod("other-label", "ReplicaSet", "web", "uid-1", true)
	other.Labels = map[string]string{"app": "db"}
	_ = idx.Add(other)
	lister := corelisters.NewPodLister(idx)
	cases := []struct {
		name string
		ns   string
		sel  labels.Selector
		uid  types.UID
		want string
	}{
		{"controlled by uid", "ns", labels.SelectorFromSet(labels.Set{"app": "web"}), "uid-1", "a b"},
		{"everything", "ns", labels.Everything(), "uid-1", "a b other-label"},
		{"old uid", "ns", labels.Everything(), "uid-0", "stale"},
		{"other namespace", "elsewhere", labels.Everything(), "uid-1", ""},
	}
	for _, c := range cases {
		got, err := Pods(lister, c.ns, c.sel, c.uid)
		if err != nil || sortedNames(got) != c.want {
			t.Errorf("%s: got %q %v, want %q", c.name, names(got), err, c.want)
		}
	}
}

func sortedNames(pods []*corev1.Pod) string {
	out := strings.Fields(names(pods))
	sort.Strings(out)
	return strings.Join(out, " ")
}

func TestOwnerKeyAndHandler(t *testing.T) {
	cases := []struct {
		name string
		obj  any
		key  string
	}{
		{"controller of kind", pod("a", "DaemonSet", "agent", "u", true), "ns/agent"},
		{"tombstone", cache.DeletedFinalStateUnknown{Key: "ns/a", Obj: pod("a", "DaemonSet", "agent", "u", true)}, "ns/agent"},
		{"other kind", pod("a", "Job", "agent", "u", true), ""},
		{"owner but not controller", pod("a", "DaemonSet", "agent", "u", false), ""},
		{"no owner", pod("a", "", "", "", false), ""},
		{"not an object", "ns/a", ""},
	}
	for _, c := range cases {
		key, ok := OwnerKey(c.obj, "DaemonSet")
		if key != c.key || ok != (c.key != "") {
			t.Errorf("%s: OwnerKey = %q %v, want %q", c.name, key, ok, c.key)
		}
		var queued, added []string
		h := Handler("DaemonSet", func(k string) { queued = append(queued, k) }, func(k string) { added = append(added, k) })
		h.OnAdd(c.obj, false)
		h.OnUpdate(nil, c.obj)
		h.OnDelete(c.obj)
		want, wantAdded := "", ""
		if c.key != "" {
			want, wantAdded = c.key+" "+c.key+" "+c.key, c.key
		}
		if got := strings.Join(queued, " "); got != want {
			t.Errorf("%s: queued %q, want %q", c.name, got, want)
		}
		if got := strings.Join(added, " "); got != wantAdded {
			t.Errorf("%s: added %q, want %q", c.name, got, wantAdded)
		}
	}
}

func TestExpectations(t *testing.T) {
	t0 := time.Unix(1e9, 0)
	cases := []struct {
		name       string
		adds, dels int
		seenAdds   int
		seenDels   int
		at         time.Duration // after t0
		want       bool
	}{
		{"nothing expected", 0, 0, 0, 0, 0, true},
		{"creations pending", 2, 0, 1, 0, 0, false},
		{"creations seen", 2, 0, 2, 0, 0, true},
		{"deletions pending", 0, 3, 0, 2, 0, false},
		{"both seen", 1, 1, 1, 1, 0, true},
		{"deletions seen, creations not", 1, 1, 0, 1, 0, false},
		{"timed out", 5, 0, 0, 0, 31 * time.Second, true},
		{"not yet timed out", 5, 0, 0, 0, 30 * time.Second, false},
	}
	for _, c := range cases {
		e := Expectations{Timeout: 30 * time.Second}
		e.Expect("ns/a", c.adds, c.dels, t0)
		e.Observe("ns/a", c.seenAdds, c.seenDels)
		e.Observe("ns/other", 1, 1) // nobody waits: no effect
		if got := e.Satisfied("ns/a", t0.Add(c.at)); got != c.want {
			t.Errorf("%s: satisfied %v, want %v", c.name, got, c.want)
		}
		if c.want && !e.Satisfied("ns/a", t0) {
			t.Errorf("%s: a satisfied key is not forgotten", c.name)
		}
	}
	var e Expectations
	if !e.Satisfied("ns/never", t0) {
		t.Error("an unknown key must be satisfied")
	}
}
