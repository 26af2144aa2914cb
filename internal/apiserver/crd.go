package apiserver

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/svcnet/svcnet/internal/crd"
	"github.com/svcnet/svcnet/internal/registry"
	"github.com/svcnet/svcnet/internal/storage"
)

// crdResync is how often the CRD controller re-checks every definition even
// without a change (a failed status write or cleanup is retried then).
const crdResync = 10 * time.Second

// crdController serves the resources of CustomResourceDefinitions: it mirrors
// the CRDs from a storage watch, writes their status (accepted names,
// Established, Terminating), swaps the registry's custom resources, and on
// deletion removes every object of the CRD before letting it go.
type crdController struct {
	s    *Server
	wake chan struct{}

	mu    sync.Mutex
	crds  map[string]*apiextensionsv1.CustomResourceDefinition
	built map[string]builtCRD // by CRD name
}

type builtCRD struct {
	rv  string // servingVersion of the CRD it was built from
	res *registry.Resource
}

// servingVersion changes when what a CRD serves changes: its spec (generation),
// its accepted names or its deletion; not on other status writes.
func servingVersion(d, next *apiextensionsv1.CustomResourceDefinition) string {
	return fmt.Sprintf("%s/%d/%v/%v", d.UID, d.Generation, next.Status.AcceptedNames, d.DeletionTimestamp != nil)
}

func newCRDController(s *Server) *crdController {
	return &crdController{s: s, wake: make(chan struct{}, 1), crds: map[string]*apiextensionsv1.CustomResourceDefinition{}, built: map[string]builtCRD{}}
}

func (c *crdController) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// run mirrors the CRDs until ctx ends, relisting after watch errors.
func (c *crdController) run(ctx context.Context) {
	go c.syncLoop(ctx)
	res := c.s.res(apiextensionsv1.GroupName, "customresourcedefinitions")
	prefix := c.s.listPrefix(res, "")
	for ctx.Err() == nil {
		kvs, rev, err := listAll(ctx, c.s.store, prefix, 0)
		if err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		fresh := map[string]*apiextensionsv1.CustomResourceDefinition{}
		for _, kv := range kvs {
			if obj, err := decodeStored(res, kv); err == nil {
				d := obj.(*apiextensionsv1.CustomResourceDefinition)
				fresh[d.Name] = d
			}
		}
		c.mu.Lock()
		c.crds = fresh
		c.mu.Unlock()
		c.poke()
		for ev := range c.s.store.Watch(ctx, prefix, rev) {
			if ev.Err != nil {
				break
			}
			c.mu.Lock()
			switch ev.Type {
			case storage.Put:
				if obj, err := decodeStored(res, ev.KV); err == nil {
					d := obj.(*apiextensionsv1.CustomResourceDefinition)
					c.crds[d.Name] = d
				}
			case storage.Delete:
				if ev.Prev != nil {
					if obj, err := decodeStored(res, *ev.Prev); err == nil {
						delete(c.crds, obj.(*apiextensionsv1.CustomResourceDefinition).Name)
					}
				}
			}
			c.mu.Unlock()
			c.poke()
		}
	}
}

func (c *crdController) syncLoop(ctx context.Context) {
	t := time.NewTicker(crdResync)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.wake:
		case <-t.C:
		}
		c.sync(ctx)
	}
}

