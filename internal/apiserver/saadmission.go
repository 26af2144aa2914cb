package apiserver

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
)

// What Kubernetes' ServiceAccount admission plugin writes into pods.
const (
	defaultServiceAccount = "default"
	tokenVolumePrefix     = "kube-api-access-"
	tokenMountPath        = "/var/run/secrets/kubernetes.io/serviceaccount"
	rootCAConfigMap       = "kube-root-ca.crt"
	mirrorPodAnnotation   = "kubernetes.io/config.mirror"
	// defaultAccountAttempts is how often the default ServiceAccount is looked up
	// before a pod is refused: its controller creates it right after the
	// namespace, and clients create pods right after that too. Kubernetes tries
	// 10 times, 100-200ms apart; svcnet waits a bit longer (its controllers share
	// two cores with everything else in tests). Other accounts are looked up once.
	defaultAccountAttempts = 20
)

// admitPodServiceAccount is the ServiceAccount admission of a new pod: the
// account defaults to `default` and must exist; unless automounting is off (on the
// pod, else on the account) every container and init container mounts the
// kube-api-access projected volume (token, CA, namespace); the account's image
// pull secrets are used when the pod names none. Mirror pods are left alone.
func (s *Server) admitPodServiceAccount(ctx context.Context, pod *corev1.Pod) error {
	if _, mirror := pod.Annotations[mirrorPodAnnotation]; mirror {
		return nil
	}
	if pod.Spec.ServiceAccountName == "" {
		pod.Spec.ServiceAccountName = pod.Spec.DeprecatedServiceAccount // the old field name, as v1 conversion reads it
	}
	if pod.Spec.ServiceAccountName == "" {
		pod.Spec.ServiceAccountName = defaultServiceAccount
	}
	sa, err := s.lookupServiceAccount(ctx, pod.Namespace, pod.Spec.ServiceAccountName)
	if err != nil {
		return apierrors.NewForbidden(corev1.Resource("pods"), pod.Name,
			fmt.Errorf("error looking up service account %s/%s: %w", pod.Namespace, pod.Spec.ServiceAccountName, err))
	}
	if automountToken(pod, sa) {
		mountToken(pod, tokenVolumePrefix+utilrand.String(5))
	}
	if len(pod.Spec.ImagePullSecrets) == 0 && len(sa.ImagePullSecrets) > 0 {
		pod.Spec.ImagePullSecrets = append([]corev1.LocalObjectReference(nil), sa.ImagePullSecrets...)
	}
	return nil
}

// lookupServiceAccount reads ns/name, retrying for the default account.
func (s *Server) lookupServiceAccount(ctx context.Context, ns, name string) (*corev1.ServiceAccount, error) {
	attempts := 1
	if name == defaultServiceAccount {
		attempts = defaultAccountAttempts
	}
	for i := 0; ; i++ {
		obj, _, err := s.get(ctx, s.res("", "serviceaccounts"), ns, name)
		if err == nil {
			return obj.(*corev1.ServiceAccount), nil
		}
		if !apierrors.IsNotFound(err) || i+1 >= attempts {
			if apierrors.IsNotFound(err) {
				return nil, apierrors.NewNotFound(corev1.Resource("serviceaccount"), name) // Kubernetes' singular wording
			}
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Duration(100+rand.IntN(100)) * time.Millisecond):
		}
	}
}

// automountToken decides as Kubernetes does: the pod's setting wins, then the
// account's, then yes.
func automountToken(pod *corev1.Pod, sa *corev1.ServiceAccount) bool {
	if pod.Spec.AutomountServiceAccountToken != nil {
		return *pod.Spec.AutomountServiceAccountToken
	}
	if sa.AutomountServiceAccountToken != nil {
		return *sa.AutomountServiceAccountToken
	}
	return true
}

// mountToken mounts the kube-api-access volume (an existing one is reused, else
// one named name is added) read-only at the service account path in every
// container and init container that has nothing mounted there.
func mountToken(pod *corev1.Pod, name string) {
	hasVolume := false
	for _, v := range pod.Spec.Volumes {
		if strings.HasPrefix(v.Name, tokenVolumePrefix) {
			name, hasVolume = v.Name, true
			break
		}
	}
	mount := corev1.VolumeMount{Name: name, ReadOnly: true, MountPath: tokenMountPath}
	mounted := false
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range cs {
			if !hasMountAt(cs[i].VolumeMounts, tokenMountPath) {
				cs[i].VolumeMounts = append(cs[i].VolumeMounts, mount)
				mounted = true
			}
		}
	}
	if mounted && !hasVolume {
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{Projected: tokenVolumeSource()}})
	}
}

func hasMountAt(ms []corev1.VolumeMount, path string) bool {
	for _, m := range ms {
		if m.MountPath == path {
			return true
		}
	}
	return false
}

// tokenVolumeSource is the kube-api-access volume: a token for the API server
// (kubeletTokenSeconds), the cluster CA and the namespace.
func tokenVolumeSource() *corev1.ProjectedVolumeSource {
	mode, secs := int32(corev1.ProjectedVolumeSourceDefaultMode), int64(kubeletTokenSeconds)
	return &corev1.ProjectedVolumeSource{DefaultMode: &mode, Sources: []corev1.VolumeProjection{
		{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: &secs}},
		{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: rootCAConfigMap},
			Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
		{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "namespace",
			FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}}}}},
	}}
}
