package e2e

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
)

const widgetCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale: {specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas}
    additionalPrinterColumns:
    - {name: Size, type: string, jsonPath: .spec.size}
    - {name: Replicas, type: integer, jsonPath: .spec.replicas}
    schema:
      openAPIV3Schema:
        type: object
        description: A Widget is a thing made for the tests.
        properties:
          spec:
            type: object
            description: What the widget should be.
            required: [size]
            properties:
              size: {type: string, enum: [small, large], description: How big the widget is.}
              replicas: {type: integer, minimum: 0, default: 1}
          status:
            type: object
            properties:
              replicas: {type: integer}
`

const gatewayObjects = `apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata:
  name: svcnet
spec:
  controllerName: svcnet.io/gateway
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: web
  namespace: default
spec:
  gatewayClassName: svcnet
  listeners:
  - name: http
    protocol: HTTP
    port: 80
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: web
  namespace: default
spec:
  parentRefs:
  - name: web
  hostnames: ["web.example.com"]
  rules:
  - matches:
    - path: {type: PathPrefix, value: /}
    backendRefs:
    - name: web
      port: 80
`

// TestGatewayAPICRDs installs the Gateway API standard CRDs as its install guide
// says and creates a GatewayClass, a Gateway and an HTTPRoute with kubectl.
func TestGatewayAPICRDs(t *testing.T) {
	dir := t.TempDir()
	c := startCluster(t, dir, freePort(t))
	defer c.stop()
	crds := filepath.Join(repoRoot(), "test", "e2e", "testdata", "gateway-api-v1.5.0-standard-crds.yaml")
	out := c.must("apply", "--server-side", "-f", crds)
	for _, want := range []string{"gatewayclasses.gateway.networking.k8s.io serverside-applied", "httproutes.gateway.networking.k8s.io serverside-applied"} {
		if !strings.Contains(out, want) {
			t.Errorf("apply output lacks %q:\n%s", want, out)
		}
	}
	c.must("wait", "--for=condition=Established", "--timeout=30s", "crd", "--all")
	if got := c.must("get", "crd", "gateways.gateway.networking.k8s.io", "-o", "jsonpath={.metadata.annotations.gateway\\.networking\\.k8s\\.io/bundle-version} {.status.conditions[?(@.type==\"NamesAccepted\")].status}"); got != "v1.5.0 True" {
		t.Errorf("gateways CRD = %q", got)
	}
	c.must("apply", "-f", writeFile(t, filepath.Join(dir, "gw.yaml"), gatewayObjects, 0o644))
	rows := wantHeader(t, c.must("get", "gatewayclass"), "NAME", "CONTROLLER", "ACCEPTED", "AGE")
	if len(rows) != 1 || rows[0][0] != "svcnet" || rows[0][1] != "svcnet.io/gateway" {
		t.Errorf("gatewayclasses = %v", rows)
	}
	// The schema's defaults are filled (a listener's allowedRoutes defaults to the same namespace).
	if got := c.must("get", "gateway", "web", "-o", "jsonpath={.spec.listeners[0].allowedRoutes.namespaces.from}"); got != "Same" {
		t.Errorf("defaulted allowedRoutes.namespaces.from = %q, want Same", got)
	}
	if got := c.must("get", "httproute", "web", "-o", "jsonpath={.spec.rules[0].backendRefs[0].name} {.spec.rules[0].matches[0].path.type}"); got != "web PathPrefix" {
		t.Errorf("httproute = %q", got)
	}
	// CEL rules of the CRDs are enforced: a PathPrefix must start with a slash.
	bad := strings.Replace(gatewayObjects[strings.Index(gatewayObjects, "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute"):], "value: /", "value: foo", 1)
	bad = strings.Replace(bad, "name: web\n  namespace", "name: bad\n  namespace", 1)
	if errOut := c.fails("apply", "-f", writeFile(t, filepath.Join(dir, "bad.yaml"), bad, 0o644)); !strings.Contains(errOut, "spec.rules[0].matches[0].path") {
		t.Errorf("an invalid path was not refused naming it:\n%s", errOut)
	}
	if out := c.must("explain", "gateway.spec.listeners.port"); !strings.Contains(out, "FIELD: port") || !strings.Contains(out, "GROUP:      gateway.networking.k8s.io") {
		t.Errorf("kubectl explain:\n%s", out)
	}
}

// TestCustomResources checks a CRD of our own end to end: validation naming
// the field, defaults, printer columns, short names, status and scale
// subresources, explain, deletion of the CRD with its objects.
func TestCustomResources(t *testing.T) {
	dir := t.TempDir()
	c := startCluster(t, dir, freePort(t))
	defer c.stop()
	c.must("apply", "-f", writeFile(t, filepath.Join(dir, "crd.yaml"), widgetCRD, 0o644))
	c.must("wait", "--for=condition=Established", "--timeout=30s", "crd/widgets.example.com")

	errOut := c.fails("apply", "-f", writeFile(t, filepath.Join(dir, "bad.yaml"),
		"apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: a}\nspec: {size: 3}\n", 0o644))
	if !strings.Contains(errOut, `spec.size: Invalid value: "integer": spec.size in body must be of type string`) {
		t.Errorf("wrong type not refused naming the field:\n%s", errOut)
	}
	errOut = c.fails("apply", "-f", writeFile(t, filepath.Join(dir, "unknown.yaml"),
		"apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: a}\nspec: {size: small, colour: red}\n", 0o644))
	if !strings.Contains(errOut, `unknown field "spec.colour"`) {
		t.Errorf("unknown field not refused under kubectl's strict validation:\n%s", errOut)
	}
	c.must("apply", "-f", writeFile(t, filepath.Join(dir, "a.yaml"),
		"apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: a}\nspec: {size: small}\n", 0o644))
	if got := c.must("get", "wd", "a", "-o", "jsonpath={.spec.replicas} {.metadata.generation}"); got != "1 1" {
		t.Errorf("defaulted replicas and generation = %q, want \"1 1\"", got)
	}
	rows := wantHeader(t, c.must("get", "widgets"), "NAME", "SIZE", "REPLICAS") // no Age unless a column says so, as Kubernetes
	if len(rows) != 1 || rows[0][1] != "small" || rows[0][2] != "1" {
		t.Errorf("rows = %v", rows)
	}
	c.must("scale", "widget/a", "--replicas=3")
	if got := c.must("get", "widget", "a", "-o", "jsonpath={.spec.replicas} {.metadata.generation}"); got != "3 2" {
		t.Errorf("after scale: %q, want \"3 2\"", got)
	}
	c.must("patch", "widget", "a", "--subresource=status", "--type=merge", "-p", `{"status":{"replicas":3},"spec":{"size":"large"}}`)
	if got := c.must("get", "widget", "a", "-o", "jsonpath={.status.replicas} {.spec.size}"); got != "3 small" {
		t.Errorf("after a status patch: %q, want \"3 small\" (status written, spec kept)", got)
	}
	c.must("patch", "widget", "a", "--type=json", "-p", `[{"op":"replace","path":"/spec/size","value":"large"}]`)
	if got := c.must("get", "widget", "a", "-o", "jsonpath={.spec.size} {.status.replicas}"); got != "large 3" {
		t.Errorf("after a JSON patch: %q, want \"large 3\"", got)
	}
	if out := c.must("explain", "widget.spec.size"); !strings.Contains(out, "How big the widget is.") {
		t.Errorf("kubectl explain:\n%s", out)
	}
	if out := c.must("api-resources", "--api-group=example.com"); !strings.Contains(out, "widgets") || !strings.Contains(out, "wd") {
		t.Errorf("api-resources:\n%s", out)
	}

	c.must("delete", "crd", "widgets.example.com", "--timeout=30s")
	// kubectl's discovery cache may still know the resource; then the server answers 404.
	if errOut := c.fails("get", "widgets"); !strings.Contains(errOut, `the server doesn't have a resource type "widgets"`) &&
		!strings.Contains(errOut, "the server could not find the requested resource") {
		t.Errorf("widgets still served after the CRD was deleted:\n%s", errOut)
	}
	// Recreated, the CRD starts empty: its objects went with it.
	c.must("apply", "-f", filepath.Join(dir, "crd.yaml"))
	c.must("wait", "--for=condition=Established", "--timeout=30s", "crd/widgets.example.com")
	if out := c.must("get", "widgets", "-A", "-o", "name"); strings.TrimSpace(out) != "" {
		t.Errorf("objects outlived their CRD: %s", out)
	}
}

