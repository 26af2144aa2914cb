// Package csr approves and signs node client CertificateSigningRequests, as
// kube-controller-manager's csrapproving and csrsigning controllers do for the
// kubelet's TLS bootstrap: a request for signer
// kubernetes.io/kube-apiserver-client-kubelet whose subject is
// system:node:<name> in system:nodes is approved when its requester may create
// certificatesigningrequests/nodeclient (a bootstrap token) or, for the same
// node, certificatesigningrequests/selfnodeclient (renewal); approved requests
// are signed by the cluster CA.
package csr

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"slices"
	"strings"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	certlisters "k8s.io/client-go/listers/certificates/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/svcnet/svcnet/internal/controller/queue"
	"github.com/svcnet/svcnet/internal/registry"
)

// NodeUserPrefix and NodesGroup are the subject of a node client certificate.
const (
	NodeUserPrefix = "system:node:"
	NodesGroup     = "system:nodes"
)

// Signer signs with the cluster CA.
type Signer struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	// Duration is the longest lifetime of an issued certificate
	// (kube-controller-manager's --cluster-signing-duration, 1 year).
	Duration time.Duration
}

// Controller approves and signs node client CSRs.
type Controller struct {
	client kubernetes.Interface
	csrs   certlisters.CertificateSigningRequestLister
	synced cache.InformerSynced
	signer Signer
	loop   *queue.Loop
	log    *slog.Logger
	now    func() time.Time
}

// New wires the controller to factory's CertificateSigningRequest informer.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, signer Signer, log *slog.Logger) *Controller {
	inf := factory.Certificates().V1().CertificateSigningRequests()
	if signer.Duration <= 0 {
		signer.Duration = 365 * 24 * time.Hour
	}
	c := &Controller{client: client, csrs: inf.Lister(), synced: inf.Informer().HasSynced, signer: signer,
		log: log.With("controller", "csr"), now: time.Now}
	c.loop = queue.New("csr", c.sync, c.log)
	_, _ = inf.Informer().AddEventHandler(c.loop.ObjectHandler())
	return c
}

// Run processes requests until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) { c.loop.Run(ctx, workers, c.synced) }

func (c *Controller) sync(ctx context.Context, key string) error {
	_, name, _ := cache.SplitMetaNamespaceKey(key)
	csr, err := c.csrs.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if csr.Spec.SignerName != certificatesv1.KubeAPIServerClientKubeletSignerName || finished(csr) {
		return nil
	}
	req, err := registry.ParseCSR(csr.Spec.Request)
	if err != nil {
		return nil // validation refused it already; nothing to do
	}
	if !approved(csr) {
		node, ok := NodeClientRequest(req, csr.Spec.Usages)
		if !ok {
			return nil // not for us to approve; an admin may
		}
		sub := "nodeclient"
		if csr.Spec.Username == NodeUserPrefix+node {
			sub = "selfnodeclient"
		}
		allowed, err := c.may(ctx, csr, sub)
		if err != nil || !allowed {
			return err
		}
		csr = csr.DeepCopy()
		csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
			Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue, Reason: "AutoApproved",
			Message: "Auto approving kubelet client certificate after SubjectAccessReview.", LastUpdateTime: metav1.Now()})
		if csr, err = c.client.CertificatesV1().CertificateSigningRequests().UpdateApproval(ctx, csr.Name, csr, metav1.UpdateOptions{}); err != nil {
			return err
		}
		c.log.Info("approved node client certificate", "csr", csr.Name, "node", node, "requester", csr.Spec.Username)
	}
	if len(csr.Status.Certificate) > 0 {
		return nil
	}
	if _, ok := NodeClientRequest(req, csr.Spec.Usages); !ok { // approved by hand, but not what this signer issues
		csr = csr.DeepCopy()
		csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
			Type: certificatesv1.CertificateFailed, Status: corev1.ConditionTrue, Reason: "SignerValidationFailure",
			Message: "subject must be system:node:<name> in system:nodes with client auth usages only", LastUpdateTime: metav1.Now()})
		_, err = c.client.CertificatesV1().CertificateSigningRequests().UpdateStatus(ctx, csr, metav1.UpdateOptions{})
		return err
	}
	certPEM, err := c.signer.Sign(req, csr.Spec.Usages, csr.Spec.ExpirationSeconds, c.now())
	if err != nil {
		return err
	}
	csr = csr.DeepCopy()
	csr.Status.Certificate = certPEM
	_, err = c.client.CertificatesV1().CertificateSigningRequests().UpdateStatus(ctx, csr, metav1.UpdateOptions{})
	return err
}

