package pod

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Objects reads the ConfigMaps and Secrets a pod's env and volumes refer to,
// and the service account tokens its projected volumes hold (the agent reads
// them from the API).
type Objects interface {
	ConfigMap(namespace, name string) (*corev1.ConfigMap, error)
	Secret(namespace, name string) (*corev1.Secret, error)
	// Token is a token of the pod's service account for audience (empty:
	// the API server's), valid for about seconds and bound to the pod.
	Token(p *corev1.Pod, audience string, seconds int64) (string, error)
}

// configMapData returns a ConfigMap's keys as bytes (data and binaryData);
// ok is false for a missing optional one.
func configMapData(src Objects, ns, name string, optional bool) (map[string][]byte, bool, error) {
	if src == nil {
		return nil, false, fmt.Errorf("configmap %q: no source of ConfigMaps in this runtime", name)
	}
	cm, err := src.ConfigMap(ns, name)
	if apierrors.IsNotFound(err) && optional {
		return nil, false, nil
	}
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil, false, fmt.Errorf("configmap %q not found", name)
		}
		return nil, false, err
	}
	out := map[string][]byte{}
	for k, v := range cm.Data {
		out[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		out[k] = v
	}
	return out, true, nil
}

// secretData returns a Secret's keys; ok is false for a missing optional one.
func secretData(src Objects, ns, name string, optional bool) (map[string][]byte, bool, error) {
	if src == nil {
		return nil, false, fmt.Errorf("secret %q: no source of Secrets in this runtime", name)
	}
	s, err := src.Secret(ns, name)
	if apierrors.IsNotFound(err) && optional {
		return nil, false, nil
	}
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil, false, fmt.Errorf("secret %q not found", name)
		}
		return nil, false, err
	}
	return s.Data, true, nil
}

func isOptional(b *bool) bool { return b != nil && *b }

// ContainerEnv is a container's environment as "K=V" in the kubelet's order:
// base (what the image and the runtime give), the Service variables, envFrom
// (ConfigMaps and Secrets, with their prefix; keys that are not variable names
// are skipped), then the spec's env with $(VAR) references expanded and
// fieldRef, configMapKeyRef and secretKeyRef resolved through src. A later
// name overrides an earlier one and keeps its first position.
func ContainerEnv(p *corev1.Pod, podIP string, base []corev1.EnvVar, services []corev1.EnvVar, c corev1.Container, src Objects) ([]string, error) {
	var names []string
	vals := map[string]string{}
	set := func(k, v string) {
		if _, ok := vals[k]; !ok {
			names = append(names, k)
		}
		vals[k] = v
	}
	for _, e := range base {
		set(e.Name, e.Value)
	}
	for _, e := range services {
		set(e.Name, e.Value)
	}
	for _, ef := range c.EnvFrom {
		var data map[string][]byte
		var err error
		switch {
		case ef.ConfigMapRef != nil:
			data, _, err = configMapData(src, p.Namespace, ef.ConfigMapRef.Name, isOptional(ef.ConfigMapRef.Optional))
		case ef.SecretRef != nil:
			data, _, err = secretData(src, p.Namespace, ef.SecretRef.Name, isOptional(ef.SecretRef.Optional))
		}
		if err != nil {
			return nil, err
		}
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if name := ef.Prefix + k; len(validation.IsEnvVarName(name)) == 0 {
				set(name, string(data[k]))
			}
		}
	}
	for _, e := range c.Env {
		v := e.Value
		if e.ValueFrom != nil {
			var err error
			if v, err = valueOf(p, podIP, e, src); err != nil {
				return nil, err
			}
		} else {
			v = Expand(v, vals)
		}
		set(e.Name, v)
	}
	out := make([]string, 0, len(names))
	for _, k := range names {
		out = append(out, k+"="+vals[k])
	}
	return out, nil
}

// valueOf resolves an env var's valueFrom: a key of a ConfigMap or Secret, or a field.
func valueOf(p *corev1.Pod, podIP string, e corev1.EnvVar, src Objects) (string, error) {
	var data map[string][]byte
	var key, kind, name string
	var ok bool
	var err error
	switch ref := e.ValueFrom; {
	case ref.ConfigMapKeyRef != nil:
		kind, name, key = "ConfigMap", ref.ConfigMapKeyRef.Name, ref.ConfigMapKeyRef.Key
		data, ok, err = configMapData(src, p.Namespace, name, isOptional(ref.ConfigMapKeyRef.Optional))
		if !ok && err == nil {
			return "", nil
		}
		if err == nil && isOptional(ref.ConfigMapKeyRef.Optional) && data[key] == nil {
			return "", nil
		}
	case ref.SecretKeyRef != nil:
		kind, name, key = "Secret", ref.SecretKeyRef.Name, ref.SecretKeyRef.Key
		data, ok, err = secretData(src, p.Namespace, name, isOptional(ref.SecretKeyRef.Optional))
		if !ok && err == nil {
			return "", nil
		}
		if err == nil && isOptional(ref.SecretKeyRef.Optional) && data[key] == nil {
			return "", nil
		}
	default:
		return ValueFrom(p, podIP, e)
	}
	if err != nil {
		return "", err
	}
	v, found := data[key]
	if !found {
		return "", fmt.Errorf("couldn't find key %s in %s %s/%s", key, kind, p.Namespace, name)
	}
	return string(v), nil
}

// ValueFrom resolves an env var's valueFrom.fieldRef.
func ValueFrom(p *corev1.Pod, podIP string, e corev1.EnvVar) (string, error) {
	f := e.ValueFrom.FieldRef
	if f == nil {
		return "", fmt.Errorf("env %s: valueFrom.resourceFieldRef is not supported by svcnet", e.Name)
	}
	switch path := f.FieldPath; {
	case path == "metadata.name":
		return p.Name, nil
	case path == "metadata.namespace":
		return p.Namespace, nil
	case path == "metadata.uid":
		return string(p.UID), nil
	case path == "spec.nodeName":
		return p.Spec.NodeName, nil
	case path == "spec.serviceAccountName":
		return p.Spec.ServiceAccountName, nil
	case path == "status.podIP", path == "status.podIPs":
		return podIP, nil
	case path == "status.hostIP", path == "status.hostIPs":
		return p.Status.HostIP, nil
	case strings.HasPrefix(path, "metadata.labels['") && strings.HasSuffix(path, "']"):
		return p.Labels[strings.TrimSuffix(strings.TrimPrefix(path, "metadata.labels['"), "']")], nil
	case strings.HasPrefix(path, "metadata.annotations['") && strings.HasSuffix(path, "']"):
		return p.Annotations[strings.TrimSuffix(strings.TrimPrefix(path, "metadata.annotations['"), "']")], nil
	default:
		return "", fmt.Errorf("env %s: unsupported fieldRef.fieldPath %q", e.Name, path)
	}
}

// Expand replaces $(NAME) with defined variables, leaves undefined references
// as they are and turns $$ into $, as Kubernetes does.
func Expand(s string, vars map[string]string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := vars[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// EnvMap turns "K=V" entries into a map (for Expand).
func EnvMap(env []string) map[string]string {
	m := make(map[string]string, len(env))
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}
