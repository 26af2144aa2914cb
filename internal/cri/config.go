package cri

import (
	"encoding/json"
	"hash/fnv"
	"path/filepath"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/svcnet/svcnet/internal/pod"
	"github.com/svcnet/svcnet/internal/podvol"
)

// Labels the kubelet puts on sandboxes and containers; svcnet finds its pods by them.
const (
	labelPodName       = "io.kubernetes.pod.name"
	labelPodNamespace  = "io.kubernetes.pod.namespace"
	labelPodUID        = "io.kubernetes.pod.uid"
	labelContainerName = "io.kubernetes.container.name"
	annoRestartCount   = "io.kubernetes.container.restartCount"
	annoHash           = "io.kubernetes.container.hash"
	// labelManaged marks what svcnet created, so a shared runtime's other
	// sandboxes (--container-runtime-endpoint) are never touched.
	labelManaged = "svcnet.io/managed"
)

// managed selects what svcnet created in the runtime.
var managed = map[string]string{labelManaged: "true"}

// sandboxConfig is the CRI sandbox of a pod: its metadata, hostname, DNS,
// host ports, log directory and namespaces.
func sandboxConfig(p *corev1.Pod, attempt uint32, logDir string, dns pod.DNSSettings) *runtimeapi.PodSandboxConfig {
	labels := map[string]string{}
	for k, v := range p.Labels {
		labels[k] = v
	}
	labels[labelPodName], labels[labelPodNamespace], labels[labelPodUID] = p.Name, p.Namespace, string(p.UID)
	labels[labelManaged] = "true"
	annotations := map[string]string{}
	for k, v := range p.Annotations {
		annotations[k] = v
	}
	c := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: p.Name, Namespace: p.Namespace, Uid: string(p.UID), Attempt: attempt},
		Hostname:     pod.Hostname(p),
		LogDirectory: logDir,
		DnsConfig:    &runtimeapi.DNSConfig{Servers: dns.Nameservers, Searches: dns.Searches, Options: dns.Options},
		Labels:       labels,
		Annotations:  annotations,
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			// privileged when a container is, as the kubelet asks: the runtime
			// refuses a privileged container in an unprivileged sandbox
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: namespaces(p), Privileged: privileged(p)},
		},
	}
	if p.Spec.HostNetwork {
		c.Hostname = "" // the node's own
	}
	for _, ctr := range p.Spec.Containers {
		for _, port := range ctr.Ports {
			if port.HostPort == 0 {
				continue
			}
			proto := runtimeapi.Protocol_TCP
			switch port.Protocol {
			case corev1.ProtocolUDP:
				proto = runtimeapi.Protocol_UDP
			case corev1.ProtocolSCTP:
				proto = runtimeapi.Protocol_SCTP
			}
			c.PortMappings = append(c.PortMappings, &runtimeapi.PortMapping{Protocol: proto, ContainerPort: port.ContainerPort,
				HostPort: port.HostPort, HostIp: port.HostIP})
		}
	}
	return c
}

// privileged reports whether a container of p (init containers too) is privileged.
func privileged(p *corev1.Pod) bool {
	for _, cs := range [][]corev1.Container{p.Spec.InitContainers, p.Spec.Containers} {
		for _, c := range cs {
			if c.SecurityContext != nil && c.SecurityContext.Privileged != nil && *c.SecurityContext.Privileged {
				return true
			}
		}
	}
	return false
}

// namespaces are the pod's Linux namespace modes.
func namespaces(p *corev1.Pod) *runtimeapi.NamespaceOption {
	n := &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_POD, Pid: runtimeapi.NamespaceMode_CONTAINER, Ipc: runtimeapi.NamespaceMode_POD}
	if p.Spec.HostNetwork {
		n.Network = runtimeapi.NamespaceMode_NODE
	}
	if p.Spec.HostPID {
		n.Pid = runtimeapi.NamespaceMode_NODE
	} else if p.Spec.ShareProcessNamespace != nil && *p.Spec.ShareProcessNamespace {
		n.Pid = runtimeapi.NamespaceMode_POD
	}
	if p.Spec.HostIPC {
		n.Ipc = runtimeapi.NamespaceMode_NODE
	}
	return n
}

// logPath is where a container instance's log goes, relative to the sandbox's
// log directory (the process runtime's layout, so `kubectl logs` reads both).
func logPath(name string, attempt uint32) string {
	return filepath.Join(name, strconv.Itoa(int(attempt))+".log")
}

