package agnhost

import (
	"strings"
	"testing"

	mdns "github.com/miekg/dns"
)

func TestHostsCorefile(t *testing.T) {
	// the Corefile Kubernetes' DNS e2e tests give their test server
	corefile := ". {\n\thosts {\n\t\t1.1.1.1 abc.acme.local\n\t\t192.0.2.123 my.test\n\t\t2001:db8::29 foo.example.com\n\t}\n\tlog\n}\n"
	h, err := ParseCorefile(strings.NewReader(corefile))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		qtype uint16
		rcode int
		want  []string
	}{
		{"abc.acme.local.", mdns.TypeA, mdns.RcodeSuccess, []string{"abc.acme.local.\t3600\tIN\tA\t1.1.1.1"}},
		{"ABC.acme.local.", mdns.TypeA, mdns.RcodeSuccess, []string{"ABC.acme.local.\t3600\tIN\tA\t1.1.1.1"}},
		{"abc.acme.local.", mdns.TypeAAAA, mdns.RcodeSuccess, nil},
		{"foo.example.com.", mdns.TypeAAAA, mdns.RcodeSuccess, []string{"foo.example.com.\t3600\tIN\tAAAA\t2001:db8::29"}},
		{"123.2.0.192.in-addr.arpa.", mdns.TypePTR, mdns.RcodeSuccess, []string{"123.2.0.192.in-addr.arpa.\t3600\tIN\tPTR\tmy.test."}},
		{"def.acme.local.", mdns.TypeA, mdns.RcodeNameError, nil},
	} {
		req := new(mdns.Msg)
		req.SetQuestion(tc.name, tc.qtype)
		m := h.Answer(req)
		var got []string
		for _, rr := range m.Answer {
			got = append(got, rr.String())
		}
		if m.Rcode != tc.rcode || strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
			t.Errorf("%s %s: %s %q, want %s %q", tc.name, mdns.TypeToString[tc.qtype], mdns.RcodeToString[m.Rcode], got, mdns.RcodeToString[tc.rcode], tc.want)
		}
	}
	if _, err := ParseCorefile(strings.NewReader(". {\n hosts {\n notanip x.test\n }\n}\n")); err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("bad entry: %v, want an error naming line 3", err)
	}
}
