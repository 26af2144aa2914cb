package apiserver

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/svcnet/svcnet/internal/auth"
)

func withServiceAccountKey(t *testing.T) func(*Config) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k, err := auth.NewServiceAccountKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return func(c *Config) { c.ServiceAccountKey = k }
}

// jwtClaims decodes a token's payload without verifying it.
func jwtClaims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok)
	}
	data, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestTokenRequest(t *testing.T) {
	h := newHarness(t, withServiceAccountKey(t))
	const sa = "/api/v1/namespaces/default/serviceaccounts"
	h.must(201, h.do("POST", sa, `{"metadata":{"name":"robot"}}`))
	h.must(404, h.do("POST", sa+"/ghost/token", `{"spec":{}}`))
	r := h.must(201, h.do("POST", sa+"/robot/token", `{"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","spec":{}}`))
	if r.str("kind") != "TokenRequest" || r.str("apiVersion") != "authentication.k8s.io/v1" || r.str("spec", "expirationSeconds") != "3600" ||
		r.str("spec", "audiences") != `["https://kubernetes.default.svc.cluster.local"]` || r.str("metadata", "name") != "robot" {
		t.Fatalf("token request: %s", r.body)
	}
	exp, _ := time.Parse(time.RFC3339, r.str("status", "expirationTimestamp"))
	if d := time.Until(exp); d < 59*time.Minute || d > 61*time.Minute {
		t.Errorf("expirationTimestamp %v", exp)
	}
	tok := r.str("status", "token")
	c := jwtClaims(t, tok)
	if c["iss"] != auth.DefaultServiceAccountIssuer || c["sub"] != "system:serviceaccount:default:robot" || c["jti"] == nil {
		t.Errorf("claims %v", c)
	}
	bearer := []string{"Authorization", "Bearer " + tok}
	h.bindView("default", "robot")
	h.must(200, h.do("GET", "/api/v1/namespaces/default/pods", "", bearer...))
	h.must(200, h.do("GET", "/api/v1", "", bearer...))
	f := h.must(403, h.do("GET", "/api/v1/namespaces/default/secrets", "", bearer...))
	if !strings.Contains(f.str("message"), `User "system:serviceaccount:default:robot" cannot list resource "secrets"`) {
		t.Errorf("forbidden: %s", f.body)
	}
	h.must(403, h.do("POST", "/api/v1/namespaces/default/configmaps", `{"metadata":{"name":"c"}}`, bearer...))
	who := h.must(201, h.do("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", `{}`, bearer...))
	if who.str("status", "userInfo", "groups") != `["system:serviceaccounts","system:serviceaccounts:default","system:authenticated"]` ||
		who.str("status", "userInfo", "uid") == "" {
		t.Errorf("whoami: %s", who.body)
	}

	// Limits, with Kubernetes' messages.
	v := h.must(422, h.do("POST", sa+"/robot/token", `{"spec":{"expirationSeconds":599}}`))
	if !strings.Contains(v.str("message"), "spec.expirationSeconds: Invalid value: 599: may not specify a duration less than 10 minutes") {
		t.Errorf("short token: %s", v.body)
	}
	h.must(422, h.do("POST", sa+"/robot/token", `{"metadata":{"name":"other"},"spec":{}}`))
	aud := h.must(201, h.do("POST", sa+"/robot/token", `{"spec":{"audiences":["vault"],"expirationSeconds":600}}`))
	h.must(401, h.do("GET", "/api/v1/namespaces/default/pods", "", "Authorization", "Bearer "+aud.str("status", "token")))
	h.must(403, h.do("POST", sa+"/robot/token", `{"spec":{}}`, "Authorization", "Bearer "+viewerToken))
	h.must(403, h.do("POST", sa+"/robot/token", `{"spec":{}}`, bearer...))

	// A deleted and re-created account invalidates its tokens.
	h.must(200, h.do("DELETE", sa+"/robot", ""))
	h.must(401, h.do("GET", "/api/v1/namespaces/default/pods", "", bearer...))
	h.must(201, h.do("POST", sa, `{"metadata":{"name":"robot"}}`))
	h.must(401, h.do("GET", "/api/v1/namespaces/default/pods", "", bearer...))

	disc := h.must(200, h.do("GET", "/api/v1", ""))
	if !strings.Contains(disc.body, `{"name":"serviceaccounts/token","singularName":"","namespaced":true,"group":"authentication.k8s.io","version":"v1","kind":"TokenRequest","verbs":["create"]}`) {
		t.Errorf("discovery lacks serviceaccounts/token: %s", disc.body)
	}
}

