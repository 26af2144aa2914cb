#!/usr/bin/env bash
# A real Kubernetes v1.34.4 cluster with svcnet's agent as its only service proxy and cluster
# DNS (issue 16): etcd, kube-apiserver, kube-controller-manager and kube-scheduler in a "hub"
# network namespace holding a bridge, and 2 nodes, each a network namespace on that bridge
# (no route out of any of them) running its own containerd (CRI, offline images), the real
# kubelet (pods networked by the Debian CNI plugins: bridge + host-local over the pod CIDR the
# controller manager gives the node, portmap for hostPort) and `svcnet agent --pod-runtime off
# --cluster-dns-listen 10.96.0.10:53`. No kube-proxy, no CoreDNS (the kube-dns Service exists,
# without endpoints, as after `kubectl scale deployment coredns --replicas=0`).
#
# Usage (root): scripts/realcluster.sh [--checks] [--conformance] [--bench] [--shell]
#                                      [--focus RE] [--timeout 60m] [--services 1000,10000]
#   --checks       end-to-end checks (test/realcluster/checks.sh): every Service type reaches
#                  pods the kubelet started, DNS from those pods through the agent, NodePort
#                  and externalTrafficPolicy Local across nodes, the agent restarted under load
#   --conformance  Kubernetes' [sig-network] [Conformance] tests (e2e-network.test of
#                  ../shared/conformance/build.sh) against the cluster: `N passed, N failed`
#   --focus RE     another ginkgo focus for --conformance
#   --bench        bench/realcluster: kube-proxy vs the agent, CoreDNS vs the agent's DNS, on
#                  this cluster at each --services count (default 1000)
#   --shell        keep the cluster up and print how to reach it, until Ctrl-C
#   (no mode: --checks)
# Everything it starts is stopped and everything it made (namespaces, pods, containerd
# state, mounts, cgroups, sysctls the kubelet changed) is removed on exit, Ctrl-C or failure.
# Binaries: $REF_BIN (default /var/cache/svcnet-reference) from ../shared/reference/refbuild.sh
# and scripts/realcluster-build.sh (kube-scheduler, kubelet; built here when missing).
# Images: $SVCNET_CONFORMANCE_IMAGES (default /var/cache/svcnet-images/conformance, built by
# scripts/test-images.sh --conformance when missing). KEEP=1 keeps the work dir (all logs).
set -euo pipefail
{ # read whole before it runs
cd "$(dirname "$0")/.."
repo=$PWD

checks=0 conformance=0 bench=0 shell=0 focus='\[sig-network\].*\[Conformance\]' timeout=60m services=1000
while [ $# -gt 0 ]; do
  case $1 in
    --checks) checks=1 ;;
    --conformance) conformance=1 ;;
    --bench) bench=1 ;;
    --shell) shell=1 ;;
    --focus) focus=$2; conformance=1; shift ;;
    --timeout) timeout=$2; shift ;;
    --services) services=$2; shift ;;
    *) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
  esac
  shift
done
[ $((checks + conformance + bench + shell)) -eq 0 ] && checks=1
if [ "$(id -u)" -ne 0 ]; then
  echo "realcluster: run as root (network namespaces, containerd, kubelet)" >&2
  exit 1
fi

ref=${REF_BIN:-/var/cache/svcnet-reference}
for b in kube-apiserver kube-controller-manager etcdemb; do
  [ -x "$ref/$b" ] || { echo "realcluster: no $ref/$b: build it with REF_BIN=$ref bash ../shared/reference/refbuild.sh (~8 min)" >&2; exit 1; }
done
REF_BIN=$ref scripts/realcluster-build.sh
scripts/test-deps.sh >/dev/null   # containerd, runc, CNI plugins, iptables, nftables
for t in kubectl ctr openssl nsenter; do
  command -v "$t" >/dev/null || { echo "realcluster: $t not found" >&2; exit 1; }
done
kubectl=$(command -v kubectl)
images=${SVCNET_CONFORMANCE_IMAGES:-/var/cache/svcnet-images/conformance}
[ -f "$images/pause.tar" ] || scripts/test-images.sh --conformance "$images"
cni_bin=/usr/lib/cni
[ -x $cni_bin/bridge ] || cni_bin=/opt/cni/bin

