package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeObjects is a store of uids and deletion times by kind/ns/name.
type fakeObjects map[string]struct {
	uid      string
	deleting time.Time
}

func (f fakeObjects) Object(_ context.Context, kind, ns, name string) (string, time.Time, error) {
	if kind == "Node" {
		ns = ""
	}
	o, ok := f[kind+"/"+ns+"/"+name]
	if !ok {
		return "", time.Time{}, errors.New("not found")
	}
	return o.uid, o.deleting, nil
}

func TestServiceAccountKeyFiles(t *testing.T) {
	dir := t.TempDir()
	// Servers starting together on one data directory end up with one key.
	keys := make([]*ServiceAccountKey, 4)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := LoadOrCreateServiceAccountKey(dir)
			if err != nil {
				t.Error(err)
			}
			keys[i] = k
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	now := time.Now()
	tok, err := keys[0].Sign(DefaultServiceAccountIssuer, TokenClaims{Namespace: "x", Name: "robot", UID: "u", IssuedAt: now,
		Expiry: now.Add(time.Hour), Audiences: []string{DefaultServiceAccountIssuer}})
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range keys {
		if _, err := k.Verify(tok, DefaultServiceAccountIssuer, []string{DefaultServiceAccountIssuer}, now); err != nil {
			t.Errorf("server %d: %v", i, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "sa.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("sa.key: %v %v", fi.Mode(), err)
	}
	// Rotation: a new sa.key, the old public key kept in sa.pub.
	newKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	keyPEM, _ := encodeKey(newKey)
	der, _ := x509.MarshalPKIXPublicKey(newKey.Public())
	old, _ := os.ReadFile(filepath.Join(dir, "sa.pub"))
	writeFile(filepath.Join(dir, "sa.key"), keyPEM, 0o600)
	writeFile(filepath.Join(dir, "sa.pub"), append(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), old...), 0o644)
	rotated, err := LoadOrCreateServiceAccountKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rotated.Verify(tok, DefaultServiceAccountIssuer, []string{DefaultServiceAccountIssuer}, now); err != nil {
		t.Errorf("old token after rotation: %v", err)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	stranger, _ := NewServiceAccountKey(other)
	if _, err := stranger.Verify(tok, DefaultServiceAccountIssuer, []string{DefaultServiceAccountIssuer}, now); err == nil {
		t.Error("token verified by a key that did not sign it")
	}
}

func TestServiceAccountTokens(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k, err := NewServiceAccountKey(key)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	aud := []string{DefaultServiceAccountIssuer}
	objects := fakeObjects{
		"ServiceAccount/x/robot": {uid: "sa-1"},
		"Pod/x/web":              {uid: "pod-1"},
		"Pod/x/leaving":          {uid: "pod-2", deleting: now.Add(-2 * time.Minute)},
		"Pod/x/grace":            {uid: "pod-3", deleting: now.Add(30 * time.Second)},
		"Secret/x/s":             {uid: "sec-1"},
		"Node//n1":               {uid: "node-1"},
	}
	a := &ServiceAccountTokens{Key: k, Issuer: DefaultServiceAccountIssuer, Audiences: aud, Objects: objects, Now: func() time.Time { return now }}
	base := TokenClaims{Namespace: "x", Name: "robot", UID: "sa-1", Audiences: aud, IssuedAt: now.Add(-time.Minute), Expiry: now.Add(time.Hour), ID: "jti-1"}
	with := func(f func(c *TokenClaims)) TokenClaims { c := base; f(&c); return c }
	cases := []struct {
		name    string
		issuer  string
		claims  TokenClaims
		wantErr string
	}{
		{"valid", "", base, ""},
		{"expired", "", with(func(c *TokenClaims) { c.Expiry = now.Add(-2 * time.Minute) }), "has expired"},
		{"expired within leeway", "", with(func(c *TokenClaims) { c.Expiry = now.Add(-30 * time.Second) }), ""},
		{"not yet valid", "", with(func(c *TokenClaims) { c.IssuedAt = now.Add(5 * time.Minute) }), "not valid yet"},
		{"wrong audience", "", with(func(c *TokenClaims) { c.Audiences = []string{"vault"} }), "token audiences"},
		{"one of the audiences", "", with(func(c *TokenClaims) { c.Audiences = []string{"vault", DefaultServiceAccountIssuer} }), ""},
		{"wrong issuer", "https://elsewhere", base, "issuer"},
		{"deleted service account", "", with(func(c *TokenClaims) { c.Name = "gone" }), "ServiceAccount x/gone"},
		{"recreated service account", "", with(func(c *TokenClaims) { c.UID = "sa-0" }), "does not match"},
		{"bound pod", "", with(func(c *TokenClaims) {
			c.Pod = &BoundObject{Name: "web", UID: "pod-1"}
			c.Node = &BoundObject{Name: "n1"}
		}), ""},
		{"deleted bound pod", "", with(func(c *TokenClaims) { c.Pod = &BoundObject{Name: "old", UID: "pod-0"} }), "Pod x/old"},
		{"recreated bound pod", "", with(func(c *TokenClaims) { c.Pod = &BoundObject{Name: "web", UID: "pod-0"} }), "does not match"},
		{"pod deleted over a minute ago", "", with(func(c *TokenClaims) { c.Pod = &BoundObject{Name: "leaving", UID: "pod-2"} }), "has been deleted"},
		{"pod in its grace period", "", with(func(c *TokenClaims) { c.Pod = &BoundObject{Name: "grace", UID: "pod-3"} }), ""},
		{"bound secret", "", with(func(c *TokenClaims) { c.Secret = &BoundObject{Name: "s", UID: "sec-1"} }), ""},
		{"deleted bound secret", "", with(func(c *TokenClaims) { c.Secret = &BoundObject{Name: "t", UID: "sec-2"} }), "Secret x/t"},
		{"bound node", "", with(func(c *TokenClaims) { c.Node = &BoundObject{Name: "n1", UID: "node-1"} }), ""},
		{"recreated bound node", "", with(func(c *TokenClaims) { c.Node = &BoundObject{Name: "n1", UID: "node-0"} }), "does not match"},
	}
	for _, c := range cases {
		iss := c.issuer
		if iss == "" {
			iss = DefaultServiceAccountIssuer
		}
		tok, err := k.Sign(iss, c.claims)
		if err != nil {
			t.Fatal(err)
		}
		u, err := a.Authenticate(context.Background(), tok)
		switch {
		case c.wantErr == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("%s: error %v, want %q", c.name, err, c.wantErr)
		case err == nil:
			if u.Name != "system:serviceaccount:x:robot" || u.UID != "sa-1" || strings.Join(u.Groups, ",") != "system:serviceaccounts,system:serviceaccounts:x,system:authenticated" {
				t.Errorf("%s: user %+v", c.name, u)
			}
			if ns, name, ok := u.ServiceAccount(); !ok || ns != "x" || name != "robot" {
				t.Errorf("%s: ServiceAccount() = %q %q %v", c.name, ns, name, ok)
			}
		}
	}

	// The token is a JWT with Kubernetes' claims.
	tok, _ := k.Sign(DefaultServiceAccountIssuer, with(func(c *TokenClaims) {
		c.Pod, c.Node, c.WarnAfter = &BoundObject{Name: "web", UID: "pod-1"}, &BoundObject{Name: "n1", UID: "node-1"}, now.Add(time.Hour)
	}))
	parts := strings.Split(tok, ".")
	header, _ := base64.RawURLEncoding.DecodeString(parts[0])
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var h, p map[string]any
	json.Unmarshal(header, &h)
	json.Unmarshal(payload, &p)
	if h["alg"] != "ES256" || h["kid"] == "" {
		t.Errorf("header %s", header)
	}
	for _, claim := range []string{"iss", "sub", "aud", "exp", "iat", "nbf", "jti"} {
		if p[claim] == nil {
			t.Errorf("claim %s missing in %s", claim, payload)
		}
	}
	if aud, _ := json.Marshal(p["aud"]); string(aud) != `["https://kubernetes.default.svc.cluster.local"]` {
		t.Errorf("aud %s", aud)
	}
	kc, _ := json.Marshal(p["kubernetes.io"])
	want := `{"namespace":"x","node":{"name":"n1","uid":"node-1"},"pod":{"name":"web","uid":"pod-1"},"serviceaccount":{"name":"robot","uid":"sa-1"},"warnafter":1800003600}`
	if string(kc) != want {
		t.Errorf("kubernetes.io claim\n got %s\nwant %s", kc, want)
	}
	u, err := a.Authenticate(context.Background(), tok)
	if err != nil || u.Extra[ExtraPodName][0] != "web" || u.Extra[ExtraNodeUID][0] != "node-1" || u.Extra[ExtraCredentialID][0] != "JTI=jti-1" {
		t.Errorf("extra %+v, %v", u, err)
	}

	// Through the Authenticator: static tokens first, then JWTs; garbage is anonymous.
	authn := &Authenticator{ServiceAccounts: a}
	r, _ := http.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	if u, ok := authn.Authenticate(r); !ok || u.Name != "system:serviceaccount:x:robot" {
		t.Errorf("bearer JWT: %+v %v", u, ok)
	}
	r.Header.Set("Authorization", "Bearer "+parts[0]+"."+parts[1]+".AAAA")
	if _, ok := authn.Authenticate(r); ok {
		t.Error("token with a bad signature accepted")
	}
}
