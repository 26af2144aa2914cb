package apiserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/uuid"

	"github.com/svcnet/svcnet/internal/auth"
	"github.com/svcnet/svcnet/internal/registry"
	"github.com/svcnet/svcnet/internal/storage"
)

// writeOptions carry who writes and how.
type writeOptions struct {
	user   *auth.User // nil for the server's own writes
	dryRun bool
	sub    string // subresource: "", "status" or "finalize"
	// Field management (apply.go): who writes, in which version, and whether
	// an apply already recorded it or may create a missing object.
	manager                string
	gv                     schema.GroupVersion
	reqSub                 string // the subresource asked for (scale writes the main object)
	applied, createMissing bool
	// fieldValidation is the request's Ignore, Warn (default) or Strict, for the
	// unknown fields of custom resources; warn adds a Warning header.
	fieldValidation string
	warn            func(string)
}

func accessor(obj runtime.Object) metav1.Object {
	m, err := meta.Accessor(obj)
	if err != nil {
		panic(fmt.Sprintf("object %T has no metadata: %v", obj, err))
	}
	return m
}

// key returns the storage key of an object.
func (s *Server) key(res *registry.Resource, ns, name string) string {
	return s.listPrefix(res, ns) + name
}

// listPrefix returns the storage prefix of a resource, within ns when given.
func (s *Server) listPrefix(res *registry.Resource, ns string) string {
	p := s.cfg.Prefix + "/" + res.Resource
	if res.Group != "" {
		p += "." + res.Group
	}
	p += "/"
	if res.Namespaced && ns != "" {
		p += ns + "/"
	}
	return p
}

// Objects are stored as protobuf, as Kubernetes stores its built-in types: about
// five times cheaper to decode than JSON, which is what large lists and watches
// spend their time on. JSON values (written by older versions) still decode.
var storageDecoder runtime.Decoder

// decodeStored reads a stored object and sets its resourceVersion.
// Custom resources are stored as JSON, as Kubernetes stores them, and get their
// schema's defaults on every read.
func decodeStored(res *registry.Resource, kv storage.KV) (runtime.Object, error) {
	into := res.New()
	var obj runtime.Object
	var err error
	if u, ok := into.(*unstructured.Unstructured); ok {
		obj, err = u, u.UnmarshalJSON(kv.Value)
	} else {
		obj, _, err = storageDecoder.Decode(kv.Value, nil, into)
	}
	if err != nil || obj != into {
		return nil, fmt.Errorf("decode stored %s %s: %v", res.Kind, kv.Key, err)
	}
	accessor(obj).SetResourceVersion(strconv.FormatInt(kv.Rev, 10))
	setKind(obj, res.GroupVersion().WithKind(res.Kind))
	if res.Custom != nil {
		res.Custom.Default(obj.(*unstructured.Unstructured), res.Version)
	}
	return obj, nil
}

func encodeStored(res *registry.Resource, obj runtime.Object) ([]byte, error) {
	setKind(obj, res.GroupVersion().WithKind(res.Kind))
	m := accessor(obj)
	rv := m.GetResourceVersion()
	m.SetResourceVersion("")
	defer m.SetResourceVersion(rv)
	if u, ok := obj.(*unstructured.Unstructured); ok {
		return u.MarshalJSON()
	}
	var buf bytes.Buffer
	err := protoSerializer.Encode(obj, &buf)
	return buf.Bytes(), err
}

// get reads one object.
func (s *Server) get(ctx context.Context, res *registry.Resource, ns, name string) (runtime.Object, storage.KV, error) {
	kv, err := s.store.Get(ctx, s.key(res, ns, name))
	if err != nil {
		return nil, kv, storageError(err, res.GroupResource(), name)
	}
	obj, err := decodeStored(res, kv)
	return obj, kv, err
}

// generateName appends five random characters, as Kubernetes does.
func generateName(base string) string {
	const maxLen = 63
	if len(base) > maxLen-5 {
		base = base[:maxLen-5]
	}
	return base + utilrand.String(5)
}

