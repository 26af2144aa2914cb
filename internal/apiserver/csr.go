package apiserver

import (
	"context"
	"fmt"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"

	"github.com/svcnet/svcnet/internal/auth"
	"github.com/svcnet/svcnet/internal/registry"
)

// CertificateSigningRequests (certificates.k8s.io/v1): the requester's identity
// is recorded from the request, as kube-apiserver's strategy does, and the
// approval subresource writes only the conditions.

// isCSR reports whether res is certificatesigningrequests.
func isCSR(res *registry.Resource) bool {
	return res.Group == "certificates.k8s.io" && res.Resource == "certificatesigningrequests"
}

// admitCSR records who asks for a certificate in spec.username, uid, groups
// and extra, whatever the request said.
func admitCSR(res *registry.Resource, obj runtime.Object, wo writeOptions) {
	csr, ok := obj.(*certificatesv1.CertificateSigningRequest)
	if !ok || !isCSR(res) {
		return
	}
	csr.Spec.Username, csr.Spec.UID, csr.Spec.Groups, csr.Spec.Extra = "", "", nil, nil
	if wo.user == nil {
		return
	}
	csr.Spec.Username, csr.Spec.UID = wo.user.Name, wo.user.UID
	csr.Spec.Groups = append([]string(nil), wo.user.Groups...)
	if len(wo.user.Extra) > 0 {
		csr.Spec.Extra = map[string]certificatesv1.ExtraValue{}
		for k, v := range wo.user.Extra {
			csr.Spec.Extra[k] = append(certificatesv1.ExtraValue(nil), v...)
		}
	}
}

// prepareApproval keeps everything of the stored request but its conditions:
// the approval subresource approves or denies, it does not issue.
func prepareApproval(obj, old runtime.Object) {
	csr, ok := obj.(*certificatesv1.CertificateSigningRequest)
	o, ok2 := old.(*certificatesv1.CertificateSigningRequest)
	if !ok || !ok2 {
		return
	}
	conds := csr.Status.Conditions
	csr.Spec = *o.Spec.DeepCopy()
	csr.Status = *o.Status.DeepCopy()
	csr.Status.Conditions = conds
}

func init() { utilruntime.Must(certificatesv1.AddToScheme(Scheme)) }

// bootstrapSecret reads a bootstrap token's Secret in kube-system.
func (s *Server) bootstrapSecret(ctx context.Context, name string) (*corev1.Secret, error) {
	obj, _, err := s.get(ctx, s.res("", "secrets"), auth.BootstrapNamespace, name)
	if err != nil {
		return nil, err
	}
	sec, ok := obj.(*corev1.Secret)
	if !ok {
		return nil, fmt.Errorf("%s is not a Secret", name)
	}
	return sec, nil
}
