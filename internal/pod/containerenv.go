package pod

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// ContainerEnv is a container's environment as "K=V" in the kubelet's order:
// base (what the image and the runtime give), the Service variables, then the
// spec's env with $(VAR) references expanded and fieldRefs resolved. A later
// name overrides an earlier one and keeps its first position.
func ContainerEnv(p *corev1.Pod, podIP string, base []corev1.EnvVar, services []corev1.EnvVar, c corev1.Container) ([]string, error) {
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
	for _, e := range c.Env {
		v := e.Value
		if e.ValueFrom != nil {
			var err error
			if v, err = ValueFrom(p, podIP, e); err != nil {
				return nil, err
			}
		} else {
			v = Expand(v, vals)
		}
		set(e.Name, v)
	}
	if len(c.EnvFrom) > 0 {
		return nil, fmt.Errorf("container %q: envFrom is not supported by svcnet yet", c.Name)
	}
	out := make([]string, 0, len(names))
	for _, k := range names {
		out = append(out, k+"="+vals[k])
	}
	return out, nil
}

// ValueFrom resolves an env var's valueFrom; fieldRef is supported.
func ValueFrom(p *corev1.Pod, podIP string, e corev1.EnvVar) (string, error) {
	f := e.ValueFrom.FieldRef
	if f == nil {
		return "", fmt.Errorf("env %s: only valueFrom.fieldRef is supported by svcnet (not configMapKeyRef, secretKeyRef or resourceFieldRef)", e.Name)
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
