package apiserver

import (
	"errors"
	"net/http"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/svcnet/svcnet/internal/auth"
	"github.com/svcnet/svcnet/internal/rbac"
)

// Reviews are create-only virtual resources, authorized like any resource and
// never stored: `kubectl auth can-i` posts a SelfSubjectAccessReview (with
// --list a SelfSubjectRulesReview), `kubectl auth whoami` a SelfSubjectReview;
// SubjectAccessReview and LocalSubjectAccessReview ask about someone else.

var (
	accessReviewGV = authorizationv1.SchemeGroupVersion
	selfReviewGV   = authenticationv1.SchemeGroupVersion
)

// reviewDiscovery lists the review resources for the discovery documents.
func reviewDiscovery(gv schema.GroupVersion) []metav1.APIResource {
	create := metav1.Verbs{"create"}
	switch gv {
	case accessReviewGV:
		return []metav1.APIResource{
			{Name: "localsubjectaccessreviews", SingularName: "localsubjectaccessreview", Namespaced: true, Kind: "LocalSubjectAccessReview", Verbs: create},
			{Name: "selfsubjectaccessreviews", SingularName: "selfsubjectaccessreview", Kind: "SelfSubjectAccessReview", Verbs: create},
			{Name: "selfsubjectrulesreviews", SingularName: "selfsubjectrulesreview", Kind: "SelfSubjectRulesReview", Verbs: create},
			{Name: "subjectaccessreviews", SingularName: "subjectaccessreview", Kind: "SubjectAccessReview", Verbs: create},
		}
	case selfReviewGV:
		return []metav1.APIResource{{Name: "selfsubjectreviews", SingularName: "selfsubjectreview", Kind: "SelfSubjectReview", Verbs: create}}
	}
	return nil
}

// reviewPath parses a review URL into its group/version, resource and namespace.
func reviewPath(path string) (gv schema.GroupVersion, resource, ns string, ok bool) {
	for _, g := range []schema.GroupVersion{accessReviewGV, selfReviewGV} {
		rest, found := strings.CutPrefix(path, "/apis/"+g.String()+"/")
		if !found {
			continue
		}
		parts := strings.Split(rest, "/")
		if len(parts) == 3 && parts[0] == "namespaces" && parts[2] == "localsubjectaccessreviews" && g == accessReviewGV {
			return g, parts[2], parts[1], true
		}
		if len(parts) == 1 {
			for _, r := range reviewDiscovery(g) {
				if r.Name == parts[0] && !r.Namespaced {
					return g, r.Name, "", true
				}
			}
		}
	}
	return schema.GroupVersion{}, "", "", false
}

// serveReview answers a review; false when path is not one.
func (s *Server) serveReview(w http.ResponseWriter, r *http.Request, user *auth.User, path string) bool {
	gv, resource, ns, ok := reviewPath(path)
	if !ok {
		return false
	}
	if r.Method != http.MethodPost {
		writeStatus(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "only create is supported on "+path)
		return true
	}
	a := auth.Attributes{User: user, Verb: "create", APIGroup: gv.Group, Resource: resource, Namespace: ns}
	if ok, reason := s.authorize(a); !ok {
		writeError(w, forbidden(a, reason))
		return true
	}
	var kind string
	for _, d := range reviewDiscovery(gv) {
		if d.Name == resource {
			kind = d.Kind
		}
	}
	gvk := gv.WithKind(kind)
	body, err := readBody(r)
	if err != nil {
		writeError(w, err)
		return true
	}
	obj, err := Scheme.New(gvk)
	if err != nil {
		writeError(w, err)
		return true
	}
	if _, err := decodeInto(body, mediaType(r), gvk, obj, r.URL.Query().Get("fieldValidation")); err != nil {
		writeError(w, err)
		return true
	}
	out, err := s.review(obj, user, ns)
	if err != nil {
		writeError(w, err)
		return true
	}
	writeEncoded(w, http.StatusCreated, negotiate(r), setKind(out, gvk))
	return true
}

// review fills the status of a decoded review.
func (s *Server) review(obj runtime.Object, user *auth.User, ns string) (runtime.Object, error) {
	switch in := obj.(type) {
	case *authenticationv1.SelfSubjectReview:
		in.Status = authenticationv1.SelfSubjectReviewStatus{
			UserInfo: authenticationv1.UserInfo{Username: user.Name, UID: user.UID, Groups: user.Groups, Extra: extraValues(user.Extra)}}
	case *authorizationv1.SelfSubjectAccessReview:
		if err := oneOfAttributes("SelfSubjectAccessReview", in.Spec.ResourceAttributes, in.Spec.NonResourceAttributes); err != nil {
			return nil, err
		}
		in.Status = s.accessReview(user, in.Spec.ResourceAttributes, in.Spec.NonResourceAttributes)
	case *authorizationv1.SubjectAccessReview:
		if err := s.checkSubjectReview("SubjectAccessReview", &in.Spec, ""); err != nil {
			return nil, err
		}
		in.Status = s.accessReview(reviewedUser(&in.Spec), in.Spec.ResourceAttributes, in.Spec.NonResourceAttributes)
	case *authorizationv1.LocalSubjectAccessReview:
		if in.Namespace == "" {
			in.Namespace = ns
		}
		if err := s.checkSubjectReview("LocalSubjectAccessReview", &in.Spec, in.Namespace); err != nil {
			return nil, err
		}
		in.Status = s.accessReview(reviewedUser(&in.Spec), in.Spec.ResourceAttributes, in.Spec.NonResourceAttributes)
	case *authorizationv1.SelfSubjectRulesReview:
		in.Status = s.rulesReview(user, in.Spec.Namespace)
	}
	return obj, nil
}

