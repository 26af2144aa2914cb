//go:build tools

// Package tools pins the Gateway API conformance suite and its echo-basic backend
// (built by scripts/gateway-conformance.sh: `go test -c sigs.k8s.io/gateway-api/conformance`
// and `go build sigs.k8s.io/gateway-api/conformance/echo-basic`).
package tools

import (
	_ "sigs.k8s.io/gateway-api/conformance"
	_ "sigs.k8s.io/gateway-api/conformance/echo-basic"
)
