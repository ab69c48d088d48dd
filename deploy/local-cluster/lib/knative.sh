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

wait_namespace_gone_if_terminating() {
  if [[ "$(lc_kubectl get namespace "$LC_KNATIVE_NAMESPACE" -o jsonpath='{.status.phase}' 2>/dev/null)" == Terminating ]]; then
    lc_log "waiting for the namespace $LC_KNATIVE_NAMESPACE of an earlier install to be deleted"
    wait_namespace_gone
  fi
}

# drop_orphan_webhooks: Knative's admission webhooks left by an install whose webhook no longer
# runs (a removal cut short) make the API server refuse Knative's own ConfigMaps; the install
# brings them back.
drop_orphan_webhooks() {
  if ! lc_kubectl -n "$LC_KNATIVE_NAMESPACE" get deployment webhook >/dev/null 2>&1; then
    lc_kubectl delete mutatingwebhookconfigurations,validatingwebhookconfigurations \
      -l app.kubernetes.io/name=knative-serving --ignore-not-found >/dev/null
  fi
}

knative_install() {
  local started=$SECONDS dir="$LC_STATE/knative"
  build_component knative
  import_knative_images
  lc_log "installing Knative Serving $KNATIVE_VERSION"
  wait_namespace_gone_if_terminating
  drop_orphan_webhooks
  knative_manifests "$dir"
  lc_kubectl apply --server-side --field-manager="$LC_KNATIVE_FIELD_MANAGER" -f "$dir/crds.yaml" >/dev/null
  lc_kubectl wait --for=condition=Established --timeout=60s \
    -f "$dir/crds.yaml" >/dev/null
  lc_kubectl apply --server-side --force-conflicts --field-manager="$LC_KNATIVE_FIELD_MANAGER" -k "$dir" >/dev/null
  wait_for "Knative Serving (controller, webhook, activator, autoscaler)" 240 knative_installed
  lc_log "Knative Serving $KNATIVE_VERSION up in $((SECONDS - started)) s"
}

namespace_gone() { ! lc_kubectl get namespace "$LC_KNATIVE_NAMESPACE" >/dev/null 2>&1; }

# wait_namespace_gone: a namespace being deleted blocks a new install of the same objects. The
# namespace controller once left the autoscaler's bucket Service behind and the namespace in
# Terminating for good: what is left is deleted again while waiting.
wait_namespace_gone() {
  local started=$SECONDS
  until namespace_gone; do
    if ((SECONDS - started >= 180)); then
      lc_die "namespace $LC_KNATIVE_NAMESPACE is still terminating after 180 s: $(lc_kubectl -n "$LC_KNATIVE_NAMESPACE" get all -o name 2>&1 | tr '\n' ' ')"
    fi
    if (((SECONDS - started) % 10 == 9)); then
      lc_kubectl -n "$LC_KNATIVE_NAMESPACE" delete services,endpoints,endpointslices.discovery.k8s.io --all \
        --ignore-not-found --wait=false >/dev/null 2>&1 || true
    fi
    sleep 1
  done
}

knative_remove() {
  local dir="$LC_STATE/knative"
  [[ -f "$dir/core.yaml" ]] || knative_manifests "$dir"
  # The workload's Knative objects first: their finalizers need the controller that goes next.
  lc_kubectl delete configurations.serving.knative.dev,routes.serving.knative.dev,services.serving.knative.dev \
    --all --all-namespaces --ignore-not-found --wait=true --timeout=60s >/dev/null 2>&1 || true
  # Then its admission webhooks and controllers, so nothing refuses or remakes what goes next.
  lc_kubectl delete mutatingwebhookconfigurations,validatingwebhookconfigurations \
    -l app.kubernetes.io/name=knative-serving --ignore-not-found >/dev/null
  lc_kubectl -n "$LC_KNATIVE_NAMESPACE" delete deployments --all --ignore-not-found --wait=true --timeout=120s >/dev/null 2>&1 || true
  # The activator drains for up to 10 minutes; a namespace deleted around terminating pods is
  # retried by the namespace controller with a growing back-off, for minutes. Nothing here has
  # requests left to drain.
  lc_kubectl -n "$LC_KNATIVE_NAMESPACE" delete pods --all --grace-period=0 --force --ignore-not-found >/dev/null 2>&1 || true
  lc_kubectl delete -k "$dir" --ignore-not-found --wait=false >/dev/null
  wait_namespace_gone
  lc_kubectl delete -f "$dir/crds.yaml" --ignore-not-found --wait=true --timeout=60s >/dev/null
  lc_log "Knative Serving removed"
}
