package apiserver

import (
	"net/http"
	"runtime"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/version"

	"github.com/svcnet/svcnet/internal/registry"
)

// kubeVersion is the Kubernetes API level svcnet speaks.
const kubeVersion = "v1.37.2"

func versionInfo(v string) version.Info {
	return version.Info{Major: "1", Minor: "37", GitVersion: kubeVersion + "+svcnet-" + strings.TrimPrefix(v, "v"),
		GoVersion: runtime.Version(), Compiler: runtime.Compiler, Platform: runtime.GOOS + "/" + runtime.GOARCH}
}

var allVerbs = metav1.Verbs{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}

// resourceList is the discovery document of one group/version.
func (s *Server) resourceList(gv schema.GroupVersion) (*metav1.APIResourceList, bool) {
	out := &metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: gv.String()}
	for _, r := range s.reg.All() {
		res, legacy := s.reg.Lookup(gv, r.Resource)
		if res != r {
			continue
		}
		ar := metav1.APIResource{Name: r.Resource, SingularName: r.Singular, Namespaced: r.Namespaced, Kind: r.Kind, Verbs: allVerbs}
		if legacy == nil { // short names and categories belong to the current version only
			ar.ShortNames, ar.Categories = r.ShortNames, r.Categories
		}
		out.APIResources = append(out.APIResources, ar)
		if r.HasStatus {
			out.APIResources = append(out.APIResources, metav1.APIResource{Name: r.Resource + "/status", Namespaced: r.Namespaced,
				Kind: r.Kind, Verbs: metav1.Verbs{"get", "patch", "update"}})
		}
		if hasScale(r) && legacy == nil {
			out.APIResources = append(out.APIResources, metav1.APIResource{Name: r.Resource + "/scale", Namespaced: r.Namespaced,
				Group: "autoscaling", Version: "v1", Kind: "Scale", Verbs: metav1.Verbs{"get", "patch", "update"}})
		}
		if r.Resource == "pods" {
			out.APIResources = append(out.APIResources, metav1.APIResource{Name: "pods/binding", Namespaced: true, Kind: "Binding", Verbs: metav1.Verbs{"create"}},
				metav1.APIResource{Name: "pods/eviction", Namespaced: true, Group: "policy", Version: "v1", Kind: "Eviction", Verbs: metav1.Verbs{"create"}},
				metav1.APIResource{Name: "pods/log", Namespaced: true, Kind: "Pod", Verbs: metav1.Verbs{"get"}},
				metav1.APIResource{Name: "pods/exec", Namespaced: true, Kind: "PodExecOptions", Verbs: metav1.Verbs{"create", "get"}},
				metav1.APIResource{Name: "pods/attach", Namespaced: true, Kind: "PodAttachOptions", Verbs: metav1.Verbs{"create", "get"}},
				metav1.APIResource{Name: "pods/portforward", Namespaced: true, Kind: "PodPortForwardOptions", Verbs: metav1.Verbs{"create", "get"}})
		}
		if kind := proxyKinds[r.Resource]; kind != "" && legacy == nil {
			out.APIResources = append(out.APIResources, metav1.APIResource{Name: r.Resource + "/proxy", Namespaced: r.Namespaced, Kind: kind,
				Verbs: metav1.Verbs{"create", "delete", "get", "patch", "update"}})
		}
		if r.Resource == "serviceaccounts" && s.cfg.ServiceAccountKey != nil {
			out.APIResources = append(out.APIResources, metav1.APIResource{Name: "serviceaccounts/token", Namespaced: true,
				Group: "authentication.k8s.io", Version: "v1", Kind: "TokenRequest", Verbs: metav1.Verbs{"create"}})
		}
		if r.Resource == "namespaces" {
			out.APIResources = append(out.APIResources, metav1.APIResource{Name: "namespaces/finalize", Kind: "Namespace", Verbs: metav1.Verbs{"update"}})
		}
	}
	out.APIResources = append(out.APIResources, reviewDiscovery(gv)...)
	return out, len(out.APIResources) > 0
}

// groups returns API groups (not the core group) with their versions, the storage
// version preferred.
func (s *Server) groups() []metav1.APIGroup {
	var out []metav1.APIGroup
	idx := map[string]int{}
	add := func(gv schema.GroupVersion, preferred bool) {
		i, ok := idx[gv.Group]
		if !ok {
			i = len(out)
			idx[gv.Group] = i
			out = append(out, metav1.APIGroup{TypeMeta: metav1.TypeMeta{Kind: "APIGroup", APIVersion: "v1"}, Name: gv.Group})
		}
		g := &out[i]
		for _, v := range g.Versions {
			if v.Version == gv.Version {
				return
			}
		}
		gvd := metav1.GroupVersionForDiscovery{GroupVersion: gv.String(), Version: gv.Version}
		g.Versions = append(g.Versions, gvd)
		if preferred || g.PreferredVersion.Version == "" {
			g.PreferredVersion = gvd
		}
	}
	for _, r := range s.reg.All() {
		if r.Group != "" {
			add(r.GroupVersion(), true)
		}
	}
	for _, r := range s.reg.All() {
		for _, l := range r.Legacy {
			add(l.GroupVersion, false)
		}
	}
	add(accessReviewGV, true)
	add(selfReviewGV, true)
	return out
}

func (s *Server) serveDiscovery(w http.ResponseWriter, r *http.Request, path string) {
	addr := []metav1.ServerAddressByClientCIDR{{ClientCIDR: "0.0.0.0/0", ServerAddress: r.Host}}
	switch path {
	case "/api":
		writeJSON(w, http.StatusOK, metav1.APIVersions{TypeMeta: metav1.TypeMeta{Kind: "APIVersions"}, Versions: []string{"v1"}, ServerAddressByClientCIDRs: addr})
		return
	case "/apis":
		writeJSON(w, http.StatusOK, metav1.APIGroupList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"}, Groups: s.groups()})
		return
	case "/api/v1":
		l, _ := s.resourceList(schema.GroupVersion{Version: "v1"})
		writeJSON(w, http.StatusOK, l)
		return
	}
	parts := strings.Split(strings.TrimPrefix(path, "/apis/"), "/")
	if len(parts) == 1 {
		for _, g := range s.groups() {
			if g.Name == parts[0] {
				writeJSON(w, http.StatusOK, g)
				return
			}
		}
	} else if l, ok := s.resourceList(schema.GroupVersion{Group: parts[0], Version: parts[1]}); ok {
		writeJSON(w, http.StatusOK, l)
		return
	}
	writeStatus(w, http.StatusNotFound, "NotFound", "the server could not find the requested resource")
}

// servedAt lists the resources served at gv and whether each is a legacy version.
func (s *Server) servedAt(gv schema.GroupVersion) []*registry.Resource {
	var out []*registry.Resource
	for _, r := range s.reg.All() {
		if res, _ := s.reg.Lookup(gv, r.Resource); res == r {
			out = append(out, r)
		}
	}
	return out
}
