// Package explain tells the whole path of a request to a Service, as the
// tutorials teach it: the DNS answer the client gets (search path and ndots
// steps), the VIP, the rules the packet meets in order (traced through the
// kernel's iptables-save dump), the endpoints it may reach with their
// chances, their nodes, and whether the source is masqueraded and why. It
// does no I/O: the command reads the objects and the dump and prints the result.
package explain

import (
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"

	mdns "github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/svcnet/svcnet/internal/dns"
	"github.com/svcnet/svcnet/internal/netpol"
	"github.com/svcnet/svcnet/internal/pod"
	"github.com/svcnet/svcnet/internal/proxy"
	"github.com/svcnet/svcnet/internal/proxy/iptables"
)

// Input is everything an explanation is computed from.
type Input struct {
	From       string // pod/NS/NAME, node/NAME or an address
	To         string // a name, http://name.ns:port, or IP:port
	Pod        *corev1.Pod
	FromNode   *corev1.Node
	Node       string // the node whose rules are traced (the client's, or the receiving one)
	NodeIPs    []netip.Addr
	Services   []*corev1.Service
	Slices     []*discoveryv1.EndpointSlice
	Namespaces []string
	ClusterDNS []string
	Zone       string
	Dump       string // iptables-save of Node ("" when not in iptables mode)
	// NodeZone is Node's topology.kubernetes.io/zone label (topology hints).
	NodeZone string
	// Policies are the cluster's NetworkPolicies, pods and namespaces (nil: no policy step).
	Policies *netpol.State
}

// DNSStep is one name the resolver asked for, with the answer.
type DNSStep struct {
	Query  string   `json:"query"`
	Rcode  string   `json:"rcode"`
	Answer []string `json:"answer,omitempty"`
}

// Endpoint is where the request may end up.
type Endpoint struct {
	Address     string   `json:"address"`
	Probability float64  `json:"probability"`
	Node        string   `json:"node,omitempty"`
	Masquerade  bool     `json:"masquerade"`
	Rules       []string `json:"rules,omitempty"`
	Policy      string   `json:"policy,omitempty"` // the NetworkPolicy verdict of the flow to it
}

// Explanation is the result, printed as text or JSON.
type Explanation struct {
	From      string     `json:"from"`
	To        string     `json:"to"`
	Search    []string   `json:"search,omitempty"`
	Ndots     int        `json:"ndots,omitempty"`
	DNS       []DNSStep  `json:"dns,omitempty"`
	Service   string     `json:"service,omitempty"`
	VIP       string     `json:"vip,omitempty"`
	Outcome   string     `json:"outcome"` // proxied, headless, external-name, rejected, dropped, not-a-service
	Endpoints []Endpoint `json:"endpoints,omitempty"`
	Notes     []string   `json:"notes,omitempty"`
}

// target splits TO into host and port.
func target(to string) (host string, port int, err error) {
	if strings.Contains(to, "://") {
		u, err := url.Parse(to)
		if err != nil {
			return "", 0, err
		}
		host, port = u.Hostname(), 80
		if u.Scheme == "https" {
			port = 443
		}
		if p := u.Port(); p != "" {
			port, _ = strconv.Atoi(p)
		}
		return host, port, nil
	}
	if h, p, err := splitHostPort(to); err == nil {
		return h, p, nil
	}
	return to, 0, nil
}

func splitHostPort(s string) (string, int, error) {
	i := strings.LastIndex(s, ":")
	if i < 0 {
		return "", 0, fmt.Errorf("no port")
	}
	p, err := strconv.Atoi(s[i+1:])
	return s[:i], p, err
}

