package pod

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func svc(ns, name, ip string, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: corev1.ServiceSpec{ClusterIP: ip, Ports: ports}}
}

func envMap(vars []corev1.EnvVar) map[string]string {
	m := map[string]string{}
	for _, v := range vars {
		m[v.Name] = v.Value
	}
	return m
}

func TestServiceEnv(t *testing.T) {
	services := []*corev1.Service{
		svc("default", "kubernetes", "10.96.0.1", corev1.ServicePort{Name: "https", Port: 443, Protocol: corev1.ProtocolTCP}),
		svc("web", "httpd-svc", "10.96.12.7", corev1.ServicePort{Name: "http", Port: 8080, Protocol: corev1.ProtocolTCP},
			corev1.ServicePort{Name: "metrics", Port: 9090, Protocol: corev1.ProtocolUDP}),
		svc("web", "headless", "None", corev1.ServicePort{Port: 80}),
		svc("other", "elsewhere", "10.96.1.1", corev1.ServicePort{Port: 80}),
	}
	env := envMap(ServiceEnv("web", true, services))
	want := map[string]string{
		"HTTPD_SVC_SERVICE_HOST":         "10.96.12.7",
		"HTTPD_SVC_SERVICE_PORT":         "8080",
		"HTTPD_SVC_SERVICE_PORT_HTTP":    "8080",
		"HTTPD_SVC_SERVICE_PORT_METRICS": "9090",
		"HTTPD_SVC_PORT":                 "tcp://10.96.12.7:8080",
		"HTTPD_SVC_PORT_8080_TCP":        "tcp://10.96.12.7:8080",
		"HTTPD_SVC_PORT_8080_TCP_PROTO":  "tcp",
		"HTTPD_SVC_PORT_8080_TCP_PORT":   "8080",
		"HTTPD_SVC_PORT_8080_TCP_ADDR":   "10.96.12.7",
		"HTTPD_SVC_PORT_9090_UDP":        "udp://10.96.12.7:9090",
		"HTTPD_SVC_PORT_9090_UDP_PROTO":  "udp",
		"KUBERNETES_SERVICE_HOST":        "10.96.0.1",
		"KUBERNETES_SERVICE_PORT":        "443",
		"KUBERNETES_SERVICE_PORT_HTTPS":  "443",
		"KUBERNETES_PORT":                "tcp://10.96.0.1:443",
		"KUBERNETES_PORT_443_TCP_ADDR":   "10.96.0.1",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s = %q, want %q", k, env[k], v)
		}
	}
	for k := range env {
		if strings.HasPrefix(k, "HEADLESS") || strings.HasPrefix(k, "ELSEWHERE") {
			t.Errorf("unexpected %s", k)
		}
	}
	// enableServiceLinks: false keeps only the kubernetes Service.
	for _, v := range ServiceEnv("web", false, services) {
		if !strings.HasPrefix(v.Name, "KUBERNETES_") {
			t.Errorf("enableServiceLinks=false still gave %s", v.Name)
		}
	}
}

func TestResolvConf(t *testing.T) {
	host := HostResolv{Nameservers: []string{"192.0.2.53"}, Searches: []string{"corp.example"}, Options: []string{"timeout:2"}}
	pod := func(policy corev1.DNSPolicy, mut ...func(*corev1.Pod)) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "web", Name: "p"}, Spec: corev1.PodSpec{DNSPolicy: policy}}
		for _, m := range mut {
			m(p)
		}
		return p
	}
	two := "2"
	cases := []struct {
		name string
		pod  *corev1.Pod
		want string
	}{
		{"ClusterFirst", pod(corev1.DNSClusterFirst),
			"nameserver 10.96.0.10\nsearch web.svc.cluster.local svc.cluster.local cluster.local corp.example\noptions ndots:5\n"},
		{"Default", pod(corev1.DNSDefault), "nameserver 192.0.2.53\nsearch corp.example\noptions timeout:2\n"},
		{"host network falls back to Default", pod(corev1.DNSClusterFirst, func(p *corev1.Pod) { p.Spec.HostNetwork = true }),
			"nameserver 192.0.2.53\nsearch corp.example\noptions timeout:2\n"},
		{"ClusterFirstWithHostNet", pod(corev1.DNSClusterFirstWithHostNet, func(p *corev1.Pod) { p.Spec.HostNetwork = true }),
			"nameserver 10.96.0.10\nsearch web.svc.cluster.local svc.cluster.local cluster.local corp.example\noptions ndots:5\n"},
		{"None with dnsConfig", pod(corev1.DNSNone, func(p *corev1.Pod) {
			p.Spec.DNSConfig = &corev1.PodDNSConfig{Nameservers: []string{"1.1.1.1"}, Searches: []string{"a.example"},
				Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: &two}, {Name: "edns0"}}}
		}), "nameserver 1.1.1.1\nsearch a.example\noptions ndots:2 edns0\n"},
		{"dnsConfig overrides ndots", pod(corev1.DNSClusterFirst, func(p *corev1.Pod) {
			p.Spec.DNSConfig = &corev1.PodDNSConfig{Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: &two}}}
		}), "nameserver 10.96.0.10\nsearch web.svc.cluster.local svc.cluster.local cluster.local corp.example\noptions ndots:2\n"},
	}
	for _, c := range cases {
		got, err := ResolvConf(c.pod, []string{"10.96.0.10"}, "cluster.local.", host)
		if err != nil || got != c.want {
			t.Errorf("%s:\n got %q (%v)\nwant %q", c.name, got, err, c.want)
		}
	}
	if _, err := ResolvConf(pod(corev1.DNSNone), nil, "cluster.local", host); err == nil {
		t.Error("dnsPolicy None without dnsConfig accepted")
	}
	if _, err := ResolvConf(pod(corev1.DNSClusterFirst), nil, "cluster.local", host); err == nil {
		t.Error("ClusterFirst without a cluster DNS accepted")
	}
}

func TestHosts(t *testing.T) {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "db", Name: "web-0"},
		Spec: corev1.PodSpec{Hostname: "web-0", Subdomain: "nginx", HostAliases: []corev1.HostAlias{{IP: "192.0.2.7", Hostnames: []string{"foo.local", "bar.local"}}}}}
	h := Hosts(p, "10.244.0.5", "cluster.local")
	for _, want := range []string{"127.0.0.1\tlocalhost\n", "10.244.0.5\tweb-0.nginx.db.svc.cluster.local\tweb-0\n",
		"# Entries added by HostAliases.\n192.0.2.7\tfoo.local\tbar.local\n"} {
		if !strings.Contains(h, want) {
			t.Errorf("hosts lacks %q:\n%s", want, h)
		}
	}
	if h := Hosts(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "plain"}}, "10.244.0.6", "cluster.local"); !strings.Contains(h, "10.244.0.6\tplain\n") {
		t.Errorf("plain pod hosts:\n%s", h)
	}
}
