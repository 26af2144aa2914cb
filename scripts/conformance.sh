#!/usr/bin/env bash
# Kubernetes' own sig-network e2e tests (v1.34.4) against svcnet (issue 14).
#
# Starts `svcnet up --container-runtime cri` in a fresh network namespace that has only
# loopback and a node address on a veth pair with no peer outside (no route out), with the
# offline images the tests run (scripts/test-images.sh --conformance), waits for the node to
# be Ready, runs the trimmed e2e binary of ../shared/conformance/build.sh inside the same
# namespace, prints the failed tests with their first error line and
# `N passed, N failed, N skipped`, removes everything it made (also on Ctrl-C or failure:
# svcnet stopped, `svcnet agent --cleanup`, namespace deleted) and exits non-zero when a
# test failed.
#
# Usage (root): scripts/conformance.sh [--all|--ci|--apps] [--timeout 60m] [--focus RE] [-- E2E-FLAGS...]
#   default  every [sig-network] [Conformance] test (45 in v1.34.4)
#   --ci     the CI subset (scripts/test.sh): the conformance tests less the slowest and most
#            redundant ones (ci_skips below), about 5 minutes on 2 cores; never builds the
#            e2e binary: without it, prints a SKIP line naming the build command and exits 0
#   --all    every [sig-network] test that needs no cloud provider, feature gate or special
#            hardware (the skip list below says why each group is left out)
#   --apps   every [sig-apps] [Conformance] test the binary holds (60 in v1.34.4: the
#            Deployment, ReplicaSet, RC, StatefulSet, DaemonSet, Job, CronJob, PDB and
#            ControllerRevision controllers), less apps_skips below
#   --focus  another ginkgo focus regexp (e.g. one test while fixing it)
# Environment: SVCNET_E2E_BIN (default /var/cache/svcnet-conformance/e2e-network.test, built
# with ../shared/conformance/build.sh when missing), SVCNET_CONFORMANCE_IMAGES (default
# /var/cache/svcnet-images/conformance), KEEP=1 keeps the temp dir (logs, report).
set -euo pipefail
{ # read whole before it runs: editing the file during a run does not change the run
cd "$(dirname "$0")/.."
repo=$PWD

mode=conformance timeout=60m focus="" extra=()
while [ $# -gt 0 ]; do
  case $1 in
    --all) mode=all ;;
    --ci) mode=ci ;;
    --apps) mode=apps ;;
    --timeout) timeout=$2; shift ;;
    --focus) focus=$2; shift ;;
    --) shift; extra=("$@"); break ;;
    *) echo "usage: scripts/conformance.sh [--all|--ci|--apps] [--timeout 60m] [--focus RE] [-- E2E-FLAGS...]" >&2; exit 2 ;;
  esac
  shift
done

# --all: every [sig-network] test, less these (a regexp each, joined for --ginkgo.skip):
skips=(
  '\[Feature:'        # needs a cloud load balancer, a NetworkPolicy implementation, IPv6 or
                      # dual-stack, SCTP, an Ingress controller, or a perf/special setup
  '\[FeatureGate:'    # behind a Kubernetes feature gate (alpha, or beta and off somewhere)
  '\[Alpha\]'         # alpha API or behaviour, off by default in Kubernetes
  '\[Provider:'       # one cloud provider only (e.g. [Provider:GCE])
  '\[Disruptive\]'    # restarts or breaks nodes or the control plane
  '\[Flaky\]'         # marked flaky upstream
  'SCTP'              # SCTP: needs the kernel's sctp module (special hardware/kernel setup)
  'Forward PTR lookup' # asks the upstream 8.8.8.8 for a PTR record: needs the Internet, and
                      # the test namespace has no route out
)
# --ci: the [Conformance] tests less these, which other tests of the subset cover (what
# is left: Services incl. session affinity for ClusterIP and NodePort, NodePort, DNS,
# EndpointSlice and mirroring, HostPort, pod networking over http, Proxy, the APIs):
ci_skips=(
  'same port and different protocols'   # 27 s; multiport and UDP paths are covered elsewhere
  'communication: udp'                  # 2 x 15 s; the same pods and checks as the http ones
  'change the type from'                # 4 tests; ExternalName DNS and NodePort have their own
)
# --apps: the [sig-apps] [Conformance] tests, less these:
apps_skips=(
  'rollback without unnecessary restarts' # DaemonSet: fails at once with "needs a cluster with
                      # at least 2 nodes"; this script runs one node (rollbacks are checked by
                      # the StatefulSet rollback test and internal/controller unit tests)
  'exceeded quota'    # RC ReplicaFailure condition from a ResourceQuota: svcnet serves no
                      # ResourceQuota (no quota admission)
)
network_focus='\[sig-network\]'
case $mode in
  conformance) ginkgo_focus='\[sig-network\].*\[Conformance\]'; ginkgo_skip='' ;;
  ci) ginkgo_focus='\[sig-network\].*\[Conformance\]'; ginkgo_skip=$(IFS='|'; echo "${ci_skips[*]}") ;;
  all) ginkgo_focus=$network_focus; ginkgo_skip=$(IFS='|'; echo "${skips[*]}") ;;
  apps) ginkgo_focus='\[sig-apps\].*\[Conformance\]'; ginkgo_skip=$(IFS='|'; echo "${apps_skips[*]}") ;;
