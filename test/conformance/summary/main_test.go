package main

import (
	"strings"
	"testing"
)

// A report as Ginkgo v2 writes it: suite nodes, a pass, a failure, a run-time skip and a
// spec the focus left out.
const sample = `[{"SuiteDescription":"Kubernetes e2e suite","SpecReports":[
 {"LeafNodeType":"SynchronizedBeforeSuite","State":"passed"},
 {"ContainerHierarchyTexts":["[sig-network] DNS"],"LeafNodeType":"It","LeafNodeText":"should provide DNS for the cluster [Conformance]","State":"passed"},
 {"ContainerHierarchyTexts":["[sig-network] Services"],"LeafNodeType":"It","LeafNodeText":"should serve a basic endpoint from pods [Conformance]","State":"failed",
  "Failure":{"Message":"failed to get endpoints: timed out\nmore detail"}},
 {"ContainerHierarchyTexts":["[sig-network] Services"],"LeafNodeType":"It","LeafNodeText":"should be able to up and down services","State":"skipped",
  "Failure":{"Message":"Requires at least 2 nodes (not 1)"}},
 {"ContainerHierarchyTexts":["[sig-apps] Deployment"],"LeafNodeType":"It","LeafNodeText":"left out by the focus","State":"skipped"},
 {"ContainerHierarchyTexts":["[sig-network] Proxy"],"LeafNodeType":"It","LeafNodeText":"interrupted one","State":"timedout"}
]}]`

func TestSummarize(t *testing.T) {
	res, err := summarize(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	if res.passed != 1 || res.failed != 2 || res.skipped != 1 {
		t.Errorf("passed, failed, skipped = %d, %d, %d, want 1, 2, 1", res.passed, res.failed, res.skipped)
	}
	want := "[sig-network] Services should serve a basic endpoint from pods [Conformance]\n    failed: failed to get endpoints: timed out"
	if len(res.failures) != 2 || res.failures[0] != want || !strings.Contains(res.failures[1], "timedout: timedout") {
		t.Errorf("failures = %q", res.failures)
	}
	if _, err := summarize(strings.NewReader("not json")); err == nil {
		t.Error("a broken report is accepted")
	}
}
