#!/usr/bin/env bash
# Delete everything the other scripts created: the namespace (workload, HPA, monitoring,
# loadgen, their ConfigMaps and RBAC) and the cluster-scoped ClusterRole; with --cluster, the
# cluster too (the Minikube profile, the kind cluster or the local cluster: SCALEBENCH_CLUSTER).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<USAGE
Usage: deploy/scripts/teardown.sh [--cluster]

Deletes namespace $NAMESPACE and the cluster-scoped objects labelled
app.kubernetes.io/part-of=scalebench (Prometheus' ClusterRole). Reports under reports/ stay.

  --cluster    also delete the cluster with its loaded images (SCALEBENCH_CLUSTER=$SCALEBENCH_CLUSTER:
               minikube: profile $MINIKUBE_PROFILE; kind: cluster $KIND_CLUSTER_NAME;
               local: deploy/scripts/local-cluster.sh down)
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
check_cluster_kind
need kubectl

log "deleting namespace $NAMESPACE"
kubectl delete namespace "$NAMESPACE" --ignore-not-found --wait=true --timeout=180s
log "deleting cluster-scoped scalebench objects"
kubectl delete clusterrole,clusterrolebinding -l app.kubernetes.io/part-of=scalebench --ignore-not-found
if [[ "$cluster" -eq 1 ]]; then
  case "$SCALEBENCH_CLUSTER" in
    minikube)
      need minikube
      log "deleting minikube profile $MINIKUBE_PROFILE"
      minikube delete --profile "$MINIKUBE_PROFILE"
      ;;
    kind)
      need kind
      log "deleting kind cluster $KIND_CLUSTER_NAME"
      kind delete cluster --name "$KIND_CLUSTER_NAME"
      ;;
    local) "$SCALEBENCH_ROOT/deploy/scripts/local-cluster.sh" down ;;
  esac
fi
log "done"
