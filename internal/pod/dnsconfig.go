package pod

import (
	"fmt"
	"os"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// HostResolv is the node's own resolver configuration (from its resolv.conf).
type HostResolv struct {
	Nameservers []string
	Searches    []string
	Options     []string
}

// ReadHostResolv reads the node's resolv.conf (nameserver, search, options lines).
func ReadHostResolv(path string) (HostResolv, error) {
	var h HostResolv
	if path == "" {
		return h, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return h, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || strings.HasPrefix(f[0], "#") || strings.HasPrefix(f[0], ";") {
			continue
		}
		switch f[0] {
		case "nameserver":
			h.Nameservers = append(h.Nameservers, f[1])
		case "search", "domain":
			h.Searches = f[1:]
		case "options":
			h.Options = append(h.Options, f[1:]...)
		}
	}
	return h, nil
}

// Limits the kubelet applies to a pod's resolver configuration.
const (
	maxNameservers = 3
	maxSearches    = 32
	maxSearchChars = 2048
)

// DNSSettings are a pod's nameservers, search domains and options (its resolv.conf).
type DNSSettings struct {
	Nameservers, Searches, Options []string
}

// PodDNS computes a pod's DNS settings for its dnsPolicy and dnsConfig:
// ClusterFirst (default) points at the cluster DNS with the search path
// <ns>.svc.<zone> svc.<zone> <zone> (then the node's own) and ndots:5; Default
// uses the node's configuration; None uses only dnsConfig. Host-network pods
// with ClusterFirst use the node's configuration, as the kubelet does.
func PodDNS(p *corev1.Pod, clusterDNS []string, zone string, host HostResolv) (DNSSettings, error) {
	zone = strings.TrimSuffix(zone, ".")
	var ns, search, opts []string
	policy := p.Spec.DNSPolicy
	if policy == "" {
		policy = corev1.DNSClusterFirst
	}
	if policy == corev1.DNSClusterFirst && p.Spec.HostNetwork {
		policy = corev1.DNSDefault
	}
	switch policy {
	case corev1.DNSClusterFirst, corev1.DNSClusterFirstWithHostNet:
		if len(clusterDNS) == 0 {
			return DNSSettings{}, fmt.Errorf("pod %s/%s: dnsPolicy %s but no cluster DNS address is configured", p.Namespace, p.Name, policy)
		}
		ns = append(ns, clusterDNS...)
		search = append([]string{p.Namespace + ".svc." + zone, "svc." + zone, zone}, host.Searches...)
		opts = []string{"ndots:5"}
	case corev1.DNSDefault:
		ns, search, opts = append(ns, host.Nameservers...), append(search, host.Searches...), append(opts, host.Options...)
	case corev1.DNSNone:
		if p.Spec.DNSConfig == nil {
			return DNSSettings{}, fmt.Errorf("pod %s/%s: dnsPolicy None needs dnsConfig", p.Namespace, p.Name)
		}
	default:
		return DNSSettings{}, fmt.Errorf("pod %s/%s: unsupported dnsPolicy %q", p.Namespace, p.Name, policy)
	}
	if c := p.Spec.DNSConfig; c != nil {
		ns = append(ns, c.Nameservers...)
		search = append(search, c.Searches...)
		for _, o := range c.Options {
			opt := o.Name
			if o.Value != nil {
				opt += ":" + *o.Value
			}
			opts = mergeOption(opts, opt)
		}
	}
	ns, search = dedup(ns), dedup(search)
	if len(ns) > maxNameservers {
		ns = ns[:maxNameservers]
	}
	for len(search) > maxSearches || len(strings.Join(search, " ")) > maxSearchChars {
		search = search[:len(search)-1]
	}
	return DNSSettings{Nameservers: ns, Searches: search, Options: opts}, nil
}

// ResolvConf is the pod's /etc/resolv.conf (PodDNS rendered).
func ResolvConf(p *corev1.Pod, clusterDNS []string, zone string, host HostResolv) (string, error) {
	d, err := PodDNS(p, clusterDNS, zone, host)
	if err != nil {
		return "", err
	}
	ns, search, opts := d.Nameservers, d.Searches, d.Options
	var b strings.Builder
	for _, n := range ns {
		fmt.Fprintf(&b, "nameserver %s\n", n)
	}
	if len(search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(search, " "))
	}
	if len(opts) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(opts, " "))
	}
	return b.String(), nil
}

// mergeOption sets an option, a later value replacing an earlier one of the same name.
func mergeOption(opts []string, opt string) []string {
	name, _, _ := strings.Cut(opt, ":")
	for i, o := range opts {
		if n, _, _ := strings.Cut(o, ":"); n == name {
			opts[i] = opt
			return opts
		}
	}
	return append(opts, opt)
}

func dedup(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if x != "" && !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// Hosts renders a pod's /etc/hosts: loopback entries, the pod's own name (with
// its FQDN when it has a subdomain) and its hostAliases.
func Hosts(p *corev1.Pod, podIP, zone string) string {
	var b strings.Builder
	b.WriteString("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" +
		"fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n")
	host := p.Spec.Hostname
	if host == "" {
		host = p.Name
	}
	if podIP != "" {
		if p.Spec.Subdomain != "" {
			fmt.Fprintf(&b, "%s\t%s.%s.%s.svc.%s\t%s\n", podIP, host, p.Spec.Subdomain, p.Namespace, strings.TrimSuffix(zone, "."), host)
		} else {
			fmt.Fprintf(&b, "%s\t%s\n", podIP, host)
		}
	}
	if len(p.Spec.HostAliases) > 0 {
		b.WriteString("\n# Entries added by HostAliases.\n")
	}
	for _, a := range p.Spec.HostAliases {
		fmt.Fprintf(&b, "%s\t%s\n", a.IP, strings.Join(a.Hostnames, "\t"))
	}
	return b.String()
}

// Hostname is the pod's hostname: spec.hostname or its name, cut to 63
// characters (a DNS label).
func Hostname(p *corev1.Pod) string {
	h := p.Spec.Hostname
	if h == "" {
		h = p.Name
	}
	if len(h) > 63 {
		h = strings.TrimRight(h[:63], "-.")
	}
	return h
}
