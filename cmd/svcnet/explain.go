package main

import (
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/svcnet/svcnet/internal/proxy"
	"github.com/svcnet/svcnet/internal/proxy/iptables"
	"github.com/svcnet/svcnet/internal/proxy/nftables"
)

func newExplainCmd() *cobra.Command {
	var kubeconfig, node, netns, output string
	cmd := &cobra.Command{
		Use:   "explain (service NAMESPACE/NAME | request FROM TO)",
		Short: "Show how a Service is implemented on this node, or the whole path of a request (DNS, VIP, rules in order, endpoints and their chances, masquerade)",
		Args:  cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			if args[0] == "request" && len(args) == 3 {
				cs, err := clientsetFor(kubeconfig)
				if err != nil {
					return err
				}
				return explainRequest(cmd.Context(), cs, args[1], args[2], node, netns, output, cmd.OutOrStdout())
			}
			if (args[0] != "service" && args[0] != "svc") || len(args) != 2 {
				return fmt.Errorf("explain: %q: only `service` can be explained", args[0])
			}
			ns, name, ok := strings.Cut(args[1], "/")
			if !ok {
				ns, name = "default", args[1]
			}
			cs, err := clientsetFor(kubeconfig)
			if err != nil {
				return err
			}
			return explainService(cmd, cs, ns, name, node, cmd.OutOrStdout())
		},
	}
	home, _ := os.UserHomeDir()
	def := os.Getenv("KUBECONFIG")
	if def == "" {
		def = filepath.Join(home, ".kube", "config")
	}
	host, _ := os.Hostname()
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", def, "kubeconfig of the cluster")
	cmd.Flags().StringVar(&node, "node-name", strings.ToLower(host), "this node (which endpoints are local)")
	cmd.Flags().StringVar(&netns, "netns", "", "request: read iptables-save in this named network namespace (ip netns) instead of this one")
	cmd.Flags().StringVarP(&output, "output", "o", "", "request: json for tools")
	return cmd
}

func explainService(cmd *cobra.Command, cs kubernetes.Interface, ns, name, node string, w io.Writer) error {
	ctx := cmd.Context()
	svc, err := cs.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	slices, err := cs.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + name})
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "Service %s/%s  type %s  cluster IP %s\n", ns, name, svc.Spec.Type, svc.Spec.ClusterIP)
	ports := proxy.ServicePorts(svc)
	if len(ports) == 0 {
		fmt.Fprintln(w, "  not implemented by the proxy (headless, ExternalName, or another service-proxy-name)")
		return nil
	}
	eps := map[string][]proxy.Endpoint{}
	for i := range slices.Items {
		for port, list := range proxy.SliceEndpoints(&slices.Items[i], node) {
			eps[port] = append(eps[port], list...)
		}
	}
	var chains []string
	for _, sp := range ports {
		fmt.Fprintf(w, "\nport %s\n", sp.Describe())
		list := eps[sp.Key.Port]
		sort.Slice(list, func(i, j int) bool { return list[i].Addr.Compare(list[j].Addr) < 0 })
		if len(list) == 0 {
			fmt.Fprintln(w, "  endpoints: none (connections are refused)")
		}
		for _, e := range list {
			state := "ready"
			switch {
			case e.Terminating:
				state = "terminating"
			case !e.Ready:
				state = "not ready"
			}
			where := e.Node
			if e.Local {
				where += " (this node)"
			}
			fmt.Fprintf(w, "  endpoint %-22s %-12s node %s\n", e.Addr, state, where)
		}
		for _, ch := range nftables.Compute(nftables.Config{}, sp, list).Chains {
			chains = append(chains, ch.Name)
		}
	}
	if out, err := exec.CommandContext(cmd.Context(), "iptables-save", "-t", "nat").Output(); err == nil && strings.Contains(string(out), ":KUBE-SERVICES") {
		printIPTablesRules(w, string(out), ports) // iptables mode
		return nil
	}
	fmt.Fprintln(w, "\nkernel rules (nft list, table ip svcnet):")
	out, err := exec.CommandContext(cmd.Context(), "nft", "list", "table", "ip", nftables.Table).CombinedOutput()
	if err != nil {
		fmt.Fprintf(w, "  cannot read them: %v %s(is the agent running with --proxy-mode=nftables, and are you root?)\n", err, out)
		return nil
	}
	printServiceRules(w, string(out), ports, chains)
	return nil
}