func (s *Server) checkNamespace(ctx context.Context, res *registry.Resource, ns string) error {
	if !res.Namespaced {
		return nil
	}
	exists, terminating, known := s.namespaces.lookup(ns)
	if !known {
		obj, _, err := s.get(ctx, s.res("", "namespaces"), "", ns)
		if err != nil {
			return err
		}
		exists, terminating = true, obj.(*corev1.Namespace).DeletionTimestamp != nil
	}
	if !exists {
		return apierrors.NewNotFound(corev1.Resource("namespaces"), ns)
	}
	if terminating {
		// Kubernetes' NamespaceLifecycle admission names the cause, which controllers check.
		err := apierrors.NewForbidden(res.GroupResource(), "", fmt.Errorf("unable to create new content in namespace %s because it is being terminated", ns))
		err.ErrStatus.Details.Causes = append(err.ErrStatus.Details.Causes, metav1.StatusCause{
			Type: corev1.NamespaceTerminatingCause, Message: fmt.Sprintf("namespace %s is being terminated", ns), Field: "metadata.namespace"})
		return err
	}
	return nil
}

// create stores a new object after defaulting, validation and admission.
func (s *Server) create(ctx context.Context, res *registry.Resource, ns string, obj runtime.Object, wo writeOptions) (runtime.Object, error) {
	m := accessor(obj)
	if res.Namespaced {
		if m.GetNamespace() == "" {
			m.SetNamespace(ns)
		} else if m.GetNamespace() != ns {
			return nil, apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
		}
	} else {
		m.SetNamespace("")
	}
	if err := s.admitNode(ctx, res, obj, nil, wo); err != nil {
		return nil, err
	}
	if err := s.admitRBAC(res, obj, wo); err != nil {
		return nil, err
	}
	if err := s.checkNamespace(ctx, res, m.GetNamespace()); err != nil {
		return nil, err
	}
	if pod, ok := obj.(*corev1.Pod); ok && res.Resource == "pods" {
		if err := s.admitPodServiceAccount(ctx, pod); err != nil {
			return nil, err
		}
	}
	if ing, ok := obj.(*networkingv1.Ingress); ok {
		if err := s.admitIngressClass(ctx, ing); err != nil {
			return nil, err
		}
	}
	if err := admitCustom(res, obj, wo, true); err != nil {
		return nil, err
	}
	admitCSR(res, obj, wo)
	// The uid comes first, as in Kubernetes: strategies may use it (a Job's
	// generated selector names it).
	m.SetUID(types.UID(uuid.NewUUID()))
	res.Strategy.PrepareForCreate(obj)
	obj = s.trackFields(res, wo, nil, obj)
	base := m.GetName()
	pristine := obj
	for attempt := 0; ; attempt++ {
		// Each attempt starts from the request as defaulted: a retry after losing
		// a claim race must pick values afresh, not treat the lost ones as requested.
		obj := pristine.DeepCopyObject()
		m := accessor(obj)
		if base == "" && m.GetGenerateName() != "" {
			m.SetName(generateName(m.GetGenerateName()))
		}
		if errs := res.Strategy.Validate(obj); len(errs) > 0 {
			return nil, apierrors.NewInvalid(res.GroupKind(), m.GetName(), errs)
		}
		m.SetCreationTimestamp(metav1.NewTime(s.now().Truncate(time.Second)))
		m.SetResourceVersion("")
		m.SetDeletionTimestamp(nil)
		m.SetDeletionGracePeriodSeconds(nil)
		m.SetSelfLink("")
		if res.HasSpec {
			m.SetGeneration(1)
		}
		alloc, err := s.allocate(res, obj, nil)
		if err != nil {
			return nil, err
		}
		if wo.dryRun {
			alloc.undo()
			return obj, nil
		}
		data, err := encodeStored(res, obj)
		if err != nil {
			alloc.undo()
			return nil, err
		}
		key := s.key(res, m.GetNamespace(), m.GetName())
		rev, err := s.store.Create(ctx, key, data, alloc.claims)
		if err != nil {
			alloc.undo()
			if k, ok := storage.IsExists(err); ok && k != key {
				if retry := alloc.conflict(k); retry != nil {
					return nil, retry
				}
				if attempt < 5 {
					continue
				}
			}
			if _, ok := storage.IsExists(err); ok && base == "" && attempt < 5 {
				continue // generated name collided
			}
			return nil, storageError(err, res.GroupResource(), m.GetName())
		}
		m.SetResourceVersion(strconv.FormatInt(rev, 10))
		s.namespaces.note(obj, false)
		if _, ok := obj.(*apiextensionsv1.CustomResourceDefinition); ok {
			return s.crds.settled(ctx, obj), nil
		}
		return obj, nil
	}
}

