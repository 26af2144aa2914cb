package cri

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ensureImage makes the container's image present as its pull policy says and
// returns its reference; on failure the container waits with the kubelet's
// reason (ErrImagePull, then ImagePullBackOff; ErrImageNeverPull). With policy
// Always, a registry that cannot be reached while the node holds the image
// (imported offline) runs the node's copy and says so in an event.
func (w *worker) ensureImage(ctx context.Context, p *corev1.Pod, c corev1.Container, sbCfg *runtimeapi.PodSandboxConfig) (string, bool) {
	if c.Image == "" {
		w.setWaiting(c.Name, reasonInvalidImageName, "container "+c.Name+" has no image")
		return "", false
	}
	images := w.r.o.Images
	spec := &runtimeapi.ImageSpec{Image: c.Image}
	st, err := images.ImageStatus(ctx, spec, false)
	if err != nil {
		w.setWaiting(c.Name, reasonErrImagePull, err.Error())
		return "", false
	}
	present := st.GetImage() != nil
	ref := ""
	if present {
		ref = st.GetImage().Id
	}
	policy := pullPolicy(c)
	switch {
	case policy == corev1.PullNever && !present:
		msg := fmt.Sprintf("Container image %q is not present with pull policy of Never", c.Image)
		w.setWaiting(c.Name, reasonErrImageNeverPull, msg)
		w.r.o.Event(p, corev1.EventTypeWarning, reasonErrImageNeverPull, msg)
		return "", false
	case policy == corev1.PullNever || (policy == corev1.PullIfNotPresent && present):
		return ref, true
	}
	now := w.r.o.Now()
	key := pullKey{w.uid, c.Image}
	w.r.mu.Lock()
	b := w.r.pulls[key]
	inBackoff := b != nil && now.Before(b.until)
	w.r.mu.Unlock()
	if inBackoff {
		w.setWaiting(c.Name, reasonImagePullBackOff, fmt.Sprintf("Back-off pulling image %q: %s", c.Image, b.msg))
		return "", false
	}
	w.r.o.Event(p, corev1.EventTypeNormal, "Pulling", fmt.Sprintf("Pulling image %q", c.Image))
	pulled, err := w.pull(ctx, p, c.Image, sbCfg)
	if err == nil {
		w.r.mu.Lock()
		delete(w.r.pulls, key)
		w.r.mu.Unlock()
		w.r.o.Event(p, corev1.EventTypeNormal, "Pulled", fmt.Sprintf("Successfully pulled image %q", c.Image))
		return pulled, true
	}
	if present && isUnreachable(err) {
		w.r.o.Event(p, corev1.EventTypeWarning, "PullFailedUsingLocal",
			fmt.Sprintf("Pulling image %q failed (%v); running the copy on the node", c.Image, err))
		return ref, true
	}
	msg := fmt.Sprintf("Failed to pull image %q: %v", c.Image, err)
	w.r.mu.Lock()
	if w.r.pulls[key] == nil {
		w.r.pulls[key] = &pullBackoff{}
	}
	w.r.pulls[key].failed(now, msg)
	w.r.mu.Unlock()
	w.setWaiting(c.Name, reasonErrImagePull, msg)
	w.r.o.Event(p, corev1.EventTypeWarning, "Failed", msg)
	return "", false
}

// pull pulls image with each matching imagePullSecret in turn, then without credentials.
func (w *worker) pull(ctx context.Context, p *corev1.Pod, image string, sbCfg *runtimeapi.PodSandboxConfig) (string, error) {
	var secrets []*corev1.Secret
	for _, ref := range p.Spec.ImagePullSecrets {
		if w.r.o.Objects == nil {
			break
		}
		s, err := w.r.o.Objects.Secret(p.Namespace, ref.Name)
		if err != nil {
			w.log().Warn("imagePullSecret unreadable", "secret", ref.Name, "err", err)
			continue
		}
		secrets = append(secrets, s)
	}
	auths, err := credentials(image, secrets)
	if err != nil {
		return "", err
	}
	auths = append(auths, nil)
	var first error
	for _, a := range auths {
		ref, err := w.r.o.Images.PullImage(ctx, &runtimeapi.ImageSpec{Image: image}, a, sbCfg)
		if err == nil {
			return ref, nil
		}
		if first == nil {
			first = err // a credential's failure says more than the anonymous one after it
		}
	}
	return "", first
}
