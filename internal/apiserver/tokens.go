package apiserver

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/svcnet/svcnet/internal/auth"
)

// TokenRequest limits and defaults, as kube-apiserver applies them.
const (
	defaultTokenSeconds = 3600
	minTokenSeconds     = 600
	maxTokenSeconds     = 1 << 32
	// kubeletTokenSeconds is what the ServiceAccount admission asks for in the
	// kube-api-access volume. Pod-bound tokens asked for exactly this long with
	// the API audiences live a year, with warnafter at the hour (kube-apiserver's
	// --service-account-extend-token-expiration, on by default), so clients that
	// never re-read the file keep working while the agent renews it hourly.
	kubeletTokenSeconds  = 3607
	extendedTokenSeconds = 365 * 24 * 3600
)

var tokenRequestGVK = authenticationv1.SchemeGroupVersion.WithKind("TokenRequest")

// handleToken serves POST serviceaccounts/NAME/token: a TokenRequest signed with
// the service account key, optionally bound to a Pod, Secret or Node.
func (s *Server) handleToken(q *request) error {
	if q.verb != "create" {
		return apierrors.NewMethodNotSupported(q.res.GroupResource(), q.r.Method)
	}
	if s.cfg.ServiceAccountKey == nil {
		return apierrors.NewServiceUnavailable("service account tokens are not configured")
	}
	body, err := readBody(q.r)
	if err != nil {
		return err
	}
	tr := &authenticationv1.TokenRequest{}
	if _, err := decodeInto(body, mediaType(q.r), tokenRequestGVK, tr, q.r.URL.Query().Get("fieldValidation")); err != nil {
		return err
	}
	if tr.Name != "" && tr.Name != q.name {
		return apierrors.NewInvalid(tokenRequestGVK.GroupKind(), q.name, field.ErrorList{
			field.Invalid(field.NewPath("metadata", "name"), tr.Name, "must match the service account name if specified")})
	}
	if tr.Namespace != "" && tr.Namespace != q.ns {
		return apierrors.NewInvalid(tokenRequestGVK.GroupKind(), q.name, field.ErrorList{
			field.Invalid(field.NewPath("metadata", "namespace"), tr.Namespace, "must match the service account namespace if specified")})
	}
	ctx := q.r.Context()
	obj, _, err := s.get(ctx, q.res, q.ns, q.name)
	if err != nil {
		return err
	}
	sa := obj.(*corev1.ServiceAccount)
	if len(tr.Spec.Audiences) == 0 {
		tr.Spec.Audiences = s.cfg.APIAudiences
	}
	if tr.Spec.ExpirationSeconds == nil {
		secs := int64(defaultTokenSeconds)
		tr.Spec.ExpirationSeconds = &secs
	}
	tr.Name, tr.Namespace = sa.Name, sa.Namespace
	now := s.now()
	tr.CreationTimestamp = metav1.NewTime(now.Truncate(time.Second))
	tr.Status = authenticationv1.TokenRequestStatus{}
	if errs := validateTokenRequest(tr); len(errs) > 0 {
		return apierrors.NewInvalid(tokenRequestGVK.GroupKind(), "", errs)
	}
	if node, ok := q.user.NodeName(); ok && !q.user.In(auth.GroupMasters) {
		if err := s.admitNodeToken(ctx, node, q.name, q.ns, tr); err != nil {
			return err
		}
	}
	c := auth.TokenClaims{Namespace: sa.Namespace, Name: sa.Name, UID: string(sa.UID), Audiences: tr.Spec.Audiences,
		IssuedAt: now, ID: string(uuid.NewUUID())}
	if ref := tr.Spec.BoundObjectRef; ref != nil {
		if err := s.bindToken(ctx, q.ns, q.name, ref, &c); err != nil {
			return err
		}
	}
	secs := *tr.Spec.ExpirationSeconds
	c.Expiry = now.Add(time.Duration(secs) * time.Second)
	if c.Pod != nil && secs == kubeletTokenSeconds && apiAudiences(tr.Spec.Audiences, s.cfg.APIAudiences) {
		c.WarnAfter, c.Expiry = c.Expiry, now.Add(extendedTokenSeconds*time.Second)
	}
	token, err := s.cfg.ServiceAccountKey.Sign(s.cfg.ServiceAccountIssuer, c)
	if err != nil {
		return apierrors.NewInternalError(fmt.Errorf("failed to generate token: %w", err))
	}
	// The status names the requested lifetime, also when the token lives longer.
	tr.Status = authenticationv1.TokenRequestStatus{Token: token, ExpirationTimestamp: metav1.NewTime(now.Add(time.Duration(secs) * time.Second))}
	writeEncoded(q.w, http.StatusCreated, q.accept, setKind(tr, tokenRequestGVK))
	return nil
}

// validateTokenRequest checks the lifetime with Kubernetes' messages.
func validateTokenRequest(tr *authenticationv1.TokenRequest) field.ErrorList {
	var errs field.ErrorList
	p := field.NewPath("spec", "expirationSeconds")
	switch secs := *tr.Spec.ExpirationSeconds; {
	case secs < minTokenSeconds:
		errs = append(errs, field.Invalid(p, secs, "may not specify a duration less than 10 minutes"))
	case secs > maxTokenSeconds:
		errs = append(errs, field.Invalid(p, secs, "may not specify a duration larger than 2^32 seconds"))
	}
	return errs
}

// apiAudiences says whether every audience in auds is one of the server's.
func apiAudiences(auds, server []string) bool {
	for _, a := range auds {
		if !slices.Contains(server, a) {
			return false
		}
	}
	return true
}

