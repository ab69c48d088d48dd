#!/usr/bin/env bash
# Apply one kustomization of deploy/ and wait until its rollout is complete.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

OVERLAYS=(single hpa minikube-single minikube-hpa minikube-hpa-tls knative own-service-example monitoring monitoring-remote-write)

usage() {
  cat <<USAGE
Usage: deploy/scripts/apply.sh [--timeout DURATION] [--dry-run] [--no-wait] [--image NAME=REF]...
                               [--cpu-limit CORES] OVERLAY

OVERLAY is one of:
  single            one workload replica, no autoscaler (deployment label k8s-single)
  hpa               the workload under an HPA: CPU 50%, 1..10 replicas (k8s-hpa)
  minikube-single   single with the Minikube image settings and NodePort 30080
  minikube-hpa      hpa with the Minikube image settings and NodePort 30080
  minikube-hpa-tls  minikube-hpa behind an HTTPS Ingress (docs/tls-deploy.md; run tls-secret.sh first)
  knative           the workload as a Knative Configuration that scales to zero after about 30 s
                    idle (k8s-knative); needs Knative Serving (local cluster:
                    deploy/scripts/local-cluster.sh knative); waits until the revision is Ready
  own-service-example
                    podinfo in the workload's place under the HPA (docs/own-service.md)
  monitoring        Prometheus (Kubernetes discovery) and Grafana with the repository's dashboards;
                    creates Secret grafana-admin (a random admin password) when it is missing
  monitoring-remote-write
                    monitoring, and its Prometheus remote-writes the workload's series into the
                    compose Prometheus (docs/autoscaling-cost.md)

Renders deploy/overlays/OVERLAY (or deploy/monitoring), applies it server-side into namespace
$NAMESPACE, and waits for the rollout. Switching between single and hpa is an in-place rolling
update; applying a single overlay deletes the HPA an hpa overlay left behind.

  --timeout DURATION   rollout wait (default 180s)
  --dry-run            the API server validates and admits every object (server-side dry run)
                       and prints its warnings; nothing in the namespace changes (the namespace
                       itself is created when missing)
  --no-wait            apply, but do not wait for the rollouts
  --image NAME=REF     run image REF wherever the manifests name image NAME (kustomize's
                       images transformer), e.g. --image prom/prometheus=mirror.example/prometheus:v3.16.0
                       for a cluster that cannot pull from the upstream registry; repeatable
  --cpu-limit CORES    the workload container's CPU limit (default: the manifests' 1 core), e.g.
                       0.5 to compare with a container run with --cpus 0.5; the request (what the
                       HPA's 50 % is computed against) stays
  -h, --help           this help
USAGE
}

timeout=180s
overlay=""
dry_run=0
wait=1
images=()
cpu_limit=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --timeout) timeout="${2:?--timeout needs a value}"; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    --cpu-limit)
      [[ "${2:-}" =~ ^([0-9]+(\.[0-9]{1,3})?|[0-9]+m)$ && ! "${2:-}" =~ ^0+(\.0*)?m?$ ]] ||
        die "--cpu-limit takes cores (0.5) or millicores (500m), more than 0, not '${2:-}'"
      cpu_limit="$2"; shift 2 ;;
    --no-wait) wait=0; shift ;;
    --image)
      [[ "${2:-}" =~ ^[a-z0-9./_-]+=[^[:space:]]+$ ]] || die "--image takes NAME=REF, not '${2:-}'"
      images+=("$2"); shift 2 ;;
    -h | --help) usage; exit 0 ;;
    -*) usage >&2; die "unknown option: $1" ;;
    *) [[ -z "$overlay" ]] || die "one OVERLAY only"; overlay="$1"; shift ;;
  esac
done
[[ -n "$overlay" ]] || { usage >&2; die "OVERLAY is required"; }
known=0
for candidate in "${OVERLAYS[@]}"; do
  [[ "$candidate" == "$overlay" ]] && known=1
done
[[ "$known" -eq 1 ]] || die "unknown OVERLAY '$overlay' (one of: ${OVERLAYS[*]})"
need kubectl

if [[ "$overlay" == monitoring ]]; then
  dir="$DEPLOY_DIR/monitoring"
  rollouts=(deployment/prometheus deployment/grafana)
elif [[ "$overlay" == monitoring-remote-write ]]; then
  dir="$DEPLOY_DIR/overlays/$overlay"
  rollouts=(deployment/prometheus deployment/grafana)
elif [[ "$overlay" == knative ]]; then
  dir="$DEPLOY_DIR/overlays/$overlay"
  rollouts=()
else
  dir="$DEPLOY_DIR/overlays/$overlay"
  rollouts=(deployment/workload)
fi

