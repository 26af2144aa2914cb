#!/usr/bin/env bash
# The official Gateway API conformance suite (sigs.k8s.io/gateway-api/conformance v1.5.0,
# profile GATEWAY-HTTP core: features Gateway, HTTPRoute, ReferenceGrant) against svcnet
# (issue 13).
#
# Starts `svcnet up --container-runtime cri` in a fresh network namespace that has only
# loopback and a node address (10.200.0.2) on a veth pair with no peer outside (no route
# out), with the offline images the suite's base manifests run (pause, echo-basic, coredns:
# scripts/test-images.sh), installs the Gateway API v1.5.0 standard CRDs and the
# GatewayClass `svcnet` (controllerName svcnet.io/gateway), runs the suite's test binary
# (built from test/gateway-conformance/go.mod) inside the same namespace, prints the failed
# tests and `N passed, N failed, N skipped`, removes everything it made (also on Ctrl-C or
# failure) and exits non-zero when a test failed.
#
# Usage (root): scripts/gateway-conformance.sh [--extended] [--run-test NAME] [--timeout 60m] [-- SUITE-FLAGS...]
#   --extended  also claim the extended features svcnet implements (list below)
#   --run-test  one test (e.g. HTTPRouteSimpleSameNamespace) while fixing it
# Environment: SVCNET_GW_CACHE (default /var/cache/svcnet-gateway-conformance: test binary,
# images), KEEP=1 keeps the temp dir (svcnet.log, suite.log).
set -euo pipefail
{ # read whole before it runs: editing the file during a run does not change the run
cd "$(dirname "$0")/.."
repo=$PWD

timeout=60m runtest="" extra=()
features=Gateway,HTTPRoute,ReferenceGrant
extended=HTTPRouteQueryParamMatching,HTTPRouteMethodMatching,HTTPRouteResponseHeaderModification,HTTPRoutePathRewrite,HTTPRouteHostRewrite,HTTPRoutePathRedirect,HTTPRouteSchemeRedirect,HTTPRoutePortRedirect,HTTPRoute303RedirectStatusCode,HTTPRoute307RedirectStatusCode,HTTPRoute308RedirectStatusCode,HTTPRouteRequestTimeout,HTTPRouteBackendProtocolWebSocket,HTTPRouteParentRefPort,GatewayPort8080,GatewayHTTPListenerIsolation
while [ $# -gt 0 ]; do
  case $1 in
    --extended) features=$features,$extended ;;
    --run-test) runtest=$2; shift ;;
    --timeout) timeout=$2; shift ;;
    --) shift; extra=("$@"); break ;;
    *) echo "usage: scripts/gateway-conformance.sh [--extended] [--run-test NAME] [--timeout 60m] [-- SUITE-FLAGS...]" >&2; exit 2 ;;
  esac
  shift
done

if [ "$(id -u)" -ne 0 ]; then
  echo "gateway-conformance: run as root (network namespace, containerd)" >&2
  exit 1
fi
scripts/test-deps.sh   # containerd, runc, CNI plugins, iptables, nftables, mmdebstrap
cache=${SVCNET_GW_CACHE:-/var/cache/svcnet-gateway-conformance}
images=$cache/images
mkdir -p "$cache" "$images"
echo "gateway-conformance: building the suite (test/gateway-conformance, sigs.k8s.io/gateway-api/conformance v1.5.0)"
(cd test/gateway-conformance && go test -c -o "$cache/conformance.test" sigs.k8s.io/gateway-api/conformance)
SVCNET_IMAGES=pause.tar scripts/test-images.sh "$images"
scripts/test-images.sh --gateway "$images"
kubectl=$(command -v kubectl || true)
if [ -z "$kubectl" ]; then
  echo "gateway-conformance: building kubectl (test/tools/kubectl)"
  mkdir -p bin && (cd test/tools && go build -o ../../bin/kubectl ./kubectl) && kubectl=$repo/bin/kubectl
fi

work=$(mktemp -d /tmp/svcnet-gwconf.XXXXXX)
ns=svcnet-gwconf-$$
data=$work/data
svcnet_pid="" suite_pid=""
echo "gateway-conformance: building svcnet"
CGO_ENABLED=0 go build -o "$work/svcnet" ./cmd/svcnet