// TestCustomResourceInformerRestart runs a client-go dynamic informer on a
// custom resource across a restart of the server.
func TestCustomResourceInformerRestart(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	c := startCluster(t, dir, port)
	c.must("apply", "-f", writeFile(t, filepath.Join(dir, "crd.yaml"), widgetCRD, 0o644))
	c.must("wait", "--for=condition=Established", "--timeout=30s", "crd/widgets.example.com")

	cfg, err := clientcmd.BuildConfigFromFlags("", c.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	client := dynamic.NewForConfigOrDie(cfg)
	gvr := schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "widgets"}
	var mu sync.Mutex
	seen := map[string]bool{}
	factory := dynamicinformer.NewDynamicSharedInformerFactory(client, 0)
	inf := factory.ForResource(gvr).Informer()
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: func(obj any) {
		mu.Lock()
		seen[obj.(*unstructured.Unstructured).GetName()] = true
		mu.Unlock()
	}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	factory.Start(ctx.Done())
	create := func(name string) {
		t.Helper()
		c.must("apply", "-f", writeFile(t, filepath.Join(dir, name+".yaml"),
			"apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: "+name+", namespace: default}\nspec: {size: small}\n", 0o644))
	}
	waitSeen := func(name string) {
		t.Helper()
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 60*time.Second, true, func(context.Context) (bool, error) {
			mu.Lock()
			defer mu.Unlock()
			return seen[name], nil
		})
		if err != nil {
			t.Fatalf("the informer did not see %s", name)
		}
	}
	create("before")
	waitSeen("before")
	c.stop()
	c = startCluster(t, dir, port)
	defer c.stop()
	create("after")
	waitSeen("after")
	if _, err := client.Resource(gvr).Namespace("default").Get(ctx, "after", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
}