// containerConfig is the CRI config of one container instance. command and
// args are passed as the kubelet passes them ($(VAR) expanded); the runtime
// merges them with the image's entrypoint and cmd: command replaces the
// entrypoint (and drops the image's cmd), args alone replace the cmd.
func containerConfig(p *corev1.Pod, c corev1.Container, attempt uint32, imageRef string, env []string, hostsFile string, vols []podvol.Mount) (*runtimeapi.ContainerConfig, error) {
	vars := pod.EnvMap(env)
	expand := func(in []string) []string {
		var out []string
		for _, s := range in {
			out = append(out, pod.Expand(s, vars))
		}
		return out
	}
	cc := &runtimeapi.ContainerConfig{
		Metadata:   &runtimeapi.ContainerMetadata{Name: c.Name, Attempt: attempt},
		Image:      &runtimeapi.ImageSpec{Image: imageRef, UserSpecifiedImage: c.Image},
		Command:    expand(c.Command),
		Args:       expand(c.Args),
		WorkingDir: c.WorkingDir,
		Labels: map[string]string{labelPodName: p.Name, labelPodNamespace: p.Namespace, labelPodUID: string(p.UID),
			labelContainerName: c.Name, labelManaged: "true"},
		Annotations: map[string]string{annoRestartCount: strconv.Itoa(int(attempt)), annoHash: specHash(c)},
		LogPath:     logPath(c.Name, attempt),
		Stdin:       c.Stdin,
		StdinOnce:   c.StdinOnce,
		Tty:         c.TTY,
	}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		cc.Envs = append(cc.Envs, &runtimeapi.KeyValue{Key: k, Value: []byte(v)})
	}
	if hostsFile != "" && !p.Spec.HostNetwork {
		cc.Mounts = append(cc.Mounts, &runtimeapi.Mount{ContainerPath: "/etc/hosts", HostPath: hostsFile})
	}
	for _, m := range vols {
		cc.Mounts = append(cc.Mounts, &runtimeapi.Mount{ContainerPath: m.Container, HostPath: m.Host, Readonly: m.ReadOnly})
	}
	sc := &runtimeapi.LinuxContainerSecurityContext{NamespaceOptions: namespaces(p)}
	if s := c.SecurityContext; s != nil {
		if s.Privileged != nil {
			sc.Privileged = *s.Privileged
		}
		if s.ReadOnlyRootFilesystem != nil {
			sc.ReadonlyRootfs = *s.ReadOnlyRootFilesystem
		}
		if s.Capabilities != nil {
			for _, cp := range s.Capabilities.Add {
				sc.Capabilities = capabilities(sc.Capabilities)
				sc.Capabilities.AddCapabilities = append(sc.Capabilities.AddCapabilities, string(cp))
			}
			for _, cp := range s.Capabilities.Drop {
				sc.Capabilities = capabilities(sc.Capabilities)
				sc.Capabilities.DropCapabilities = append(sc.Capabilities.DropCapabilities, string(cp))
			}
		}
	}
	uid, gid := runAs(p, c)
	if uid != nil {
		sc.RunAsUser = &runtimeapi.Int64Value{Value: *uid}
	}
	if gid != nil {
		sc.RunAsGroup = &runtimeapi.Int64Value{Value: *gid}
	}
	cc.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: sc}
	return cc, nil
}

// specHash identifies a container's spec, as the kubelet's container hash:
// a running instance whose spec changed (kubectl set image) is replaced.
func specHash(c corev1.Container) string {
	data, _ := json.Marshal(c)
	h := fnv.New32a()
	_, _ = h.Write(data)
	return strconv.FormatUint(uint64(h.Sum32()), 16)
}

func capabilities(c *runtimeapi.Capability) *runtimeapi.Capability {
	if c == nil {
		return &runtimeapi.Capability{}
	}
	return c
}

// runAs is the user and group a container runs as: the container's security
// context over the pod's, nil where neither says (the image's USER applies).
func runAs(p *corev1.Pod, c corev1.Container) (uid, gid *int64) {
	if s := p.Spec.SecurityContext; s != nil {
		uid, gid = s.RunAsUser, s.RunAsGroup
	}
	if s := c.SecurityContext; s != nil {
		if s.RunAsUser != nil {
			uid = s.RunAsUser
		}
		if s.RunAsGroup != nil {
			gid = s.RunAsGroup
		}
	}
	return uid, gid
}
