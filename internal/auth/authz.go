package auth

// Attributes describe what a request wants to do.
type Attributes struct {
	User        *User
	Verb        string // get, list, watch, create, update, patch, delete, deletecollection
	APIGroup    string
	Resource    string
	Subresource string
	Namespace   string
	Name        string
	// Path is the URL path of a non-resource request (Resource empty):
	// discovery, /version, /openapi, /metrics.
	Path string
}

var readVerbs = map[string]bool{"get": true, "list": true, "watch": true}

// AuthorizeNode is svcnet's Node authorizer, consulted before RBAC: node
// identities (system:node:NAME in system:nodes) may read (but not proxy), and
// may write only their own Node and Lease, status (and deletion) of pods bound
// to them, tokens of the service accounts of those pods (bound to the pod) —
// both checked against the stored pod by the API server — and Events. Like
// Kubernetes' Node authorizer it has no opinion on anyone else; false comes
// with the reason when it refuses a node.
func AuthorizeNode(a Attributes) (bool, string) {
	u := a.User
	node, ok := u.NodeName()
	if !ok {
		return false, ""
	}
	if a.Resource == "" {
		return false, "" // discovery and the like: RBAC's system:discovery
	}
	if a.Subresource == "proxy" { // pods/proxy, services/proxy, nodes/proxy: as Kubernetes' node authorizer
		return false, "nodes may not proxy to pods, services or nodes"
	}
	if readVerbs[a.Verb] {
		return true, ""
	}
	switch {
	case a.APIGroup == "" && a.Resource == "nodes":
		if a.Name == node || (a.Verb == "create" && a.Name == "") {
			return a.Verb != "deletecollection", "nodes may not delete collections"
		}
		return false, "a node may only write its own Node object"
	case a.APIGroup == "coordination.k8s.io" && a.Resource == "leases":
		if a.Namespace == "kube-node-lease" && (a.Name == node || (a.Verb == "create" && a.Name == "")) {
			return true, ""
		}
		return false, "a node may only write its own Lease in kube-node-lease"
	case a.APIGroup == "" && a.Resource == "pods":
		if a.Subresource == "status" && (a.Verb == "update" || a.Verb == "patch") {
			return true, "" // the API server checks spec.nodeName of the stored pod
		}
		if a.Subresource == "" && a.Verb == "delete" {
			return true, "" // likewise
		}
		if a.Subresource == "" && a.Verb == "create" {
			return true, "" // mirror pods only: the API server admits nothing else from a node
		}
		return false, "a node may only write the status of its own pods"
	case a.APIGroup == "" && a.Resource == "serviceaccounts" && a.Subresource == "token":
		// The API server checks that the token is bound to a pod on this node.
		return a.Verb == "create", "nodes may only create service account tokens"
	case a.APIGroup == "" && a.Resource == "events":
		return a.Verb == "create" || a.Verb == "update" || a.Verb == "patch", "nodes may only record events"
	}
	return false, "nodes may not write " + a.Resource
}