// fieldByName returns the addressable struct field name of obj, if any.
func fieldByName(obj runtime.Object, name string) (reflect.Value, bool) {
	v := reflect.ValueOf(obj)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return reflect.Value{}, false
	}
	f := v.Elem().FieldByName(name)
	return f, f.IsValid() && f.CanSet()
}

func copyField(dst, src runtime.Object, name string) {
	if u, ok := dst.(*unstructured.Unstructured); ok {
		copyTopLevel(u, src.(*unstructured.Unstructured), name)
		return
	}
	d, ok1 := fieldByName(dst, name)
	s, ok2 := fieldByName(src, name)
	if ok1 && ok2 {
		d.Set(s)
	}
}

// copyTopLevel copies a custom resource's top-level field ("Status" -> status).
// "Spec" stands for everything but metadata and status, which a /status write keeps.
func copyTopLevel(dst, src *unstructured.Unstructured, name string) {
	keys := []string{strings.ToLower(name)}
	if name == "Spec" {
		keys = nil
		for k := range dst.Object {
			if k != "metadata" && k != "status" && k != "apiVersion" && k != "kind" {
				delete(dst.Object, k)
			}
		}
		for k := range src.Object {
			if k != "metadata" && k != "status" && k != "apiVersion" && k != "kind" {
				keys = append(keys, k)
			}
		}
	}
	for _, k := range keys {
		if v, ok := src.Object[k]; ok {
			dst.Object[k] = runtime.DeepCopyJSONValue(v)
		} else {
			delete(dst.Object, k)
		}
	}
}

func fieldsEqual(a, b runtime.Object, name string) bool {
	x, ok1 := fieldByName(a, name)
	y, ok2 := fieldByName(b, name)
	return !ok1 || !ok2 || apiequality.Semantic.DeepEqual(x.Interface(), y.Interface())
}

// prepareUpdate carries server-owned values from old into obj, keeps the part the
// subresource may not touch, defaults, bumps generation and validates.
func (s *Server) prepareUpdate(res *registry.Resource, obj, old runtime.Object, wo writeOptions) error {
	m, om := accessor(obj), accessor(old)
	m.SetUID(om.GetUID())
	m.SetCreationTimestamp(om.GetCreationTimestamp())
	m.SetDeletionTimestamp(om.GetDeletionTimestamp())
	m.SetDeletionGracePeriodSeconds(om.GetDeletionGracePeriodSeconds())
	m.SetNamespace(om.GetNamespace())
	m.SetGenerateName(om.GetGenerateName())
	m.SetSelfLink("")
	switch wo.sub {
	case "status":
		copyField(obj, old, "Spec")
		m.SetOwnerReferences(om.GetOwnerReferences())
		m.SetFinalizers(om.GetFinalizers())
	case "approval":
		prepareApproval(obj, old)
	case "finalize":
		fin := obj.(*corev1.Namespace).Spec.Finalizers
		obj.(*corev1.Namespace).Spec = *old.(*corev1.Namespace).Spec.DeepCopy()
		obj.(*corev1.Namespace).Spec.Finalizers = fin
		copyField(obj, old, "Status")
	default:
		if res.HasStatus {
			copyField(obj, old, "Status")
		}
	}
	if om.GetDeletionTimestamp() != nil && len(m.GetFinalizers()) > len(om.GetFinalizers()) {
		return apierrors.NewForbidden(res.GroupResource(), m.GetName(), errors.New("no new finalizers can be added if the object is being deleted"))
	}
	m.SetGeneration(om.GetGeneration())
	if wo.sub == "" {
		res.Strategy.PrepareForUpdate(obj, old) // a custom resource's strategy bumps generation itself
	}
	if res.HasSpec && !fieldsEqual(obj, old, "Spec") {
		m.SetGeneration(om.GetGeneration() + 1)
	}
	if errs := res.Strategy.ValidateUpdate(obj, old); len(errs) > 0 {
		return apierrors.NewInvalid(res.GroupKind(), m.GetName(), errs)
	}
	return nil
}

