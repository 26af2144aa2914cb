# End-to-end checks of svcnet's agent as the only service proxy and DNS of a real Kubernetes
# cluster: sourced by scripts/realcluster.sh --checks once both nodes are Ready, with its
# helpers (k = kubectl in the hub namespace, in_ns, restart_agent, log) and variables (work,
# hub, nodes, netns, nodeip). Pods are started by the real kubelets (agnhost image: svcnet's
# agnhost, with curl and dig). Prints one line per check and `realcluster checks: N passed,
# N failed`; returns non-zero when one failed.
#
# What it checks, each from pods the kubelet started on both nodes and from outside the
# nodes (the hub namespace, where the API server runs):
#   ClusterIP, NodePort, LoadBalancer (status ingress IP), externalIPs, ExternalName and
#   headless Services; DNS A/SRV/PTR/CNAME/NXDOMAIN through the agent on 10.96.0.10;
#   NodePort on both nodes reaching pods of both nodes; externalTrafficPolicy Local: only the
#   node with the endpoint answers, with the client's source IP, and the health check node
#   port says so; the agent restarted on both nodes during a bounded request loop (new
#   connections to a cluster IP and DNS queries): counts printed, none may fail.

rc_pass=0 rc_fail=0
check() { # name, then a command that must succeed
  local name=$1; shift
  local out
  if out=$("$@" 2>&1); then
    rc_pass=$((rc_pass + 1)); echo "  ok   $name"
  else
    rc_fail=$((rc_fail + 1)); echo "  FAIL $name: $(echo "$out" | tail -3 | tr '\n' ' ')"
  fi
}
# in_pod pod cmd: a shell command in the pod, bounded
in_pod() { local p=$1; shift; timeout 120 nsenter --net="/var/run/netns/$hub" "$kubectl" --kubeconfig "$work/admin.kubeconfig" exec "$p" -- sh -c "$*"; }
# equal want cmd...: the command's output (trimmed) is want
equal() { local want=$1; shift; local got; got=$("$@") || return 1; got=$(echo "$got" | tr -s ' \n' ' ' | sed 's/ $//')
  [ "$got" = "$want" ] || { echo "got '$got', want '$want'"; return 1; }; }

