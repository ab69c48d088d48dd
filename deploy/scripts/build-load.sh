#!/usr/bin/env bash
# Build the workload and loadgen images from the repository's Dockerfile and load them onto the
# cluster's node (Minikube, kind or the local cluster: SCALEBENCH_CLUSTER), under the versioned
# tags the manifests pin (never `latest`).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<USAGE
Usage: deploy/scripts/build-load.sh [--no-build] [--build-arg NAME=VALUE]...

Builds the Dockerfile targets \`workload\` and \`loadgen\` as $WORKLOAD_IMAGE and
$LOADGEN_IMAGE, then copies both onto the cluster's node, so pods start with
imagePullPolicy IfNotPresent and no registry. SCALEBENCH_CLUSTER (now: $SCALEBENCH_CLUSTER) says how:
  minikube   minikube image load (profile \$MINIKUBE_PROFILE, now $MINIKUBE_PROFILE)
  kind       kind load docker-image (cluster \$KIND_CLUSTER_NAME, now $KIND_CLUSTER_NAME)
  local      deploy/scripts/local-cluster.sh load-images (docs/local-cluster.md)

  --no-build              only load images already built locally
  --build-arg NAME=VALUE  passed to docker build (e.g. RUST_IMAGE=... for base images of your own)
  -h, --help              this help
USAGE
}

build=1
build_args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --no-build) build=0; shift ;;
    --build-arg)
      [[ "${2:-}" == ?*=* ]] || die "--build-arg takes NAME=VALUE, not '${2:-}'"
      build_args+=(--build-arg "$2"); shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
check_cluster_kind
need docker

if [[ "$build" -eq 1 ]]; then
  log "docker build --target workload -t $WORKLOAD_IMAGE"
  docker build "${build_args[@]}" --target workload -t "$WORKLOAD_IMAGE" "$SCALEBENCH_ROOT"
  log "docker build --target loadgen -t $LOADGEN_IMAGE"
  docker build "${build_args[@]}" --target loadgen -t "$LOADGEN_IMAGE" "$SCALEBENCH_ROOT"
fi
for image in "$WORKLOAD_IMAGE" "$LOADGEN_IMAGE"; do
  docker image inspect "$image" >/dev/null 2>&1 || die "$image is not built (drop --no-build)"
done
load_images "$WORKLOAD_IMAGE" "$LOADGEN_IMAGE"
if [[ "$SCALEBENCH_CLUSTER" == minikube ]]; then
  log "loaded: next, deploy/scripts/apply.sh minikube-single (or minikube-hpa)"
else
  log "loaded: next, deploy/scripts/apply.sh single (or hpa)"
fi