// transform computes the new object from the stored one (nil when absent).
type transform func(old runtime.Object) (runtime.Object, error)

// modify is update for the server's own read-modify-writes: fn gets the
// stored object and what it returns is written unconditionally, so a
// concurrent writer (another API server at start-up) leads to a retry on the
// fresh object, not to a conflict error.
func (s *Server) modify(ctx context.Context, res *registry.Resource, ns, name string, fn transform, wo writeOptions) (runtime.Object, bool, error) {
	return s.update(ctx, res, ns, name, func(old runtime.Object) (runtime.Object, error) {
		obj, err := fn(old)
		if err == nil && obj != nil {
			accessor(obj).SetResourceVersion("")
		}
		return obj, err
	}, wo)
}

// update applies fn to the stored object and writes the result, retrying on
// conflicts unless the caller pinned a resourceVersion. created is true when a
// CreateOnUpdate resource did not exist.
func (s *Server) update(ctx context.Context, res *registry.Resource, ns, name string, fn transform, wo writeOptions) (runtime.Object, bool, error) {
	key := s.key(res, ns, name)
	for attempt := 0; attempt < 20; attempt++ {
		old, kv, err := s.get(ctx, res, ns, name)
		if apierrors.IsNotFound(err) && (res.CreateOnUpdate || wo.createMissing) && wo.sub == "" {
			obj, err := fn(nil)
			if err != nil {
				return nil, false, err
			}
			created, err := s.create(ctx, res, ns, obj, wo)
			if apierrors.IsAlreadyExists(err) {
				continue
			}
			return created, true, err
		}
		if err != nil {
			return nil, false, err
		}
		obj, err := fn(old.DeepCopyObject())
		if err != nil {
			return nil, false, err
		}
		obj = s.trackFields(res, wo, old, obj)
		m := accessor(obj)
		if m.GetName() != name {
			return nil, false, apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", m.GetName(), name))
		}
		if res.Namespaced && m.GetNamespace() != "" && m.GetNamespace() != ns {
			return nil, false, apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
		}
		pinned := m.GetResourceVersion()
		if pinned != "" && pinned != strconv.FormatInt(kv.Rev, 10) {
			return nil, false, apierrors.NewConflict(res.GroupResource(), name, errors.New(conflictMessage))
		}
		m.SetResourceVersion(strconv.FormatInt(kv.Rev, 10)) // unconditional updates apply to what is stored
		if uid := m.GetUID(); uid != "" && uid != accessor(old).GetUID() {
			//lint:ignore ST1005 Kubernetes' own wording
			return nil, false, apierrors.NewConflict(res.GroupResource(), name, fmt.Errorf("Precondition failed: UID in precondition: %v, UID in object meta: %v", uid, accessor(old).GetUID()))
		}
		if err := s.admitNode(ctx, res, obj, old, wo); err != nil {
			return nil, false, err
		}
		if err := s.admitRBAC(res, obj, wo); err != nil {
			return nil, false, err
		}
		if err := admitCustom(res, obj, wo, false); err != nil {
			return nil, false, err
		}
		if err := s.prepareUpdate(res, obj, old, wo); err != nil {
			return nil, false, err
		}
		alloc, err := s.allocate(res, obj, old)
		if err != nil {
			return nil, false, err
		}
		if wo.dryRun {
			alloc.undo()
			return obj, false, nil
		}
		if m.GetDeletionTimestamp() != nil && len(m.GetFinalizers()) == 0 && !hasNamespaceFinalizers(obj) {
			// The last finalizer is gone: the object goes away now.
			kvOld, err := s.store.Delete(ctx, key, kv.Rev, s.releasesOf(res, old))
			alloc.undo()
			if errors.Is(err, storage.ErrConflict) && pinned == "" {
				continue
			}
			if err != nil {
				return nil, false, storageError(err, res.GroupResource(), name)
			}
			s.released(res, old)
			s.namespaces.note(obj, true)
			m.SetResourceVersion(strconv.FormatInt(kvOld.Rev, 10))
			return obj, false, nil
		}
		data, err := encodeStored(res, obj)
		if err != nil {
			alloc.undo()
			return nil, false, err
		}
		if bytes.Equal(data, kv.Value) { // nothing changed: no write, no event (as Kubernetes)
			alloc.undo()
			return obj, false, nil
		}
		rev, err := s.store.Update(ctx, key, data, kv.Rev, alloc.claims, alloc.releases)
		if err != nil {
			alloc.undo()
			if errors.Is(err, storage.ErrConflict) && pinned == "" {
				continue
			}
			if k, ok := storage.IsExists(err); ok {
				if retry := alloc.conflict(k); retry != nil {
					return nil, false, retry
				}
				continue
			}
			return nil, false, storageError(err, res.GroupResource(), name)
		}
		alloc.commit()
		s.namespaces.note(obj, false)
		m.SetResourceVersion(strconv.FormatInt(rev, 10))
		return obj, false, nil
	}
	return nil, false, apierrors.NewConflict(res.GroupResource(), name, errors.New("too many concurrent writers; try again"))
}

