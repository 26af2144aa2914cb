#!/usr/bin/env bash
# The start command: builds svcnet and runs `svcnet up` (embedded etcd + API server
# on 127.0.0.1:6443). Extra arguments go to `svcnet up`, e.g. --data-dir ./data.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bin
go build -o bin/svcnet ./cmd/svcnet
exec bin/svcnet up "$@"
