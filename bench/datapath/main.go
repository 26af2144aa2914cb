// Command datapath measures the service proxy's data path: requests per second
// (a new connection each) and bulk throughput to a pod through its Service's
// cluster IP, against the same directly to the pod IP, measured in the same run,
// for each backend (nftables, userspace). Needs root: `svcnet up` runs in a
// network namespace of its own, with one `svcnet agnhost netexec` pod.
//
//	go run ./bench/datapath [-requests 2000] [-bytes 536870912] [-rounds 9]
//
// Both from a pod (a client pod: the usual way to a Service) and from the
// node (its connections are DNATed on the output path, which reroutes every
// packet). The machines are shared and single runs swing by +-20%: each round measures
// the pod IP and the cluster IP back to back (in alternating order), and the
// ratio printed is the median of the rounds' ratios, with their range.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/svcnet/svcnet/bench/harness"
	"github.com/svcnet/svcnet/internal/agnhost"
)

func main() {
	requests := flag.Int("requests", 2000, "requests per measurement (a new connection each)")
	bytes := flag.Int64("bytes", 512<<20, "bytes per bulk download")
	rounds := flag.Int("rounds", 9, "alternating rounds; the median ratio is reported")
	flag.Parse()
	in, err := harness.InNetns("datapath")
	if in != nil {
		for _, mode := range []string{"nftables", "userspace"} {
			if err = inside(in, mode, *requests, *bytes, *rounds); err != nil {
				break
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/datapath:", err)
		os.Exit(1)
	}
}

const app = `apiVersion: v1
kind: Pod
metadata: {name: bulk, labels: {app: bulk}}
spec:
  containers:
  - name: netexec
    image: svcnet/agnhost
    command: ["svcnet", "agnhost", "netexec", "--http-port", "8080", "--udp-port", "0"]
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  containers:
  - name: client
    image: svcnet/agnhost
    command: ["svcnet", "agnhost", "netexec", "--http-port", "9090", "--udp-port", "0"]
---
apiVersion: v1
kind: Service
metadata: {name: bulk}
spec:
  selector: {app: bulk}
  ports: [{port: 80, targetPort: 8080}]
`

func inside(in *harness.Inside, mode string, requests int, bytes int64, rounds int) error {
	bin, tmp := in.Bin, in.Tmp
	data := filepath.Join(tmp, mode)
	up, err := harness.StartUp(bin, data, nil, "--proxy-mode", mode)
	if err != nil {
		return err
	}
	defer up.Stop()
	kubectl := up.Kubectl
	manifest := filepath.Join(tmp, "bulk.yaml")
	if err := os.WriteFile(manifest, []byte(app), 0o644); err != nil {
		return err
	}
	if out, err := kubectl("apply", "-f", manifest); err != nil {
		return fmt.Errorf("apply: %v %s", err, out)
	}
	var podIP, svcIP string
	for i := 0; i < 300; i++ {
		podIP, _ = kubectl("get", "pod", "bulk", "-o", "jsonpath={.status.podIP}")
		eps, _ := kubectl("get", "endpoints", "bulk", "-o", "jsonpath={.subsets[0].addresses[0].ip}")
		svcIP, _ = kubectl("get", "svc", "bulk", "-o", "jsonpath={.spec.clusterIP}")
		client, _ := kubectl("get", "pod", "client", "-o", "jsonpath={.status.phase}")
		if podIP != "" && eps == podIP && client == "Running" {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	direct, service := "http://"+podIP+":8080", "http://"+svcIP+":80"
	ctx := context.Background()
	// A measurement from the node runs here; from a pod, inside the client pod.
	type vantage struct {
		name           string
		requests, bulk func(url string) (float64, error)
	}
	fromPod := func(args ...string) (float64, error) {
		out, err := kubectl(append([]string{"exec", "client", "--", "svcnet", "agnhost", "load"}, args...)...)
		if err != nil {
			return 0, fmt.Errorf("%v: %s", err, out)
		}
		return strconv.ParseFloat(out, 64)
	}
	vantages := []vantage{
		{"from a pod", func(u string) (float64, error) {
			return fromPod(u+"/hostname", "--requests", strconv.Itoa(requests), "--low-ports="+strconv.FormatBool(u == direct))
		}, func(u string) (float64, error) { return fromPod(u, "--bytes", strconv.FormatInt(bytes, 10)) }},
		{"from the node", func(u string) (float64, error) { return agnhost.Requests(ctx, u+"/hostname", requests, u == direct) },
			func(u string) (float64, error) { return agnhost.Download(ctx, u, bytes) }},
	}
	for _, u := range []string{direct, service} { // warm up, and check both answer from both places
		for _, v := range vantages {
			if _, err := v.requests(u); err != nil {
				return fmt.Errorf("%s %s: %w", v.name, u, err)
			}
		}
	}
	fmt.Printf("\n%s backend (%d requests, a connection each; %d MiB downloads; %d rounds):\n", mode, requests, bytes>>20, rounds)
	for _, v := range vantages {
		var rpsD, rpsS, tpD, tpS []float64
		for round := 0; round < rounds; round++ {
			// pair measures the pod IP and the cluster IP back to back, in alternating order.
			pair := func(measure func(string) (float64, error), d, s *[]float64) error {
				first, second, a, b := direct, service, d, s
				if round%2 == 1 {
					first, second, a, b = service, direct, s, d
				}
				x, err := measure(first)
				if err != nil {
					return err
				}
				y, err := measure(second)
				if err != nil {
					return err
				}
				*a, *b = append(*a, x), append(*b, y)
				return nil
			}
			if err := pair(v.requests, &rpsD, &rpsS); err != nil {
				return err
			}
			if err := pair(v.bulk, &tpD, &tpS); err != nil {
				return err
			}
		}
		report := func(what, unit string, d, s []float64) {
			ratios := make([]float64, len(d))
			for i := range d {
				ratios[i] = s[i] / d[i]
			}
			sort.Float64s(ratios)
			fmt.Printf("  %s, %s: pod IP median %.0f %s, cluster IP median %.0f %s: ratio median %.2f (rounds %.2f-%.2f)\n",
				v.name, what, median(d), unit, median(s), unit, median(ratios), ratios[0], ratios[len(ratios)-1])
		}
		report("requests/s", "/s", rpsD, rpsS)
		report("throughput", "MiB/s", tpD, tpS)
	}
	return nil
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}
