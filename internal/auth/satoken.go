package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Service account token facts, as kube-apiserver configures them (kubeadm's issuer;
// --api-audiences defaults to the issuer).
const (
	DefaultServiceAccountIssuer = "https://kubernetes.default.svc.cluster.local"
	ServiceAccountUserPrefix    = "system:serviceaccount:"
	GroupServiceAccounts        = "system:serviceaccounts"
	// ServiceAccountKeyFile and ServiceAccountPubFile live in <data-dir>/pki: the
	// key signs, every public key in the .pub file verifies (old keys may stay
	// there after a rotation). API servers sharing an etcd must share both.
	ServiceAccountKeyFile = "sa.key"
	ServiceAccountPubFile = "sa.pub"
	// tokenLeeway is the clock skew allowed on exp, nbf and iat, and how long a
	// token outlives the deletion of what it is bound to (Kubernetes: one minute).
	tokenLeeway = jwt.DefaultLeeway
)

// ServiceAccountKey signs service account tokens and verifies them.
type ServiceAccountKey struct {
	signer jose.Signer
	verify []jose.JSONWebKey
}

// keyID names a public key as kube-apiserver does: base64url(sha256(PKIX DER)).
func keyID(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(der)
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

func signingAlgorithm(k crypto.Signer) (jose.SignatureAlgorithm, error) {
	switch k := k.(type) {
	case *ecdsa.PrivateKey:
		if k.Curve == elliptic.P256() {
			return jose.ES256, nil
		}
	case *rsa.PrivateKey:
		return jose.RS256, nil
	}
	return "", fmt.Errorf("service account key: %T is not an RSA or ECDSA P-256 key", k)
}

// LoadOrCreateServiceAccountKey reads <dir>/sa.key and sa.pub, creating an ECDSA
// P-256 key on first use. Creation is atomic (link, not rename), so servers
// starting together on one data directory end up with the same key.
func LoadOrCreateServiceAccountKey(dir string) (*ServiceAccountKey, error) {
	keyPath, pubPath := filepath.Join(dir, ServiceAccountKeyFile), filepath.Join(dir, ServiceAccountPubFile)
	keyPEM, err := os.ReadFile(keyPath)
	if errors.Is(err, os.ErrNotExist) {
		if keyPEM, err = createKeyFile(keyPath); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	key, err := parsePrivateKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyPath, err)
	}
	pubPEM, err := os.ReadFile(pubPath)
	if errors.Is(err, os.ErrNotExist) {
		der, err := x509.MarshalPKIXPublicKey(key.Public())
		if err != nil {
			return nil, err
		}
		if pubPEM, err = createOnce(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	var pubs []crypto.PublicKey
	for rest := pubPEM; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		pub, err := x509.ParsePKIXPublicKey(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", pubPath, err)
		}
		pubs = append(pubs, pub)
	}
	return NewServiceAccountKey(key, pubs...)
}

// createKeyFile writes a new key unless another process got there first, and
// returns what is in the file then.
func createKeyFile(path string) ([]byte, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	data, err := encodeKey(k)
	if err != nil {
		return nil, err
	}
	return createOnce(path, data, 0o600)
}

// createOnce writes data to path unless the file exists (a link, not a
// rename, so the first writer wins) and returns what path holds.
func createOnce(path string, data []byte, mode os.FileMode) ([]byte, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(mode)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, err
	}
	return os.ReadFile(path)
}

func parsePrivateKey(data []byte) (crypto.Signer, error) {
	b, _ := pem.Decode(data)
	if b == nil {
		return nil, errors.New("no PEM block")
	}
	if k, err := x509.ParsePKCS8PrivateKey(b.Bytes); err == nil {
		if s, ok := k.(crypto.Signer); ok {
			return s, nil
		}
		return nil, fmt.Errorf("%T is not a signing key", k)
	}
	if k, err := x509.ParsePKCS1PrivateKey(b.Bytes); err == nil { // kubeadm's RSA sa.key
		return k, nil
	}
	return x509.ParseECPrivateKey(b.Bytes)
}

// NewServiceAccountKey signs with key and verifies with its public key and pubs.
func NewServiceAccountKey(key crypto.Signer, pubs ...crypto.PublicKey) (*ServiceAccountKey, error) {
	alg, err := signingAlgorithm(key)
	if err != nil {
		return nil, err
	}
	kid, err := keyID(key.Public())
	if err != nil {
		return nil, err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg,
		Key: &jose.JSONWebKey{Key: key, KeyID: kid, Algorithm: string(alg), Use: "sig"}}, nil)
	if err != nil {
		return nil, err
	}
	k := &ServiceAccountKey{signer: signer}
	seen := map[string]bool{}
	for _, pub := range append([]crypto.PublicKey{key.Public()}, pubs...) {
		id, err := keyID(pub)
		if err != nil {
			return nil, err
		}
		if !seen[id] {
			seen[id] = true
			k.verify = append(k.verify, jose.JSONWebKey{Key: pub, KeyID: id, Use: "sig"})
		}
	}
	return k, nil
}

// BoundObject is an object a token is bound to (or, for a node, issued on).
type BoundObject struct {
	Name string `json:"name,omitempty"`
	UID  string `json:"uid,omitempty"`
}

