package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"fmt"
	"math/big"
	"regexp"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Bootstrap tokens, as kubeadm's: a Secret bootstrap-token-<id> in kube-system
// of type bootstrap.kubernetes.io/token holds the token <id>.<secret>; a
// request bearing it is user system:bootstrap:<id> in system:bootstrappers
// (plus the Secret's auth-extra-groups) until the Secret's expiration.
const (
	BootstrapGroup         = "system:bootstrappers"
	BootstrapUserPrefix    = "system:bootstrap:"
	BootstrapSecretType    = corev1.SecretType("bootstrap.kubernetes.io/token")
	BootstrapSecretPrefix  = "bootstrap-token-"
	BootstrapNamespace     = metav1.NamespaceSystem
	BootstrapDefaultGroup  = "system:bootstrappers:svcnet:default-node-token"
	bootstrapTokenIDKey    = "token-id"
	bootstrapTokenSecret   = "token-secret"
	bootstrapExpirationKey = "expiration"
	bootstrapUsageAuthn    = "usage-bootstrap-authentication"
	bootstrapUsageSigning  = "usage-bootstrap-signing"
	bootstrapExtraGroups   = "auth-extra-groups"
	bootstrapDescription   = "description"
)

var bootstrapTokenRE = regexp.MustCompile(`^([a-z0-9]{6})\.([a-z0-9]{16})$`)

// BootstrapToken is a parsed bootstrap token.
type BootstrapToken struct{ ID, Secret string }

// String is the token as given to `svcnet join --token`.
func (t BootstrapToken) String() string { return t.ID + "." + t.Secret }

// ParseBootstrapToken parses "<6 [a-z0-9]>.<16 [a-z0-9]>".
func ParseBootstrapToken(s string) (BootstrapToken, bool) {
	m := bootstrapTokenRE.FindStringSubmatch(s)
	if m == nil {
		return BootstrapToken{}, false
	}
	return BootstrapToken{ID: m[1], Secret: m[2]}, true
}

// NewBootstrapToken returns a random token.
func NewBootstrapToken() BootstrapToken {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	gen := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			k, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
			if err != nil {
				panic(err)
			}
			b[i] = alphabet[k.Int64()]
		}
		return string(b)
	}
	return BootstrapToken{ID: gen(6), Secret: gen(16)}
}

// BootstrapSecret is the Secret that makes tok valid until now+ttl.
func BootstrapSecret(tok BootstrapToken, ttl time.Duration, now time.Time, description string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: BootstrapSecretPrefix + tok.ID, Namespace: BootstrapNamespace},
		Type:       BootstrapSecretType,
		StringData: map[string]string{
			bootstrapDescription:   description,
			bootstrapTokenIDKey:    tok.ID,
			bootstrapTokenSecret:   tok.Secret,
			bootstrapExpirationKey: now.Add(ttl).UTC().Format(time.RFC3339),
			bootstrapUsageAuthn:    "true",
			bootstrapUsageSigning:  "true",
			bootstrapExtraGroups:   BootstrapDefaultGroup,
		},
	}
}

// BootstrapUser checks tok against its Secret at now and returns its user.
func BootstrapUser(s *corev1.Secret, tok BootstrapToken, now time.Time) (*User, error) {
	if s.Type != BootstrapSecretType {
		return nil, fmt.Errorf("secret %s/%s is of type %q, not %q", s.Namespace, s.Name, s.Type, BootstrapSecretType)
	}
	if s.DeletionTimestamp != nil {
		return nil, fmt.Errorf("bootstrap token %s is being deleted", tok.ID)
	}
	get := func(k string) string { return string(s.Data[k]) }
	if get(bootstrapTokenIDKey) != tok.ID || subtle.ConstantTimeCompare([]byte(get(bootstrapTokenSecret)), []byte(tok.Secret)) != 1 {
		return nil, fmt.Errorf("bootstrap token %s: wrong secret", tok.ID)
	}
	if get(bootstrapUsageAuthn) != "true" {
		return nil, fmt.Errorf("bootstrap token %s may not be used for authentication", tok.ID)
	}
	if e := get(bootstrapExpirationKey); e != "" {
		t, err := time.Parse(time.RFC3339, e)
		if err != nil {
			return nil, fmt.Errorf("bootstrap token %s: expiration %q: %w", tok.ID, e, err)
		}
		if !now.Before(t) {
			return nil, fmt.Errorf("bootstrap token %s expired at %s", tok.ID, e)
		}
	}
	groups := []string{BootstrapGroup}
	for _, g := range strings.Split(get(bootstrapExtraGroups), ",") {
		if g = strings.TrimSpace(g); g != "" {
			if !strings.HasPrefix(g, BootstrapGroup+":") {
				return nil, fmt.Errorf("bootstrap token %s: extra group %q is not in %s:*", tok.ID, g, BootstrapGroup)
			}
			groups = append(groups, g)
		}
	}
	return &User{Name: BootstrapUserPrefix + tok.ID, Groups: append(groups, GroupAuthenticated)}, nil
}

// BootstrapTokens authenticates bootstrap tokens against their Secrets.
type BootstrapTokens struct {
	// Secret reads kube-system/<name>.
	Secret func(ctx context.Context, name string) (*corev1.Secret, error)
	Now    func() time.Time
}

// Authenticate returns the user of a bootstrap token.
func (b *BootstrapTokens) Authenticate(ctx context.Context, tok BootstrapToken) (*User, error) {
	s, err := b.Secret(ctx, BootstrapSecretPrefix+tok.ID)
	if err != nil {
		return nil, fmt.Errorf("bootstrap token %s: %w", tok.ID, err)
	}
	return BootstrapUser(s, tok, b.Now())
}
