package apiserver

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/sets"

	"github.com/svcnet/svcnet/internal/auth"
	"github.com/svcnet/svcnet/internal/printers"
	"github.com/svcnet/svcnet/internal/registry"
	"github.com/svcnet/svcnet/internal/storage"
)

func (s *Server) serveResource(w http.ResponseWriter, r *http.Request, user *auth.User, path string) {
	q, ok := s.parseResourcePath(r, path)
	if !ok {
		writeStatus(w, http.StatusNotFound, "NotFound", "the server could not find the requested resource")
		return
	}
	rec := &statusRecorder{ResponseWriter: w}
	q.w, q.user, q.accept = rec, user, negotiate(r)
	start := time.Now()
	defer func() { s.metrics.observe(q, rec.code, start) }()
	if !s.allowResource(q) {
		return
	}
	if q.legacy != nil && q.legacy.Warning != "" {
		q.w.Header().Add("Warning", `299 - "`+q.legacy.Warning+`"`)
	}
	handle := s.dispatch
	switch q.sub {
	case "scale":
		handle = s.handleScale
	case "binding":
		handle = s.handleBinding
	case "eviction":
		handle = s.handleEviction
	case "token":
		handle = s.handleToken
	case "log", "exec", "attach", "portforward":
		handle = s.handleNodeProxy
	case "proxy":
		handle = s.handleProxy
	}
	if err := handle(q); err != nil {
		writeError(q.w, err)
	}
}

func (s *Server) dispatch(q *request) error {
	if err := validateWriteQuery(q); err != nil {
		return err
	}
	switch q.verb {
	case "get":
		return s.handleGet(q)
	case "list":
		return s.handleList(q)
	case "watch":
		return s.handleWatch(q)
	case "create":
		return s.handleCreate(q)
	case "update":
		return s.handleUpdate(q)
	case "patch":
		return s.handlePatch(q)
	case "delete":
		return s.handleDelete(q)
	case "deletecollection":
		return s.handleDeleteCollection(q)
	}
	return apierrors.NewMethodNotSupported(q.res.GroupResource(), q.r.Method)
}

// output converts a stored object for the request's version.
func (s *Server) output(q *request, obj runtime.Object) (runtime.Object, error) {
	if q.legacy != nil {
		return q.legacy.FromStorage(obj)
	}
	return setKind(obj, q.res.GroupVersion().WithKind(q.res.Kind)), nil
}

func (s *Server) respond(q *request, code int, obj runtime.Object) error {
	out, err := s.output(q, obj)
	if err != nil {
		return err
	}
	if q.accept.table {
		tbl, err := s.table(q, []runtime.Object{out}, accessor(obj).GetResourceVersion(), "")
		if err != nil {
			return err
		}
		writeEncoded(q.w, code, q.accept, tbl)
		return nil
	}
	writeEncoded(q.w, code, q.accept, out)
	return nil
}

func (s *Server) table(q *request, objs []runtime.Object, rv, cont string) (*metav1.Table, error) {
	if q.res.Custom != nil {
		tbl, err := customTable(q.r.Context(), q.res, objs, q.accept.includeObject)
		if err != nil {
			return nil, err
		}
		tbl.APIVersion, tbl.Kind = "meta.k8s.io/v1", "Table"
		tbl.ResourceVersion, tbl.Continue = rv, cont
		return tbl, nil
	}
	tbl := &metav1.Table{TypeMeta: metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "Table"},
		ColumnDefinitions: printers.Columns(q.res.Kind), Rows: []metav1.TableRow{}}
	tbl.ResourceVersion, tbl.Continue = rv, cont
	now := s.now()
	for _, o := range objs {
		row, err := tableRow(q, o, now)
		if err != nil {
			return nil, err
		}
		tbl.Rows = append(tbl.Rows, row)
	}
	return tbl, nil
}

func (s *Server) handleGet(q *request) error {
	obj, _, err := s.get(q.r.Context(), q.res, q.ns, q.name)
	if err != nil {
		return err
	}
	return s.respond(q, http.StatusOK, obj)
}

// matcher filters objects by label and field selectors.
type matcher struct {
	labels labels.Selector
	fields fields.Selector
	res    *registry.Resource
}

func (m matcher) matches(obj runtime.Object) bool {
	a := accessor(obj)
	if !m.labels.Empty() && !m.labels.Matches(labels.Set(a.GetLabels())) {
		return false
	}
	if m.fields.Empty() {
		return true
	}
	return m.fields.Matches(objectFields(m.res, obj))
}

func objectFields(res *registry.Resource, obj runtime.Object) fields.Set {
	a := accessor(obj)
	set := fields.Set{"metadata.name": a.GetName()}
	if res.Namespaced {
		set["metadata.namespace"] = a.GetNamespace()
	}
	if res.Fields != nil {
		for k, v := range res.Fields(obj) {
			set[k] = v
		}
	}
	return set
}