work=$(mktemp -d /tmp/svcnet-rc.XXXXXX)
id=$$
hub=rc-hub-$id
nodes=(rc-node1 rc-node2)
declare -A netns=([rc-node1]=rc-n1-$id [rc-node2]=rc-n2-$id) nodeip=([rc-node1]=10.210.0.1 [rc-node2]=10.210.0.2)
apiserver_ip=10.210.0.254
pids=()   # every process started here, in start order
declare -A agent_pid=()
# the kubelet sets these host sysctls once at start (setupKernelTunables); they are put back
kernel_tunables=(vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops kernel/keys/root_maxkeys kernel/keys/root_maxbytes)
declare -A saved_sysctl=()
for s in "${kernel_tunables[@]}"; do saved_sysctl[$s]=$(cat /proc/sys/$s); done
restore_sysctls() { for s in "${kernel_tunables[@]}"; do echo "${saved_sysctl[$s]}" >/proc/sys/$s 2>/dev/null || true; done; }

in_ns() { local ns=$1; shift; nsenter --net="/var/run/netns/$ns" "$@"; }
log() { echo "realcluster: $*"; }
k() { in_ns "$hub" "$kubectl" --kubeconfig "$work/admin.kubeconfig" "$@"; }

stop_pid() { # pid [seconds]: SIGTERM, then SIGKILL after the grace time
  local p=$1 n=${2:-20}
  kill -0 "$p" 2>/dev/null || return 0
  kill -TERM "$p" 2>/dev/null
  for _ in $(seq 1 $((n * 5))); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.2; done
  kill -KILL "$p" 2>/dev/null; sleep 0.2
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  log "cleaning up"
  [ -n "${e2e_pid:-}" ] && { kill -INT "$e2e_pid" 2>/dev/null; stop_pid "$e2e_pid" 60; }
  for n in "${nodes[@]}"; do [ -n "${kubelet_pid[$n]:-}" ] && stop_pid "${kubelet_pid[$n]}"; done
  for n in "${nodes[@]}"; do [ -n "${agent_pid[$n]:-}" ] && stop_pid "${agent_pid[$n]}"; done
  for n in "${nodes[@]}"; do
    local d=$work/$n
    [ -e "/var/run/netns/${netns[$n]}" ] || continue
    # the pods the kubelet left in this node's containerd, and the agent's nftables table
    if [ -S "$d/containerd/containerd.sock" ]; then
      in_ns "${netns[$n]}" "$work/svcnet" agent --cleanup --root-dir "$d/agent" \
        --container-runtime-endpoint "unix://$d/containerd/containerd.sock" >>"$work/cleanup.log" 2>&1 ||
        { log "svcnet agent --cleanup on $n failed:"; tail -3 "$work/cleanup.log"; }
    fi
  done
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do stop_pid "${pids[$i]}" 10; done
  # containerd shims and anything else still naming the work dir
  for p in $(pgrep -f "$work/" 2>/dev/null); do [ "$p" != $$ ] && kill -KILL "$p" 2>/dev/null; done
  sleep 0.5
  # mounts under the work dir (kubelet volumes, containerd rootfs and shm), deepest first
  awk -v w="$work/" 'index($5, w) == 1 {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done
  # cgroups the kubelets made (depth first: a cgroup is removed once its children are)
  for n in "${nodes[@]}"; do
    for h in /sys/fs/cgroup/*/; do
      [ -d "$h$n" ] && find "$h$n" -depth -type d -exec rmdir {} \; 2>/dev/null
    done
  done
  # the pods' network namespaces containerd made (named cni-*) are gone with their sandboxes
  for n in "${nodes[@]}"; do ip netns del "${netns[$n]}" 2>/dev/null; done
  ip netns del "$hub" 2>/dev/null
  restore_sysctls
  if [ "${KEEP:-0}" = 1 ]; then log "kept $work (logs: */*.log)"; else rm -rf "$work"; fi
  exit "$rc"
}
declare -A kubelet_pid=()
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() { # message, then the last lines of the named logs
  local msg=$1; shift
  log "FAIL: $msg"
  for f in "$@"; do echo "--- $f"; tail -25 "$f"; done
  exit 1
}

