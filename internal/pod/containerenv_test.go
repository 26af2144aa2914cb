package pod

import (
	"errors"
	"fmt"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestExpand(t *testing.T) {
	vars := map[string]string{"NAME": "web", "PORT": "8080"}
	for in, want := range map[string]string{
		"--port=$(PORT)":     "--port=8080",
		"$(NAME)-$(MISSING)": "web-$(MISSING)",
		"$$(NAME)":           "$(NAME)",
		"cost $5":            "cost $5",
		"open $(NAME":        "open $(NAME",
	} {
		if got := Expand(in, vars); got != want {
			t.Errorf("Expand(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestValueFrom(t *testing.T) {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u1", Labels: map[string]string{"app": "x"}},
		Spec: corev1.PodSpec{NodeName: "n1"}, Status: corev1.PodStatus{HostIP: "192.0.2.1"}}
	for path, want := range map[string]string{"metadata.name": "p", "metadata.namespace": "ns", "metadata.uid": "u1",
		"spec.nodeName": "n1", "status.podIP": "10.244.0.9", "status.hostIP": "192.0.2.1", "metadata.labels['app']": "x"} {
		got, err := ValueFrom(p, "10.244.0.9", corev1.EnvVar{Name: "V", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}})
		if err != nil || got != want {
			t.Errorf("fieldRef %s = %q, %v; want %q", path, got, err, want)
		}
	}
	_, err := ValueFrom(p, "", corev1.EnvVar{Name: "S", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{}}})
	if err == nil || !strings.Contains(err.Error(), "env S") {
		t.Errorf("secretKeyRef: %v", err)
	}
}

func TestContainerEnv(t *testing.T) {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"}}
	base := []corev1.EnvVar{{Name: "PATH", Value: "/bin"}, {Name: "HOSTNAME", Value: "p"}}
	services := []corev1.EnvVar{{Name: "WEB_SERVICE_HOST", Value: "10.96.0.10"}, {Name: "WEB_SERVICE_PORT", Value: "80"}}
	c := corev1.Container{Name: "c", Env: []corev1.EnvVar{
		{Name: "URL", Value: "http://$(WEB_SERVICE_HOST):$(WEB_SERVICE_PORT)"},
		{Name: "PATH", Value: "/opt:$(PATH)"}, // overrides, keeps PATH first
		{Name: "IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
	}}
	got, err := ContainerEnv(p, "10.244.0.9", base, services, c, nil)
	want := []string{"PATH=/opt:/bin", "HOSTNAME=p", "WEB_SERVICE_HOST=10.96.0.10", "WEB_SERVICE_PORT=80",
		"URL=http://10.96.0.10:80", "IP=10.244.0.9"}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("ContainerEnv = %q, %v; want %q", got, err, want)
	}
	if m := EnvMap(got); m["URL"] != "http://10.96.0.10:80" || len(m) != len(want) {
		t.Errorf("EnvMap = %v", m)
	}
	if got, _ := ContainerEnv(p, "", nil, nil, corev1.Container{Env: []corev1.EnvVar{{Name: "A", Value: "1"}}}, nil); !slices.Equal(got, []string{"A=1"}) {
		t.Errorf("without base or services: %q", got)
	}
}

// fakeObjects serves ConfigMaps and Secrets from maps, NotFound otherwise.
type fakeObjects struct {
	cms     map[string]*corev1.ConfigMap
	secrets map[string]*corev1.Secret
}

func (f fakeObjects) ConfigMap(ns, name string) (*corev1.ConfigMap, error) {
	if cm, ok := f.cms[ns+"/"+name]; ok {
		return cm, nil
	}
	return nil, apierrors.NewNotFound(corev1.Resource("configmaps"), name)
}

func (f fakeObjects) Token(p *corev1.Pod, audience string, seconds int64) (string, error) {
	if p.Spec.ServiceAccountName == "" {
		return "", errors.New("no service account")
	}
	return fmt.Sprintf("token:%s/%s:%s:%d", p.Namespace, p.Spec.ServiceAccountName, audience, seconds), nil
}

func (f fakeObjects) Secret(ns, name string) (*corev1.Secret, error) {
	if s, ok := f.secrets[ns+"/"+name]; ok {
		return s, nil
	}
	return nil, apierrors.NewNotFound(corev1.Resource("secrets"), name)
}