func parseMatcher(q *request) (matcher, error) {
	qs := q.r.URL.Query()
	m := matcher{labels: labels.Everything(), fields: fields.Everything(), res: q.res}
	if ls := qs.Get("labelSelector"); ls != "" {
		sel, err := labels.Parse(ls)
		if err != nil {
			return m, apierrors.NewBadRequest(fmt.Sprintf("unable to parse requirement: %v", err))
		}
		m.labels = sel
	}
	if fs := qs.Get("fieldSelector"); fs != "" {
		sel, err := fields.ParseSelector(fs)
		if err != nil {
			return m, apierrors.NewBadRequest(fmt.Sprintf("invalid field selector: %v", err))
		}
		known := sets.KeySet(objectFields(q.res, q.res.New()))
		for _, r := range sel.Requirements() {
			if !known.Has(r.Field) {
				return m, apierrors.NewBadRequest(fmt.Sprintf("field label not supported: %s", r.Field))
			}
		}
		m.fields = sel
	}
	return m, nil
}

// continueToken is the opaque list continuation: where to go on, at which revision.
type continueToken struct {
	Rev  int64  `json:"rv"`
	From string `json:"start"`
}

func (s *Server) handleList(q *request) error {
	m, err := parseMatcher(q)
	if err != nil {
		return err
	}
	qs := q.r.URL.Query()
	limit, _ := strconv.ParseInt(qs.Get("limit"), 10, 64)
	page := storage.Page{}
	if c := qs.Get("continue"); c != "" {
		raw, err := base64.RawURLEncoding.DecodeString(c)
		var tok continueToken
		if err == nil {
			err = json.Unmarshal(raw, &tok)
		}
		if err != nil || !strings.HasPrefix(tok.From, s.listPrefix(q.res, q.ns)) {
			return apierrors.NewBadRequest("continue key is not valid")
		}
		page.Rev, page.From = tok.Rev, tok.From
	} else if rv := qs.Get("resourceVersion"); rv != "" && rv != "0" && qs.Get("resourceVersionMatch") == "Exact" {
		n, err := strconv.ParseInt(rv, 10, 64)
		if err != nil {
			return apierrors.NewBadRequest("invalid resourceVersion " + rv)
		}
		page.Rev = n
	}
	if qs.Get("continue") == "" {
		s.logRelist(q, false)
	}
	objs, rev, next, err := s.list(q, m, page, limit)
	if err != nil {
		if qs.Get("continue") != "" && apierrors.IsResourceExpired(err) {
			return apierrors.NewResourceExpired("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.")
		}
		return err
	}
	cont := ""
	if next != "" {
		raw, _ := json.Marshal(continueToken{Rev: rev, From: next})
		cont = base64.RawURLEncoding.EncodeToString(raw)
	}
	rvs := strconv.FormatInt(rev, 10)
	outs := make([]runtime.Object, 0, len(objs))
	for _, o := range objs {
		out, err := s.output(q, o)
		if err != nil {
			return err
		}
		outs = append(outs, out)
	}
	if q.accept.table {
		tbl, err := s.table(q, outs, rvs, cont)
		if err != nil {
			return err
		}
		writeEncoded(q.w, http.StatusOK, q.accept, tbl)
		return nil
	}
	list := q.res.NewList()
	if q.legacy != nil && q.res.Custom == nil {
		list, err = Scheme.New(q.gv.WithKind(q.res.ListKind))
		if err != nil {
			return err
		}
	}
	if q.res.Custom == nil { // custom resources keep apiVersion and kind on items, as in Kubernetes
		for _, o := range outs {
			o.GetObjectKind().SetGroupVersionKind(schema.GroupVersionKind{})
		}
	}
	if err := meta.SetList(list, outs); err != nil {
		return err
	}
	lm, _ := meta.ListAccessor(list)
	lm.SetResourceVersion(rvs)
	lm.SetContinue(cont)
	setKind(list, q.gv.WithKind(q.res.ListKind))
	writeEncoded(q.w, http.StatusOK, q.accept, list)
	return nil
}

// list reads matching objects, at most limit (0 = all), returning the revision
// read and the key to continue from when cut.
func (s *Server) list(q *request, m matcher, page storage.Page, limit int64) ([]runtime.Object, int64, string, error) {
	prefix := s.listPrefix(q.res, q.ns)
	var out []runtime.Object
	rev := page.Rev
	from := page.From
	for {
		chunk := int64(0)
		if limit > 0 {
			chunk = max(limit-int64(len(out)), 100)
		}
		kvs, r, more, err := s.store.List(q.r.Context(), prefix, storage.Page{Rev: rev, From: from, Limit: chunk})
		if err != nil {
			return nil, 0, "", storageError(err, q.res.GroupResource(), "")
		}
		rev = r
		for i, kv := range kvs {
			obj, err := decodeStored(q.res, kv)
			if err != nil {
				return nil, 0, "", err
			}
			if !m.matches(obj) {
				continue
			}
			out = append(out, obj)
			if limit > 0 && int64(len(out)) == limit && (i < len(kvs)-1 || more) {
				return out, rev, kv.Key + "\x00", nil
			}
		}
		if !more || len(kvs) == 0 {
			return out, rev, "", nil
		}
		from = kvs[len(kvs)-1].Key + "\x00"
	}
}

