#!/usr/bin/env bash
# A single-node Kubernetes built from upstream Go modules, in a network namespace of its own
# (docs/local-cluster.md): the autoscaled half of scalebench without Minikube.
set -euo pipefail
SCRIPTS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$SCRIPTS/lib.sh"
LIB="$SCRIPTS/../local-cluster/lib"
# shellcheck source-path=SCRIPTDIR source=../local-cluster/lib/settings.sh
source "$LIB/settings.sh"
# shellcheck source-path=SCRIPTDIR source=../local-cluster/lib/build.sh
source "$LIB/build.sh"
# shellcheck source-path=SCRIPTDIR source=../local-cluster/lib/pki.sh
source "$LIB/pki.sh"
# shellcheck source-path=SCRIPTDIR source=../local-cluster/lib/network.sh
source "$LIB/network.sh"
# shellcheck source-path=SCRIPTDIR source=../local-cluster/lib/components.sh
source "$LIB/components.sh"
# shellcheck source-path=SCRIPTDIR source=../local-cluster/lib/images.sh
source "$LIB/images.sh"
# shellcheck source-path=SCRIPTDIR source=../local-cluster/lib/knative.sh
source "$LIB/knative.sh"

usage() {
  cat <<USAGE
Usage: deploy/scripts/local-cluster.sh COMMAND

  up [--with knative]
                build what is missing (cached in $LC_CACHE), then start etcd, the
                apiserver, controller-manager (HPA sync 5 s), scheduler, containerd, kubelet,
                kube-proxy, CoreDNS and metrics-server in network namespace $LC_NETNS;
                waits until the node is Ready and the Metrics API answers. A cluster already
                up is left as it is; the leftovers of one that died are cleared first.
                --with knative: then install Knative Serving (the 'knative' command)
  down          stop what 'up' started (by pid), remove the pods, mounts, cgroups, network
                namespace, host iptables rule and state ($LC_STATE); safe to repeat
  status        what runs, and whether the node and the Metrics API answer (exit 1 if not up)
  env           print 'export KUBECONFIG=...': eval it, then kubectl and deploy/scripts/*.sh
                work against this cluster
  load-images [IMAGE...]
                copy images from the local Docker into the cluster's containerd (nothing is
                ever pulled); default: $WORKLOAD_IMAGE and $LOADGEN_IMAGE
  build         only build (or find cached) every binary, Knative's too, and print where they are
  knative [install|remove|status]
                Knative Serving $KNATIVE_VERSION on the running cluster, for the scale-to-zero
                overlay deploy/overlays/knative: install (the default; idempotent) builds its
                binaries, imports them as dev.local/ images and applies upstream's manifests
                from the Go module cache with deploy/local-cluster/knative/config's patches

Versions: Kubernetes $K8S_VERSION, etcd $ETCD_VERSION, metrics-server $METRICS_SERVER_VERSION,
CoreDNS $COREDNS_VERSION, Knative Serving $KNATIVE_VERSION (each from its go.mod under deploy/local-cluster/). Needs root, Go,
containerd, runc, the CNI plugins, iproute2, iptables and openssl (Debian: containerd runc
containernetworking-plugins iproute2 iptables openssl conntrack).
The node is $LC_NODE_IP from the host (NodePorts too); pods and Services never leave the namespace.
USAGE
}

require_root() { [[ $EUID -eq 0 ]] || lc_die "the local cluster needs root (network namespace, cgroups, mounts)"; }

require_tools() {
  local tool missing=()
  for tool in containerd ctr runc nsenter setsid ip iptables openssl curl kubectl; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  [[ -x /usr/lib/cni/bridge && -x /usr/lib/cni/host-local ]] || missing+=("CNI plugins in /usr/lib/cni")
  ((${#missing[@]} == 0)) || lc_die "missing: ${missing[*]} (Debian: apt-get install containerd runc containernetworking-plugins iproute2 iptables openssl conntrack curl)"
}

healthy() {
  proc_alive kube-apiserver && proc_alive kubelet && node_ready && metrics_api_answers
}

cmd_up() {
  local with_knative=false
  while (($#)); do
    case "$1" in
      --with)
        [[ "${2:-}" == knative ]] || lc_die "up --with takes 'knative', got '${2:-}'"
        with_knative=true
        shift 2
        ;;
      *) lc_die "unknown option to up: $1" ;;
    esac
  done
  start_cluster
  if $with_knative; then
    knative_install
  fi
}

start_cluster() {
  require_root
  require_tools
  local started=$SECONDS
  build_all
  if [[ -d "$LC_PIDS" ]] && healthy 2>/dev/null; then
    lc_log "the cluster is up already ($(lc_kubectl get node "$LC_NODE_NAME" --no-headers 2>/dev/null | awk '{print $1, $2, $5}'))"
    return 0
  fi
  if [[ -d "$LC_STATE" ]] || netns_exists; then
    lc_log "clearing what an earlier cluster left"
    cmd_down >/dev/null
  fi
  trap 'lc_log "up failed: logs in $LC_LOGS; deploy/scripts/local-cluster.sh down clears it"' ERR
  mkdir -p "$LC_STATE"
  chmod 0700 "$LC_STATE"
  make_pki
  network_up
  start_etcd
  start_apiserver
  start_controller_manager
  start_scheduler
  start_containerd
  import_pause_image
  start_kubelet
  wait_for "node $LC_NODE_NAME Ready" 120 node_ready
  start_kube_proxy
  apply_addon_objects
  start_coredns
  start_metrics_server
  wait_for "Metrics API (metrics-server's first scrape of the kubelet)" 180 metrics_api_answers
  trap - ERR
  lc_log "up in $((SECONDS - started)) s; to use it: eval \"\$(deploy/scripts/local-cluster.sh env)\""
}

# unmount_state: every mount under the state directory (pod volumes, container root file
# systems, sandbox network namespaces), innermost first.
unmount_state() {
  local target
  while read -r target; do
    umount -l "$target" 2>/dev/null || true
  done < <(findmnt -rn -o TARGET | grep -F "$LC_STATE/" | sort -r)
}

# stop_shims: the containerd shims of this cluster's containerd (each is started with
# `-address <our socket>`), which outlive their containerd.
stop_shims() {
  local proc pid
  for proc in /proc/[0-9]*; do
    pid="${proc#/proc/}"
    # A process may end between the glob and the read: its cmdline is then simply not ours.
    if { tr '\0' '\n' <"$proc/cmdline"; } 2>/dev/null | grep -qxF "$CONTAINERD_SOCK"; then
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
}

cmd_down() {
  require_root
  local name
  # The kubelet first, so it restarts nothing; then every pod process (by cgroup) and shim.
  stop_proc kubelet
  cgroup_root_down
  for name in "${LC_PROCS[@]}"; do
    stop_proc "$name"
  done
  stop_shims
  unmount_state
  cgroup_root_down
  network_down
  rm -rf "$LC_STATE"
  # go-cni's result cache of this network (it is not configurable per network).
  rm -rf /var/lib/cni/results/scalebench-cluster-* 2>/dev/null || true
  lc_log "down: processes, pods, mounts, cgroups, namespace $LC_NETNS and state removed"
}

cmd_status() {
  local name rc=0
  for name in "${LC_PROCS[@]}"; do
    if proc_alive "$name"; then
      printf '%-24s running (pid %s)\n' "$name" "$(cut -d' ' -f1 "$LC_PIDS/$name.pid")"
    else
      printf '%-24s not running\n' "$name"
      rc=1
    fi
  done
  if ((rc == 0)) && node_ready; then
    printf 'node %s Ready\n' "$LC_NODE_NAME"
  else
    printf 'node %s not Ready\n' "$LC_NODE_NAME"
    rc=1
  fi
  if ((rc == 0)) && metrics_api_answers; then
    printf 'Metrics API answers\n'
  else
    printf 'Metrics API does not answer\n'
    rc=1
  fi
  return "$rc"
}

cmd_env() {
  [[ -f "$LC_KUBECONFIG" ]] || lc_die "no local cluster: deploy/scripts/local-cluster.sh up"
  printf 'export KUBECONFIG=%q\n' "$LC_KUBECONFIG"
  printf 'export SCALEBENCH_CLUSTER=local\n'
}

cmd_load_images() {
  require_root
  proc_alive containerd || lc_die "the local cluster is not up: deploy/scripts/local-cluster.sh up"
  if (($# == 0)); then
    set -- "$WORKLOAD_IMAGE" "$LOADGEN_IMAGE"
  fi
  load_docker_images "$@"
}

cmd_build() {
  build_all
  local component
  for component in "${LC_ADDON_COMPONENTS[@]}"; do
    build_component "$component"
  done
  for component in "${LC_COMPONENTS[@]}" "${LC_ADDON_COMPONENTS[@]}"; do
    printf '%-16s %s\n' "$component" "$(bin_dir "$component")"
  done
}

cmd_knative() {
  require_root
  proc_alive kube-apiserver || lc_die "the local cluster is not up: deploy/scripts/local-cluster.sh up"
  case "${1:-install}" in
    install) knative_install ;;
    remove) knative_remove ;;
    status)
      if knative_installed; then
        printf 'Knative Serving %s answers (controller, webhook, activator, autoscaler available)\n' "$KNATIVE_VERSION"
      else
        printf 'Knative Serving is not installed or not ready\n'
        return 1
      fi
      ;;
    *) lc_die "knative takes install, remove or status, got '$1'" ;;
  esac
}

case "${1:-}" in
  up) shift; cmd_up "$@" ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) cmd_env ;;
  load-images) shift; cmd_load_images "$@" ;;
  build) cmd_build ;;
  knative) shift; cmd_knative "$@" ;;
  -h | --help) usage ;;
  "") usage >&2; exit 2 ;;
  *) usage >&2; lc_die "unknown command: $1" ;;
esac
