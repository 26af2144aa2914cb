package registry

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// certificateResources lists certificates.k8s.io/v1 CertificateSigningRequest:
// how nodes joining with a bootstrap token get their client certificates
// (the CSR controller approves and signs them).
func certificateResources() []*Resource {
	return []*Resource{
		{Group: "certificates.k8s.io", Version: "v1", Resource: "certificatesigningrequests", Singular: "certificatesigningrequest",
			Kind: "CertificateSigningRequest", ShortNames: []string{"csr"}, HasStatus: true,
			New:      func() runtime.Object { return &certificatesv1.CertificateSigningRequest{} },
			NewList:  func() runtime.Object { return &certificatesv1.CertificateSigningRequestList{} },
			Fields:   csrFields,
			Strategy: CSRStrategy{}},
	}
}

func csrFields(o runtime.Object) fields.Set {
	return fields.Set{"spec.signerName": o.(*certificatesv1.CertificateSigningRequest).Spec.SignerName}
}

// CSRStrategy defaults and validates CertificateSigningRequests as Kubernetes
// does: the spec is immutable, the status is written through /status and
// /approval only.
type CSRStrategy struct{}

var _ Strategy = CSRStrategy{}

// PrepareForCreate drops a status sent with a new request.
func (CSRStrategy) PrepareForCreate(obj runtime.Object) {
	obj.(*certificatesv1.CertificateSigningRequest).Status = certificatesv1.CertificateSigningRequestStatus{}
}

// PrepareForUpdate keeps the stored spec: a request cannot be changed.
func (CSRStrategy) PrepareForUpdate(obj, old runtime.Object) {
	obj.(*certificatesv1.CertificateSigningRequest).Spec = old.(*certificatesv1.CertificateSigningRequest).Spec
}

// Validate checks a new request.
func (CSRStrategy) Validate(obj runtime.Object) field.ErrorList {
	csr := obj.(*certificatesv1.CertificateSigningRequest)
	errs := apivalidation.ValidateObjectMeta(&csr.ObjectMeta, false, apivalidation.NameIsDNSSubdomain, field.NewPath("metadata"))
	return append(errs, ValidateCSR(csr)...)
}

// ValidateUpdate checks an update (of the status or approval conditions).
func (CSRStrategy) ValidateUpdate(obj, old runtime.Object) field.ErrorList {
	csr := obj.(*certificatesv1.CertificateSigningRequest)
	errs := apivalidation.ValidateObjectMetaUpdate(&csr.ObjectMeta, &old.(*certificatesv1.CertificateSigningRequest).ObjectMeta, field.NewPath("metadata"))
	return append(errs, ValidateCSR(csr)...)
}

var csrUsages = sets.New(
	certificatesv1.UsageSigning, certificatesv1.UsageDigitalSignature, certificatesv1.UsageContentCommitment,
	certificatesv1.UsageKeyEncipherment, certificatesv1.UsageKeyAgreement, certificatesv1.UsageDataEncipherment,
	certificatesv1.UsageCertSign, certificatesv1.UsageCRLSign, certificatesv1.UsageEncipherOnly,
	certificatesv1.UsageDecipherOnly, certificatesv1.UsageAny, certificatesv1.UsageServerAuth,
	certificatesv1.UsageClientAuth, certificatesv1.UsageCodeSigning, certificatesv1.UsageEmailProtection,
	certificatesv1.UsageSMIME, certificatesv1.UsageIPsecEndSystem, certificatesv1.UsageIPsecTunnel,
	certificatesv1.UsageIPsecUser, certificatesv1.UsageTimestamping, certificatesv1.UsageOCSPSigning,
	certificatesv1.UsageMicrosoftSGC, certificatesv1.UsageNetscapeSGC)

