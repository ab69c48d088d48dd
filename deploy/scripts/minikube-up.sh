#!/usr/bin/env bash
# Start a Minikube cluster for scalebench, with the metrics-server addon the HPA needs.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<USAGE
Usage: deploy/scripts/minikube-up.sh [--cpus N] [--memory SIZE] [--driver NAME] [--kubernetes-version V]

Starts (or reuses) the Minikube profile \$MINIKUBE_PROFILE (now: $MINIKUBE_PROFILE) with the
metrics-server addon enabled, waits until metrics-server serves, and creates namespace $NAMESPACE.
Without metrics-server the HPA's CPU target stays <unknown> and nothing ever scales.

  --cpus N                 CPUs for the node (default 4: ten workload pods request 2.5 cores)
  --memory SIZE            memory for the node (default 8g)
  --driver NAME            minikube driver (default: minikube's own choice, e.g. docker)
  --kubernetes-version V   e.g. v1.34.0 (default: minikube's default)
  -h, --help               this help
USAGE
}

cpus=4
memory=8g
driver=""
k8s_version=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --cpus) cpus="${2:?--cpus needs a value}"; shift 2 ;;
    --memory) memory="${2:?--memory needs a value}"; shift 2 ;;
    --driver) driver="${2:?--driver needs a value}"; shift 2 ;;
    --kubernetes-version) k8s_version="${2:?--kubernetes-version needs a value}"; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
need minikube kubectl

args=(start --profile "$MINIKUBE_PROFILE" --cpus "$cpus" --memory "$memory" --addons metrics-server)
[[ -n "$driver" ]] && args+=(--driver "$driver")
[[ -n "$k8s_version" ]] && args+=(--kubernetes-version "$k8s_version")

log "minikube ${args[*]}"
minikube "${args[@]}"
# `minikube start` points kubectl at the profile; make sure, in case it was already running.
kubectl config use-context "$MINIKUBE_PROFILE" >/dev/null

log "waiting for metrics-server"
kubectl -n kube-system rollout status deployment/metrics-server --timeout=180s
# The Metrics API answers only after the first kubelet scrape; bounded wait.
for _ in $(seq 1 30); do
  if kubectl top nodes >/dev/null 2>&1; then
    break
  fi
  sleep 5
done
kubectl top nodes || log "metrics not served yet: the HPA shows <unknown> until they are"

ensure_namespace
log "ready: next, deploy/scripts/build-load.sh"
