package apiserver

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/svcnet/svcnet/internal/auth"
	"github.com/svcnet/svcnet/internal/rbac"
)

// impersonate applies the Impersonate-* headers (kubectl --as, --as-group,
// --as-uid): each requested user, group, uid and extra value needs the verb
// impersonate on users, groups, serviceaccounts, uids or userextras/KEY, as in
// Kubernetes. It returns the user to act as, or false after answering an error.
func (s *Server) impersonate(w http.ResponseWriter, r *http.Request, user *auth.User) (*auth.User, bool) {
	name := r.Header.Get(authenticationv1.ImpersonateUserHeader)
	groups := r.Header.Values(authenticationv1.ImpersonateGroupHeader)
	uid := r.Header.Get(authenticationv1.ImpersonateUIDHeader)
	extra := map[string][]string{}
	for k, v := range r.Header {
		if key, ok := strings.CutPrefix(k, authenticationv1.ImpersonateUserExtraHeaderPrefix); ok {
			unescaped, err := url.PathUnescape(key)
			if err != nil {
				writeError(w, apierrors.NewBadRequest(fmt.Sprintf("malformed extra key for impersonation request: %v", err)))
				return nil, false
			}
			extra[strings.ToLower(unescaped)] = v
		}
	}
	if name == "" {
		if len(groups) > 0 || uid != "" || len(extra) > 0 {
			writeError(w, apierrors.NewBadRequest(fmt.Sprintf("requested %v without impersonating a user", impersonationHeaders(r))))
			return nil, false
		}
		return user, true
	}
	check := func(group, resource, sub, ns, target string) bool {
		a := auth.Attributes{User: user, Verb: "impersonate", APIGroup: group, Resource: resource, Subresource: sub, Namespace: ns, Name: target}
		if ok, reason := s.authorize(a); !ok {
			writeError(w, forbidden(a, reason))
			return false
		}
		return true
	}
	out := &auth.User{Name: name, UID: uid}
	if saNS, saName, ok := strings.Cut(strings.TrimPrefix(name, rbac.ServiceAccountUserPrefix), ":"); ok && strings.HasPrefix(name, rbac.ServiceAccountUserPrefix) {
		if !check("", "serviceaccounts", "", saNS, saName) {
			return nil, false
		}
		out.Groups = append(out.Groups, rbac.ServiceAccountGroups(saNS)...)
	} else if !check("", "users", "", "", name) {
		return nil, false
	}
	for _, g := range groups {
		if !check("", "groups", "", "", g) {
			return nil, false
		}
		if !slices.Contains(out.Groups, g) {
			out.Groups = append(out.Groups, g)
		}
	}
	if uid != "" && !check(authenticationv1.GroupName, "uids", "", "", uid) {
		return nil, false
	}
	for k, vs := range extra {
		for _, v := range vs {
			if !check(authenticationv1.GroupName, "userextras", k, "", v) {
				return nil, false
			}
		}
	}
	if len(extra) > 0 {
		out.Extra = extra
	}
	if name == "system:anonymous" {
		if !slices.Contains(out.Groups, rbac.GroupUnauthenticated) {
			out.Groups = append(out.Groups, rbac.GroupUnauthenticated)
		}
	} else if !slices.Contains(out.Groups, auth.GroupAuthenticated) {
		out.Groups = append(out.Groups, auth.GroupAuthenticated)
	}
	for k := range r.Header {
		if strings.HasPrefix(k, "Impersonate-") {
			r.Header.Del(k)
		}
	}
	return out, true
}

func impersonationHeaders(r *http.Request) []string {
	var out []string
	for k := range r.Header {
		if strings.HasPrefix(k, "Impersonate-") {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}
