package auth

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// stored turns a Secret's stringData into data, as the API server does.
func stored(s *corev1.Secret) *corev1.Secret {
	s.Data = map[string][]byte{}
	for k, v := range s.StringData {
		s.Data[k] = []byte(v)
	}
	s.StringData = nil
	return s
}

func TestBootstrapToken(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	tok := NewBootstrapToken()
	if got, ok := ParseBootstrapToken(tok.String()); !ok || got != tok {
		t.Fatalf("ParseBootstrapToken(%s) = %v, %v", tok, got, ok)
	}
	for _, bad := range []string{"", "abcdef", "abcdef.0123456789abcde", "ABCDEF.0123456789abcdef", "abcdef:0123456789abcdef"} {
		if _, ok := ParseBootstrapToken(bad); ok {
			t.Errorf("ParseBootstrapToken(%q) accepted", bad)
		}
	}
	tests := []struct {
		name   string
		secret func() *corev1.Secret
		tok    BootstrapToken
		at     time.Time
		want   string // error substring; "" = accepted
	}{
		{"valid", func() *corev1.Secret { return stored(BootstrapSecret(tok, time.Hour, now, "")) }, tok, now, ""},
		{"expired", func() *corev1.Secret { return stored(BootstrapSecret(tok, time.Hour, now, "")) }, tok, now.Add(time.Hour), "expired"},
		{"wrong secret", func() *corev1.Secret { return stored(BootstrapSecret(tok, time.Hour, now, "")) }, BootstrapToken{ID: tok.ID, Secret: "0000000000000000"}, now, "wrong secret"},
		{"wrong type", func() *corev1.Secret {
			s := stored(BootstrapSecret(tok, time.Hour, now, ""))
			s.Type = corev1.SecretTypeOpaque
			return s
		}, tok, now, "not \"bootstrap.kubernetes.io/token\""},
		{"not for authentication", func() *corev1.Secret {
			s := stored(BootstrapSecret(tok, time.Hour, now, ""))
			delete(s.Data, "usage-bootstrap-authentication")
			return s
		}, tok, now, "may not be used for authentication"},
		{"bad extra group", func() *corev1.Secret {
			s := stored(BootstrapSecret(tok, time.Hour, now, ""))
			s.Data["auth-extra-groups"] = []byte("system:masters")
			return s
		}, tok, now, "is not in system:bootstrappers:*"},
	}
	for _, tt := range tests {
		u, err := BootstrapUser(tt.secret(), tt.tok, tt.at)
		if tt.want != "" {
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%s: err %v, want %q", tt.name, err, tt.want)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if u.Name != "system:bootstrap:"+tok.ID || !u.In(BootstrapGroup) || !u.In(BootstrapDefaultGroup) || !u.In(GroupAuthenticated) {
			t.Errorf("%s: user %+v", tt.name, u)
		}
	}
}