func TestPodBoundTokens(t *testing.T) {
	h := newHarness(t, withServiceAccountKey(t))
	const sa = "/api/v1/namespaces/default/serviceaccounts"
	h.must(201, h.do("POST", sa, `{"metadata":{"name":"robot"}}`))
	h.must(201, h.do("POST", "/api/v1/nodes", `{"metadata":{"name":"node1"}}`))
	p := h.must(201, h.do("POST", "/api/v1/namespaces/default/pods", `{"metadata":{"name":"p"},"spec":{"serviceAccountName":"robot","nodeName":"node1","containers":[{"name":"c","image":"i"}]}}`))
	other := h.must(201, h.do("POST", "/api/v1/namespaces/default/pods", `{"metadata":{"name":"q"},"spec":{"serviceAccountName":"robot","nodeName":"node2","containers":[{"name":"c","image":"i"}]}}`))
	h.must(201, h.do("POST", "/api/v1/namespaces/default/pods", `{"metadata":{"name":"d"},"spec":{"containers":[{"name":"c","image":"i"}]}}`))
	uid := p.str("metadata", "uid")
	bind := func(name, uid string) string {
		return `{"spec":{"boundObjectRef":{"apiVersion":"v1","kind":"Pod","name":"` + name + `","uid":"` + uid + `"}}}`
	}
	r := h.must(201, h.do("POST", sa+"/robot/token", bind("p", uid)))
	kc, _ := json.Marshal(jwtClaims(t, r.str("status", "token"))["kubernetes.io"])
	if !strings.Contains(string(kc), `"pod":{"name":"p","uid":"`+uid+`"}`) || !strings.Contains(string(kc), `"node":{"name":"node1","uid":"`) {
		t.Errorf("kubernetes.io claim %s", kc)
	}
	h.must(400, h.do("POST", sa+"/robot/token", bind("d", "")))          // another account's pod
	h.must(409, h.do("POST", sa+"/robot/token", bind("p", "stale-uid"))) // recreated pod
	h.must(404, h.do("POST", sa+"/robot/token", bind("nope", "")))       // no such pod
	h.must(400, h.do("POST", sa+"/robot/token", `{"spec":{"boundObjectRef":{"apiVersion":"apps/v1","kind":"Deployment","name":"x"}}}`))

	// The kubelet's lifetime: a year in the token, warnafter and the status at 3607s.
	long := h.must(201, h.do("POST", sa+"/robot/token", `{"spec":{"expirationSeconds":3607,"boundObjectRef":{"apiVersion":"v1","kind":"Pod","name":"p"}}}`))
	c := jwtClaims(t, long.str("status", "token"))
	exp, iat := c["exp"].(float64), c["iat"].(float64)
	warn := c["kubernetes.io"].(map[string]any)["warnafter"].(float64)
	if exp-iat != 365*24*3600 || warn-iat != 3607 {
		t.Errorf("extended token: exp-iat=%v warnafter-iat=%v", exp-iat, warn-iat)
	}
	if st, _ := time.Parse(time.RFC3339, long.str("status", "expirationTimestamp")); time.Until(st) > 61*time.Minute {
		t.Errorf("status expiration %v", st)
	}

	// The node of the pod may ask, bound to the pod with its uid; nothing else.
	node := []string{"Authorization", "Bearer " + nodeToken}
	h.must(201, h.do("POST", sa+"/robot/token", bind("p", uid), node...))
	for _, c := range []struct{ body, msg string }{
		{`{"spec":{}}`, `serviceaccounts "robot" is forbidden: node requested token not bound to a pod`},
		{bind("p", ""), "node requested token with a pod binding without a uid"},
		{bind("p", "stale"), "the UID in the bound object reference (stale) does not match the UID in record"},
		{bind("q", other.str("metadata", "uid")), "node requested token bound to a pod scheduled on a different node"},
		{`{"spec":{"audiences":["vault"],"boundObjectRef":{"apiVersion":"v1","kind":"Pod","name":"p","uid":"` + uid + `"}}}`,
			`audience "vault" not found in pod spec volume, system:node:node1 is not authorized to request tokens for this audience`},
	} {
		f := h.must(403, h.do("POST", sa+"/robot/token", c.body, node...))
		if !strings.Contains(f.str("message"), c.msg) {
			t.Errorf("%s: %s", c.body, f.str("message"))
		}
	}

	// A deleted pod takes its tokens with it.
	tok := []string{"Authorization", "Bearer " + r.str("status", "token")}
	h.bindView("default", "robot")
	h.must(200, h.do("GET", "/api/v1/namespaces/default/pods/p", "", tok...))
	h.must(200, h.do("DELETE", "/api/v1/namespaces/default/pods/p?gracePeriodSeconds=0", ""))
	h.must(401, h.do("GET", "/api/v1/namespaces/default/pods", "", tok...))
}

