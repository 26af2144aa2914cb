package kubeproxy

import (
	"bytes"
	"errors"
	"fmt"
	"os/exec"
	"strings"

	"github.com/google/nftables"
)

// NFTablesTable is the table kube-proxy's nftables mode owns (ip and ip6).
const NFTablesTable = "kube-proxy"

// kubeletChains are KUBE-* chains the kubelet (not kube-proxy) writes: left alone.
var kubeletChains = map[string]bool{"KUBE-KUBELET-CANARY": true, "KUBE-FIREWALL": true, "KUBE-IPTABLES-HINT": true}

// isProxyChain says whether an iptables chain is kube-proxy's.
func isProxyChain(name string) bool { return strings.HasPrefix(name, "KUBE-") && !kubeletChains[name] }

// RestoreScript turns `iptables-save` output into `iptables-restore --noflush`
// input that removes kube-proxy's chains: each is declared (which flushes it),
// the rules of other chains that jump or go to one are deleted, then the
// chains are. Tables without kube-proxy chains are left out; "" means
// nothing to do.
func RestoreScript(save string) string {
	var out strings.Builder
	var table string
	var chains, dels []string
	flush := func() {
		if table != "" && len(chains) > 0 {
			fmt.Fprintf(&out, "*%s\n", table)
			for _, c := range chains {
				fmt.Fprintf(&out, ":%s - [0:0]\n", c)
			}
			for _, d := range dels {
				out.WriteString(d + "\n")
			}
			for _, c := range chains {
				fmt.Fprintf(&out, "-X %s\n", c)
			}
			out.WriteString("COMMIT\n")
		}
		table, chains, dels = "", nil, nil
	}
	for _, line := range strings.Split(save, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "*"):
			flush()
			table = line[1:]
		case line == "COMMIT":
			flush()
		case strings.HasPrefix(line, ":"):
			if name, _, _ := strings.Cut(line[1:], " "); isProxyChain(name) {
				chains = append(chains, name)
			}
		case strings.HasPrefix(line, "-A "):
			fields := strings.Fields(line)
			if len(fields) < 2 || isProxyChain(fields[1]) {
				continue // flushed with its chain
			}
			for i := 2; i+1 < len(fields); i++ {
				if (fields[i] == "-j" || fields[i] == "-g") && isProxyChain(fields[i+1]) {
					dels = append(dels, "-D"+strings.TrimPrefix(line, "-A"))
					break
				}
			}
		}
	}
	flush()
	return out.String()
}

// iptablesTools are the iptables variants whose rules kube-proxy may have
// written (the nft-based and the legacy ones, IPv4 and IPv6).
var iptablesTools = []string{"iptables-nft", "iptables-legacy", "ip6tables-nft", "ip6tables-legacy"}

// Cleanup removes kube-proxy's nftables tables and iptables chains from this
// node's network namespace; what is absent is not an error. It returns what
// it removed, for the log.
func Cleanup() ([]string, error) {
	var removed []string
	var errs []error
	conn, err := nftables.New()
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	tables, err := conn.ListTables()
	if err != nil {
		errs = append(errs, fmt.Errorf("nftables list tables: %w", err))
	}
	for _, t := range tables {
		if t.Name == NFTablesTable && (t.Family == nftables.TableFamilyIPv4 || t.Family == nftables.TableFamilyIPv6) {
			conn.DelTable(t)
			fam := "ip"
			if t.Family == nftables.TableFamilyIPv6 {
				fam = "ip6"
			}
			removed = append(removed, "nftables table "+fam+" "+t.Name)
		}
	}
	if err := conn.Flush(); err != nil {
		errs = append(errs, fmt.Errorf("nftables delete table %s: %w", NFTablesTable, err))
	}
	for _, tool := range iptablesTools {
		if _, err := exec.LookPath(tool + "-save"); err != nil {
			continue
		}
		save, err := exec.Command(tool + "-save").Output()
		if err != nil {
			continue // e.g. the legacy kernel modules are not there: nothing of kube-proxy either
		}
		script := RestoreScript(string(save))
		if script == "" {
			continue
		}
		cmd := exec.Command(tool+"-restore", "--noflush")
		cmd.Stdin = strings.NewReader(script)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			errs = append(errs, fmt.Errorf("%s-restore: %w: %s", tool, err, strings.TrimSpace(stderr.String())))
			continue
		}
		removed = append(removed, fmt.Sprintf("%s chains KUBE-* (%d)", tool, strings.Count(script, "\n-X ")))
	}
	return removed, errors.Join(errs...)
}