in_ns() { nsenter --net="/var/run/netns/$ns" "$@"; }

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  if [ -n "$suite_pid" ] && kill -0 "$suite_pid" 2>/dev/null; then
    kill -INT "$suite_pid" 2>/dev/null
    for _ in $(seq 1 30); do kill -0 "$suite_pid" 2>/dev/null || break; sleep 1; done
    kill -KILL "$suite_pid" 2>/dev/null
  fi
  if [ -n "$svcnet_pid" ] && kill -0 "$svcnet_pid" 2>/dev/null; then
    kill -INT "$svcnet_pid"
    for _ in $(seq 1 60); do kill -0 "$svcnet_pid" 2>/dev/null || break; sleep 1; done
    kill -KILL "$svcnet_pid" 2>/dev/null
    wait "$svcnet_pid" 2>/dev/null
  fi
  # a containerd or shim left by a killed svcnet (they name files under $work)
  for pid in $(pgrep -f "$work/" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
  if [ -e "/var/run/netns/$ns" ]; then
    in_ns "$work/svcnet" agent --cleanup --root-dir "$data/agent" >"$work/cleanup.log" 2>&1 ||
      { echo "gateway-conformance: svcnet agent --cleanup failed:"; tail -5 "$work/cleanup.log"; }
    ip netns del "$ns"
  fi
  if [ "${KEEP:-0}" = 1 ]; then
    echo "gateway-conformance: kept $work (svcnet.log, suite.log)"
  else
    rm -rf "$work"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "gateway-conformance: network namespace $ns (loopback + node address 10.200.0.2 on a veth pair, no route out)"
ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" link add eth0 type veth peer name eth0-peer
ip -n "$ns" addr add 10.200.0.2/24 dev eth0
ip -n "$ns" link set eth0 up
ip -n "$ns" link set eth0-peer up

echo "gateway-conformance: svcnet up (cri, images from $images), log in $work/svcnet.log"
nsenter --net="/var/run/netns/$ns" "$work/svcnet" up --data-dir "$data" --container-runtime cri --images "$images" \
  --bind-address 0.0.0.0 --node-name gwconf-node >"$work/svcnet.log" 2>&1 &
svcnet_pid=$!
kc=$data/kubeconfig
k() { in_ns "$kubectl" --kubeconfig "$kc" "$@"; }
for i in $(seq 1 180); do
  [ -f "$kc" ] && k get --raw /readyz >/dev/null 2>&1 && break
  kill -0 "$svcnet_pid" 2>/dev/null || { echo "gateway-conformance: svcnet up exited:"; tail -20 "$work/svcnet.log"; exit 1; }
  [ "$i" = 180 ] && { echo "gateway-conformance: svcnet not ready in 180s"; tail -20 "$work/svcnet.log"; exit 1; }
  sleep 1
done
for i in $(seq 1 120); do
  k wait node --all --for=condition=Ready --timeout=5s >/dev/null 2>&1 && break
  [ "$i" = 120 ] && { echo "gateway-conformance: node not Ready"; tail -20 "$work/svcnet.log"; exit 1; }
  sleep 1
done
k get nodes -o wide

echo "gateway-conformance: Gateway API v1.5.0 standard CRDs, GatewayClass svcnet"
k apply --server-side -f test/e2e/testdata/gateway-api-v1.5.0-standard-crds.yaml >/dev/null
k wait crd --all --for=condition=Established --timeout=60s >/dev/null
k apply -f - <<'EOF'
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata:
  name: svcnet
spec:
  controllerName: svcnet.io/gateway
EOF
k wait gatewayclass/svcnet --for=condition=Accepted --timeout=60s

args=(-test.v -test.timeout="$timeout" -gateway-class=svcnet -supported-features="$features")
[ -n "$runtest" ] && args+=(-run-test="$runtest")
echo "gateway-conformance: conformance.test ${args[*]} ${extra[*]}, log in $work/suite.log"
set +e
KUBECONFIG=$kc nsenter --net="/var/run/netns/$ns" "$cache/conformance.test" "${args[@]}" "${extra[@]}" >"$work/suite.log" 2>&1 &
suite_pid=$!
# while it runs: each test's result as it ends
tail -n +1 -f "$work/suite.log" --pid "$suite_pid" 2>/dev/null | grep --line-buffered -E '^    --- (PASS|FAIL|SKIP): TestConformance/' &
wait "$suite_pid"
suite_rc=$?
suite_pid=""
set -e
sleep 1
# the suite's tests are TestConformance/NAME (subtests below them are indented further)
results=$(grep -E '^    --- (PASS|FAIL|SKIP): TestConformance/' "$work/suite.log" | sed -E 's/^    --- ([A-Z]+): TestConformance\/([^ ]+).*/\1 \2/' || true)
passed=$(grep -c '^PASS ' <<<"$results" || true)
failed=$(grep -c '^FAIL ' <<<"$results" || true)
skipped=$(grep -c '^SKIP ' <<<"$results" || true)
if [ "$failed" -gt 0 ]; then
  echo "gateway-conformance: failed:"
  grep '^FAIL ' <<<"$results" | sed 's/^FAIL /  /'
fi
if [ -z "$results" ]; then
  echo "gateway-conformance: no results (suite exit $suite_rc); last lines of the suite log:"
  tail -30 "$work/suite.log"
  exit 1
fi
echo "gateway-conformance: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ "$suite_rc" -eq 0 ]
exit
}