# Grafana reads its admin password from this Secret; made once, random, never in the repository.
ensure_grafana_secret() {
  if kubectl -n "$NAMESPACE" get secret grafana-admin >/dev/null 2>&1; then
    log "keeping Secret grafana-admin"
    return
  fi
  local file
  file="$(mktemp)"
  chmod 0600 "$file"
  random_password >"$file"
  apply_secret_from_file grafana-admin admin-password "$file"
  rm -f "$file"
  log "created Secret grafana-admin (a random Grafana admin password)"
}

# The in-cluster Prometheus pushes into the compose one with the compose stack's password.
remote_write_password="$SECRETS_DIR/prometheus-password"
ensure_remote_write_secret() {
  local file="$remote_write_password"
  apply_secret_from_file prometheus-remote-write password "$file"
  log "Secret prometheus-remote-write holds the password of $file"
}

if [[ "$overlay" == monitoring-remote-write && ! -s "$remote_write_password" ]]; then
  die "no $remote_write_password: run 'make secrets' (or 'make up') for the compose stack first"
fi
if [[ -n "$cpu_limit" && "$overlay" == monitoring* ]]; then
  die "--cpu-limit applies to the workload overlays, not $overlay"
fi
if [[ ${#images[@]} -gt 0 || -n "$cpu_limit" ]]; then
  # A throw-away kustomization over the chosen one that only swaps images and sets the limit.
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  {
    printf 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - %s\n' \
      "$(realpath --relative-to="$tmp" "$dir")"
    if [[ -n "$cpu_limit" && "$overlay" == knative ]]; then
      printf 'patches:\n  - target: {kind: Configuration, name: workload}\n    patch: |-\n'
      printf '      - op: replace\n        path: /spec/template/spec/containers/0/resources/limits/cpu\n        value: "%s"\n' \
        "$cpu_limit"
    elif [[ -n "$cpu_limit" ]]; then
      # The check-config init container runs the server's image with the server's resources.
      printf 'patches:\n  - target: {kind: Deployment, name: workload}\n    patch: |-\n'
      for path in containers initContainers; do
        printf '      - op: replace\n        path: /spec/template/spec/%s/0/resources/limits/cpu\n        value: "%s"\n' \
          "$path" "$cpu_limit"
      done
    fi
    [[ ${#images[@]} -eq 0 ]] || printf 'images:\n'
    for image in "${images[@]}"; do
      ref="${image#*=}"
      if [[ "$ref" == *@* ]]; then
        printf '  - name: %s\n    newName: %s\n    digest: %s\n' "${image%%=*}" "${ref%@*}" "${ref#*@}"
      elif [[ "${ref##*/}" == *:* ]]; then
        printf '  - name: %s\n    newName: %s\n    newTag: "%s"\n' "${image%%=*}" "${ref%:*}" "${ref##*:}"
      else
        printf '  - name: %s\n    newName: %s\n' "${image%%=*}" "$ref"
      fi
    done
  } >"$tmp/kustomization.yaml"
  dir="$tmp"
fi
manifests="$(render "$dir")"
ensure_namespace
if [[ "$dry_run" -eq 1 ]]; then
  log "server-side dry run of $dir"
  printf '%s\n' "$manifests" |
    kubectl apply --server-side --force-conflicts --field-manager="$FIELD_MANAGER" --dry-run=server -f -
  exit 0
fi
if [[ "$overlay" == monitoring-remote-write ]]; then
  ensure_remote_write_secret
fi
if [[ "$overlay" == monitoring* ]]; then
  ensure_grafana_secret
fi
log "applying $dir"
printf '%s\n' "$manifests" | apply_rendered
if [[ "$overlay" != monitoring* ]] && ! grep -q '^kind: HorizontalPodAutoscaler$' <<<"$manifests"; then
  # From hpa to single: an HPA left running would keep resizing the single Deployment.
  kubectl -n "$NAMESPACE" delete horizontalpodautoscaler workload --ignore-not-found
fi
if [[ "$wait" -eq 1 ]]; then
  for rollout in "${rollouts[@]}"; do
    log "waiting for $rollout"
    kubectl -n "$NAMESPACE" rollout status "$rollout" --timeout="$timeout"
  done
  if [[ "$overlay" == knative ]]; then
    # Ready: the latest revision started a pod that passed its probe (it then scales to zero).
    log "waiting for configuration/workload's revision to be Ready"
    kubectl -n "$NAMESPACE" wait --for=condition=Ready configuration/workload --timeout="$timeout"
  fi
fi
if [[ "$overlay" == knative ]]; then
  kubectl -n "$NAMESPACE" get configurations.serving.knative.dev,revisions.serving.knative.dev,podautoscalers.autoscaling.internal.knative.dev -o wide
fi
kubectl -n "$NAMESPACE" get deployments,services,horizontalpodautoscalers -o wide
if [[ "$overlay" == monitoring* ]]; then
  log "Grafana: user admin, password: kubectl -n $NAMESPACE get secret grafana-admin -o jsonpath='{.data.admin-password}' | base64 -d"
fi