log "work dir $work; building svcnet"
CGO_ENABLED=0 go build -o "$work/svcnet" ./cmd/svcnet
go build -o "$work/summary" ./test/conformance/summary
# a copy of the image tarballs: another run may rebuild them meanwhile
mkdir -p "$work/images" && cp "$images"/*.tar "$work/images/"

# ---- certificates: one CA; every component its own identity ----
pki=$work/pki; mkdir -p "$pki"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$pki/ca.key" -out "$pki/ca.crt" \
  -days 2 -subj /CN=svcnet-realcluster-ca 2>/dev/null
cert() { # name CN O [subjectAltName]
  local name=$1 cn=$2 o=$3 san=${4:-}
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$pki/$name.key" -out "$pki/$name.csr" \
    -subj "/CN=$cn${o:+/O=$o}" 2>/dev/null
  printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=%s\n%s' \
    "$([ -n "$san" ] && echo serverAuth || echo clientAuth)" "${san:+subjectAltName=$san}" >"$pki/$name.ext"
  openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial -days 2 \
    -extfile "$pki/$name.ext" -out "$pki/$name.crt" 2>/dev/null
}
kubeconfig() { # file cert-name [token]
  local f=$1 c=$2 tok=${3:-}
  { printf 'apiVersion: v1\nkind: Config\nclusters:\n- name: rc\n  cluster: {server: "https://%s:6443", certificate-authority: "%s"}\n' "$apiserver_ip" "$pki/ca.crt"
    printf 'contexts:\n- name: rc\n  context: {cluster: rc, user: u}\ncurrent-context: rc\nusers:\n- name: u\n  user:\n'
    if [ -n "$tok" ]; then printf '    token: "%s"\n' "$tok"
    else printf '    client-certificate: "%s"\n    client-key: "%s"\n' "$pki/$c.crt" "$pki/$c.key"; fi
  } >"$f"
}
cert apiserver kube-apiserver "" "IP:$apiserver_ip,IP:10.96.0.1,IP:127.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
cert admin realcluster-admin system:masters
cert apiserver-kubelet kube-apiserver-kubelet-client system:masters
cert kcm system:kube-controller-manager ""
cert scheduler system:kube-scheduler ""
for n in "${nodes[@]}"; do cert "$n" "system:node:$n" system:nodes; done
openssl ecparam -name prime256v1 -genkey -noout -out "$pki/sa.key" 2>/dev/null
openssl ec -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
kubeconfig "$work/admin.kubeconfig" admin
kubeconfig "$work/kcm.kubeconfig" kcm
kubeconfig "$work/scheduler.kubeconfig" scheduler

# ---- network: hub namespace with the bridge; one namespace per node; no route out ----
log "network namespaces $hub (bridge, $apiserver_ip: control plane) and ${netns[*]}"
ip netns add "$hub"
ip -n "$hub" link set lo up
ip -n "$hub" link add rcbr0 type bridge
ip -n "$hub" addr add "$apiserver_ip/24" dev rcbr0
ip -n "$hub" link set rcbr0 up
for n in "${nodes[@]}"; do
  ns=${netns[$n]}
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  ip -n "$hub" link add "v$n" type veth peer name eth0 netns "$ns"
  ip -n "$hub" link set "v$n" master rcbr0 up
  ip -n "$ns" addr add "${nodeip[$n]}/24" dev eth0
  ip -n "$ns" link set eth0 up
  in_ns "$ns" sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1
done
for ns in "$hub" "${netns[@]}"; do
  [ -z "$(ip -n "$ns" route show default)" ] || fail "namespace $ns has a default route"
done

# ---- control plane ----
start() { # name ns cmd...: started in namespace ns, output in $work/name.log
  local name=$1 ns=$2; shift 2
  nsenter --net="/var/run/netns/$ns" "$@" >"$work/$name.log" 2>&1 &
  pids+=($!)
}
wait_for() { # what seconds log cmd...
  local what=$1 secs=$2 logf=$3; shift 3
  for _ in $(seq 1 $((secs * 2))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  fail "$what not within ${secs}s" "$logf"
}
log "etcd, kube-apiserver, kube-controller-manager, kube-scheduler (v1.34.4, $ref)"
mkdir -p "$work/etcd"
start etcd "$hub" "$ref/etcdemb" "$work/etcd"
wait_for etcd 30 "$work/etcd.log" grep -q ready "$work/etcd.log"
start kube-apiserver "$hub" "$ref/kube-apiserver" --etcd-servers=http://127.0.0.1:2379 \
  --bind-address=0.0.0.0 --secure-port=6443 --advertise-address="$apiserver_ip" \
  --service-cluster-ip-range=10.96.0.0/12 --allow-privileged=true \
  --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" --client-ca-file="$pki/ca.crt" \
  --kubelet-client-certificate="$pki/apiserver-kubelet.crt" --kubelet-client-key="$pki/apiserver-kubelet.key" \
  --kubelet-preferred-address-types=InternalIP \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local --service-account-key-file="$pki/sa.pub" \
  --service-account-signing-key-file="$pki/sa.key" --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
  --profiling=false --v=1
wait_for kube-apiserver 90 "$work/kube-apiserver.log" k get --raw /readyz
start kube-controller-manager "$hub" "$ref/kube-controller-manager" --kubeconfig="$work/kcm.kubeconfig" \
  --authentication-kubeconfig="$work/kcm.kubeconfig" --authorization-kubeconfig="$work/kcm.kubeconfig" \
  --bind-address=127.0.0.1 --leader-elect=false --use-service-account-credentials=true \
  --service-account-private-key-file="$pki/sa.key" --root-ca-file="$pki/ca.crt" \
  --cluster-signing-cert-file="$pki/ca.crt" --cluster-signing-key-file="$pki/ca.key" \
  --allocate-node-cidrs=true --cluster-cidr=10.244.0.0/16 --node-cidr-mask-size=24 \
  --service-cluster-ip-range=10.96.0.0/12 --profiling=false --v=1
start kube-scheduler "$hub" "$ref/kube-scheduler" --kubeconfig="$work/scheduler.kubeconfig" \
  --authentication-kubeconfig="$work/scheduler.kubeconfig" --authorization-kubeconfig="$work/scheduler.kubeconfig" \
  --bind-address=127.0.0.1 --leader-elect=false --profiling=false --v=1
# the kube-dns Service of a cluster whose CoreDNS was scaled to 0: no endpoints
k apply -f - >/dev/null <<'EOF'
apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  labels: {k8s-app: kube-dns, kubernetes.io/name: CoreDNS}
spec:
  selector: {k8s-app: kube-dns}
  clusterIP: 10.96.0.10
  ports:
  - {name: dns, port: 53, protocol: UDP, targetPort: 53}
  - {name: dns-tcp, port: 53, protocol: TCP, targetPort: 53}
  - {name: metrics, port: 9153, protocol: TCP, targetPort: 9153}
EOF
# the agent's RBAC from deploy/ (its DaemonSet is not applied: the agents run as processes
# of the node namespaces), and a token of its ServiceAccount for its kubeconfig
awk 'BEGIN{RS="\n---\n"; ORS="\n---\n"} !/kind: DaemonSet/' deploy/svcnet-agent.yaml | k apply -f - >/dev/null
agent_token=$(k -n kube-system create token svcnet-agent --duration=24h)
kubeconfig "$work/agent.kubeconfig" "" "$agent_token"

# ---- nodes: containerd, kubelet, agent ----
# without CAP_SYS_RESOURCE the kernel refuses a sandbox's oom_score_adj of -998 and runc
# fails ("can't get final child's PID from pipe"): keep containerd's own, as svcnet's
# containerd does (internal/containerd)
restrict_oom=false
(( 0x$(awk '/^CapEff/ {print $2}' /proc/self/status) & (1 << 24) )) || restrict_oom=true
for n in "${nodes[@]}"; do
  ns=${netns[$n]} d=$work/$n
  mkdir -p "$d/containerd/net.d" "$d/containerd/certs.d" "$d/kubelet" "$d/pods" "$d/agent" "$d/plugins"
  # the controller manager's pod CIDR reaches the CNI config through the kubelet's
  # UpdateRuntimeConfig and containerd's conf_template, as with kubenet-style setups
  cat >"$d/containerd/cni.template" <<EOF
{"cniVersion": "1.0.0", "name": "realcluster", "plugins": [
  {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "{{.PodCIDR}}"}]], "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "$d/ipam"}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}
EOF
  cat >"$d/containerd/config.toml" <<EOF
version = 2
root = "$d/containerd/root"
state = "$d/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$d/containerd/containerd.sock"
[ttrpc]
  address = "$d/containerd/containerd.sock.ttrpc"
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.10.1"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  restrict_oom_score_adj = $restrict_oom
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$cni_bin"
    conf_dir = "$d/containerd/net.d"
    conf_template = "$d/containerd/cni.template"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$d/containerd/certs.d"
EOF
  log "$n: containerd (namespace $ns, ${nodeip[$n]})"
  start "$n/containerd" "$ns" containerd --config "$d/containerd/config.toml"
  wait_for "$n containerd" 30 "$work/$n/containerd.log" ctr --address "$d/containerd/containerd.sock" version
  for f in "$work/images"/*.tar; do
    ctr --address "$d/containerd/containerd.sock" -n k8s.io images import "$f" >/dev/null ||
      fail "$n: import $f" "$work/$n/containerd.log"
  done
  # the kubelet's cgroup root must exist in every hierarchy (cgroupfs driver; v1 here)
  for h in /sys/fs/cgroup/*/; do
    [ -d "$h" ] || continue
    mkdir -p "$h$n"
    if [ -f "$h/cpuset.cpus" ]; then
      cat "$h/cpuset.cpus" >"$h$n/cpuset.cpus"; cat "$h/cpuset.mems" >"$h$n/cpuset.mems"
    fi
  done
  printf 'nameserver 127.0.0.1\n' >"$d/resolv.conf"   # the pods' upstream: nothing (no route out)
  cat >"$d/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: ${nodeip[$n]}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: "$pki/ca.crt"}
