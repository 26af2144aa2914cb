// Command ingress measures svcnet's ingress edge against nginx (the Debian
// package) configured as ingress-nginx configures it, both proxying to the same
// backend pods in the same run: requests/s and p99 latency for small responses
// over keep-alive connections, a new connection per request, and TLS (keep-alive,
// and a full handshake per request); then route-change propagation (Ingress
// write -> first request routed by it) with 10 and 3,000 routes while requests
// run, and the failed requests during the edits. Needs root: everything runs in
// a network namespace of its own with only loopback (`svcnet up` with pods on
// its bridge, nginx on 127.0.0.1).
//
//	go run ./bench/ingress [-duration 3s -rounds 3 -workers 8 -routes 10,3000 -edits 50 -edit-load 1000 -key rsa|ecdsa]
//
// The machines are shared: each round measures svcnet and nginx back to back
// (alternating which goes first); requests/s is the median of the rounds, p99
// is over every request of all rounds.
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	certutil "k8s.io/client-go/util/cert"

	"github.com/svcnet/svcnet/bench/harness"
)

// Where the two proxies listen, inside the bench's namespace.
const (
	svcnetHTTP, svcnetHTTPS = "127.0.0.1:80", "127.0.0.1:443"
	nginxHTTP, nginxHTTPS   = "127.0.0.1:18080", "127.0.0.1:18443"
	host                    = "bench.test"
)

type options struct {
	duration       time.Duration
	rounds         int
	workers        int
	routes         []int
	edits          int
	pods           int
	editLoad       int
	skipThroughput bool
	key            string
}

func main() {
	var o options
	routes := flag.String("routes", "10,3000", "route counts for the propagation measurement")
	flag.DurationVar(&o.duration, "duration", 3*time.Second, "length of one measurement")
	flag.IntVar(&o.rounds, "rounds", 3, "alternating svcnet/nginx rounds per case")
	flag.IntVar(&o.workers, "workers", 8, "concurrent clients")
	flag.IntVar(&o.edits, "edits", 50, "route edits per route count")
	flag.IntVar(&o.pods, "pods", 3, "backend pods")
	flag.IntVar(&o.editLoad, "edit-load", 1000, "requests/s sent during the route edits (0: as fast as the clients go)")
	flag.BoolVar(&o.skipThroughput, "skip-throughput", false, "measure only propagation")
	flag.StringVar(&o.key, "key", "rsa", "the TLS certificate's key (both proxies): rsa (2048) or ecdsa (P-256)")
	flag.Parse()
	for _, s := range strings.Split(*routes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fmt.Fprintln(os.Stderr, "bench/ingress: bad -routes", *routes)
			os.Exit(2)
		}
		o.routes = append(o.routes, n)
	}
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/ingress: nginx not found; install it with: apt-get install -y nginx-light")
		os.Exit(1)
	}
	in, err := harness.InNetns("ingress")
	if in != nil {
		err = inside(in, nginx, o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/ingress:", err)
		os.Exit(1)
	}
}

const app = `apiVersion: apps/v1
kind: Deployment
metadata: {name: echo}
spec:
  replicas: %d
  selector: {matchLabels: {app: echo}}
  template:
    metadata: {labels: {app: echo}}
    spec:
      containers:
      - name: web
        image: svcnet/agnhost
        command: ["svcnet", "agnhost", "serve-hostname", "--port", "8080"]
        ports: [{name: http, containerPort: 8080}]
        readinessProbe: {httpGet: {path: /, port: http}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: echo}
spec:
  selector: {app: echo}
  ports: [{name: web, port: 80, targetPort: http}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: bench}
spec:
  tls: [{hosts: [bench.test], secretName: bench-tls}]
  rules:
  - host: bench.test
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: echo, port: {number: 80}}}}]}
`