// printServiceRules prints the set and map elements of the table that belong
// to the service, the rules that use those sets and maps, and its own chains.
func printServiceRules(w io.Writer, table string, ports []*proxy.ServicePort, chains []string) {
	want := map[string]bool{}
	for _, c := range chains {
		want[c] = true
	}
	var prefixes []string // how the service's elements start
	for _, sp := range ports {
		for _, ip := range append(append([]netip.Addr{sp.ClusterIP}, sp.ExternalIPs...), sp.LoadBalancerIPs...) {
			if ip.IsValid() {
				prefixes = append(prefixes, ip.String()+" ")
			}
		}
		if sp.NodePort != 0 {
			prefixes = append(prefixes, fmt.Sprintf("%s . %d ", strings.ToLower(string(sp.Protocol)), sp.NodePort))
		}
	}
	type chainLine struct{ chain, rule string }
	var elems []string
	var rules []chainLine
	used := map[string]bool{}
	inChain, setName := "", ""
	for _, line := range strings.Split(table, "\n") {
		t := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(t, "map ") || strings.HasPrefix(t, "set "):
			setName, inChain = strings.Fields(t)[1], ""
		case strings.HasPrefix(t, "chain "):
			setName, inChain = "", strings.Fields(t)[1]
		case t == "}" || t == "":
		case inChain != "":
			if !strings.HasPrefix(t, "type ") {
				rules = append(rules, chainLine{inChain, t})
			}
		case setName != "":
			for _, el := range strings.Split(strings.TrimSuffix(strings.TrimPrefix(t, "elements = {"), "}"), ",") {
				el = strings.TrimSpace(el)
				for _, p := range prefixes {
					if strings.HasPrefix(el+" ", p) { // "<ip> . tcp . 80 . ..." and "<ip>" alone
						elems = append(elems, fmt.Sprintf("  @%s: %s", setName, el))
						used[setName] = true
						break
					}
				}
			}
		}
	}
	for _, e := range elems {
		fmt.Fprintln(w, e)
	}
	for _, r := range rules {
		for name := range used {
			if strings.Contains(r.rule, "@"+name+" ") || strings.HasSuffix(r.rule, "@"+name) {
				fmt.Fprintf(w, "  chain %s: %s\n", r.chain, r.rule)
				break
			}
		}
	}
	last := ""
	for _, r := range rules {
		if !want[r.chain] {
			continue
		}
		if r.chain != last {
			if last != "" {
				fmt.Fprintln(w, "  }")
			}
			fmt.Fprintf(w, "  chain %s {\n", r.chain)
			last = r.chain
		}
		fmt.Fprintf(w, "      %s\n", r.rule)
	}
	if last != "" {
		fmt.Fprintln(w, "  }")
	}
}

// clientsetFor builds a client from a kubeconfig file.
func clientsetFor(kubeconfig string) (kubernetes.Interface, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("--kubeconfig: %w", err)
	}
	return kubernetes.NewForConfig(cfg)
}

// printIPTablesRules prints the nat rules of the service's ports: its lines
// in KUBE-SERVICES and KUBE-NODEPORTS and its own chains (iptables mode).
func printIPTablesRules(w io.Writer, save string, ports []*proxy.ServicePort) {
	fmt.Fprintln(w, "\nkernel rules (iptables-save -t nat):")
	for _, line := range strings.Split(save, "\n") {
		for _, sp := range ports {
			if strings.Contains(line, `"`+sp.Key.String()+" ") || strings.Contains(line, " "+sp.Key.String()+" ") ||
				strings.Contains(line, `"`+sp.Key.String()+`"`) || strings.Contains(line, iptables.ServiceChain(sp)) {
				fmt.Fprintf(w, "  %s\n", line)
				break
			}
		}
	}
}