// Request explains a request from in.From to in.To.
func Request(in Input) (*Explanation, error) {
	ex := &Explanation{From: in.From, To: in.To}
	host, port, err := target(in.To)
	if err != nil {
		return nil, fmt.Errorf("TO %q: %w", in.To, err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil { // a name: resolve it as the client's resolver would
		ip, err = ex.resolve(in, host)
		if err != nil || !ip.IsValid() {
			return ex, err
		}
	}
	ex.VIP = ip.String()
	sp := findServicePort(in, ip, port)
	if sp == nil {
		ex.Outcome = "not-a-service"
		ex.Notes = append(ex.Notes, fmt.Sprintf("%s:%d is no Service's cluster IP, external IP, load-balancer IP or node port: not translated", ip, port))
	} else {
		ex.Service = sp.Key.String()
		if port == 0 {
			port = int(sp.Port)
		}
	}
	src := ex.trace(in, sp, ip, port)
	ex.policy(in, sp, src, ip, port)
	return ex, nil
}

// resolve walks the search path as the pod's resolver does and records each step.
func (ex *Explanation) resolve(in Input, name string) (netip.Addr, error) {
	zone := strings.TrimSuffix(in.Zone, ".")
	if zone == "" {
		zone = "cluster.local"
	}
	var settings pod.DNSSettings
	if in.Pod != nil {
		s, err := pod.PodDNS(in.Pod, in.ClusterDNS, zone, pod.HostResolv{})
		if err != nil {
			return netip.Addr{}, err
		}
		settings = s
	} else {
		ex.Notes = append(ex.Notes, "not a pod: the name is looked up as written (no cluster search path)")
	}
	ex.Search = settings.Searches
	ex.Ndots = 1
	for _, o := range settings.Options {
		if v, ok := strings.CutPrefix(o, "ndots:"); ok {
			ex.Ndots, _ = strconv.Atoi(v)
		}
	}
	ix := dns.NewIndex(zone, 5)
	for _, ns := range in.Namespaces {
		ix.SetNamespace(ns, true)
	}
	for _, s := range in.Services {
		d := dns.FromService(s)
		if d == nil {
			continue
		}
		if d.Headless {
			var mine []*discoveryv1.EndpointSlice
			for _, es := range in.Slices {
				if es.Namespace == s.Namespace && es.Labels[discoveryv1.LabelServiceName] == s.Name {
					mine = append(mine, es)
				}
			}
			d.Endpoints = dns.EndpointsFromSlices(mine)
		}
		ix.SetService(d)
	}
	ix.SetSynced()
	var tries []string
	fqdn := strings.HasSuffix(name, ".")
	name = strings.TrimSuffix(name, ".")
	if fqdn || strings.Count(name, ".") >= ex.Ndots {
		tries = append(tries, name)
	}
	if !fqdn {
		for _, s := range settings.Searches {
			tries = append(tries, name+"."+s)
		}
		if strings.Count(name, ".") < ex.Ndots {
			tries = append(tries, name)
		}
	}
	for _, q := range tries {
		m := new(mdns.Msg)
		m.SetQuestion(mdns.Fqdn(q), mdns.TypeA)
		r := ix.Answer(m, dns.PodsDisabled)
		step := DNSStep{Query: q}
		if !r.Ours {
			step.Rcode = "outside the cluster zone: forwarded upstream"
			ex.DNS = append(ex.DNS, step)
			continue
		}
		step.Rcode = mdns.RcodeToString[r.Msg.Rcode]
		var addrs []netip.Addr
		for _, rr := range r.Msg.Answer {
			step.Answer = append(step.Answer, strings.ReplaceAll(rr.String(), "\t", " "))
			if a, ok := rr.(*mdns.A); ok {
				addrs = append(addrs, netip.AddrFrom4([4]byte(a.A.To4())))
			}
		}
		ex.DNS = append(ex.DNS, step)
		if r.Msg.Rcode != mdns.RcodeSuccess {
			continue
		}
		if r.Chase != "" {
			ex.Outcome = "external-name"
			ex.Notes = append(ex.Notes, fmt.Sprintf("ExternalName: a CNAME to %s, resolved by the upstream resolver; the connection goes there directly, no proxy rule applies", r.Chase))
			return netip.Addr{}, nil
		}
		if len(addrs) > 1 || (len(addrs) == 1 && !isClusterIP(in, addrs[0])) {
			ex.Outcome = "headless"
			for _, a := range addrs {
				ex.Endpoints = append(ex.Endpoints, Endpoint{Address: a.String(), Probability: 1 / float64(len(addrs)), Node: nodeOf(in, a)})
			}
			ex.Notes = append(ex.Notes, "headless Service: DNS answers with the pods' addresses; the client picks one (usually the first) and connects to the pod directly, no proxy rule applies")
			return netip.Addr{}, nil
		}
		if len(addrs) == 1 {
			return addrs[0], nil
		}
		ex.Outcome = "no-address"
		return netip.Addr{}, nil
	}
	ex.Outcome = "nxdomain"
	return netip.Addr{}, nil
}

func isClusterIP(in Input, a netip.Addr) bool {
	for _, s := range in.Services {
		if s.Spec.ClusterIP == a.String() {
			return true
		}
	}
	return false
}

// nodeOf finds the node of an endpoint address in the slices.
func nodeOf(in Input, a netip.Addr) string {
	for _, es := range in.Slices {
		for _, e := range es.Endpoints {
			for _, x := range e.Addresses {
				if x == a.String() && e.NodeName != nil {
					return *e.NodeName
				}
			}
		}
	}
	return ""
}

// findServicePort finds the service port whose VIP (or node port on a node address) is ip:port.
func findServicePort(in Input, ip netip.Addr, port int) *proxy.ServicePort {
	nodeAddr := slices.Contains(in.NodeIPs, ip)
	for _, s := range in.Services {
		for _, sp := range proxy.ServicePorts(s) {
			if sp.Port == 0 {
				continue
			}
			ips := append(append([]netip.Addr{sp.ClusterIP}, sp.ExternalIPs...), sp.LoadBalancerIPs...)
			for _, v := range ips {
				if v == ip && (port == 0 || int(sp.Port) == port) {
					return sp
				}
			}
			if nodeAddr && sp.NodePort != 0 && int(sp.NodePort) == port {
				return sp
			}
		}
	}
	return nil
}

// trace follows the packet through the dump (iptables mode), or tells the
// endpoints and their chances from the model when there is no dump; it
// returns the packet's source address.
func (ex *Explanation) trace(in Input, sp *proxy.ServicePort, ip netip.Addr, port int) netip.Addr {
	src, fromNode := netip.Addr{}, false
	switch {
	case in.Pod != nil:
		src, _ = netip.ParseAddr(in.Pod.Status.PodIP)
		fromNode = in.Pod.Spec.HostNetwork
	case in.FromNode != nil:
		fromNode = true
		if len(in.NodeIPs) > 0 {
			src = in.NodeIPs[0]
		}
	default:
		src, _ = netip.ParseAddr(in.From)
	}
	proto := "tcp"
	if sp != nil {
		proto = strings.ToLower(string(sp.Protocol))
	}
	if in.Dump == "" || !strings.Contains(in.Dump, "KUBE-SERVICES") {
		ex.Notes = append(ex.Notes, "no kube-proxy iptables rules on "+in.Node+" (mode nftables or userspace): endpoints from the Service's EndpointSlices; `svcnet explain service` shows the nftables elements")
		ex.fromModel(in, sp)
		return src
	}
	d, err := iptables.ParseDump(in.Dump)
	if err != nil {
		ex.Notes = append(ex.Notes, "cannot read the rules: "+err.Error())
		return src
	}
	local := func(a netip.Addr) bool { return slices.Contains(in.NodeIPs, a) || a.IsLoopback() }
	paths := iptables.Trace(d, iptables.Packet{Src: src, Dst: ip, Proto: proto, Port: uint16(port), FromNode: fromNode, Local: local})
	for _, p := range paths {
		for _, n := range p.Notes {
			if !slices.Contains(ex.Notes, n) {
				ex.Notes = append(ex.Notes, n)
			}
		}
		var rules []string
		for _, s := range p.Steps {
			rules = append(rules, fmt.Sprintf("[%s] %s", s.Table, s.Rule))
		}
		switch p.Verdict {
		case "REJECT", "DROP":
			ex.Outcome = map[string]string{"REJECT": "rejected", "DROP": "dropped"}[p.Verdict]
			ex.Endpoints = append(ex.Endpoints, Endpoint{Address: p.Verdict, Probability: p.Prob, Rules: rules})
		case "DNAT":
			ex.Outcome = "proxied"
			ex.Endpoints = append(ex.Endpoints, Endpoint{Address: p.To.String(), Probability: p.Prob, Node: nodeOf(in, p.To.Addr()), Masquerade: p.Masquerade, Rules: rules})
		default:
			if ex.Outcome == "" {
				ex.Outcome = "not-translated"
			}
			ex.Endpoints = append(ex.Endpoints, Endpoint{Address: fmt.Sprintf("%s:%d", ip, port), Probability: p.Prob, Masquerade: p.Masquerade, Rules: rules})
		}
	}
	ex.why(sp)
	return src
}

// fromModel lists the usable endpoints, uniformly, without kernel rules.
func (ex *Explanation) fromModel(in Input, sp *proxy.ServicePort) {
	if sp == nil {
		return
	}
	var eps []proxy.Endpoint
	for _, es := range in.Slices {
		if es.Labels[discoveryv1.LabelServiceName] == sp.Key.Name && es.Namespace == sp.Key.Namespace {
			eps = append(eps, proxy.SliceEndpoints(es, in.Node)[sp.Key.Port]...)
		}
	}
	use := proxy.Usable(proxy.Topology(eps, in.Node, in.NodeZone), sp.InternalLocal)
	if mode := proxy.TopologyMode(eps, in.Node, in.NodeZone); mode != "" && !sp.InternalLocal {
		where := "zone " + in.NodeZone
		if mode == corev1.ServiceTrafficDistributionPreferSameNode {
			where = "node " + in.Node
		}
		ex.Notes = append(ex.Notes, fmt.Sprintf("topology hints (%s): cluster traffic from %s goes only to the endpoints hinted for %s", mode, in.Node, where))
	}
	sort.Slice(use, func(i, j int) bool { return use[i].Addr.Compare(use[j].Addr) < 0 })
	ex.Outcome = "proxied"
	if len(use) == 0 {
		ex.Outcome = "rejected"
	}
	for _, e := range use {
		ex.Endpoints = append(ex.Endpoints, Endpoint{Address: e.Addr.String(), Probability: 1 / float64(len(use)), Node: e.Node})
	}
	ex.why(sp)
}

// why adds the reasons for masquerading or not.
func (ex *Explanation) why(sp *proxy.ServicePort) {
	if sp == nil {
		return
	}
	if sp.ExternalLocal {
		ex.Notes = append(ex.Notes, "externalTrafficPolicy Local: traffic from outside the node keeps its source address and goes only to this node's endpoints (dropped without one)")
	}
	if sp.InternalLocal {
		ex.Notes = append(ex.Notes, "internalTrafficPolicy Local: cluster IP traffic goes only to endpoints on the client's node")
	}
	if sp.AffinityTimeout > 0 {
		ex.Notes = append(ex.Notes, fmt.Sprintf("sessionAffinity ClientIP: a client keeps its endpoint for %ds", sp.AffinityTimeout))
	}
	for _, e := range ex.Endpoints {
		if e.Masquerade {
			ex.Notes = append(ex.Notes, "masquerade: the packet was marked 0x4000 (KUBE-MARK-MASQ: from outside the pod network, to a node port or external IP with policy Cluster, or a pod reaching itself); KUBE-POSTROUTING rewrites its source to the node's address")
			break
		}
	}
}