func TestPodServiceAccountAdmission(t *testing.T) {
	h := newHarness(t, withServiceAccountKey(t))
	p := h.must(201, h.do("POST", "/api/v1/namespaces/default/pods", `{"metadata":{"name":"p"},"spec":{"initContainers":[{"name":"i","image":"i"}],"containers":[{"name":"c","image":"i"}]}}`))
	var pod corev1.Pod
	if err := json.Unmarshal([]byte(p.body), &pod); err != nil {
		t.Fatal(err)
	}
	if pod.Spec.ServiceAccountName != "default" || pod.Spec.DeprecatedServiceAccount != "default" {
		t.Errorf("service account %q / %q", pod.Spec.ServiceAccountName, pod.Spec.DeprecatedServiceAccount)
	}
	if len(pod.Spec.Volumes) != 1 || !strings.HasPrefix(pod.Spec.Volumes[0].Name, "kube-api-access-") || len(pod.Spec.Volumes[0].Name) != len("kube-api-access-")+5 {
		t.Fatalf("volumes %+v", pod.Spec.Volumes)
	}
	vol, _ := json.Marshal(pod.Spec.Volumes[0].Projected)
	want := `{"sources":[{"serviceAccountToken":{"expirationSeconds":3607,"path":"token"}},{"configMap":{"name":"kube-root-ca.crt","items":[{"key":"ca.crt","path":"ca.crt"}]}},{"downwardAPI":{"items":[{"path":"namespace","fieldRef":{"apiVersion":"v1","fieldPath":"metadata.namespace"}}]}}],"defaultMode":420}`
	if string(vol) != want {
		t.Errorf("projected volume\n got %s\nwant %s", vol, want)
	}
	for _, c := range append(pod.Spec.InitContainers, pod.Spec.Containers...) {
		if len(c.VolumeMounts) != 1 || !reflect.DeepEqual(c.VolumeMounts[0], corev1.VolumeMount{Name: pod.Spec.Volumes[0].Name, ReadOnly: true, MountPath: "/var/run/secrets/kubernetes.io/serviceaccount"}) {
			t.Errorf("%s mounts %+v", c.Name, c.VolumeMounts)
		}
	}
	f := h.must(403, h.do("POST", "/api/v1/namespaces/default/pods", `{"metadata":{"name":"r"},"spec":{"serviceAccountName":"robot","containers":[{"name":"c","image":"i"}]}}`))
	if f.str("message") != `pods "r" is forbidden: error looking up service account default/robot: serviceaccount "robot" not found` {
		t.Errorf("missing account: %s", f.str("message"))
	}
	// The default account of a new namespace is waited for.
	h.must(201, h.do("POST", "/api/v1/namespaces", `{"metadata":{"name":"fresh"}}`))
	go func() {
		time.Sleep(300 * time.Millisecond)
		h.do("POST", "/api/v1/namespaces/fresh/serviceaccounts", `{"metadata":{"name":"default"}}`)
	}()
	h.must(201, h.do("POST", "/api/v1/namespaces/fresh/pods", `{"metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"i"}]}}`))
	// The account's automount and pull secrets.
	h.must(201, h.do("POST", "/api/v1/namespaces/default/serviceaccounts", `{"metadata":{"name":"quiet"},"automountServiceAccountToken":false,"imagePullSecrets":[{"name":"reg"}]}`))
	q := h.must(201, h.do("POST", "/api/v1/namespaces/default/pods", `{"metadata":{"name":"q"},"spec":{"serviceAccountName":"quiet","containers":[{"name":"c","image":"i"}]}}`))
	if q.str("spec", "volumes") != "" || q.str("spec", "imagePullSecrets") != `[{"name":"reg"}]` {
		t.Errorf("quiet account: %s", q.body)
	}
	q = h.must(201, h.do("POST", "/api/v1/namespaces/default/pods", `{"metadata":{"name":"q2"},"spec":{"serviceAccountName":"quiet","automountServiceAccountToken":true,"containers":[{"name":"c","image":"i"}]}}`))
	if !strings.Contains(q.str("spec", "volumes"), "kube-api-access-") {
		t.Errorf("pod's automount does not win: %s", q.body)
	}
}