log "checks: workloads (kubelet + containerd on both nodes)"
k apply -f - >/dev/null <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      affinity:
        podAntiAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
          - {labelSelector: {matchLabels: {app: web}}, topologyKey: kubernetes.io/hostname}
      containers:
      - name: web
        image: registry.k8s.io/e2e-test-images/agnhost:2.56
        args: [netexec, --http-port=8080, --udp-port=8081]
        ports: [{name: http, containerPort: 8080}]
        readinessProbe: {httpGet: {path: /healthz, port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Pod
metadata: {name: solo, labels: {app: solo}}
spec:
  nodeName: rc-node2
  containers:
  - name: web
    image: registry.k8s.io/e2e-test-images/agnhost:2.56
    args: [netexec, --http-port=8080]
    readinessProbe: {httpGet: {path: /healthz, port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Pod
metadata: {name: client1}
spec:
  nodeName: rc-node1
  containers: [{name: c, image: registry.k8s.io/e2e-test-images/agnhost:2.56, args: [pause]}]
---
apiVersion: v1
kind: Pod
metadata: {name: client2}
spec:
  nodeName: rc-node2
  containers: [{name: c, image: registry.k8s.io/e2e-test-images/agnhost:2.56, args: [pause]}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}, {name: udp, port: 81, targetPort: 8081, protocol: UDP}]
---
apiVersion: v1
kind: Service
metadata: {name: web-np}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080, nodePort: 30080}]
---
apiVersion: v1
kind: Service
metadata: {name: web-lb}
spec:
  type: LoadBalancer
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: web-ext}
spec:
  selector: {app: web}
  externalIPs: [10.210.0.200]
  ports: [{port: 8000, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: web-headless}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{port: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: alias}
spec:
  type: ExternalName
  externalName: web.default.svc.cluster.local
---
apiVersion: v1
kind: Service
metadata: {name: solo-local}
spec:
  type: LoadBalancer # a healthCheckNodePort comes with LoadBalancer + Local only
  externalTrafficPolicy: Local
  selector: {app: solo}
  ports: [{port: 80, targetPort: 8080, nodePort: 30081}]
EOF
# no load balancer controller here: give web-lb an address as one would
for s in web-lb:10.210.0.201 solo-local:10.210.0.202; do
  k patch service "${s%%:*}" --subresource=status --type=merge -p '{"status":{"loadBalancer":{"ingress":[{"ip":"'"${s#*:}"'"}]}}}' >/dev/null
done
if ! k wait --for=condition=Ready pod --all --timeout=180s >/dev/null; then
  k get pods -o wide; k get events | tail -20
  return 1
fi
k get pods -o wide
declare -A pod_of=() ip_of=()
for n in "${nodes[@]}"; do
  pod_of[$n]=$(k get pods -l app=web -o jsonpath="{.items[?(@.spec.nodeName=='$n')].metadata.name}")
  ip_of[$n]=$(k get pods -l app=web -o jsonpath="{.items[?(@.spec.nodeName=='$n')].status.podIP}")
done
cip=$(k get svc web -o jsonpath='{.spec.clusterIP}')
lbip=10.210.0.201
hc=$(k get svc solo-local -o jsonpath='{.spec.healthCheckNodePort}')
solo_ip=$(k get pod solo -o jsonpath='{.status.podIP}')

# hostnames pod url [tries]: the distinct backends that answered /hostname, sorted
hostnames() { in_pod "$1" "for i in \$(seq 1 ${3:-30}); do curl -s -m 2 $2/hostname; echo; done | sort -u | grep ."; }
both="${pod_of[rc-node1]} ${pod_of[rc-node2]}"
both=$(echo $both | tr ' ' '\n' | sort | tr '\n' ' ' | sed 's/ $//')

log "checks: every Service type from pods of both nodes"
for c in client1 client2; do
  check "$c: ClusterIP $cip:80 reaches the pods of both nodes" equal "$both" hostnames $c "http://$cip:80"
  check "$c: ClusterIP by name web.default reaches both" equal "$both" hostnames $c "http://web.default"
  check "$c: UDP cluster IP $cip:81 reaches both" equal "$both" \
    in_pod $c "for i in \$(seq 1 30); do echo hostname | nc -u -w 1 $cip 81; echo; done | sort -u | grep ."
  check "$c: NodePort ${nodeip[rc-node1]}:30080" equal "$both" hostnames $c "http://${nodeip[rc-node1]}:30080"
  check "$c: NodePort ${nodeip[rc-node2]}:30080" equal "$both" hostnames $c "http://${nodeip[rc-node2]}:30080"
  check "$c: LoadBalancer $lbip:80" equal "$both" hostnames $c "http://$lbip:80"
  check "$c: externalIP 10.210.0.200:8000" equal "$both" hostnames $c "http://10.210.0.200:8000"
  check "$c: kubernetes Service (https://kubernetes.default.svc/readyz)" equal 200 \
    in_pod $c "curl -sk -m 5 -o /dev/null -w '%{http_code}' https://kubernetes.default.svc/readyz"
done

log "checks: DNS from the pods through the agent (10.96.0.10)"
hl_ips=$(echo "${ip_of[rc-node1]} ${ip_of[rc-node2]}" | tr ' ' '\n' | sort | tr '\n' ' ' | sed 's/ $//')
rev=$(echo "$cip" | awk -F. '{print $4"."$3"."$2"."$1}')
for c in client1 client2; do
  check "$c: resolv.conf names 10.96.0.10" in_pod $c "grep -q '^nameserver 10.96.0.10' /etc/resolv.conf"
  check "$c: A web.default.svc.cluster.local" equal "$cip" in_pod $c "dig +short +time=2 web.default.svc.cluster.local"
  check "$c: search path: getent hosts web" equal "$cip web.default.svc.cluster.local" in_pod $c "getent hosts web"
  check "$c: headless A = both pod IPs" equal "$hl_ips" in_pod $c "dig +short +time=2 web-headless.default.svc.cluster.local | sort"
  check "$c: SRV _http._tcp.web" equal "0 100 80 web.default.svc.cluster.local." \
    in_pod $c "dig +short +time=2 SRV _http._tcp.web.default.svc.cluster.local"
  check "$c: PTR of the cluster IP" equal "web.default.svc.cluster.local." in_pod $c "dig +short +time=2 -x $cip"
  check "$c: ExternalName CNAME" equal "web.default.svc.cluster.local. $cip" \
    in_pod $c "dig +short +time=2 alias.default.svc.cluster.local"
  check "$c: NXDOMAIN for a missing Service" equal NXDOMAIN \
    in_pod $c "dig +time=2 nosuch.default.svc.cluster.local | sed -n 's/.*status: \\([A-Z]*\\),.*/\\1/p'"
  check "$c: kubernetes.default" equal "10.96.0.1" in_pod $c "dig +short +time=2 kubernetes.default.svc.cluster.local"
done

log "checks: NodePort and externalTrafficPolicy Local across nodes, from outside the nodes (hub $apiserver_ip)"
from_hub() { in_ns "$hub" curl -s -m 3 "$@"; }
for n in "${nodes[@]}"; do
  check "hub -> NodePort ${nodeip[$n]}:30080 reaches the pods of both nodes" equal "$both" \
    sh -c "for i in \$(seq 1 30); do nsenter --net=/var/run/netns/$hub curl -s -m 2 http://${nodeip[$n]}:30080/hostname; echo; done | sort -u | grep ."
done
check "Local: rc-node2 (has the endpoint) answers with the client's source IP" equal "$apiserver_ip" \
  sh -c "nsenter --net=/var/run/netns/$hub curl -s -m 3 http://${nodeip[rc-node2]}:30081/clientip | cut -d: -f1"
check "Local: rc-node1 (no endpoint) does not forward" sh -c "! nsenter --net=/var/run/netns/$hub curl -s -m 2 -o /dev/null http://${nodeip[rc-node1]}:30081/"
check "Local: health check node port $hc on rc-node2 = 200, 1 local endpoint" equal 200 \
  sh -c "nsenter --net=/var/run/netns/$hub curl -s -m 3 -o /dev/null -w '%{http_code}' http://${nodeip[rc-node2]}:$hc/"
check "Local: health check node port $hc on rc-node1 = 503" equal 503 \
  sh -c "nsenter --net=/var/run/netns/$hub curl -s -m 3 -o /dev/null -w '%{http_code}' http://${nodeip[rc-node1]}:$hc/"
check "Local from a pod of rc-node1 via the cluster IP still reaches solo (policy is external only)" equal solo \
  in_pod client1 "curl -s -m 3 http://solo-local.default/hostname"

log "checks: the agent restarted on both nodes under load (bounded loops in client1)"
# new TCP connections to the cluster IP and DNS queries, from rc-node1, for load_secs (at most
# load_max each) while each node's agent is stopped and started again within the first half;
# the kernel rules stay, so none may fail
load_secs=${RC_LOAD_SECONDS:-60} load_max=${RC_LOAD_MAX:-5000}
loop() { # what command: counts of a bounded loop in client1
  timeout $((load_secs + 60)) nsenter --net="/var/run/netns/$hub" "$kubectl" --kubeconfig "$work/admin.kubeconfig" exec client1 -- sh -c \
    "ok=0; fail=0; end=\$((\$(date +%s) + $load_secs)); i=0; while [ \$i -lt $load_max ] && [ \$(date +%s) -lt \$end ]; do i=\$((i+1)); if $2; then ok=\$((ok+1)); else fail=\$((fail+1)); fi; done; echo $1 ok=\$ok fail=\$fail"
}
loop http "curl -s -m 2 -o /dev/null http://$cip/hostname" >"$work/load-http.out" 2>&1 &
load_http=$!
loop dns "[ -n \"\$(dig +short +time=1 +tries=5 web.default.svc.cluster.local)\" ]" >"$work/load-dns.out" 2>&1 &
load_dns=$!
sleep 3
t_restart=$(date +%s)
for n in "${nodes[@]}"; do
  restart_agent "$n"
  log "  agent on $n restarted (pid ${agent_pid[$n]})"
  sleep 2
done
t_restart=$(($(date +%s) - t_restart))
wait $load_http $load_dns
http_line=$(cat "$work/load-http.out"); dns_line=$(cat "$work/load-dns.out")
echo "  load for ${load_secs}s while both agents restarted (in ${t_restart}s): $http_line; $dns_line"
# the restarts fall inside the loops: they began 3 s in and took t_restart
load_ok() { # line: counts present, none failed, and the loop outlasted the restarts
  [[ $1 =~ ok=([0-9]+)\ fail=0$ ]] && [ "${BASH_REMATCH[1]}" -gt 0 ] && [ $((t_restart + 3)) -lt "$load_secs" ]; }
check "no HTTP request to the cluster IP failed across the restarts ($http_line)" load_ok "$http_line"
check "no DNS query failed across the restarts ($dns_line)" load_ok "$dns_line"

# what a drop-in must not do: requests its RBAC (deploy/svcnet-agent.yaml) does not allow
for n in "${nodes[@]}"; do
  check "$n: the agent made no request its RBAC forbids" sh -c "! grep -m3 forbidden '$work/$n/agent.log'"
done

echo "realcluster checks: $rc_pass passed, $rc_fail failed"
k delete deployment web --wait=false >/dev/null
k delete pod solo client1 client2 --wait=false >/dev/null
k delete svc web web-np web-lb web-ext web-headless alias solo-local >/dev/null
[ "$rc_fail" -eq 0 ]