// may asks the API server whether the requester may create
// certificatesigningrequests/sub.
func (c *Controller) may(ctx context.Context, csr *certificatesv1.CertificateSigningRequest, sub string) (bool, error) {
	extra := map[string]authorizationv1.ExtraValue{}
	for k, v := range csr.Spec.Extra {
		extra[k] = authorizationv1.ExtraValue(v)
	}
	sar, err := c.client.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
		Spec: authorizationv1.SubjectAccessReviewSpec{User: csr.Spec.Username, UID: csr.Spec.UID, Groups: csr.Spec.Groups, Extra: extra,
			ResourceAttributes: &authorizationv1.ResourceAttributes{Group: "certificates.k8s.io", Resource: "certificatesigningrequests",
				Subresource: sub, Verb: "create"}}}, metav1.CreateOptions{})
	if err != nil {
		return false, err
	}
	return sar.Status.Allowed, nil
}

func approved(csr *certificatesv1.CertificateSigningRequest) bool {
	return slices.ContainsFunc(csr.Status.Conditions, func(c certificatesv1.CertificateSigningRequestCondition) bool {
		return c.Type == certificatesv1.CertificateApproved
	})
}

// finished: denied, failed or issued.
func finished(csr *certificatesv1.CertificateSigningRequest) bool {
	return len(csr.Status.Certificate) > 0 || slices.ContainsFunc(csr.Status.Conditions, func(c certificatesv1.CertificateSigningRequestCondition) bool {
		return c.Type == certificatesv1.CertificateDenied || c.Type == certificatesv1.CertificateFailed
	})
}

// NodeClientRequest reports whether req asks for a node client certificate
// (CN system:node:<name>, O system:nodes only, no SANs, client auth with at
// most digital signature and key encipherment besides) and for which node.
func NodeClientRequest(req *x509.CertificateRequest, usages []certificatesv1.KeyUsage) (string, bool) {
	node, ok := strings.CutPrefix(req.Subject.CommonName, NodeUserPrefix)
	if !ok || node == "" {
		return "", false
	}
	if len(req.Subject.Organization) != 1 || req.Subject.Organization[0] != NodesGroup {
		return "", false
	}
	if len(req.DNSNames)+len(req.EmailAddresses)+len(req.IPAddresses)+len(req.URIs) > 0 {
		return "", false
	}
	if !slices.Contains(usages, certificatesv1.UsageClientAuth) {
		return "", false
	}
	for _, u := range usages {
		switch u {
		case certificatesv1.UsageClientAuth, certificatesv1.UsageDigitalSignature, certificatesv1.UsageKeyEncipherment:
		default:
			return "", false
		}
	}
	return node, true
}

// Sign issues the certificate of req, valid from now (less 5 minutes, or a
// tenth of the lifetime, of clock skew) for expirationSeconds or the signer's duration, whichever is shorter,
// and never past the CA's own expiry.
func (s Signer) Sign(req *x509.CertificateRequest, usages []certificatesv1.KeyUsage, expirationSeconds *int32, now time.Time) ([]byte, error) {
	d := s.Duration
	if expirationSeconds != nil {
		if e := time.Duration(*expirationSeconds) * time.Second; e < d {
			d = e
		}
	}
	notAfter := now.Add(d)
	if notAfter.After(s.Cert.NotAfter) {
		notAfter = s.Cert.NotAfter
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, err
	}
	backdate := min(5*time.Minute, d/10) // clock skew; a short-lived certificate's renewal point must stay ahead
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: req.Subject, NotBefore: now.Add(-backdate), NotAfter: notAfter,
		BasicConstraintsValid: true}
	for _, u := range usages {
		switch u {
		case certificatesv1.UsageDigitalSignature:
			tmpl.KeyUsage |= x509.KeyUsageDigitalSignature
		case certificatesv1.UsageKeyEncipherment:
			tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
		case certificatesv1.UsageClientAuth:
			tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
		default:
			return nil, fmt.Errorf("usage %q is not allowed for this signer", u)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, s.Cert, req.PublicKey, s.Key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}
