#!/usr/bin/env bash
# The start command: builds svcnet and runs `svcnet up` (embedded etcd, API server
# on 127.0.0.1:6443, controllers, and a node agent that runs pods and the service proxy
# when root). Extra arguments go to `svcnet up`, e.g. --data-dir ./data.
set -euo pipefail
cd "$(dirname "$0")/.."
# As root svcnet runs pods from images: it needs the standard CNI plugins (bridge,
# host-local, loopback, portmap), containerd and runc, and iptables (portmap).
images=()
if [ "$(id -u)" -eq 0 ]; then
  need=()
  [ -x /usr/lib/cni/bridge ] || [ -x /opt/cni/bin/bridge ] || need+=(containernetworking-plugins)
  command -v containerd >/dev/null 2>&1 || need+=(containerd)
  command -v runc >/dev/null 2>&1 || [ -x /usr/sbin/runc ] || need+=(runc)
  command -v iptables >/dev/null 2>&1 || [ -x /usr/sbin/iptables ] || need+=(iptables)
  if [ "${#need[@]}" -gt 0 ]; then
    echo "up: installing ${need[*]} (pod network and container runtime)"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
  # Machines without an image registry (like ours) run the tutorials' images from
  # tarballs built here from Debian packages (a few minutes once, then cached);
  # SVCNET_OFFLINE_IMAGES=0 skips this where registries are reachable.
  if [ "${SVCNET_OFFLINE_IMAGES:-1}" != 0 ]; then
    echo "up: offline images (pause, busybox, agnhost, httpd, nginx) into /var/cache/svcnet-images/out"
    scripts/test-images.sh /var/cache/svcnet-images/out
    images=(--images /var/cache/svcnet-images/out)
  fi
fi
mkdir -p bin
go build -o bin/svcnet ./cmd/svcnet
exec bin/svcnet up "${images[@]}" "$@"
