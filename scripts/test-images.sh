#!/usr/bin/env bash
# Builds the offline test images into DIR, one docker-archive tarball per image, for
# `ctr -n k8s.io images import`: pause.tar, busybox.tar, agnhost.tar, httpd.tar, nginx.tar,
# tagged as the real images. Root filesystems come from this machine's Debian apt sources
# (mmdebstrap) and binaries built from this repo; a tarball whose inputs (package versions,
# binaries, builder) did not change is kept, so a second run takes seconds.
# With --conformance (or SVCNET_IMAGES_CONFORMANCE=1) also the images and names Kubernetes'
# e2e conformance tests run (jessie-dnsutils.tar; registry.k8s.io/e2e-test-images/... tags).
# With --gateway only the images the Gateway API conformance suite's base manifests run:
# echo-basic.tar (its echo-basic backend, built from test/gateway-conformance's pinned module)
# and coredns.tar (svcnet's /coredns), tagged as the manifests name them.
# Usage: scripts/test-images.sh [--conformance|--gateway] DIR   (as root; see test/images/README.md)
set -euo pipefail
conformance=${SVCNET_IMAGES_CONFORMANCE:-0}
gateway=0
if [ "${1:-}" = --conformance ]; then conformance=1; shift; fi
if [ "${1:-}" = --gateway ]; then gateway=1; shift; fi
out=${1:?usage: scripts/test-images.sh [--conformance|--gateway] DIR}
cache=${SVCNET_IMAGES_CACHE:-/var/cache/svcnet-images}
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "test-images: run as root (mmdebstrap extracts the packages as root)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
if ! ls /var/lib/apt/lists/*_Packages* >/dev/null 2>&1; then
  echo "test-images: apt-get update"
  apt-get update -qq
fi
need=()
command -v mmdebstrap >/dev/null 2>&1 || need+=(mmdebstrap)
command -v ldconfig >/dev/null 2>&1 || [ -x /sbin/ldconfig ] || need+=(libc-bin)
if [ "${#need[@]}" -gt 0 ]; then
  echo "test-images: installing ${need[*]}"
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
export PATH=$PATH:/usr/sbin:/sbin

# The host's Debian apt sources, handed to mmdebstrap as they are (no mirror named here).
sources=()
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
  if [ -f "$f" ] && grep -qE 'debian-archive-keyring|/debian(-security)?/?[[:space:]]' "$f"; then
    sources+=("$f")
  fi
done
if [ "${#sources[@]}" -eq 0 ]; then
  echo "test-images: no Debian apt sources found in /etc/apt" >&2
  exit 1
fi
suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")

echo "test-images: building svcnet, pause and the image builder"
mkdir -p "$cache/bin" "$out"
CGO_ENABLED=0 go build -o "$cache/bin/svcnet" ./cmd/svcnet
CGO_ENABLED=0 go build -ldflags "-s -w" -o "$cache/bin/pause" ./test/images/pause
go build -o "$cache/bin/build" ./test/images/build
gwflags=()
if [ "$gateway" = 1 ]; then
  (cd test/gateway-conformance && CGO_ENABLED=0 go build -o "$cache/bin/echo-basic" sigs.k8s.io/gateway-api/conformance/echo-basic)
  gwflags=(-gateway -echo-basic "$cache/bin/echo-basic")
fi

exec "$cache/bin/build" -out "$out" -cache "$cache" -suite "$suite" \
  -sources "$(IFS=,; echo "${sources[*]}")" \
  -svcnet "$cache/bin/svcnet" -pause "$cache/bin/pause" ${SVCNET_IMAGES:+-only "$SVCNET_IMAGES"} \
  -conformance="$([ "$conformance" = 1 ] && echo true || echo false)" "${gwflags[@]}"
