# shellcheck shell=bash
# shellcheck disable=SC2034  # the variables are used by the files that source this one
# The local cluster's names, addresses, versions and paths: one place, read by every part of
# deploy/scripts/local-cluster.sh. Each setting has an environment twin for a machine where the
# default collides with something already there.

LC_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# --- versions: read from the go.mod files that build them (the one source) ------------------
# go_mod_version MODULE_DIR PATH: the version go.mod requires of PATH.
go_mod_version() {
  awk -v path="$2" '$1 == path { print $2; exit } $1 == "require" && $2 == path { print $3; exit }' "$LC_SRC/$1/go.mod"
}
K8S_VERSION="$(go_mod_version kubernetes k8s.io/kubernetes)"
ETCD_VERSION="$(go_mod_version etcd go.etcd.io/etcd/server/v3)"
METRICS_SERVER_VERSION="$(awk '$1 == "sigs.k8s.io/metrics-server" { print $2; exit }' "$LC_SRC/metrics-server/go.mod")"
COREDNS_VERSION="$(go_mod_version coredns github.com/coredns/coredns)"
KNATIVE_VERSION="$(go_mod_version knative knative.dev/serving)"

# --- where things live ---------------------------------------------------------------------
# State (certificates, etcd, containerd's images, the kubelet's pods, logs): wiped by `down`.
LC_STATE="${SCALEBENCH_CLUSTER_STATE:-/var/lib/scalebench/local-cluster}"
# Built binaries, kept across `down` and across clones: one directory per component and hash of
# its sources, so a changed go.mod rebuilds and an unchanged one never does.
LC_CACHE="${SCALEBENCH_CLUSTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/scalebench/local-cluster}"
LC_PKI="$LC_STATE/pki"
LC_LOGS="$LC_STATE/logs"
LC_PIDS="$LC_STATE/pids"
LC_ETC="$LC_STATE/etc"
LC_KUBECONFIG="$LC_STATE/admin.kubeconfig"
CONTAINERD_SOCK="$LC_STATE/containerd/containerd.sock"

# --- the network (docs/local-cluster.md draws it) ---------------------------------------------
# Everything runs in this network namespace. Its default route is a bridge with no ports: a
# packet for anywhere but the node, its pods and the host's end of the veth goes nowhere.
LC_NETNS="${SCALEBENCH_CLUSTER_NETNS:-scalebench-cluster}"
LC_NETNS_PATH="/run/netns/$LC_NETNS"
# The host reaches the node's address, and only it, through a veth pair on a /30.
LC_HOST_IF=sbc-host
LC_NODE_IF=sbc-node
LC_DEAD_IF=sbc-dead
LC_CNI_BRIDGE=sbc-cni0
LC_HOST_IP="${SCALEBENCH_CLUSTER_HOST_IP:-10.213.0.1}"
LC_NODE_IP="${SCALEBENCH_CLUSTER_NODE_IP:-10.213.0.2}"
LC_LINK_PREFIX=30
LC_POD_CIDR=10.244.0.0/24
LC_CLUSTER_CIDR=10.244.0.0/16
LC_SERVICE_CIDR=10.96.0.0/16
LC_KUBERNETES_SVC_IP=10.96.0.1
LC_DNS_IP=10.96.0.10
LC_NODE_NAME=scalebench
LC_CLUSTER_DOMAIN=cluster.local
LC_APISERVER_PORT=6443
LC_METRICS_SERVER_PORT=4443
# The cgroup every pod's cgroup is made under (in each cgroup v1 hierarchy), so `down` finds and
# ends exactly the processes the kubelet started.
LC_CGROUP_ROOT=/scalebench-cluster
# The sandbox image, built here from deploy/local-cluster/pause, under the project's own name.
LC_PAUSE_IMAGE="docker.io/scalebench/cluster-pause:$K8S_VERSION"
# The images `load-images` takes from the local Docker (deploy/scripts/lib.sh pins the tag).
LC_CONTAINERD_NAMESPACE=k8s.io

lc_log() { printf '[cluster %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
lc_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# in_ns CMD...: CMD inside the cluster's network namespace, in the host's mount namespace (unlike
# `ip netns exec`, which gives each process a mount namespace of its own: the volumes the kubelet
# mounts would then be invisible to containerd).
in_ns() { nsenter --net="$LC_NETNS_PATH" -- "$@"; }

# lc_kubectl ARGS...: kubectl against the local cluster, whatever KUBECONFIG says.
lc_kubectl() { kubectl --kubeconfig "$LC_KUBECONFIG" "$@"; }
