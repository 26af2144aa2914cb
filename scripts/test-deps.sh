#!/usr/bin/env bash
# Installs what the tests need on a fresh Debian machine: iproute2 (ip netns for the
# end-to-end tests), dnsutils (dig) and util-linux (unshare, mount) for the DNS tests,
# containernetworking-plugins (bridge, host-local, loopback) for the pod network tests,
# nftables (the nft command, to read back what the proxy programs), containerd + runc (the CRI
# pod runtime), iptables (CNI portmap for hostPort), mmdebstrap (the offline test images),
# chromium (the topology page drawn in a real browser, test/e2e/ui_test.go).
# kubectl is used from PATH when present, otherwise the e2e
# suite builds it from the k8s.io/kubectl module. Go modules download on demand.
set -euo pipefail
need=()
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v dig >/dev/null 2>&1 || need+=(dnsutils)
command -v unshare >/dev/null 2>&1 || need+=(util-linux)
[ -x /usr/lib/cni/bridge ] || [ -x /opt/cni/bin/bridge ] || need+=(containernetworking-plugins)
command -v nft >/dev/null 2>&1 || [ -x /usr/sbin/nft ] || need+=(nftables)
command -v containerd >/dev/null 2>&1 || need+=(containerd)
command -v runc >/dev/null 2>&1 || [ -x /usr/sbin/runc ] || need+=(runc)
command -v iptables >/dev/null 2>&1 || [ -x /usr/sbin/iptables ] || need+=(iptables)
command -v mmdebstrap >/dev/null 2>&1 || need+=(mmdebstrap)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "test-deps: missing ${need[*]}; install them (as root: apt-get install ${need[*]})" >&2
    exit 1
  fi
  echo "test-deps: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
