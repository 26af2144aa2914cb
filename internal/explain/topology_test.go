package explain

import (
	"testing"

	discoveryv1 "k8s.io/api/discovery/v1"
)

// TestRequestTopology: without kernel rules to trace, the endpoints' chances
// follow the zone hints for the node's zone, with a note; a zone no endpoint
// is hinted for falls back to all of them.
func TestRequestTopology(t *testing.T) {
	for _, c := range []struct {
		zone      string
		want, not []string
	}{
		{"zone-a", []string{" 50.0%  10.244.0.2:80", " 50.0%  10.244.0.3:80", "topology hints (PreferSameZone): cluster traffic from node-a goes only to the endpoints hinted for zone zone-a"},
			[]string{"10.244.1.2"}},
		{"zone-c", []string{" 33.3%  10.244.0.2:80", " 33.3%  10.244.1.2:80"}, []string{"topology hints"}},
	} {
		t.Run(c.zone, func(t *testing.T) {
			in := input("pod/dev/client", "http://httpd-svc.default:8080")
			in.Dump, in.NodeZone = "", c.zone
			for i := range in.Slices[0].Endpoints {
				zone := map[string]string{"node-a": "zone-a", "node-b": "zone-b"}[*in.Slices[0].Endpoints[i].NodeName]
				in.Slices[0].Endpoints[i].Hints = &discoveryv1.EndpointHints{ForZones: []discoveryv1.ForZone{{Name: zone}}}
			}
			checkText(t, in, c.want, c.not)
		})
	}
}