func oneOfAttributes(kind string, ra *authorizationv1.ResourceAttributes, na *authorizationv1.NonResourceAttributes) error {
	if (ra == nil) == (na == nil) {
		return apierrors.NewInvalid(accessReviewGV.WithKind(kind).GroupKind(), "", field.ErrorList{
			field.Invalid(field.NewPath("spec", "resourceAttributes"), ra, "exactly one of nonResourceAttributes or resourceAttributes must be specified")})
	}
	return nil
}

// checkSubjectReview validates the spec of a (Local)SubjectAccessReview; ns is
// the namespace of a local one, which its attributes must name.
func (s *Server) checkSubjectReview(kind string, spec *authorizationv1.SubjectAccessReviewSpec, ns string) error {
	if err := oneOfAttributes(kind, spec.ResourceAttributes, spec.NonResourceAttributes); err != nil {
		return err
	}
	gk := accessReviewGV.WithKind(kind).GroupKind()
	if spec.User == "" && len(spec.Groups) == 0 {
		return apierrors.NewInvalid(gk, "", field.ErrorList{field.Invalid(field.NewPath("spec", "user"), spec.User, "at least one of user or group must be specified")})
	}
	if kind != "LocalSubjectAccessReview" {
		return nil
	}
	if spec.NonResourceAttributes != nil {
		return apierrors.NewInvalid(gk, "", field.ErrorList{field.Invalid(field.NewPath("spec", "nonResourceAttributes"), spec.NonResourceAttributes, "disallowed on this kind of request")})
	}
	if spec.ResourceAttributes.Namespace != ns {
		return apierrors.NewInvalid(gk, "", field.ErrorList{field.Invalid(field.NewPath("spec", "resourceAttributes", "namespace"), spec.ResourceAttributes.Namespace, "must match metadata.namespace")})
	}
	return nil
}

func reviewedUser(spec *authorizationv1.SubjectAccessReviewSpec) *auth.User {
	u := &auth.User{Name: spec.User, UID: spec.UID, Groups: spec.Groups}
	if len(spec.Extra) > 0 {
		u.Extra = map[string][]string{}
		for k, v := range spec.Extra {
			u.Extra[k] = v
		}
	}
	return u
}

// accessReview decides the attributes of a review for user.
func (s *Server) accessReview(user *auth.User, ra *authorizationv1.ResourceAttributes, na *authorizationv1.NonResourceAttributes) authorizationv1.SubjectAccessReviewStatus {
	a := auth.Attributes{User: user}
	if ra != nil {
		a.Verb, a.APIGroup, a.Resource, a.Subresource, a.Namespace, a.Name = ra.Verb, ra.Group, ra.Resource, ra.Subresource, ra.Namespace, ra.Name
	} else {
		a.Verb, a.Path = na.Verb, na.Path
	}
	allowed, reason := s.authorize(a)
	return authorizationv1.SubjectAccessReviewStatus{Allowed: allowed, Reason: reason}
}

// rulesReview lists what user may do in ns (kubectl auth can-i --list).
func (s *Server) rulesReview(user *auth.User, ns string) authorizationv1.SubjectRulesReviewStatus {
	authz := rbac.Authorizer{Source: s.rbac}
	rules, errs := authz.RulesFor(rbacUser(user), ns)
	st := authorizationv1.SubjectRulesReviewStatus{ResourceRules: []authorizationv1.ResourceRule{}, NonResourceRules: []authorizationv1.NonResourceRule{}}
	for _, r := range rules {
		if len(r.NonResourceURLs) > 0 {
			st.NonResourceRules = append(st.NonResourceRules, authorizationv1.NonResourceRule{Verbs: r.Verbs, NonResourceURLs: r.NonResourceURLs})
		} else {
			st.ResourceRules = append(st.ResourceRules, authorizationv1.ResourceRule{Verbs: r.Verbs, APIGroups: r.APIGroups, Resources: r.Resources, ResourceNames: r.ResourceNames})
		}
	}
	if _, isNode := user.NodeName(); isNode {
		st.Incomplete = true // the Node authorizer cannot list its rules
	}
	if len(errs) > 0 {
		st.EvaluationError = errors.Join(errs...).Error()
	}
	return st
}

func extraValues(in map[string][]string) map[string]authenticationv1.ExtraValue {
	if len(in) == 0 {
		return nil
	}
	out := make(map[string]authenticationv1.ExtraValue, len(in))
	for k, v := range in {
		out[k] = v
	}
	return out
}
