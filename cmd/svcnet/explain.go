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
	"github.com/svcnet/svcnet/internal/proxy/nftables"
)

func newExplainCmd() *cobra.Command {
	var kubeconfig, node string
	cmd := &cobra.Command{
		Use:   "explain service NAMESPACE/NAME",
		Short: "Show how a Service is implemented on this node: VIP, ports, endpoints and the kernel's nftables rules for it",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if args[0] != "service" && args[0] != "svc" {
				return fmt.Errorf("explain: %q: only `service` can be explained", args[0])
			}
			ns, name, ok := strings.Cut(args[1], "/")
			if !ok {
				ns, name = "default", args[1]
			}
			cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
			if err != nil {
				return fmt.Errorf("--kubeconfig: %w", err)
			}
			cs, err := kubernetes.NewForConfig(cfg)
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
