#!/usr/bin/env bash
# Builds the Kubernetes v1.34.4 components the real-cluster harness (scripts/realcluster.sh) needs and
# ../shared/reference/refbuild.sh does not already build: kube-scheduler and the kubelet, from the
# k8s.io/kubernetes Go module (same staging replaces as refbuild.sh), into $REF_BIN (default
# /var/cache/svcnet-reference, outside the repo). Binaries already there are kept.
# ~10 minutes on 2 cores with a warm module cache.
set -euo pipefail
REF_BIN=${REF_BIN:-/var/cache/svcnet-reference}; mkdir -p "$REF_BIN"
want=()
# a binary counts when it reports the version it was built as (-ldflags below)
for c in kube-scheduler kubelet; do
  "$REF_BIN/$c" --version 2>/dev/null | grep -q 'v1.34.4$' || want+=("$c"); done
[ ${#want[@]} -eq 0 ] && { echo "realcluster-build: $REF_BIN has kube-scheduler and kubelet"; exit 0; }
export GOFLAGS=-mod=mod GONOSUMDB=k8s.io/kubernetes
w=$(mktemp -d); trap 'rm -rf "$w"' EXIT; cd "$w"
printf 'module example.com/k8sbuild\n\ngo 1.23\n\nrequire k8s.io/kubernetes v1.34.4\n' > go.mod
for m in api apiextensions-apiserver apimachinery apiserver cli-runtime client-go cloud-provider cluster-bootstrap code-generator component-base component-helpers controller-manager cri-api cri-client csi-translation-lib dynamic-resource-allocation endpointslice kms kube-aggregator kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics mount-utils pod-security-admission sample-apiserver externaljwt; do
  echo "replace k8s.io/$m => k8s.io/$m v0.34.4" >> go.mod; done
{ printf '//go:build tools\npackage tools\nimport (\n'
  for c in "${want[@]}"; do printf ' _ "k8s.io/kubernetes/cmd/%s"\n' "$c"; done
  printf ')\n'; } > tools.go
go mod tidy
# the version the components report (the Node's kubeletVersion; without it v0.0.0-master)
v=k8s.io/component-base/version
ver="-X $v.gitVersion=v1.34.4 -X $v.gitMajor=1 -X $v.gitMinor=34 -X $v.gitTreeState=clean"
for c in "${want[@]}"; do
  go build -ldflags "$ver" -o "$REF_BIN/$c.tmp" "k8s.io/kubernetes/cmd/$c" && mv "$REF_BIN/$c.tmp" "$REF_BIN/$c"
done
ls -la "$REF_BIN"
