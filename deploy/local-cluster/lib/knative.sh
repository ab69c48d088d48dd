# shellcheck shell=bash
# Knative Serving on the local cluster (`local-cluster.sh knative`): the scale-to-zero deployment
# (deploy/overlays/knative). Its five binaries are built from deploy/local-cluster/knative/go.mod
# like every other component, packed as FROM-scratch images under dev.local/ (Knative never
# resolves those at a registry), and its manifests are Knative's own, read from the Go module
# cache at the pinned version, with deploy/local-cluster/knative/config's patches for one small
# node. No networking layer: a Configuration's revisions scale to zero and back through the
# activator without an ingress (docs/local-cluster.md, "Scale to zero").

LC_KNATIVE_CMDS=(activator autoscaler controller queue webhook)
LC_KNATIVE_NAMESPACE=knative-serving
LC_KNATIVE_FIELD_MANAGER=scalebench-local-cluster

# knative_image CMD: the image the cluster runs CMD from.
knative_image() { printf 'dev.local/scalebench/knative-%s:%s\n' "$1" "$KNATIVE_VERSION"; }

# knative_module_dir MODULE: where the Go module cache holds MODULE at the version that
# knative/go.mod pins (the build downloaded it).
knative_module_dir() {
  (cd "$LC_SRC/knative" && GOFLAGS=-mod=readonly go list -m -f '{{.Dir}}' "$1")
}

import_knative_images() {
  local cmd
  # 65532: the non-root user of upstream's images; Knative's pods require runAsNonRoot.
  for cmd in "${LC_KNATIVE_CMDS[@]}"; do
    import_binary_image "$(bin knative "$cmd")" "$(knative_image "$cmd")" 65532:65532
  done
}

# yaml_stream FILE...: the files as one multi-document stream, each image reference
# `ko://knative.dev/serving/cmd/X` (ko's build-time placeholder) replaced by the image built here.
yaml_stream() {
  local file cmd sed_args=()
  for cmd in "${LC_KNATIVE_CMDS[@]}"; do
    sed_args+=(-e "s|ko://knative.dev/serving/cmd/$cmd\\b|$(knative_image "$cmd")|g")
  done
  for file in "$@"; do
    printf -- '---\n'
    sed "${sed_args[@]}" "$file"
    printf '\n'
  done
}

# knative_manifests DIR: DIR/crds.yaml (every CRD the controllers watch) and DIR/core.yaml
# (namespace, RBAC, config, deployments, webhooks) beside a copy of knative/config, whose
# install-kustomization.yaml becomes DIR/kustomization.yaml and patches core.yaml.
knative_manifests() {
  local out="$1" serving networking caching
  serving="$(knative_module_dir knative.dev/serving)"
  networking="$(knative_module_dir knative.dev/networking)"
  caching="$(knative_module_dir knative.dev/caching)"
  [[ -d "$serving/config/core" && -d "$networking/config" && -d "$caching/config" ]] ||
    lc_die "Knative's manifests are not in the Go module cache (build first: local-cluster.sh build)"
  mkdir -p "$out"
  cp "$LC_SRC/knative/config/"*.yaml "$out/"
  mv "$out/install-kustomization.yaml" "$out/kustomization.yaml"
  # The serving module's CRDs of networking.internal and caching.internal types are symlinks into
  # its vendor/ tree, which a module zip drops: they come from their own modules.
  yaml_stream "$serving"/config/core/300-resources/*.yaml \
    "$networking"/config/{certificate,domain-claim,ingress,serverlessservice}.yaml \
    "$caching/config/image.yaml" >"$out/crds.yaml"
  # Everything else in config/core, in upstream's order (the file names are numbered for it),
  # and config-network, another symlink into vendor/ (the activator and autoscaler exit without it).
  local core_files=()
  mapfile -t core_files < <(find "$serving/config/core" -name '*.yaml' -not -path '*/300-resources/*' | LC_ALL=C sort)
  yaml_stream "${core_files[@]}" "$networking/config/config-network.yaml" >"$out/core.yaml"
}

knative_installed() {
  local name
  for name in activator autoscaler controller webhook; do
    [[ "$(lc_kubectl -n "$LC_KNATIVE_NAMESPACE" get deployment "$name" \
      -o jsonpath='{.status.conditions[?(@.type=="Available")].status}' 2>/dev/null)" == True ]] || return 1
  done
  # The webhook answers admission (Knative's types are validated and defaulted by it).
  lc_kubectl create --dry-run=server -f - >/dev/null 2>&1 <<YAML
apiVersion: serving.knative.dev/v1
kind: Configuration
metadata: {name: scalebench-webhook-probe, namespace: default}
spec:
  template:
    spec:
      containers: [{image: "$(knative_image queue)"}]
YAML
}

knative_install() {
  local started=$SECONDS dir="$LC_STATE/knative"
  build_component knative
  import_knative_images
  lc_log "installing Knative Serving $KNATIVE_VERSION"
  knative_manifests "$dir"
  lc_kubectl apply --server-side --field-manager="$LC_KNATIVE_FIELD_MANAGER" -f "$dir/crds.yaml" >/dev/null
  lc_kubectl wait --for=condition=Established --timeout=60s \
    -f "$dir/crds.yaml" >/dev/null
  lc_kubectl apply --server-side --force-conflicts --field-manager="$LC_KNATIVE_FIELD_MANAGER" -k "$dir" >/dev/null
  wait_for "Knative Serving (controller, webhook, activator, autoscaler)" 240 knative_installed
  lc_log "Knative Serving $KNATIVE_VERSION up in $((SECONDS - started)) s"
}

knative_remove() {
  local dir="$LC_STATE/knative"
  [[ -f "$dir/core.yaml" ]] || knative_manifests "$dir"
  # The workload's Knative objects first: their finalizers need the controller that goes next.
  lc_kubectl delete configurations.serving.knative.dev,routes.serving.knative.dev,services.serving.knative.dev \
    --all --all-namespaces --ignore-not-found --wait=true --timeout=60s >/dev/null 2>&1 || true
  lc_kubectl delete -k "$dir" --ignore-not-found --wait=true --timeout=120s >/dev/null
  lc_kubectl delete -f "$dir/crds.yaml" --ignore-not-found --wait=true --timeout=60s >/dev/null
  lc_log "Knative Serving removed"
}