// sync brings the served resources and every CRD's status in line with the CRDs.
func (c *crdController) sync(ctx context.Context) {
	c.mu.Lock()
	all := make([]*apiextensionsv1.CustomResourceDefinition, 0, len(c.crds))
	for _, d := range c.crds {
		all = append(all, d)
	}
	c.mu.Unlock()
	slices.SortFunc(all, func(a, b *apiextensionsv1.CustomResourceDefinition) int {
		return a.CreationTimestamp.Compare(b.CreationTimestamp.Time)
	})
	now := metav1.NewTime(c.s.now().Truncate(time.Second))
	var served []*registry.Resource
	var statusWrites []*apiextensionsv1.CustomResourceDefinition
	built := map[string]builtCRD{}
	for _, d := range all {
		want := crd.Status(d, all, c.s.reg.IsBuiltin, now)
		next := d.DeepCopy()
		next.Status = want
		if !apiequality.Semantic.DeepEqual(want, d.Status) {
			statusWrites = append(statusWrites, next)
		}
		if !crd.Established(next) {
			continue
		}
		b, ok := c.built[d.Name]
		if version := servingVersion(d, next); !ok || b.rv != version {
			res, err := crd.Build(next)
			if err != nil {
				c.s.log.Warn("cannot serve custom resource", "crd", d.Name, "err", err)
				continue
			}
			if ok {
				c.s.managers.forget(b.res)
			}
			b = builtCRD{rv: version, res: res}
		}
		built[d.Name] = b
		served = append(served, b.res)
	}
	c.mu.Lock()
	c.built = built
	c.mu.Unlock()
	// Serve first, then say Established: a client that waits for the condition
	// finds the resource.
	c.s.reg.SetCustom(served)
	for _, d := range statusWrites {
		_, _, err := c.s.modify(ctx, c.s.res(apiextensionsv1.GroupName, "customresourcedefinitions"), "", d.Name,
			func(old runtime.Object) (runtime.Object, error) {
				if old == nil {
					return nil, apierrors.NewNotFound(apiextensionsv1.Resource("customresourcedefinitions"), d.Name)
				}
				o := old.(*apiextensionsv1.CustomResourceDefinition)
				o.Status.AcceptedNames, o.Status.Conditions = d.Status.AcceptedNames, d.Status.Conditions
				return o, nil
			}, writeOptions{sub: "status"})
		if err != nil && !apierrors.IsNotFound(err) && ctx.Err() == nil {
			c.s.log.Warn("CRD status", "crd", d.Name, "err", err)
		}
	}
	for _, d := range all {
		if d.DeletionTimestamp != nil && slices.Contains(d.Finalizers, crd.CleanupFinalizer) {
			c.cleanup(ctx, d, built[d.Name].res)
		}
	}
}

// cleanup deletes a terminating CRD's objects and, once none is left, removes
// the cleanup finalizer so that the CRD goes too.
func (c *crdController) cleanup(ctx context.Context, d *apiextensionsv1.CustomResourceDefinition, res *registry.Resource) {
	if res != nil {
		kvs, _, err := listAll(ctx, c.s.store, c.s.listPrefix(res, ""), 0)
		if err != nil {
			return
		}
		left := 0
		for _, kv := range kvs {
			obj, err := decodeStored(res, kv)
			if err != nil {
				continue
			}
			m := accessor(obj)
			_, deleted, err := c.s.deleteObject(ctx, res, m.GetNamespace(), m.GetName(), &metav1.DeleteOptions{}, writeOptions{})
			if err != nil && !apierrors.IsNotFound(err) || err == nil && !deleted {
				left++
			}
		}
		if left > 0 {
			return // objects with finalizers: retried on the next resync
		}
	}
	_, _, err := c.s.modify(ctx, c.s.res(apiextensionsv1.GroupName, "customresourcedefinitions"), "", d.Name,
		func(old runtime.Object) (runtime.Object, error) {
			if old == nil {
				return nil, apierrors.NewNotFound(apiextensionsv1.Resource("customresourcedefinitions"), d.Name)
			}
			o := old.(*apiextensionsv1.CustomResourceDefinition)
			o.Finalizers = slices.DeleteFunc(o.Finalizers, func(f string) bool { return f == crd.CleanupFinalizer })
			return o, nil
		}, writeOptions{})
	if err != nil && !apierrors.IsNotFound(err) && ctx.Err() == nil {
		c.s.log.Warn("CRD cleanup", "crd", d.Name, "err", err)
	}
}

// crdSettle bounds how long creating a CRD waits for the controller.
const crdSettle = 5 * time.Second

