#!/usr/bin/env bash
# Delete everything the other scripts created: the namespace (workload, HPA, monitoring,
# loadgen, their ConfigMaps and RBAC) and the cluster-scoped ClusterRole; with --cluster, the
# Minikube profile too (which also drops the loaded images).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<USAGE
Usage: deploy/scripts/teardown.sh [--cluster]

Deletes namespace $NAMESPACE and the cluster-scoped objects labelled
app.kubernetes.io/part-of=scalebench (Prometheus' ClusterRole). Reports under reports/ stay.

  --cluster    also delete the Minikube profile $MINIKUBE_PROFILE (cluster and loaded images)
  -h, --help   this help
USAGE
}

cluster=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --cluster) cluster=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
need kubectl

log "deleting namespace $NAMESPACE"
kubectl delete namespace "$NAMESPACE" --ignore-not-found --wait=true --timeout=180s
log "deleting cluster-scoped scalebench objects"
kubectl delete clusterrole,clusterrolebinding -l app.kubernetes.io/part-of=scalebench --ignore-not-found
if [[ "$cluster" -eq 1 ]]; then
  need minikube
  log "deleting minikube profile $MINIKUBE_PROFILE"
  minikube delete --profile "$MINIKUBE_PROFILE"
fi
log "done"