func TestMountToken(t *testing.T) {
	f, tr := false, true
	mnt := func(name, path string) corev1.VolumeMount { return corev1.VolumeMount{Name: name, MountPath: path} }
	cases := []struct {
		name        string
		pod         corev1.PodSpec
		sa          corev1.ServiceAccount
		wantMount   bool
		wantVolumes string // names, comma-separated
		wantMounts  string // per container (init first): the volume at the token path
	}{
		{"default", corev1.PodSpec{Containers: []corev1.Container{{Name: "c"}}}, corev1.ServiceAccount{}, true, "kube-api-access-abcde", "kube-api-access-abcde"},
		{"off on the pod", corev1.PodSpec{AutomountServiceAccountToken: &f, Containers: []corev1.Container{{Name: "c"}}}, corev1.ServiceAccount{}, false, "", ""},
		{"off on the account", corev1.PodSpec{Containers: []corev1.Container{{Name: "c"}}}, corev1.ServiceAccount{AutomountServiceAccountToken: &f}, false, "", ""},
		{"pod wins over the account", corev1.PodSpec{AutomountServiceAccountToken: &tr, Containers: []corev1.Container{{Name: "c"}}},
			corev1.ServiceAccount{AutomountServiceAccountToken: &f}, true, "kube-api-access-abcde", "kube-api-access-abcde"},
		{"existing volume reused", corev1.PodSpec{Volumes: []corev1.Volume{{Name: "data"}, {Name: "kube-api-access-xyz12"}}, Containers: []corev1.Container{{Name: "c"}}},
			corev1.ServiceAccount{}, true, "data,kube-api-access-xyz12", "kube-api-access-xyz12"},
		{"init containers too", corev1.PodSpec{InitContainers: []corev1.Container{{Name: "i"}}, Containers: []corev1.Container{{Name: "a"}, {Name: "b"}}},
			corev1.ServiceAccount{}, true, "kube-api-access-abcde", "kube-api-access-abcde,kube-api-access-abcde,kube-api-access-abcde"},
		{"own mount at the path kept", corev1.PodSpec{Volumes: []corev1.Volume{{Name: "mine"}}, Containers: []corev1.Container{
			{Name: "a", VolumeMounts: []corev1.VolumeMount{mnt("mine", tokenMountPath)}}, {Name: "b"}}},
			corev1.ServiceAccount{}, true, "mine,kube-api-access-abcde", "mine,kube-api-access-abcde"},
		{"nobody needs it", corev1.PodSpec{Volumes: []corev1.Volume{{Name: "mine"}}, Containers: []corev1.Container{
			{Name: "a", VolumeMounts: []corev1.VolumeMount{mnt("mine", tokenMountPath)}}}}, corev1.ServiceAccount{}, true, "mine", "mine"},
	}
	for _, c := range cases {
		pod := &corev1.Pod{Spec: *c.pod.DeepCopy()}
		if got := automountToken(pod, &c.sa); got != c.wantMount {
			t.Errorf("%s: automount %v", c.name, got)
			continue
		}
		if c.wantMount {
			mountToken(pod, "kube-api-access-abcde")
		}
		var vols, mounts []string
		for _, v := range pod.Spec.Volumes {
			vols = append(vols, v.Name)
		}
		for _, ct := range append(pod.Spec.InitContainers, pod.Spec.Containers...) {
			for _, m := range ct.VolumeMounts {
				if m.MountPath == tokenMountPath {
					mounts = append(mounts, m.Name)
				}
			}
		}
		if strings.Join(vols, ",") != c.wantVolumes || strings.Join(mounts, ",") != c.wantMounts {
			t.Errorf("%s: volumes %v, mounts %v; want %s and %s", c.name, vols, mounts, c.wantVolumes, c.wantMounts)
		}
	}
}