esac
[ -n "$focus" ] && ginkgo_focus=$focus

if [ "$(id -u)" -ne 0 ]; then
  echo "conformance: run as root (network namespace, containerd)" >&2
  exit 1
fi
e2e=${SVCNET_E2E_BIN:-/var/cache/svcnet-conformance/e2e-network.test}
if [ ! -x "$e2e" ] && [ "$mode" = ci ]; then
  # building it takes ~10 minutes on 2 cores: too much for CI's 30-minute budget
  echo "SKIP conformance subset: no e2e binary at $e2e; build it once (~10 min) with: sudo scripts/conformance.sh (or bash ../shared/conformance/build.sh in $(dirname "$e2e"))"
  exit 0
fi
scripts/test-deps.sh   # containerd, runc, CNI plugins, iptables, nftables, mmdebstrap
if [ ! -x "$e2e" ]; then
  build=$repo/../shared/conformance/build.sh
  [ -f "$build" ] || { echo "conformance: no $e2e and no $build to build it" >&2; exit 1; }
  echo "conformance: building the e2e binary into $(dirname "$e2e") (~10 minutes on 2 cores)"
  mkdir -p "$(dirname "$e2e")"
  (cd "$(dirname "$e2e")" && REF_BIN=$(dirname "$e2e") bash "$build")
  [ "$(basename "$e2e")" = e2e-network.test ] || mv "$(dirname "$e2e")/e2e-network.test" "$e2e"
fi
kubectl=$(command -v kubectl || true)
if [ -z "$kubectl" ]; then
  echo "conformance: building kubectl (test/tools/kubectl)"
  mkdir -p bin && (cd test/tools && go build -o ../../bin/kubectl ./kubectl) && kubectl=$repo/bin/kubectl
fi
images=${SVCNET_CONFORMANCE_IMAGES:-/var/cache/svcnet-images/conformance}
scripts/test-images.sh --conformance "$images"

work=$(mktemp -d /tmp/svcnet-conformance.XXXXXX)
ns=svcnet-conf-$$
data=$work/data
svcnet_pid="" e2e_pid=""
echo "conformance: building svcnet"
CGO_ENABLED=0 go build -o "$work/svcnet" ./cmd/svcnet
go build -o "$work/summary" ./test/conformance/summary

# (svcnet and e2e.test are started with nsenter directly, so their pids are the commands' own)
in_ns() { nsenter --net="/var/run/netns/$ns" "$@"; }

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  if [ -n "$e2e_pid" ] && kill -0 "$e2e_pid" 2>/dev/null; then
    kill -INT "$e2e_pid" 2>/dev/null
    for _ in $(seq 1 90); do kill -0 "$e2e_pid" 2>/dev/null || break; sleep 1; done
    kill -KILL "$e2e_pid" 2>/dev/null
    # interrupted: what ran so far (ginkgo writes its report on SIGINT)
    if [ -s "$work/report.json" ] && [ -x "$work/summary" ]; then
      echo "conformance: interrupted; the tests that finished:"
      "$work/summary" "$work/report.json"
    fi
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
    # the pods in svcnet's containerd, the proxy's table and route
    in_ns "$work/svcnet" agent --cleanup --root-dir "$data/agent" >"$work/cleanup.log" 2>&1 ||
      { echo "conformance: svcnet agent --cleanup failed:"; tail -5 "$work/cleanup.log"; }
    ip netns del "$ns"
  fi
  if [ "${KEEP:-0}" = 1 ]; then
    echo "conformance: kept $work (svcnet.log, e2e.log, report.json)"
  else
    rm -rf "$work"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# the node address must lie outside the service CIDR (10.96.0.0/12: the proxy rejects