func hasNamespaceFinalizers(obj runtime.Object) bool {
	ns, ok := obj.(*corev1.Namespace)
	return ok && len(ns.Spec.Finalizers) > 0
}

// deleteObject deletes, or starts graceful deletion or finalization. deleted says
// whether the object is gone.
func (s *Server) deleteObject(ctx context.Context, res *registry.Resource, ns, name string, opts *metav1.DeleteOptions, wo writeOptions) (runtime.Object, bool, error) {
	key := s.key(res, ns, name)
	for attempt := 0; attempt < 20; attempt++ {
		old, kv, err := s.get(ctx, res, ns, name)
		if err != nil {
			return nil, false, err
		}
		om := accessor(old)
		if p := opts.Preconditions; p != nil {
			if p.UID != nil && *p.UID != om.GetUID() {
				//lint:ignore ST1005 Kubernetes' own wording
				return nil, false, apierrors.NewConflict(res.GroupResource(), name, fmt.Errorf("Precondition failed: UID in precondition: %v, UID in object meta: %v", *p.UID, om.GetUID()))
			}
			if p.ResourceVersion != nil && *p.ResourceVersion != om.GetResourceVersion() {
				//lint:ignore ST1005 Kubernetes' own wording
				return nil, false, apierrors.NewConflict(res.GroupResource(), name, fmt.Errorf("Precondition failed: ResourceVersion in precondition: %v, ResourceVersion in object meta: %v", *p.ResourceVersion, om.GetResourceVersion()))
			}
		}
		if err := s.admitNode(ctx, res, nil, old, wo); err != nil {
			return nil, false, err
		}
		if pending, grace := s.gracefulPod(old, opts); pending || len(om.GetFinalizers()) > 0 || hasNamespaceFinalizers(old) {
			obj := old.DeepCopyObject()
			m := accessor(obj)
			now := metav1.NewTime(s.now().Truncate(time.Second))
			if pending {
				if cur := om.GetDeletionGracePeriodSeconds(); cur != nil && *cur <= grace {
					return old, false, nil // already terminating at least this fast
				}
				t := metav1.NewTime(now.Add(time.Duration(grace) * time.Second))
				m.SetDeletionTimestamp(&t)
				m.SetDeletionGracePeriodSeconds(&grace)
			} else if om.GetDeletionTimestamp() != nil {
				return old, false, nil
			} else {
				zero := int64(0)
				m.SetDeletionTimestamp(&now)
				m.SetDeletionGracePeriodSeconds(&zero)
			}
			if n, ok := obj.(*corev1.Namespace); ok {
				n.Status.Phase = corev1.NamespaceTerminating
			}
			if wo.dryRun {
				return obj, false, nil
			}
			data, err := encodeStored(res, obj)
			if err != nil {
				return nil, false, err
			}
			rev, err := s.store.Update(ctx, key, data, kv.Rev, nil, nil)
			if errors.Is(err, storage.ErrConflict) {
				continue
			}
			if err != nil {
				return nil, false, storageError(err, res.GroupResource(), name)
			}
			m.SetResourceVersion(strconv.FormatInt(rev, 10))
			s.namespaces.note(obj, false)
			if n, ok := obj.(*corev1.Namespace); ok && s.nsWake != nil {
				select {
				case s.nsWake <- n.Name:
				default:
				}
			}
			return obj, false, nil
		}
		if wo.dryRun {
			return old, true, nil
		}
		last, err := s.store.Delete(ctx, key, kv.Rev, s.releasesOf(res, old))
		if errors.Is(err, storage.ErrConflict) {
			continue
		}
		if err != nil {
			return nil, false, storageError(err, res.GroupResource(), name)
		}
		s.released(res, old)
		s.namespaces.note(old, true)
		om.SetResourceVersion(strconv.FormatInt(last.Rev, 10))
		return old, true, nil
	}
	return nil, false, apierrors.NewConflict(res.GroupResource(), name, errors.New("too many concurrent writers; try again"))
}

