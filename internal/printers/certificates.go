package printers

import (
	"strings"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func init() {
	// kubectl get csr: NAME AGE SIGNERNAME REQUESTOR REQUESTEDDURATION CONDITION, as Kubernetes prints them.
	register("CertificateSigningRequest", []column{{"Name", "string", false}, {"Age", "string", false}, {"SignerName", "string", false},
		{"Requestor", "string", false}, {"RequestedDuration", "string", false}, {"Condition", "string", false}},
		func(o runtime.Object, now time.Time) []any {
			csr := o.(*certificatesv1.CertificateSigningRequest)
			dur := none
			if s := csr.Spec.ExpirationSeconds; s != nil {
				dur = (time.Duration(*s) * time.Second).String()
			}
			return []any{csr.Name, age(csr.CreationTimestamp, now), csr.Spec.SignerName, csr.Spec.Username, dur, csrCondition(csr)}
		})
}

// csrCondition is Approved/Denied/Failed (comma separated), Pending without
// them, plus Issued once a certificate is there.
func csrCondition(csr *certificatesv1.CertificateSigningRequest) string {
	var conds []string
	for _, c := range csr.Status.Conditions {
		switch c.Type {
		case certificatesv1.CertificateApproved, certificatesv1.CertificateDenied, certificatesv1.CertificateFailed:
			conds = append(conds, string(c.Type))
		}
	}
	if len(conds) == 0 {
		conds = append(conds, "Pending")
	}
	if len(csr.Status.Certificate) > 0 {
		conds = append(conds, "Issued")
	}
	return strings.Join(conds, ",")
}
