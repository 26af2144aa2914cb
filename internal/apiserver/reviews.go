package apiserver

import (
	"net/http"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/svcnet/svcnet/internal/auth"
)

// Self reviews are create-only virtual resources: `kubectl auth can-i` posts a
// SelfSubjectAccessReview, `kubectl auth whoami` a SelfSubjectReview. Nothing is stored.

var (
	accessReviewGV = authorizationv1.SchemeGroupVersion
	selfReviewGV   = authenticationv1.SchemeGroupVersion
)

// reviewDiscovery lists the review resources for the discovery documents.
func reviewDiscovery(gv schema.GroupVersion) []metav1.APIResource {
	switch gv {
	case accessReviewGV:
		return []metav1.APIResource{{Name: "selfsubjectaccessreviews", SingularName: "selfsubjectaccessreview", Kind: "SelfSubjectAccessReview", Verbs: metav1.Verbs{"create"}}}
	case selfReviewGV:
		return []metav1.APIResource{{Name: "selfsubjectreviews", SingularName: "selfsubjectreview", Kind: "SelfSubjectReview", Verbs: metav1.Verbs{"create"}}}
	}
	return nil
}

// serveReview answers a self review; false when path is not one.
func (s *Server) serveReview(w http.ResponseWriter, r *http.Request, user *auth.User, path string) bool {
	var gvk schema.GroupVersionKind
	switch path {
	case "/apis/" + accessReviewGV.String() + "/selfsubjectaccessreviews":
		gvk = accessReviewGV.WithKind("SelfSubjectAccessReview")
	case "/apis/" + selfReviewGV.String() + "/selfsubjectreviews":
		gvk = selfReviewGV.WithKind("SelfSubjectReview")
	default:
		return false
	}
	if r.Method != http.MethodPost {
		writeStatus(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "only create is supported on "+path)
		return true
	}
	body, err := readBody(r)
	if err != nil {
		writeError(w, err)
		return true
	}
	a := negotiate(r)
	if gvk.Kind == "SelfSubjectReview" {
		out := &authenticationv1.SelfSubjectReview{Status: authenticationv1.SelfSubjectReviewStatus{
			UserInfo: authenticationv1.UserInfo{Username: user.Name, UID: user.UID, Groups: user.Groups, Extra: extraValues(user.Extra)}}}
		writeEncoded(w, http.StatusCreated, a, setKind(out, gvk))
		return true
	}
	in := &authorizationv1.SelfSubjectAccessReview{}
	if _, err := decodeInto(body, mediaType(r), gvk, in, r.URL.Query().Get("fieldValidation")); err != nil {
		writeError(w, err)
		return true
	}
	attrs := auth.Attributes{User: user}
	if ra := in.Spec.ResourceAttributes; ra != nil {
		attrs.Verb, attrs.APIGroup, attrs.Resource, attrs.Subresource, attrs.Namespace, attrs.Name =
			ra.Verb, ra.Group, ra.Resource, ra.Subresource, ra.Namespace, ra.Name
	} else if na := in.Spec.NonResourceAttributes; na != nil {
		attrs.Verb = na.Verb
	}
	allowed, reason := auth.Authorize(attrs)
	in.Status = authorizationv1.SubjectAccessReviewStatus{Allowed: allowed}
	if !allowed {
		in.Status.Reason = reason
	}
	writeEncoded(w, http.StatusCreated, a, setKind(in, gvk))
	return true
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