// gracefulPod says whether deleting obj must wait for its node's agent, and for
// how long: bound, still running pods get a grace period (from the request or the
// pod spec); unbound or finished pods and grace 0 go at once.
func (s *Server) gracefulPod(obj runtime.Object, opts *metav1.DeleteOptions) (bool, int64) {
	pod, ok := obj.(*corev1.Pod)
	if !ok || pod.Spec.NodeName == "" || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return false, 0
	}
	grace := int64(corev1.DefaultTerminationGracePeriodSeconds)
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		grace = *pod.Spec.TerminationGracePeriodSeconds
	}
	if opts.GracePeriodSeconds != nil {
		grace = *opts.GracePeriodSeconds
	}
	if grace <= 0 {
		return false, 0
	}
	return true, grace
}

// admitMirrorPod admits the only pods a node may create: mirror pods of what
// it runs itself (its DNS server), bound to it, owned by nothing but its Node,
// and using no service account, secret or config map (Kubernetes' NodeRestriction).
func admitMirrorPod(pod *corev1.Pod, node string, deny func(string) error) error {
	if _, ok := pod.Annotations[mirrorPodAnnotation]; !ok {
		return deny("can only create mirror pods")
	}
	if pod.Spec.NodeName != node {
		return deny("can only create pods with spec.nodeName set to itself")
	}
	for _, o := range pod.OwnerReferences {
		if o.APIVersion != "v1" || o.Kind != "Node" || o.Name != node || len(pod.OwnerReferences) > 1 {
			return deny("can only create pods with a single owner reference set to itself")
		}
	}
	if pod.Spec.ServiceAccountName != "" || len(pod.Spec.ImagePullSecrets) > 0 {
		return deny("can not create pods that reference a service account or secrets")
	}
	for _, v := range pod.Spec.Volumes {
		if v.Secret != nil || v.ConfigMap != nil || v.Projected != nil || v.PersistentVolumeClaim != nil {
			return deny("can not create pods that reference secrets, configmaps or persistentvolumeclaims")
		}
	}
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range cs {
			for _, e := range c.EnvFrom {
				if e.SecretRef != nil || e.ConfigMapRef != nil {
					return deny("can not create pods that reference secrets or configmaps")
				}
			}
			for _, e := range c.Env {
				if e.ValueFrom != nil && (e.ValueFrom.SecretKeyRef != nil || e.ValueFrom.ConfigMapKeyRef != nil) {
					return deny("can not create pods that reference secrets or configmaps")
				}
			}
		}
	}
	return nil
}

// admitNode enforces what a node identity may write: its own Node and Lease, and
// status and deletion of pods bound to it (NodeRestriction in Kubernetes).
func (s *Server) admitNode(_ context.Context, res *registry.Resource, obj, old runtime.Object, wo writeOptions) error {
	if wo.user == nil {
		return nil
	}
	node, ok := wo.user.NodeName()
	if !ok || wo.user.In(auth.GroupMasters) {
		return nil
	}
	deny := func(msg string) error {
		return apierrors.NewForbidden(res.GroupResource(), "", fmt.Errorf("node %q %s", node, msg))
	}
	switch res.Resource {
	case "nodes", "leases":
		// as NodeRestriction: Leases only in kube-node-lease (announcement Leases elsewhere are RBAC's)
		if obj != nil && accessor(obj).GetName() != node && (res.Resource == "nodes" || accessor(obj).GetNamespace() == "kube-node-lease") {
			return deny("may only write its own " + res.Kind)
		}
	case "pods":
		if old != nil && old.(*corev1.Pod).Spec.NodeName != node {
			return deny("may only change pods bound to it")
		}
		if old == nil {
			return admitMirrorPod(obj.(*corev1.Pod), node, deny)
		}
	}
	return nil
}
