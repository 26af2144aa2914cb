// Command summary reads the Ginkgo JSON report of a Kubernetes e2e run (--ginkgo.json-report)
// and prints the tests that failed, each with the first line of its error, and the line
// `N passed, N failed, N skipped`. Specs the focus left out are not counted; specs that
// skipped themselves at run time (e2eskipper: no second node, wrong provider) are skipped.
// It exits 1 when a test failed or none ran. scripts/conformance.sh runs it.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

// The parts of Ginkgo v2's types.Report that the summary needs.
type report struct {
	SpecReports []specReport
}

type specReport struct {
	ContainerHierarchyTexts []string
	LeafNodeType            string
	LeafNodeText            string
	State                   string
	Failure                 struct{ Message string }
}

type result struct {
	passed, failed, skipped int
	failures                []string // "name\n    first error line"
}

// summarize counts the It specs of the reports.
func summarize(r io.Reader) (result, error) {
	var reports []report
	if err := json.NewDecoder(r).Decode(&reports); err != nil {
		return result{}, fmt.Errorf("reading the Ginkgo JSON report: %w", err)
	}
	var res result
	for _, rep := range reports {
		for _, s := range rep.SpecReports {
			if s.LeafNodeType != "It" {
				continue
			}
			name := strings.TrimSpace(strings.Join(append(append([]string(nil), s.ContainerHierarchyTexts...), s.LeafNodeText), " "))
			switch s.State {
			case "passed":
				res.passed++
			case "skipped", "pending":
				if s.Failure.Message != "" { // filtered-out specs carry no message
					res.skipped++
				}
			default: // failed, panicked, interrupted, aborted, timedout
				msg := strings.TrimSpace(s.Failure.Message)
				if i := strings.IndexByte(msg, '\n'); i >= 0 {
					msg = msg[:i]
				}
				if msg == "" {
					msg = s.State
				}
				res.failures = append(res.failures, fmt.Sprintf("%s\n    %s: %s", name, s.State, msg))
				res.failed++
			}
		}
	}
	return res, nil
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: summary REPORT.json")
		os.Exit(2)
	}
	f, err := os.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "summary:", err)
		os.Exit(2)
	}
	defer f.Close()
	res, err := summarize(f)
	if err != nil {
		fmt.Fprintln(os.Stderr, "summary:", err)
		os.Exit(2)
	}
	if len(res.failures) > 0 {
		fmt.Println("Failed tests:")
		for _, f := range res.failures {
			fmt.Println("  " + f)
		}
	}
	fmt.Printf("%d passed, %d failed, %d skipped\n", res.passed, res.failed, res.skipped)
	if res.failed > 0 || res.passed == 0 {
		os.Exit(1)
	}
}
