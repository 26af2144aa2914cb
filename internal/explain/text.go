package explain

import (
	"fmt"
	"io"
	"strings"
)

// Text prints the explanation for a person.
func (ex *Explanation) Text(w io.Writer) {
	fmt.Fprintf(w, "Request from %s to %s\n", ex.From, ex.To)
	if len(ex.DNS) > 0 {
		fmt.Fprintf(w, "\nDNS (search %s, ndots:%d):\n", strings.Join(ex.Search, " "), ex.Ndots)
		for _, s := range ex.DNS {
			fmt.Fprintf(w, "  %-50s %s\n", s.Query, s.Rcode)
			for _, a := range s.Answer {
				fmt.Fprintf(w, "      %s\n", a)
			}
		}
	}
	if ex.Service != "" {
		fmt.Fprintf(w, "\nService %s, VIP %s\n", ex.Service, ex.VIP)
	}
	fmt.Fprintf(w, "\nOutcome: %s\n", ex.Outcome)
	for _, e := range ex.Endpoints {
		fmt.Fprintf(w, "\n  %5.1f%%  %s", e.Probability*100, e.Address)
		if e.Node != "" {
			fmt.Fprintf(w, "  on node %s", e.Node)
		}
		if e.Masquerade {
			fmt.Fprint(w, "  (source masqueraded)")
		}
		fmt.Fprintln(w)
		for _, r := range e.Rules {
			fmt.Fprintf(w, "          %s\n", r)
		}
		if e.Policy != "" {
			fmt.Fprintf(w, "          %s\n", e.Policy)
		}
	}
	if len(ex.Notes) > 0 {
		fmt.Fprintln(w, "\nWhy:")
		for _, n := range ex.Notes {
			fmt.Fprintf(w, "  - %s\n", n)
		}
	}
}
