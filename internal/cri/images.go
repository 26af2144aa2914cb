package cri

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/svcnet/svcnet/internal/pod"
)

// Image pull back-off bounds, the kubelet's.
const (
	pullBackoffInitial = 10 * time.Second
	pullBackoffMax     = 300 * time.Second
)

// Waiting reasons of image pulls, as the kubelet reports them.
const (
	reasonErrImagePull      = "ErrImagePull"
	reasonImagePullBackOff  = "ImagePullBackOff"
	reasonErrImageNeverPull = "ErrImageNeverPull"
	reasonInvalidImageName  = "InvalidImageName"
)

// pullPolicy is the container's policy, or Kubernetes' default when the API left it empty.
func pullPolicy(c corev1.Container) corev1.PullPolicy {
	if c.ImagePullPolicy != "" {
		return c.ImagePullPolicy
	}
	return pod.DefaultPullPolicy(c.Image)
}

// dockerConfig is the content of a kubernetes.io/dockerconfigjson Secret.
type dockerConfig struct {
	Auths map[string]dockerAuth `json:"auths"`
}

type dockerAuth struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Auth     string `json:"auth"`
}

// credentials returns the pull credentials in secrets that match image's
// registry, in order (the kubelet tries each until one works).
func credentials(image string, secrets []*corev1.Secret) ([]*runtimeapi.AuthConfig, error) {
	ref, err := name.ParseReference(image)
	if err != nil {
		return nil, err
	}
	registry := ref.Context().RegistryStr()
	var out []*runtimeapi.AuthConfig
	for _, s := range secrets {
		var cfg dockerConfig
		switch s.Type {
		case corev1.SecretTypeDockerConfigJson:
			if err := json.Unmarshal(s.Data[corev1.DockerConfigJsonKey], &cfg); err != nil {
				return nil, fmt.Errorf("secret %s: %s is not a docker config: %w", s.Name, corev1.DockerConfigJsonKey, err)
			}
		case corev1.SecretTypeDockercfg:
			if err := json.Unmarshal(s.Data[corev1.DockerConfigKey], &cfg.Auths); err != nil {
				return nil, fmt.Errorf("secret %s: %s is not a docker config: %w", s.Name, corev1.DockerConfigKey, err)
			}
		default:
			continue
		}
		for server, a := range cfg.Auths {
			if registryOf(server) != registry {
				continue
			}
			user, pass := a.Username, a.Password
			if a.Auth != "" {
				raw, err := base64.StdEncoding.DecodeString(a.Auth)
				if err != nil {
					return nil, fmt.Errorf("secret %s: auth of %s is not base64", s.Name, server)
				}
				user, pass, _ = strings.Cut(string(raw), ":")
			}
			// No ServerAddress: containerd parses it as a URL, and the
			// registry was matched here already.
			out = append(out, &runtimeapi.AuthConfig{Username: user, Password: pass})
		}
	}
	return out, nil
}

// registryOf is the registry host of a docker config key ("https://index.docker.io/v1/", "localhost:5000", ...).
func registryOf(server string) string {
	s := strings.TrimPrefix(strings.TrimPrefix(server, "https://"), "http://")
	s, _, _ = strings.Cut(s, "/")
	if s == "docker.io" || s == "registry-1.docker.io" {
		return name.DefaultRegistry
	}
	return s
}

// pullKey is what a pull back-off is kept for: one pod's image (a pod with
// the right imagePullSecret is not held back by another without it).
type pullKey struct {
	pod   types.UID
	image string
}

// pullBackoff tracks failed pulls per pod and image: ImagePullBackOff until the next try.
type pullBackoff struct {
	delay time.Duration
	until time.Time
	msg   string
}

// failed records a failed pull at now.
func (b *pullBackoff) failed(now time.Time, msg string) {
	if b.delay == 0 {
		b.delay = pullBackoffInitial
	} else {
		b.delay = min(b.delay*2, pullBackoffMax)
	}
	b.until, b.msg = now.Add(b.delay), msg
}

// unreachable are the failures of reaching a registry at all (as Go's net
// package words them): the only pull failures after which the node's own copy
// of an image may run, so a refusal of credentials never lets a pod use it.
var unreachable = []string{"no such host", "network is unreachable", "no route to host", "connection refused",
	"i/o timeout", "server misbehaving", "tls handshake timeout"}

// isUnreachable reports whether a pull failed on reaching the registry.
func isUnreachable(err error) bool {
	s := strings.ToLower(err.Error())
	if strings.Contains(s, "401") || strings.Contains(s, "403") || strings.Contains(s, "unauthorized") || strings.Contains(s, "denied") {
		return false
	}
	for _, u := range unreachable {
		if strings.Contains(s, u) {
			return true
		}
	}
	return false
}