func TestContainerEnvSources(t *testing.T) {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"}}
	src := fakeObjects{
		cms:     map[string]*corev1.ConfigMap{"ns/cfg": {Data: map[string]string{"MODE": "fast", "LEVEL": "3", "1st": "x"}}},
		secrets: map[string]*corev1.Secret{"ns/db": {Data: map[string][]byte{"password": []byte("s3cret")}}},
	}
	yes := true
	cmRef := func(name string, optional *bool) *corev1.ConfigMapEnvSource {
		return &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: name}, Optional: optional}
	}
	tests := []struct {
		name    string
		c       corev1.Container
		want    []string
		wantErr string
	}{
		{name: "envFrom ConfigMap, sorted, invalid names skipped, env overrides",
			c: corev1.Container{EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: cmRef("cfg", nil)}},
				Env: []corev1.EnvVar{{Name: "MODE", Value: "slow-$(LEVEL)"}}},
			want: []string{"LEVEL=3", "MODE=slow-3"}},
		{name: "envFrom Secret with a prefix",
			c: corev1.Container{EnvFrom: []corev1.EnvFromSource{{Prefix: "DB_", SecretRef: &corev1.SecretEnvSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: "db"}}}}},
			want: []string{"DB_password=s3cret"}},
		{name: "missing ConfigMap", c: corev1.Container{EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: cmRef("nope", nil)}}},
			wantErr: `configmap "nope" not found`},
		{name: "missing optional ConfigMap", c: corev1.Container{EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: cmRef("nope", &yes)}}}},
		{name: "keys by reference",
			c: corev1.Container{Env: []corev1.EnvVar{
				{Name: "PW", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}, Key: "password"}}},
				{Name: "M", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, Key: "MODE"}}},
				{Name: "O", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, Key: "none", Optional: &yes}}},
			}},
			want: []string{"PW=s3cret", "M=fast", "O="}},
		{name: "missing key",
			c: corev1.Container{Env: []corev1.EnvVar{{Name: "M", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, Key: "none"}}}}},
			wantErr: "couldn't find key none in ConfigMap ns/cfg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ContainerEnv(p, "", nil, nil, tt.c, src)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("ContainerEnv = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestVolumeFiles(t *testing.T) {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", Labels: map[string]string{"b": "2", "a": "1"}},
		Spec: corev1.PodSpec{ServiceAccountName: "robot"}}
	src := fakeObjects{
		cms:     map[string]*corev1.ConfigMap{"ns/cfg": {Data: map[string]string{"app.conf": "x=1", "other": "y"}}},
		secrets: map[string]*corev1.Secret{"ns/tls": {Data: map[string][]byte{"tls.crt": []byte("CERT"), "tls.key": []byte("KEY")}}},
	}
	m := func(v int32) *int32 { return &v }
	yes := true
	tests := []struct {
		name    string
		v       corev1.Volume
		want    map[string]File
		wantErr string
	}{
		{name: "configMap, every key",
			v:    corev1.Volume{Name: "c", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}},
			want: map[string]File{"app.conf": {[]byte("x=1"), 0o644}, "other": {[]byte("y"), 0o644}}},
		{name: "secret items with modes",
			v: corev1.Volume{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "tls", DefaultMode: m(0o400),
				Items: []corev1.KeyToPath{{Key: "tls.crt", Path: "certs/cert.pem"}, {Key: "tls.key", Path: "key.pem", Mode: m(0o600)}}}}},
			want: map[string]File{"certs/cert.pem": {[]byte("CERT"), 0o400}, "key.pem": {[]byte("KEY"), 0o600}}},
		{name: "downward API labels and name",
			v: corev1.Volume{Name: "d", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{
				{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}},
				{Path: "name", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}}}},
			want: map[string]File{"labels": {[]byte("a=\"1\"\nb=\"2\""), 0o644}, "name": {[]byte("p"), 0o644}}},
		{name: "projected configMap + secret",
			v: corev1.Volume{Name: "pr", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, Items: []corev1.KeyToPath{{Key: "other", Path: "o"}}}},
				{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "tls"}, Items: []corev1.KeyToPath{{Key: "tls.key", Path: "k"}}}}}}}},
			want: map[string]File{"o": {[]byte("y"), 0o644}, "k": {[]byte("KEY"), 0o644}}},
		{name: "missing optional secret: empty",
			v:    corev1.Volume{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "none", Optional: &yes}}},
			want: map[string]File{}},
		{name: "missing secret",
			v:       corev1.Volume{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "none"}}},
			wantErr: `volume "s": secret "none" not found`},
		{name: "missing key",
			v: corev1.Volume{Name: "c", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"},
				Items: []corev1.KeyToPath{{Key: "nope", Path: "x"}}}}},
			wantErr: `has no key "nope"`},
		{name: "path escaping the volume",
			v: corev1.Volume{Name: "c", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"},
				Items: []corev1.KeyToPath{{Key: "other", Path: "../x"}}}}},
			wantErr: "may not contain '..'"},
		{name: "projected service account token, ca.crt and namespace (kube-api-access)",
			v: corev1.Volume{Name: "kube-api-access-x", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{DefaultMode: m(0o644), Sources: []corev1.VolumeProjection{
				{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: func() *int64 { v := int64(3607); return &v }()}},
				{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, Items: []corev1.KeyToPath{{Key: "other", Path: "ca.crt"}}}},
				{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}}}}}}},
			want: map[string]File{"token": {[]byte("token:ns/robot::3607"), 0o644}, "ca.crt": {[]byte("y"), 0o644}, "namespace": {[]byte("ns"), 0o644}}},
		{name: "emptyDir holds no files", v: corev1.Volume{Name: "e", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := VolumeFiles(p, tt.v, src)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || len(got) != len(tt.want) {
				t.Fatalf("VolumeFiles = %v, %v; want %v", got, err, tt.want)
			}
			for k, f := range tt.want {
				if g, ok := got[k]; !ok || string(g.Data) != string(f.Data) || g.Mode != f.Mode {
					t.Errorf("file %s = %+v, want %+v", k, got[k], f)
				}
			}
		})
	}
}
