// Command crd benchmarks custom resources against the built-in path: creates per
// second and full-list latency of N objects of a CRD with a structural schema,
// each printed with the ratio to N ConfigMaps carrying the same data, measured in
// the same run on the same API server and etcd. Everything stays on loopback.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/svcnet/svcnet/bench/harness"
)

const crdYAML = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.bench.svcnet.io}
spec:
  group: bench.svcnet.io
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size, owner]
            properties:
              size: {type: string, enum: [small, large]}
              owner: {type: string, maxLength: 63}
              replicas: {type: integer, minimum: 0, default: 1}
              tags: {type: array, items: {type: string}}
`

func main() {
	n := flag.Int("objects", 10000, "number of objects of each kind")
	workers := flag.Int("workers", 8, "concurrent writers (same for both sides)")
	lists := flag.Int("lists", 7, "full lists to time (median reported)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the lists to this file")
	flag.Parse()
	profile = *cpuprofile
	if err := run(*n, *workers, *lists); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

var profile string

func run(n, workers, lists int) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cl, err := harness.Start(ctx, false)
	if err != nil {
		return err
	}
	defer cl.Close()
	cfg, err := clientcmd.BuildConfigFromFlags("", cl.Kubeconfig)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = -1, 0
	dyn := dynamic.NewForConfigOrDie(cfg)
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := yaml.UnmarshalStrict([]byte(crdYAML), crd); err != nil {
		return err
	}
	crdGVR := apiextensionsv1.SchemeGroupVersion.WithResource("customresourcedefinitions")
	u, err := toUnstructured(crd)
	if err != nil {
		return err
	}
	if _, err := dyn.Resource(crdGVR).Create(ctx, u, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create CRD: %w", err)
	}
	gvr := schema.GroupVersionResource{Group: "bench.svcnet.io", Version: "v1", Resource: "widgets"}
	// Established = the resource is served.
	if err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := dyn.Resource(gvr).Namespace("default").List(ctx, metav1.ListOptions{Limit: 1})
		return err == nil, nil
	}); err != nil {
		return fmt.Errorf("CRD not established: %w", err)
	}
	fmt.Printf("svcnet custom resource bench: %d objects, %d workers, embedded etcd, loopback TLS\n", n, workers)
	widget := func(i int) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "bench.svcnet.io/v1", "kind": "Widget",
			"metadata": map[string]any{"name": fmt.Sprintf("w-%05d", i), "labels": map[string]any{"app": fmt.Sprintf("app-%d", i%100)}},
			"spec":     map[string]any{"size": "small", "owner": fmt.Sprintf("team-%d", i%10), "tags": []any{"a", "b"}},
		}}
	}
	configMap := func(i int) *corev1.ConfigMap {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("w-%05d", i), Labels: map[string]string{"app": fmt.Sprintf("app-%d", i%100)}},
			Data: map[string]string{"size": "small", "owner": fmt.Sprintf("team-%d", i%10), "replicas": "1", "tags": "a,b"}}
	}
	start := time.Now()
	if err := harness.Parallel(n, workers, func(i int) error {
		_, err := cl.Client.CoreV1().ConfigMaps("default").Create(ctx, configMap(i), metav1.CreateOptions{})
		return err
	}); err != nil {
		return fmt.Errorf("configmap create: %w", err)
	}
	cmCreate := time.Since(start)
	fmt.Printf("progress: ConfigMap creates done in %v\n", cmCreate.Round(time.Millisecond))
	start = time.Now()
	if err := harness.Parallel(n, workers, func(i int) error {
		_, err := dyn.Resource(gvr).Namespace("default").Create(ctx, widget(i), metav1.CreateOptions{})
		return err
	}); err != nil {
		return fmt.Errorf("custom resource create: %w", err)
	}
	crCreate := time.Since(start)
	fmt.Printf("progress: custom resource creates done in %v\n", crCreate.Round(time.Millisecond))
	var cmLists, cmJSONLists, crLists []time.Duration
	cmGVR := corev1.SchemeGroupVersion.WithResource("configmaps")
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			return err
		}
		_ = pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	for range lists {
		t0 := time.Now()
		l, err := cl.Client.CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{})
		if err != nil || len(l.Items) < n {
			return fmt.Errorf("configmap list: %v", err)
		}
		cmLists = append(cmLists, time.Since(t0))
		t0 = time.Now() // the same objects through the dynamic client: JSON both ways, as custom resources
		jl, err := dyn.Resource(cmGVR).Namespace("default").List(ctx, metav1.ListOptions{})
		if err != nil || len(jl.Items) < n {
			return fmt.Errorf("configmap JSON list: %v", err)
		}
		cmJSONLists = append(cmJSONLists, time.Since(t0))
		t0 = time.Now()
		ul, err := dyn.Resource(gvr).Namespace("default").List(ctx, metav1.ListOptions{})
		if err != nil || len(ul.Items) != n {
			return fmt.Errorf("custom resource list: %v", err)
		}
		crLists = append(crLists, time.Since(t0))
	}
	cmRate, crRate := float64(n)/cmCreate.Seconds(), float64(n)/crCreate.Seconds()
	cml, crl := harness.Median(cmLists), harness.Median(crLists)
	fmt.Printf("creates/s:   custom resource %8.0f   ConfigMap %8.0f   ratio custom/ConfigMap = %.2f\n", crRate, cmRate, crRate/cmRate)
	cmj := harness.Median(cmJSONLists)
	fmt.Printf("list %d:  custom resource %8v   ConfigMap %8v   ratio custom/ConfigMap = %.2f (median of %d; typed client, protobuf)\n", n,
		crl.Round(time.Millisecond), cml.Round(time.Millisecond), float64(crl)/float64(cml), lists)
	fmt.Printf("list %d:  custom resource %8v   ConfigMap %8v   ratio custom/ConfigMap = %.2f (median of %d; both through the dynamic client, JSON)\n", n,
		crl.Round(time.Millisecond), cmj.Round(time.Millisecond), float64(crl)/float64(cmj), lists)
	return nil
}

func toUnstructured(crd *apiextensionsv1.CustomResourceDefinition) (*unstructured.Unstructured, error) {
	raw, err := yaml.Marshal(crd)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(raw, &u.Object); err != nil {
		return nil, err
	}
	u.SetAPIVersion("apiextensions.k8s.io/v1")
	u.SetKind("CustomResourceDefinition")
	return u, nil
}