authorization: {mode: AlwaysAllow}
containerRuntimeEndpoint: unix://$d/containerd/containerd.sock
cgroupDriver: cgroupfs
cgroupRoot: /$n
failCgroupV1: false
failSwapOn: false
clusterDNS: [10.96.0.10]
clusterDomain: cluster.local
resolvConf: "$d/resolv.conf"
podLogsDir: "$d/pods"
volumePluginDir: "$d/plugins"
# the disk is shared and fuller than the defaults allow (other jobs' files come and go: a
# run at 1% evicted every pod when free space dipped to 650 MB); images are offline: never collected
evictionHard: {memory.available: 100Mi, nodefs.available: 200Mi, imagefs.available: 200Mi, nodefs.inodesFree: 1%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
maxPods: 110
EOF
  kubeconfig "$d/kubelet.kubeconfig" "$n"
  log "$n: kubelet"
  nsenter --net="/var/run/netns/$ns" "$ref/kubelet" --config="$d/kubelet.yaml" --kubeconfig="$d/kubelet.kubeconfig" \
    --root-dir="$d/kubelet" --cert-dir="$d/kubelet/pki" --hostname-override="$n" --node-ip="${nodeip[$n]}" --v=1 \
    >"$work/$n/kubelet.log" 2>&1 &
  kubelet_pid[$n]=$!
done
has_pod_cidr() { [ -n "$(k get node "$1" -o jsonpath='{.spec.podCIDR}' 2>/dev/null)" ]; }
for n in "${nodes[@]}"; do
  wait_for "node $n registered with a pod CIDR" 90 "$work/$n/kubelet.log" has_pod_cidr "$n"
done
restore_sysctls
# routes to each node's pods: from the hub (API server -> pods: proxy, webhooks) and
# between nodes (host-gw), as a cloud's route controller or a simple CNI would
declare -A podcidr=()
for n in "${nodes[@]}"; do podcidr[$n]=$(k get node "$n" -o jsonpath='{.spec.podCIDR}'); done
for n in "${nodes[@]}"; do
  ip -n "$hub" route add "${podcidr[$n]}" via "${nodeip[$n]}"
  for o in "${nodes[@]}"; do [ "$o" = "$n" ] || ip -n "${netns[$n]}" route add "${podcidr[$o]}" via "${nodeip[$o]}"; done
done

start_agent() { # node: svcnet agent as the node's proxy and DNS
  local n=$1
  nsenter --net="/var/run/netns/${netns[$n]}" "$work/svcnet" agent --kubeconfig "$work/agent.kubeconfig" \
    --hostname-override "$n" --pod-runtime off --proxy-mode nftables --cluster-cidr 10.244.0.0/16 \
    --service-cluster-ip-range 10.96.0.0/12 --cluster-dns-listen 10.96.0.10:53 --dns-resolv-conf "" \
    --metrics-bind-address 0.0.0.0:10249 --healthz-bind-address 0.0.0.0:10256 --root-dir "$work/$n/agent" \
    --cleanup-kube-proxy >>"$work/$n/agent.log" 2>&1 &
  agent_pid[$n]=$!
}
for n in "${nodes[@]}"; do
  log "$n: svcnet agent (pod CIDR ${podcidr[$n]})"
  start_agent "$n"
done
for n in "${nodes[@]}"; do
  wait_for "agent on $n healthy" 60 "$work/$n/agent.log" in_ns "${netns[$n]}" curl -sf "http://127.0.0.1:10256/healthz"
done
wait_for "nodes Ready" 120 "$work/rc-node1/kubelet.log" k wait node --all --for=condition=Ready --timeout=2s
k get nodes -o wide

export RC_WORK=$work RC_HUB=$hub RC_KUBECTL=$kubectl RC_SVCNET=$work/svcnet
export RC_NODES="${nodes[*]}" RC_NETNS="${netns[rc-node1]} ${netns[rc-node2]}" RC_NODEIPS="${nodeip[rc-node1]} ${nodeip[rc-node2]}"
rc=0
if [ "$checks" = 1 ]; then
  # the check restarts an agent under load: it calls back through this hook
  restart_agent() {
    local n=$1
    stop_pid "${agent_pid[$n]}"
    start_agent "$n"
    wait_for "agent on $n healthy after restart" 60 "$work/$n/agent.log" in_ns "${netns[$n]}" curl -sf "http://127.0.0.1:10256/healthz"
  }
  . test/realcluster/checks.sh || rc=1
fi
if [ "$conformance" = 1 ]; then
  log "e2e-network.test --ginkgo.focus='$focus' (timeout $timeout), log in $work/e2e.log"
  e2e=${SVCNET_E2E_BIN:-/var/cache/svcnet-conformance/e2e-network.test}
  [ -x "$e2e" ] || fail "no $e2e: build it with REF_BIN=$(dirname "$e2e") bash ../shared/conformance/build.sh (~10 min)"
  set +e
  in_ns "$hub" "$e2e" --provider=skeleton --kubeconfig="$work/admin.kubeconfig" --kubectl-path="$kubectl" \
    --dns-domain=cluster.local --node-os-distro=debian --allowed-not-ready-nodes=0 \
    --report-dir="$work/report" --dump-logs-on-failure=false \
    --ginkgo.focus="$focus" --ginkgo.timeout="$timeout" --ginkgo.no-color --ginkgo.v \
    --ginkgo.json-report="$work/report.json" --ginkgo.poll-progress-after=5m >"$work/e2e.log" 2>&1 &
  e2e_pid=$!
  tail -n +1 -f "$work/e2e.log" --pid "$e2e_pid" 2>/dev/null | grep --line-buffered -E '^(\[sig-|• |Ran [0-9]+ of)' &
  wait "$e2e_pid"
  e2e_pid=""
  set -e
  sleep 1
  if [ -s "$work/report.json" ]; then "$work/summary" "$work/report.json" || rc=1
  else log "no conformance report; last lines:"; tail -30 "$work/e2e.log"; rc=1; fi
fi
if [ "$bench" = 1 ]; then
  # kube-proxy takes rc-node1, a fresh agent rc-node2: the running agents stop and their
  # rules go; they are started again afterwards (--cleanup-kube-proxy removes its table)
  go build -o "$work/bench" ./bench/realcluster
  for n in "${nodes[@]}"; do
    stop_pid "${agent_pid[$n]}"
    in_ns "${netns[$n]}" "$work/svcnet" agent --cleanup --root-dir "$work/$n/agent" >>"$work/cleanup.log" 2>&1
  done
  for s in ${services//,/ }; do
    in_ns "$hub" "$work/bench" -services "$s" -kubeconfig "$work/admin.kubeconfig" -agent-kubeconfig "$work/agent.kubeconfig" \
      -proxy-netns "${netns[rc-node1]}" -agent-netns "${netns[rc-node2]}" -svcnet "$work/svcnet" -ref "$ref" \
      -work "$work" || rc=1
    # the bench deletes its namespace: wait until it is gone before the next size
    k wait --for=delete namespace/bench --timeout=600s >/dev/null 2>&1 || true
  done
  for n in "${nodes[@]}"; do start_agent "$n"; done
fi
if [ "$shell" = 1 ]; then
  log "up. From the hub namespace: nsenter --net=/var/run/netns/$hub kubectl --kubeconfig $work/admin.kubeconfig get nodes"
  log "a node: nsenter --net=/var/run/netns/${netns[rc-node1]} bash; logs in $work; Ctrl-C stops and removes everything"
  while kill -0 "${kubelet_pid[rc-node1]}" 2>/dev/null; do sleep 2; done
fi
exit "$rc"
}
