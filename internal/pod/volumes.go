package pod

import (
	"fmt"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// File is one file of a ConfigMap, Secret, downward API or projected volume.
type File struct {
	Data []byte
	Mode os.FileMode
}

// defaultFileMode is a volume file's mode when the spec gives none (0644, as Kubernetes).
const defaultFileMode = 0o644

// VolumeFiles are the files a ConfigMap, Secret, downwardAPI or projected
// volume holds, by path relative to the volume, as the kubelet writes them:
// every key (or the listed items, at their paths), the item's mode or the
// volume's defaultMode. Other volume kinds hold no files and return nil.
func VolumeFiles(p *corev1.Pod, v corev1.Volume, src Objects) (map[string]File, error) {
	out := map[string]File{}
	var err error
	switch {
	case v.ConfigMap != nil:
		err = addConfigMap(out, p, v.ConfigMap.LocalObjectReference.Name, v.ConfigMap.Items, v.ConfigMap.Optional, mode(v.ConfigMap.DefaultMode), src)
	case v.Secret != nil:
		err = addSecret(out, p, v.Secret.SecretName, v.Secret.Items, v.Secret.Optional, mode(v.Secret.DefaultMode), src)
	case v.DownwardAPI != nil:
		err = addDownward(out, p, v.DownwardAPI.Items, mode(v.DownwardAPI.DefaultMode))
	case v.Projected != nil:
		def := mode(v.Projected.DefaultMode)
		for _, s := range v.Projected.Sources {
			switch {
			case s.ConfigMap != nil:
				err = addConfigMap(out, p, s.ConfigMap.Name, s.ConfigMap.Items, s.ConfigMap.Optional, def, src)
			case s.Secret != nil:
				err = addSecret(out, p, s.Secret.Name, s.Secret.Items, s.Secret.Optional, def, src)
			case s.DownwardAPI != nil:
				err = addDownward(out, p, s.DownwardAPI.Items, def)
			case s.ServiceAccountToken != nil:
				err = addToken(out, p, s.ServiceAccountToken, def, src)
			default:
				err = fmt.Errorf("volume %q: unsupported projected source", v.Name)
			}
			if err != nil {
				break
			}
		}
	default:
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("volume %q: %w", v.Name, err)
	}
	for rel := range out {
		if clean := path.Clean(rel); clean != rel || strings.HasPrefix(rel, "/") || strings.HasPrefix(clean, "..") {
			return nil, fmt.Errorf("volume %q: path %q must be relative and may not contain '..'", v.Name, rel)
		}
	}
	return out, nil
}

func mode(m *int32) os.FileMode {
	if m == nil {
		return defaultFileMode
	}
	return os.FileMode(*m) & 0o777
}

// addKeys adds data's keys (all, or the items at their paths) to out.
func addKeys(out map[string]File, data map[string][]byte, items []corev1.KeyToPath, def os.FileMode, kind, name string) error {
	if len(items) == 0 {
		for k, v := range data {
			out[k] = File{Data: v, Mode: def}
		}
		return nil
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			return fmt.Errorf("configuration error: %s %q has no key %q", kind, name, it.Key)
		}
		m := def
		if it.Mode != nil {
			m = mode(it.Mode)
		}
		out[it.Path] = File{Data: v, Mode: m}
	}
	return nil
}

func addConfigMap(out map[string]File, p *corev1.Pod, name string, items []corev1.KeyToPath, optional *bool, def os.FileMode, src Objects) error {
	data, ok, err := configMapData(src, p.Namespace, name, isOptional(optional))
	if err != nil || !ok {
		return err
	}
	return addKeys(out, data, items, def, "configmap", name)
}

func addSecret(out map[string]File, p *corev1.Pod, name string, items []corev1.KeyToPath, optional *bool, def os.FileMode, src Objects) error {
	data, ok, err := secretData(src, p.Namespace, name, isOptional(optional))
	if err != nil || !ok {
		return err
	}
	return addKeys(out, data, items, def, "secret", name)
}

// defaultTokenSeconds is a projected token's lifetime when the spec gives none (Kubernetes' default).
const defaultTokenSeconds = 3600

// addToken adds a service account token bound to the pod.
func addToken(out map[string]File, p *corev1.Pod, t *corev1.ServiceAccountTokenProjection, def os.FileMode, src Objects) error {
	if src == nil {
		return fmt.Errorf("serviceAccountToken: no token source in this runtime")
	}
	seconds := int64(defaultTokenSeconds)
	if t.ExpirationSeconds != nil {
		seconds = *t.ExpirationSeconds
	}
	tok, err := src.Token(p, t.Audience, seconds)
	if err != nil {
		return fmt.Errorf("serviceAccountToken: %w", err)
	}
	out[t.Path] = File{Data: []byte(tok), Mode: def}
	return nil
}

// addDownward adds downward API files: pod fields, labels and annotations.
func addDownward(out map[string]File, p *corev1.Pod, items []corev1.DownwardAPIVolumeFile, def os.FileMode) error {
	for _, it := range items {
		if it.FieldRef == nil {
			return fmt.Errorf("downward API file %q: only fieldRef is supported by svcnet", it.Path)
		}
		var v string
		switch f := it.FieldRef.FieldPath; f {
		case "metadata.labels":
			v = formatMap(p.Labels)
		case "metadata.annotations":
			v = formatMap(p.Annotations)
		default:
			var err error
			if v, err = ValueFrom(p, p.Status.PodIP, corev1.EnvVar{Name: it.Path, ValueFrom: &corev1.EnvVarSource{FieldRef: it.FieldRef}}); err != nil {
				return err
			}
		}
		m := def
		if it.Mode != nil {
			m = mode(it.Mode)
		}
		out[it.Path] = File{Data: []byte(v), Mode: m}
	}
	return nil
}

// formatMap writes labels or annotations as the kubelet does: key="value" lines, sorted.
func formatMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(k + "=" + strconv.Quote(m[k]))
	}
	return b.String()
}
