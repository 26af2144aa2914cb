#!/usr/bin/env bash
# The start command: builds svcnet and runs `svcnet up` (embedded etcd, API server
# on 127.0.0.1:6443, controllers, and a node agent that runs pods and the service proxy
# when root). Extra arguments go to `svcnet up`, e.g. --data-dir ./data.
set -euo pipefail
cd "$(dirname "$0")/.."
# As root svcnet runs pods: it needs the standard CNI plugins (bridge, host-local, loopback).
if [ "$(id -u)" -eq 0 ] && [ ! -x /usr/lib/cni/bridge ] && [ ! -x /opt/cni/bin/bridge ]; then
  echo "up: installing containernetworking-plugins (CNI plugins for the pod network)"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq containernetworking-plugins >/dev/null
fi
mkdir -p bin
go build -o bin/svcnet ./cmd/svcnet
exec bin/svcnet up "$@"
