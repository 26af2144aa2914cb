package pod

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// DefaultPullPolicy is Kubernetes' default imagePullPolicy for image: Always
// for the `latest` tag or no tag, IfNotPresent for other tags and digests.
func DefaultPullPolicy(image string) corev1.PullPolicy {
	if strings.Contains(image, "@") {
		return corev1.PullIfNotPresent
	}
	tag := ""
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		tag = image[i+1:]
	}
	if tag == "" || tag == "latest" {
		return corev1.PullAlways
	}
	return corev1.PullIfNotPresent
}
