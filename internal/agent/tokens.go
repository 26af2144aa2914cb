package agent

import (
	"context"
	"fmt"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// tokenRefreshAt is the share of a token's lifetime after which a new one is
// requested (the kubelet's token manager renews at 80%).
const tokenRefreshAt = 0.8

// tokenCache hands out service account tokens bound to pods, requesting a new
// one through TokenRequest only when the cached one has lived 80% of its time.
type tokenCache struct {
	request func(ctx context.Context, ns, sa string, tr *authenticationv1.TokenRequest) (*authenticationv1.TokenRequest, error)
	now     func() time.Time
	mu      sync.Mutex
	tokens  map[tokenKey]cachedToken
}

type tokenKey struct {
	pod      types.UID
	sa       string
	audience string
	seconds  int64
}

type cachedToken struct {
	token         string
	issued, until time.Time
}

func newTokenCache(a *Agent) *tokenCache {
	return &tokenCache{now: a.o.Now, tokens: map[tokenKey]cachedToken{},
		request: func(ctx context.Context, ns, sa string, tr *authenticationv1.TokenRequest) (*authenticationv1.TokenRequest, error) {
			return a.client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, tr, metav1.CreateOptions{})
		}}
}

// token returns a token of p's service account for audience, bound to p.
func (c *tokenCache) token(p *corev1.Pod, audience string, seconds int64) (string, error) {
	sa := p.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	key := tokenKey{pod: p.UID, sa: sa, audience: audience, seconds: seconds}
	now := c.now()
	c.mu.Lock()
	t, ok := c.tokens[key]
	c.mu.Unlock()
	if ok && now.Before(t.issued.Add(time.Duration(float64(t.until.Sub(t.issued))*tokenRefreshAt))) {
		return t.token, nil
	}
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &seconds,
		BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: p.Name, UID: p.UID}}}
	if audience != "" {
		tr.Spec.Audiences = []string{audience}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := c.request(ctx, p.Namespace, sa, tr)
	if err != nil {
		return "", fmt.Errorf("token of service account %s/%s: %w", p.Namespace, sa, err)
	}
	c.mu.Lock()
	c.tokens[key] = cachedToken{token: out.Status.Token, issued: now, until: out.Status.ExpirationTimestamp.Time}
	for k, v := range c.tokens { // forget expired tokens (deleted pods)
		if now.After(v.until) {
			delete(c.tokens, k)
		}
	}
	c.mu.Unlock()
	return out.Status.Token, nil
}
