package agent

import (
	"context"
	"fmt"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestTokenCache(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	var asked []*authenticationv1.TokenRequest
	c := &tokenCache{now: func() time.Time { return now }, tokens: map[tokenKey]cachedToken{},
		request: func(_ context.Context, ns, sa string, tr *authenticationv1.TokenRequest) (*authenticationv1.TokenRequest, error) {
			asked = append(asked, tr)
			out := tr.DeepCopy()
			out.Status.Token = fmt.Sprintf("%s/%s#%d", ns, sa, len(asked))
			out.Status.ExpirationTimestamp = metav1.NewTime(now.Add(time.Duration(*tr.Spec.ExpirationSeconds) * time.Second))
			return out, nil
		}}
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: "u1"}}
	tok, err := c.token(p, "", 3600)
	if err != nil || tok != "ns/default#1" {
		t.Fatalf("first token = %q, %v", tok, err)
	}
	if r := asked[0]; r.Spec.BoundObjectRef == nil || r.Spec.BoundObjectRef.UID != "u1" || r.Spec.BoundObjectRef.Kind != "Pod" || len(r.Spec.Audiences) != 0 {
		t.Errorf("request = %+v", r.Spec)
	}
	now = now.Add(47 * time.Minute) // under 80% of an hour: cached
	if tok, _ := c.token(p, "", 3600); tok != "ns/default#1" || len(asked) != 1 {
		t.Errorf("at 78%% of its life: %q after %d requests", tok, len(asked))
	}
	now = now.Add(2 * time.Minute) // past 80%: renewed
	if tok, _ := c.token(p, "", 3600); tok != "ns/default#2" {
		t.Errorf("at 82%% of its life: %q", tok)
	}
	p.Spec.ServiceAccountName = "robot"
	if tok, _ := c.token(p, "vault", 600); tok != "ns/robot#3" || asked[2].Spec.Audiences[0] != "vault" {
		t.Errorf("another service account and audience: %q %v", tok, asked[2].Spec.Audiences)
	}
}