// TokenClaims is what a service account token says, in the claims Kubernetes
// writes: iss, sub, aud, exp, iat, nbf, jti and the private claim kubernetes.io.
type TokenClaims struct {
	Namespace, Name, UID string // the service account
	Pod, Secret, Node    *BoundObject
	Audiences            []string
	IssuedAt, Expiry     time.Time
	WarnAfter            time.Time // zero: none
	ID                   string    // jti
}

// k8sClaims is the private claim "kubernetes.io".
type k8sClaims struct {
	Namespace      string           `json:"namespace,omitempty"`
	ServiceAccount BoundObject      `json:"serviceaccount"`
	Pod            *BoundObject     `json:"pod,omitempty"`
	Secret         *BoundObject     `json:"secret,omitempty"`
	Node           *BoundObject     `json:"node,omitempty"`
	WarnAfter      *jwt.NumericDate `json:"warnafter,omitempty"`
}

type privateClaims struct {
	Kubernetes *k8sClaims `json:"kubernetes.io,omitempty"`
}

// signedClaims writes the audiences always as a list, as Kubernetes does
// (go-jose writes a single one as a string, which some verifiers refuse).
type signedClaims struct {
	Audience []string `json:"aud,omitempty"`
	privateClaims
}

// ServiceAccountUserName is the user name of a service account.
func ServiceAccountUserName(ns, name string) string {
	return ServiceAccountUserPrefix + ns + ":" + name
}

// Sign issues a token for c by issuer.
func (k *ServiceAccountKey) Sign(issuer string, c TokenClaims) (string, error) {
	pub := jwt.Claims{Issuer: issuer, Subject: ServiceAccountUserName(c.Namespace, c.Name),
		IssuedAt: jwt.NewNumericDate(c.IssuedAt), NotBefore: jwt.NewNumericDate(c.IssuedAt),
		Expiry: jwt.NewNumericDate(c.Expiry), ID: c.ID}
	priv := signedClaims{Audience: c.Audiences, privateClaims: privateClaims{Kubernetes: &k8sClaims{Namespace: c.Namespace,
		ServiceAccount: BoundObject{Name: c.Name, UID: c.UID}, Pod: c.Pod, Secret: c.Secret, Node: c.Node}}}
	if !c.WarnAfter.IsZero() {
		priv.Kubernetes.WarnAfter = jwt.NewNumericDate(c.WarnAfter)
	}
	return jwt.Signed(k.signer).Claims(pub).Claims(priv).Serialize()
}

// Verify checks a token's signature, issuer, audiences (one of audiences must be
// in it) and times, and returns its claims. Whether what it names still exists
// is for the caller to check.
func (k *ServiceAccountKey) Verify(token, issuer string, audiences []string, now time.Time) (*TokenClaims, error) {
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256, jose.RS256})
	if err != nil {
		return nil, fmt.Errorf("not a signed JWT: %w", err)
	}
	var pub jwt.Claims
	var priv privateClaims
	verified := false
	for _, key := range k.verify {
		if len(tok.Headers) > 0 && tok.Headers[0].KeyID != "" && tok.Headers[0].KeyID != key.KeyID {
			continue
		}
		if tok.Claims(key.Key, &pub, &priv) == nil {
			verified = true
			break
		}
	}
	if !verified {
		return nil, errors.New("invalid signature")
	}
	switch err := pub.ValidateWithLeeway(jwt.Expected{Issuer: issuer, AnyAudience: audiences, Time: now}, tokenLeeway); {
	case errors.Is(err, jwt.ErrExpired):
		return nil, errors.New("service account token has expired")
	case errors.Is(err, jwt.ErrNotValidYet), errors.Is(err, jwt.ErrIssuedInTheFuture):
		return nil, errors.New("service account token is not valid yet")
	case errors.Is(err, jwt.ErrInvalidIssuer):
		return nil, fmt.Errorf("token issuer %q is not %q", pub.Issuer, issuer)
	case errors.Is(err, jwt.ErrInvalidAudience):
		return nil, fmt.Errorf("token audiences %q is invalid for the target audiences %q", []string(pub.Audience), audiences)
	case err != nil:
		return nil, err
	}
	kc := priv.Kubernetes
	if kc == nil || kc.Namespace == "" || kc.ServiceAccount.Name == "" || pub.Expiry == nil ||
		pub.Subject != ServiceAccountUserName(kc.Namespace, kc.ServiceAccount.Name) {
		return nil, errors.New("not a service account token")
	}
	c := &TokenClaims{Namespace: kc.Namespace, Name: kc.ServiceAccount.Name, UID: kc.ServiceAccount.UID,
		Pod: kc.Pod, Secret: kc.Secret, Node: kc.Node, Audiences: pub.Audience, Expiry: pub.Expiry.Time(), ID: pub.ID}
	if pub.IssuedAt != nil {
		c.IssuedAt = pub.IssuedAt.Time()
	}
	if kc.WarnAfter != nil {
		c.WarnAfter = kc.WarnAfter.Time()
	}
	return c, nil
}

// looksLikeJWT says whether a bearer token has the three parts of a compact JWS.
func looksLikeJWT(tok string) bool {
	return strings.Count(tok, ".") == 2
}