# unallocated cluster IPs) and the cluster CIDR (10.244.0.0/16)
echo "conformance: network namespace $ns (loopback + node address 10.200.0.2 on a veth pair, no route out)"
ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" link add eth0 type veth peer name eth0-peer
ip -n "$ns" addr add 10.200.0.2/24 dev eth0
ip -n "$ns" link set eth0 up
ip -n "$ns" link set eth0-peer up

echo "conformance: svcnet up (cri, images from $images), log in $work/svcnet.log"
# --ingress=false: the ingress edge holds ports 80 and 443 on the node's address, which
# hostNetwork pods of the suite bind (a plain Kubernetes node has nothing there)
nsenter --net="/var/run/netns/$ns" "$work/svcnet" up --data-dir "$data" --container-runtime cri --images "$images" \
  --bind-address 0.0.0.0 --node-name conformance-node --ingress=false >"$work/svcnet.log" 2>&1 &
svcnet_pid=$!
kc=$data/kubeconfig
for i in $(seq 1 180); do
  [ -f "$kc" ] && in_ns "$kubectl" --kubeconfig "$kc" get --raw /readyz >/dev/null 2>&1 && break
  kill -0 "$svcnet_pid" 2>/dev/null || { echo "conformance: svcnet up exited:"; tail -20 "$work/svcnet.log"; exit 1; }
  [ "$i" = 180 ] && { echo "conformance: svcnet not ready in 180s"; tail -20 "$work/svcnet.log"; exit 1; }
  sleep 1
done
for i in $(seq 1 120); do
  in_ns "$kubectl" --kubeconfig "$kc" wait node --all --for=condition=Ready --timeout=5s >/dev/null 2>&1 && break
  [ "$i" = 120 ] && { echo "conformance: node not Ready"; tail -20 "$work/svcnet.log"; exit 1; }
  sleep 1
done
in_ns "$kubectl" --kubeconfig "$kc" get nodes -o wide

echo "conformance: e2e-network.test --ginkgo.focus='$ginkgo_focus'${ginkgo_skip:+ --ginkgo.skip='$ginkgo_skip'} (timeout $timeout), log in $work/e2e.log"
args=(--provider=skeleton --kubeconfig="$kc" --kubectl-path="$kubectl"
  --dns-domain=cluster.local --node-os-distro=debian --allowed-not-ready-nodes=0
  --report-dir="$work/report" --dump-logs-on-failure=false
  --ginkgo.focus="$ginkgo_focus" --ginkgo.timeout="$timeout" --ginkgo.no-color --ginkgo.v
  --ginkgo.json-report="$work/report.json" --ginkgo.poll-progress-after=5m)
[ -n "$ginkgo_skip" ] && args+=(--ginkgo.skip="$ginkgo_skip")
set +e
nsenter --net="/var/run/netns/$ns" "$e2e" "${args[@]}" "${extra[@]}" >"$work/e2e.log" 2>&1 &
e2e_pid=$!
# while it runs: each test's name as it starts and its result line as it ends
tail -n +1 -f "$work/e2e.log" --pid "$e2e_pid" 2>/dev/null | grep --line-buffered -E '^(\[sig-|• |S \[SKIPPED\]|Ran [0-9]+ of)' &
wait "$e2e_pid"
e2e_rc=$?
e2e_pid=""
set -e
sleep 1
if [ ! -s "$work/report.json" ]; then
  echo "conformance: no report (e2e exit $e2e_rc); last lines of the e2e log:"
  tail -30 "$work/e2e.log"
  exit 1
fi
"$work/summary" "$work/report.json"
exit
}