// settled waits until the controller has written the status of a CRD just
// created (names accepted or not, served or not) and returns it as stored. So a
// client that creates a CRD and then its objects, or waits for Established, never
// sees a CRD without conditions (kube-apiserver answers at once and lets clients
// race the controller).
func (c *crdController) settled(ctx context.Context, obj runtime.Object) runtime.Object {
	c.poke()
	res := c.s.res(apiextensionsv1.GroupName, "customresourcedefinitions")
	name := accessor(obj).GetName()
	ctx, cancel := context.WithTimeout(ctx, crdSettle)
	defer cancel()
	for {
		cur, _, err := c.s.get(ctx, res, "", name)
		if err != nil {
			return obj
		}
		if d := cur.(*apiextensionsv1.CustomResourceDefinition); len(d.Status.Conditions) > 0 && d.UID == accessor(obj).GetUID() {
			return cur
		}
		select {
		case <-ctx.Done():
			return obj
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// admitCustom prunes a custom resource's unknown fields (an error under
// fieldValidation=Strict, warnings under Warn, silent under Ignore, as
// Kubernetes) and fills its defaults; creates are refused while the CRD is
// being deleted.
func admitCustom(res *registry.Resource, obj runtime.Object, wo writeOptions, create bool) error {
	if res.Custom == nil {
		return nil
	}
	if create && res.Custom.Terminating {
		err := apierrors.NewMethodNotSupported(res.GroupResource(), "create")
		err.ErrStatus.Message = "create not allowed while custom resource definition is terminating"
		return err
	}
	u := obj.(*unstructured.Unstructured)
	unknown := res.Custom.Prune(u, res.Version)
	if len(unknown) > 0 && wo.fieldValidation != "Ignore" {
		msgs := make([]string, len(unknown))
		for i, p := range unknown {
			msgs[i] = fmt.Sprintf("unknown field %q", p)
		}
		if wo.fieldValidation == "Strict" {
			return apierrors.NewBadRequest("strict decoding error: " + strings.Join(msgs, ", "))
		}
		if wo.warn != nil {
			for _, m := range msgs {
				wo.warn(m)
			}
		}
	}
	res.Custom.Default(u, res.Version)
	return nil
}

// customTable renders custom resources with their CRD's printer columns.
func customTable(ctx context.Context, res *registry.Resource, objs []runtime.Object, include string) (*metav1.Table, error) {
	list := &unstructured.UnstructuredList{}
	for _, o := range objs {
		list.Items = append(list.Items, *o.(*unstructured.Unstructured))
	}
	tbl, err := res.Custom.Table(ctx, list)
	if err != nil {
		return nil, err
	}
	for i := range tbl.Rows {
		if i >= len(objs) {
			break
		}
		switch include {
		case "None":
			tbl.Rows[i].Object = runtime.RawExtension{}
		case "Object":
			tbl.Rows[i].Object = runtime.RawExtension{Object: objs[i]}
		default:
			u := objs[i].(*unstructured.Unstructured)
			pm := &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "PartialObjectMetadata"}}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object["metadata"].(map[string]any), &pm.ObjectMeta); err != nil {
				return nil, err
			}
			tbl.Rows[i].Object = runtime.RawExtension{Object: pm}
		}
	}
	return tbl, nil
}

// customOpenAPI merges the OpenAPI v3 documents of the custom resources served
// at gv (false when there are none), as kube-apiserver publishes one document
// per group/version.
func (s *Server) customOpenAPI(gv schema.GroupVersion) (map[string]any, bool) {
	var doc map[string]any
	for _, r := range s.servedAt(gv) {
		if r.Custom == nil || r.Custom.OpenAPI[gv.Version] == nil {
			continue
		}
		var one map[string]any
		if err := json.Unmarshal(r.Custom.OpenAPI[gv.Version], &one); err != nil {
			continue
		}
		if doc == nil {
			doc = one
			continue
		}
		for _, key := range []string{"paths", "components.schemas"} {
			dst, src := nestedMap(doc, key), nestedMap(one, key)
			for k, v := range src {
				dst[k] = v
			}
		}
	}
	return doc, doc != nil
}

// nestedMap returns the map at a dotted key, creating it when missing.
func nestedMap(m map[string]any, key string) map[string]any {
	for _, k := range strings.Split(key, ".") {
		next, ok := m[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	return m
}
