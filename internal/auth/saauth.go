package auth

import (
	"context"
	"fmt"
	"time"
)

// Extra keys Kubernetes sets on the user of a service account token.
const (
	ExtraPodName      = "authentication.kubernetes.io/pod-name"
	ExtraPodUID       = "authentication.kubernetes.io/pod-uid"
	ExtraNodeName     = "authentication.kubernetes.io/node-name"
	ExtraNodeUID      = "authentication.kubernetes.io/node-uid"
	ExtraCredentialID = "authentication.kubernetes.io/credential-id"
)

// Objects reads what a service account token names, so that a token dies with
// its ServiceAccount and with the Pod, Secret or Node it is bound to.
type Objects interface {
	// Object returns the uid of kind (ServiceAccount, Pod, Secret or Node) ns/name
	// and when its deletion started (zero if it is not being deleted); an error
	// when it does not exist.
	Object(ctx context.Context, kind, ns, name string) (uid string, deleting time.Time, err error)
}

// ServiceAccountTokens authenticates bearer tokens signed by Key.
type ServiceAccountTokens struct {
	Key       *ServiceAccountKey
	Issuer    string
	Audiences []string // a token must name at least one
	Objects   Objects
	Now       func() time.Time
}

// Authenticate verifies a token and checks that what it names still exists with
// the uid in it, as Kubernetes' service account token validator does.
func (a *ServiceAccountTokens) Authenticate(ctx context.Context, token string) (*User, error) {
	now := a.Now()
	c, err := a.Key.Verify(token, a.Issuer, a.Audiences, now)
	if err != nil {
		return nil, err
	}
	// Objects deleted less than a leeway ago still count, as in Kubernetes.
	check := func(kind, name, uid string) error {
		got, deleting, err := a.Objects.Object(ctx, kind, c.Namespace, name)
		if err != nil {
			return fmt.Errorf("%s %s/%s of the token: %w", kind, c.Namespace, name, err)
		}
		if !deleting.IsZero() && deleting.Before(now.Add(-tokenLeeway)) {
			return fmt.Errorf("%s %s/%s of the token has been deleted", kind, c.Namespace, name)
		}
		if got != uid {
			return fmt.Errorf("%s UID (%s) does not match claim (%s)", kind, got, uid)
		}
		return nil
	}
	if err := check("ServiceAccount", c.Name, c.UID); err != nil {
		return nil, err
	}
	u := &User{Name: ServiceAccountUserName(c.Namespace, c.Name), UID: c.UID,
		Groups: []string{GroupServiceAccounts, GroupServiceAccounts + ":" + c.Namespace, GroupAuthenticated}}
	extra := map[string][]string{}
	if c.ID != "" {
		extra[ExtraCredentialID] = []string{"JTI=" + c.ID}
	}
	switch {
	case c.Secret != nil:
		if err := check("Secret", c.Secret.Name, c.Secret.UID); err != nil {
			return nil, err
		}
	case c.Pod != nil:
		if err := check("Pod", c.Pod.Name, c.Pod.UID); err != nil {
			return nil, err
		}
		extra[ExtraPodName], extra[ExtraPodUID] = []string{c.Pod.Name}, []string{c.Pod.UID}
		if c.Node != nil { // informational for pod-bound tokens, as in Kubernetes
			extra[ExtraNodeName] = []string{c.Node.Name}
			if c.Node.UID != "" {
				extra[ExtraNodeUID] = []string{c.Node.UID}
			}
		}
	case c.Node != nil:
		if err := check("Node", c.Node.Name, c.Node.UID); err != nil {
			return nil, err
		}
		extra[ExtraNodeName], extra[ExtraNodeUID] = []string{c.Node.Name}, []string{c.Node.UID}
	}
	if len(extra) > 0 {
		u.Extra = extra
	}
	return u, nil
}