func writeOpts(q *request) writeOptions {
	return writeOptions{user: q.user, dryRun: q.r.URL.Query().Get("dryRun") == "All", sub: q.sub, gv: q.gv, reqSub: q.sub,
		fieldValidation: q.r.URL.Query().Get("fieldValidation"),
		manager:         managerOrUserAgent(q.r.URL.Query().Get("fieldManager"), q.r.UserAgent()),
		warn:            func(msg string) { q.w.Header().Add("Warning", `299 - "`+strings.ReplaceAll(msg, `"`, `\"`)+`"`) }}
}

// decodeRequest reads the body as the request's version and converts it to the
// storage version, recording strict-decoding warnings as Warning headers.
func (s *Server) decodeRequest(q *request, body []byte, mt string) (runtime.Object, error) {
	gvk := q.gv.WithKind(q.res.Kind)
	into := q.res.New()
	if q.legacy != nil {
		into = q.legacy.New()
	}
	warnings, err := decodeInto(body, mt, gvk, into, q.r.URL.Query().Get("fieldValidation"))
	if err != nil {
		return nil, err
	}
	for _, w := range warnings {
		q.w.Header().Add("Warning", `299 - "`+strings.ReplaceAll(w, `"`, `\"`)+`"`)
	}
	if q.legacy != nil {
		return q.legacy.ToStorage(into)
	}
	return into, nil
}

func (s *Server) handleCreate(q *request) error {
	if q.name != "" || q.sub != "" {
		return apierrors.NewMethodNotSupported(q.res.GroupResource(), "POST")
	}
	body, err := readBody(q.r)
	if err != nil {
		return err
	}
	obj, err := s.decodeRequest(q, body, mediaType(q.r))
	if err != nil {
		return err
	}
	created, err := s.create(q.r.Context(), q.res, q.ns, obj, writeOpts(q))
	if err != nil {
		return err
	}
	return s.respond(q, http.StatusCreated, created)
}

func (s *Server) handleUpdate(q *request) error {
	body, err := readBody(q.r)
	if err != nil {
		return err
	}
	obj, err := s.decodeRequest(q, body, mediaType(q.r))
	if err != nil {
		return err
	}
	out, created, err := s.update(q.r.Context(), q.res, q.ns, q.name, func(runtime.Object) (runtime.Object, error) {
		return obj.DeepCopyObject(), nil
	}, writeOpts(q))
	if err != nil {
		return err
	}
	return s.respondWritten(q, out, created)
}

func deleteOptions(q *request) (*metav1.DeleteOptions, error) {
	opts := &metav1.DeleteOptions{}
	body, err := readBody(q.r)
	if err != nil {
		return nil, err
	}
	if len(strings.TrimSpace(string(body))) > 0 {
		info, ok := runtime.SerializerInfoForMediaType(Codecs.SupportedMediaTypes(), mediaType(q.r))
		if !ok {
			return nil, unsupportedMediaType(mediaType(q.r))
		}
		gvk := metav1.SchemeGroupVersion.WithKind("DeleteOptions")
		if _, _, err := info.Serializer.Decode(body, &gvk, opts); err != nil &&
			// in the resource's own group version (controller-runtime sends them so), as Kubernetes takes them
			(!runtime.IsNotRegisteredError(err) || json.Unmarshal(body, opts) != nil) {
			return nil, apierrors.NewBadRequest("invalid DeleteOptions: " + err.Error())
		}
	}
	if g := q.r.URL.Query().Get("gracePeriodSeconds"); g != "" {
		n, err := strconv.ParseInt(g, 10, 64)
		if err != nil {
			return nil, apierrors.NewBadRequest("invalid gracePeriodSeconds " + g)
		}
		opts.GracePeriodSeconds = &n
	}
	return opts, nil
}

func (s *Server) handleDelete(q *request) error {
	if q.sub != "" {
		return apierrors.NewMethodNotSupported(q.res.GroupResource(), "DELETE")
	}
	opts, err := deleteOptions(q)
	if err != nil {
		return err
	}
	obj, deleted, err := s.deleteObject(q.r.Context(), q.res, q.ns, q.name, opts, writeOpts(q))
	if err != nil {
		return err
	}
	if deleted && q.res.Resource != "pods" {
		writeEncoded(q.w, http.StatusOK, q.accept, statusSuccess(&metav1.StatusDetails{
			Name: q.name, Group: q.res.Group, Kind: q.res.Resource, UID: accessor(obj).GetUID()}))
		return nil
	}
	return s.respond(q, http.StatusOK, obj)
}

func (s *Server) handleDeleteCollection(q *request) error {
	m, err := parseMatcher(q)
	if err != nil {
		return err
	}
	opts, err := deleteOptions(q)
	if err != nil {
		return err
	}
	objs, _, _, err := s.list(q, m, storage.Page{}, 0)
	if err != nil {
		return err
	}
	for _, o := range objs {
		a := accessor(o)
		if _, _, err := s.deleteObject(q.r.Context(), q.res, a.GetNamespace(), a.GetName(), opts, writeOpts(q)); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	writeEncoded(q.w, http.StatusOK, q.accept, statusSuccess(nil))
	return nil
}