// bindToken looks up the object a token is bound to and records it in c: a Pod
// running as the service account (with its node), a Secret, or a Node.
func (s *Server) bindToken(ctx context.Context, ns, saName string, ref *authenticationv1.BoundObjectReference, c *auth.TokenClaims) error {
	gvk := schema.FromAPIVersionAndKind(ref.APIVersion, ref.Kind)
	var uid types.UID
	switch {
	case gvk.Group == "" && gvk.Kind == "Pod":
		obj, _, err := s.get(ctx, s.res("", "pods"), ns, ref.Name)
		if err != nil {
			return err
		}
		pod := obj.(*corev1.Pod)
		if pod.Spec.ServiceAccountName != saName {
			return apierrors.NewBadRequest(fmt.Sprintf("cannot bind token for serviceaccount %q to pod running with different serviceaccount name.", saName))
		}
		uid = pod.UID
		c.Pod = &auth.BoundObject{Name: pod.Name, UID: string(pod.UID)}
		if n := pod.Spec.NodeName; n != "" {
			c.Node = &auth.BoundObject{Name: n} // a missing Node still leaves its name
			if obj, _, err := s.get(ctx, s.res("", "nodes"), "", n); err == nil {
				c.Node.UID = string(accessor(obj).GetUID())
			} else if !apierrors.IsNotFound(err) {
				return apierrors.NewInternalError(err)
			}
		}
	case gvk.Group == "" && gvk.Kind == "Secret":
		obj, _, err := s.get(ctx, s.res("", "secrets"), ns, ref.Name)
		if err != nil {
			return err
		}
		uid = accessor(obj).GetUID()
		c.Secret = &auth.BoundObject{Name: ref.Name, UID: string(uid)}
	case gvk.Group == "" && gvk.Kind == "Node":
		obj, _, err := s.get(ctx, s.res("", "nodes"), "", ref.Name)
		if err != nil {
			return err
		}
		uid = accessor(obj).GetUID()
		c.Node = &auth.BoundObject{Name: ref.Name, UID: string(uid)}
	default:
		return apierrors.NewBadRequest(fmt.Sprintf("cannot bind token to object of type %s", gvk.String()))
	}
	if ref.UID != "" && ref.UID != uid {
		return apierrors.NewConflict(schema.GroupResource{Group: gvk.Group, Resource: gvk.Kind}, ref.Name,
			fmt.Errorf("the UID in the bound object reference (%s) does not match the UID in record. The object might have been deleted and then recreated", ref.UID))
	}
	return nil
}

// admitNodeToken lets a node ask only for tokens bound to a pod on it, for
// audiences the pod's volumes name (NodeRestriction in Kubernetes).
func (s *Server) admitNodeToken(ctx context.Context, node, saName, ns string, tr *authenticationv1.TokenRequest) error {
	deny := func(format string, args ...any) error {
		return apierrors.NewForbidden(corev1.Resource("serviceaccounts"), saName, fmt.Errorf(format, args...))
	}
	ref := tr.Spec.BoundObjectRef
	if ref == nil || ref.APIVersion != "v1" || ref.Kind != "Pod" || ref.Name == "" {
		return deny("node requested token not bound to a pod")
	}
	if ref.UID == "" {
		return deny("node requested token with a pod binding without a uid")
	}
	obj, _, err := s.get(ctx, s.res("", "pods"), ns, ref.Name)
	if err != nil {
		return err
	}
	pod := obj.(*corev1.Pod)
	if ref.UID != pod.UID {
		return deny("the UID in the bound object reference (%s) does not match the UID in record. The object might have been deleted and then recreated", ref.UID)
	}
	if pod.Spec.NodeName != node {
		return deny("node requested token bound to a pod scheduled on a different node")
	}
	if len(tr.Spec.Audiences) > 1 {
		return deny("node may only request 0 or 1 audiences")
	}
	for _, aud := range tr.Spec.Audiences {
		if !podNamesAudience(pod, aud, s.cfg.APIAudiences) {
			return deny("audience %q not found in pod spec volume, %s is not authorized to request tokens for this audience", aud, auth.NodeUserPrefix+node)
		}
	}
	return nil
}

// podNamesAudience says whether a projected token volume of pod asks for aud
// (an empty audience there means the API server's).
func podNamesAudience(pod *corev1.Pod, aud string, server []string) bool {
	for _, v := range pod.Spec.Volumes {
		if v.Projected == nil {
			continue
		}
		for _, src := range v.Projected.Sources {
			if t := src.ServiceAccountToken; t != nil && (t.Audience == aud || t.Audience == "" && slices.Contains(server, aud)) {
				return true
			}
		}
	}
	return false
}

// tokenObjects reads what service account tokens name, for the authenticator.
type tokenObjects struct{ s *Server }

var _ auth.Objects = tokenObjects{}

// Object implements auth.Objects.
func (o tokenObjects) Object(ctx context.Context, kind, ns, name string) (string, time.Time, error) {
	var resource string
	switch kind {
	case "ServiceAccount":
		resource = "serviceaccounts"
	case "Pod":
		resource = "pods"
	case "Secret":
		resource = "secrets"
	case "Node":
		resource, ns = "nodes", ""
	default:
		return "", time.Time{}, fmt.Errorf("unknown kind %s", kind)
	}
	obj, _, err := o.s.get(ctx, o.s.res("", resource), ns, name)
	if err != nil {
		return "", time.Time{}, err
	}
	m := accessor(obj)
	var deleting time.Time
	if t := m.GetDeletionTimestamp(); t != nil {
		deleting = t.Time
	}
	return string(m.GetUID()), deleting, nil
}