func inside(in *harness.Inside, nginxBin string, o options) error {
	data := filepath.Join(in.Tmp, "data")
	up, err := harness.StartUp(in.Bin, data, os.Stderr, "--proxy-mode", "none")
	if err != nil {
		return err
	}
	defer up.Stop()
	kubectl := up.Kubectl
	crt, key, err := selfSigned(o.key)
	if err != nil {
		return err
	}
	crtFile, keyFile := filepath.Join(in.Tmp, "tls.crt"), filepath.Join(in.Tmp, "tls.key")
	manifest := filepath.Join(in.Tmp, "app.yaml")
	for f, b := range map[string][]byte{crtFile: crt, keyFile: key, manifest: fmt.Appendf(nil, app, o.pods)} {
		if err := os.WriteFile(f, b, 0o600); err != nil {
			return err
		}
	}
	if out, err := kubectl("create", "secret", "tls", "bench-tls", "--cert", crtFile, "--key", keyFile); err != nil {
		return fmt.Errorf("create secret: %v %s", err, out)
	}
	if out, err := kubectl("apply", "-f", manifest); err != nil {
		return fmt.Errorf("apply: %v %s", err, out)
	}
	var endpoints []string
	for i := 0; ; i++ {
		got, _ := kubectl("get", "endpointslices", "-l", "kubernetes.io/service-name=echo", "-o",
			`jsonpath={range .items[*]}{range .endpoints[?(@.conditions.ready==true)]}{.addresses[0]}{" "}{end}{end}`)
		if endpoints = strings.Fields(got); len(endpoints) == o.pods {
			break
		}
		if i == 600 {
			return fmt.Errorf("%d of %d backend pods ready after 60 s", len(endpoints), o.pods)
		}
		time.Sleep(100 * time.Millisecond)
	}
	slices.Sort(endpoints)
	ng, err := startNginx(nginxBin, filepath.Join(in.Tmp, "nginx"), endpoints, crtFile, keyFile)
	if err != nil {
		return err
	}
	defer ng.stop()
	targets := map[string][2]string{"svcnet": {svcnetHTTP, svcnetHTTPS}, "nginx": {nginxHTTP, nginxHTTPS}}
	for name, t := range targets { // both answer from the pods before measuring
		if err := waitServed(t[0], false); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if err := waitServed(t[1], true); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	fmt.Printf("\nbackend: %d pods (svcnet agnhost serve-hostname) at %s; %d clients; %d rounds of %v; %s; %s certificate\n",
		o.pods, strings.Join(endpoints, ", "), o.workers, o.rounds, o.duration, ng.version, strings.ToUpper(o.key))
	if !o.skipThroughput {
		fmt.Printf("%-28s %12s %10s %12s %10s %10s %10s\n", "case", "svcnet r/s", "p99", "nginx r/s", "p99", "r/s ratio", "p99 ratio")
		for _, c := range cases {
			if err := compare(c, targets, o); err != nil {
				return err
			}
		}
	}
	for _, n := range o.routes {
		if err := propagation(filepath.Join(data, "kubeconfig"), n, o); err != nil {
			return err
		}
	}
	return nil
}

// compare measures one case on both proxies, alternating, and prints a line.
func compare(c loadCase, targets map[string][2]string, o options) error {
	rps := map[string][]float64{}
	lat := map[string][]time.Duration{}
	errs := map[string]int{}
	order := []string{"svcnet", "nginx"}
	for round := range o.rounds {
		if round%2 == 1 {
			order[0], order[1] = order[1], order[0]
		}
		for _, name := range order {
			addr := targets[name][0]
			if c.tls {
				addr = targets[name][1]
			}
			r := run(c, addr, o.workers, o.duration)
			rps[name] = append(rps[name], r.rps)
			lat[name] = append(lat[name], r.lat...)
			errs[name] += r.errors
		}
	}
	sm, nm := median(rps["svcnet"]), median(rps["nginx"])
	sp, np := harness.Percentile(lat["svcnet"], 99, time.Microsecond), harness.Percentile(lat["nginx"], 99, time.Microsecond)
	fmt.Printf("%-28s %12.0f %10v %12.0f %10v %9.2fx %9.2fx\n", c.name, sm, sp, nm, np, sm/nm, harness.Ratio(sp, np))
	if errs["svcnet"]+errs["nginx"] > 0 {
		fmt.Printf("  errors: svcnet %d, nginx %d\n", errs["svcnet"], errs["nginx"])
	}
	return nil
}

// selfSigned is a certificate for host with an RSA 2048 or ECDSA P-256 key, PEM.
func selfSigned(kind string) (crt, key []byte, err error) {
	switch kind {
	case "rsa":
		return certutil.GenerateSelfSignedCertKey(host, nil, nil)
	case "ecdsa":
	default:
		return nil, nil, fmt.Errorf("-key %q: want rsa or ecdsa", kind)
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: host},
		DNSNames: []string{host}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		return nil, nil, err
	}
	kd, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), nil
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}