// ValidateCSR checks a request's spec and status with Kubernetes' messages.
func ValidateCSR(csr *certificatesv1.CertificateSigningRequest) field.ErrorList {
	var errs field.ErrorList
	spec := field.NewPath("spec")
	if _, err := ParseCSR(csr.Spec.Request); err != nil {
		errs = append(errs, field.Invalid(spec.Child("request"), csr.Spec.Request, err.Error()))
	}
	errs = append(errs, validateSignerName(spec.Child("signerName"), csr.Spec.SignerName)...)
	if len(csr.Spec.Usages) == 0 {
		errs = append(errs, field.Required(spec.Child("usages"), "usages must be provided"))
	}
	seen := sets.New[certificatesv1.KeyUsage]()
	for i, u := range csr.Spec.Usages {
		p := spec.Child("usages").Index(i)
		if !csrUsages.Has(u) {
			errs = append(errs, field.NotSupported(p, u, sets.List(csrUsages)))
		}
		if seen.Has(u) {
			errs = append(errs, field.Duplicate(p, u))
		}
		seen.Insert(u)
	}
	if s := csr.Spec.ExpirationSeconds; s != nil && *s < 600 {
		errs = append(errs, field.Invalid(spec.Child("expirationSeconds"), *s, "may not specify a duration less than 600 seconds (10 minutes)"))
	}
	conds := field.NewPath("status", "conditions")
	var approved, denied bool
	types := sets.New[certificatesv1.RequestConditionType]()
	for i, c := range csr.Status.Conditions {
		p := conds.Index(i)
		switch c.Type {
		case "":
			errs = append(errs, field.Required(p.Child("type"), ""))
			continue
		case certificatesv1.CertificateApproved:
			approved = true
		case certificatesv1.CertificateDenied:
			denied = true
		}
		if types.Has(c.Type) && (c.Type == certificatesv1.CertificateApproved || c.Type == certificatesv1.CertificateDenied || c.Type == certificatesv1.CertificateFailed) {
			errs = append(errs, field.Duplicate(p.Child("type"), c.Type))
		}
		types.Insert(c.Type)
		switch c.Type {
		case certificatesv1.CertificateApproved, certificatesv1.CertificateDenied:
			if c.Status != corev1.ConditionTrue {
				errs = append(errs, field.NotSupported(p.Child("status"), c.Status, []string{string(corev1.ConditionTrue)}))
			}
		default:
			if c.Status != corev1.ConditionTrue && c.Status != corev1.ConditionFalse && c.Status != corev1.ConditionUnknown {
				errs = append(errs, field.NotSupported(p.Child("status"), c.Status, []string{"True", "False", "Unknown"}))
			}
		}
	}
	if approved && denied {
		errs = append(errs, field.Invalid(conds, csr.Status.Conditions, "Approved and Denied conditions are mutually exclusive"))
	}
	if len(csr.Status.Certificate) > 0 {
		p := field.NewPath("status", "certificate")
		if !approved {
			errs = append(errs, field.Invalid(p, "<certificate data>", "certificate can only be set once the request is approved"))
		} else if err := validPEMCertificates(csr.Status.Certificate); err != nil {
			errs = append(errs, field.Invalid(p, "<certificate data>", err.Error()))
		}
	}
	return errs
}

// ParseCSR decodes the PEM CERTIFICATE REQUEST of a CSR and checks its signature.
func ParseCSR(data []byte) (*x509.CertificateRequest, error) {
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "CERTIFICATE REQUEST" {
		return nil, fmt.Errorf("PEM block type must be CERTIFICATE REQUEST")
	}
	req, err := x509.ParseCertificateRequest(b.Bytes)
	if err != nil {
		return nil, err
	}
	if err := req.CheckSignature(); err != nil {
		return nil, err
	}
	return req, nil
}

func validateSignerName(p *field.Path, name string) field.ErrorList {
	if name == "" {
		return field.ErrorList{field.Required(p, "")}
	}
	domain, path, ok := strings.Cut(name, "/")
	if !ok || path == "" {
		return field.ErrorList{field.Invalid(p, name, "must be a fully qualified domain and path of the form 'example.com/signer-name'")}
	}
	return utilvalidation.IsFullyQualifiedDomainName(p, domain)
}

func validPEMCertificates(data []byte) error {
	n := 0
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return fmt.Errorf("only CERTIFICATE PEM blocks are allowed, found %q", b.Type)
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return err
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("must contain at least one CERTIFICATE PEM block")
	}
	return nil
}
