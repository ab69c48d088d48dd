#!/usr/bin/env bash
# Build the workload and loadgen images from the repository's Dockerfile and load them into
# the Minikube node, under the versioned tags the manifests pin (never `latest`).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<USAGE
Usage: deploy/scripts/build-load.sh [--no-build]

Builds the Dockerfile targets \`workload\` and \`loadgen\` as $WORKLOAD_IMAGE and
$LOADGEN_IMAGE, then copies both into the Minikube profile $MINIKUBE_PROFILE with
\`minikube image load\`, so pods start with imagePullPolicy IfNotPresent and no registry.

  --no-build   only load images already built locally
  -h, --help   this help
USAGE
}

build=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --no-build) build=0; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
need docker minikube

if [[ "$build" -eq 1 ]]; then
  log "docker build --target workload -t $WORKLOAD_IMAGE"
  docker build --target workload -t "$WORKLOAD_IMAGE" "$SCALEBENCH_ROOT"
  log "docker build --target loadgen -t $LOADGEN_IMAGE"
  docker build --target loadgen -t "$LOADGEN_IMAGE" "$SCALEBENCH_ROOT"
fi
for image in "$WORKLOAD_IMAGE" "$LOADGEN_IMAGE"; do
  docker image inspect "$image" >/dev/null 2>&1 || die "$image is not built (drop --no-build)"
  log "minikube image load $image"
  minikube --profile "$MINIKUBE_PROFILE" image load "$image"
done
minikube --profile "$MINIKUBE_PROFILE" image ls | grep -F "scalebench/" >&2 || true
log "loaded: next, deploy/scripts/apply.sh minikube-single (or minikube-hpa)"
