package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
)

// Well-known identities and groups.
const (
	GroupMasters       = "system:masters"
	GroupViewers       = "svcnet:viewers"
	GroupNodes         = "system:nodes"
	GroupAuthenticated = "system:authenticated"
	NodeUserPrefix     = "system:node:"
	AdminUser          = "admin"
	ViewerUser         = "viewer"
)

// User is an authenticated identity.
type User struct {
	Name   string
	UID    string
	Groups []string
	Extra  map[string][]string
}

// In reports whether the user belongs to group.
func (u *User) In(group string) bool {
	for _, g := range u.Groups {
		if g == group {
			return true
		}
	}
	return false
}

// NodeName returns the node a node identity speaks for.
func (u *User) NodeName() (string, bool) {
	if !u.In(GroupNodes) || !strings.HasPrefix(u.Name, NodeUserPrefix) {
		return "", false
	}
	return strings.TrimPrefix(u.Name, NodeUserPrefix), true
}

// Tokens is a static bearer token table (kube-apiserver's --token-auth-file format:
// token,user,uid,"group1,group2").
type Tokens struct {
	byToken map[string]User
}

// ServiceAccount returns the namespace and name of a service account identity.
func (u *User) ServiceAccount() (ns, name string, ok bool) {
	rest, ok := strings.CutPrefix(u.Name, ServiceAccountUserPrefix)
	if !ok || !u.In(GroupServiceAccounts) {
		return "", "", false
	}
	ns, name, ok = strings.Cut(rest, ":")
	return ns, name, ok
}

// Authenticator identifies requests by client certificate (verified by the TLS
// layer against the CA: CN = user, O = groups) or bearer token: a static one or
// a service account token.
type Authenticator struct {
	Tokens          *Tokens
	ServiceAccounts *ServiceAccountTokens // nil: service account tokens are refused
	Bootstrap       *BootstrapTokens      // nil: bootstrap tokens are refused
	Log             *slog.Logger          // why tokens were refused, at debug level; may be nil
}

// Authenticate returns the request's user, or false for an anonymous request.
func (a *Authenticator) Authenticate(r *http.Request) (*User, bool) {
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
		c := r.TLS.VerifiedChains[0][0]
		return &User{Name: c.Subject.CommonName, Groups: append(append([]string(nil), c.Subject.Organization...), GroupAuthenticated)}, true
	}
	h := r.Header.Get("Authorization")
	if tok, ok := strings.CutPrefix(h, "Bearer "); ok {
		tok = strings.TrimSpace(tok)
		if u, ok := a.Tokens.Lookup(tok); ok {
			return u, true
		}
		if bt, ok := ParseBootstrapToken(tok); ok && a.Bootstrap != nil {
			u, err := a.Bootstrap.Authenticate(r.Context(), bt)
			if err == nil {
				return u, true
			}
			if a.Log != nil {
				a.Log.Debug("bootstrap token refused", "err", err)
			}
		}
		if a.ServiceAccounts != nil && looksLikeJWT(tok) {
			u, err := a.ServiceAccounts.Authenticate(r.Context(), tok)
			if err == nil {
				return u, true
			}
			if a.Log != nil {
				a.Log.Debug("service account token refused", "err", err)
			}
		}
	}
	return nil, false
}

// Lookup finds the user of a token in constant time per entry.
func (t *Tokens) Lookup(tok string) (*User, bool) {
	if t == nil {
		return nil, false
	}
	for k, u := range t.byToken {
		if subtle.ConstantTimeCompare([]byte(k), []byte(tok)) == 1 {
			u := u
			u.Groups = append(append([]string(nil), u.Groups...), GroupAuthenticated)
			return &u, true
		}
	}
	return nil, false
}

// TokenFor returns the first token of user (for writing kubeconfigs).
func (t *Tokens) TokenFor(user string) (string, bool) {
	for k, u := range t.byToken {
		if u.Name == user {
			return k, true
		}
	}
	return "", false
}

func newToken() string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// LoadOrCreateTokens reads the token file, creating it with an admin and a viewer
// token on first use.
func LoadOrCreateTokens(path string) (*Tokens, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		var b strings.Builder
		w := csv.NewWriter(&b)
		_ = w.Write([]string{newToken(), AdminUser, AdminUser, GroupMasters})
		_ = w.Write([]string{newToken(), ViewerUser, ViewerUser, GroupViewers})
		w.Flush()
		data = []byte(b.String())
		if err := writeFile(path, data, 0o600); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	return ParseTokens(string(data))
}

// ParseTokens parses token file content.
func ParseTokens(content string) (*Tokens, error) {
	r := csv.NewReader(strings.NewReader(content))
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("token file: %w", err)
	}
	t := &Tokens{byToken: map[string]User{}}
	for i, rec := range recs {
		if len(rec) < 2 || rec[0] == "" || rec[1] == "" {
			return nil, fmt.Errorf("token file line %d: want token,user[,uid[,groups]]", i+1)
		}
		u := User{Name: rec[1]}
		if len(rec) > 3 && rec[3] != "" {
			u.Groups = strings.Split(rec[3], ",")
		}
		t.byToken[rec[0]] = u
	}
	return t, nil
}
