#!/usr/bin/env bash
# The seed's Lambda row: the classic rate steps (loadgen/scenarios/rate-steps.yaml: 10, 50, 100
# and 500 requests per second, then 50 per second for 120 s) against one container, the HPA and
# a scale-to-zero Knative revision, each from its idle state (the Knative one from zero); then N
# cold starts in a row (idle until zero, one request). One table, DIR/serverless.json and the
# HTML comparison.
#
# One client on this machine, against every deployment alike: the compose container on
# 127.0.0.1, the HPA's workload through its NodePort (30080), and the Knative revision through
# the activator's NodePort (30081) with the Knative-Serving-Revision and -Namespace headers, the
# way an ingress hands a request to the activator. Runs are sequential.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH_NAME=serverless
# shellcheck source-path=SCRIPTDIR source=deployments-common.sh
source "$ROOT/bench/deployments-common.sh"
SCENARIO="$ROOT/loadgen/scenarios/rate-steps.yaml"
ALL="docker,k8s-hpa,k8s-knative"

usage() {
  cat <<USAGE
Usage: bench/serverless.sh [--scale F] [--cold-starts N] [--cpu C] [--out DIR] [--only LIST]
                           [--loadgen PATH] [--prometheus URL | --no-prometheus]

Runs loadgen/scenarios/rate-steps.yaml (open loop, POST /api/v1/hello) against, in turn:
  docker       the compose workload container with --cpus C
  k8s-hpa      overlays/minikube-hpa (replicas of C under the HPA, 1..10), from one idle replica
  k8s-knative  overlays/knative (replicas of C, 0..10, Knative's autoscaler), from zero
on the cluster of the current kubeconfig with Knative Serving installed (the local cluster:
deploy/scripts/local-cluster.sh up --with knative). Prints, per step and deployment, the mean
and p99 response time, the success rate and the most ready replicas; then N cold starts of the
Knative revision in a row, each from zero (about 30 s idle, then one request), with the time to
the first response, and their median and p99. Writes DIR/serverless.json, DIR/<deployment>.json
(the reports), DIR/cold-starts/*.json and DIR/compare.html.

  --scale F            multiply every step's length by F (0 < F <= 1; CI runs 0.1: 3 s steps)
  --cold-starts N      cold starts in a row after the steps (default 20; 0 for none)
  --cpu C              cores per container and per replica (default: a quarter of this machine's
                       cores, at most 1)
  --out DIR            where everything goes (default reports/serverless-<UTC time>)
  --only LIST          a comma-separated subset of $ALL (default all; the cold
                       starts need k8s-knative)
  --loadgen PATH       loadgen binary (default target/release/loadgen, else target/debug/loadgen)
  --prometheus URL     push the client's metrics there by remote write when it answers (default
                       http://127.0.0.1:9090, the compose stack's)
  --no-prometheus      push no metrics
  -h, --help           this help

Needs: the images scalebench/workload:0.1.0 and scalebench/loadgen:0.1.0 built and loaded
(deploy/scripts/build-load.sh), docker compose, kubectl, python3 with PyYAML.
USAGE
}

scale=1
cold_starts=20
cpu=""
out=""
only="$ALL"
loadgen="${LOADGEN_BIN:-}"
prom_url="${EXPERIMENT_PROMETHEUS_URL:-http://127.0.0.1:9090}"
while [[ $# -gt 0 ]]; do
  common_flag "$@"
  if ((TAKEN)); then shift "$TAKEN"; continue; fi
  case "$1" in
    --scale) scale="${2:?--scale needs a value}"; shift 2 ;;
    --cold-starts) cold_starts="${2:?--cold-starts needs a value}"; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
if ! [[ "$scale" =~ ^[0-9]*\.?[0-9]+$ ]] || ! awk -v f="$scale" 'BEGIN { exit !(f > 0 && f <= 1) }'; then
  die "--scale is a factor above 0 and at most 1, not '$scale'"
fi
if ! [[ "$cold_starts" =~ ^[0-9]{1,4}$ ]] || ((10#$cold_starts > 1000)); then
  die "--cold-starts is a whole number from 0 to 1000, not '$cold_starts'"
fi
cold_starts=$((10#$cold_starts))
if [[ -z "$cpu" ]]; then
  cpu="$(default_cpu)"
  log "cpu per container and per replica: $cpu (a quarter of this machine's $(nproc) cores, at most 1)"
fi
check_cpu "$cpu"
IFS=, read -r -a deployments <<<"$only"
for d in "${deployments[@]}"; do
  [[ ",$ALL," == *",$d,"* ]] || die "--only: unknown deployment '$d' (one of $ALL)"
done
if ((cold_starts > 0)) && [[ ",$only," != *",k8s-knative,"* ]]; then
  die "--cold-starts needs k8s-knative in --only (or --cold-starts 0)"
fi
loadgen="$(find_loadgen "$loadgen")"
out="${out:-$ROOT/reports/serverless-$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$out/cold-starts"
remote_write_flags "$prom_url"

# scenario FILE [HEADER...]: rate-steps.yaml with every step --scale times as long, and the
# headers (NAME: VALUE) on every request.
scenario() {
  python3 - "$SCENARIO" "$scale" "$@" <<'PY' >"$1.tmp" && mv "$1.tmp" "$1"
import re, sys, yaml
source, scale, headers = sys.argv[1], float(sys.argv[2]), sys.argv[4:]
doc = yaml.safe_load(open(source))
units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
for phase in doc["load"]["phases"]:
    value, unit = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)", phase["duration"]).groups()
    phase["duration"] = f"{max(float(value) * units[unit] * scale, 1.0):g}s"
if headers:
    doc.setdefault("headers", {}).update(h.split(": ", 1) for h in headers)
print(yaml.safe_dump(doc, sort_keys=False))
PY
}

# run NAME URL SCENARIO [FLAG...]: one client, its report in DIR/NAME.json.
run() {
  local name="$1" url="$2" file="$3" rc=0
  shift 3
  log "$name: $(basename "$SCENARIO") x $scale against $url"
  LOADGEN_RUN_ID="serverless-$name-$(date +%s)" "$loadgen" run "$file" --target "$url" --deployment "$name" \
    --quiet "${REMOTE_WRITE[@]}" "$@" --out "$out/$name.json" >"$out/$name.log" 2>&1 || rc=$?
  # Exit 99 is a missed threshold (success rate, p99): the report is written and tabulated.
  [[ "$rc" -eq 0 || "$rc" -eq 99 ]] || { tail -n 20 "$out/$name.log" >&2; die "the client of $name failed ($rc)"; }
}

knative_revision() {
  kubectl -n "$NAMESPACE" get configurations.serving.knative.dev workload -o jsonpath='{.status.latestReadyRevisionName}'
}

# at_zero: the revision's Deployment asks for no pod and has none ready.
at_zero() {
  local replicas
  replicas="$(kubectl -n "$NAMESPACE" get deployments -l serving.knative.dev/configuration=workload \
    -o jsonpath='{range .items[*]}{.spec.replicas}{" "}{.status.readyReplicas}{"\n"}{end}')"
  [[ -n "$replicas" ]] && ! grep -q '[1-9]' <<<"$replicas"
}

wait_zero() {
  local started=$SECONDS
  until at_zero; do
    ((SECONDS - started < 180)) || die "the Knative revision did not scale to zero within 180 s"
    sleep 1
  done
  log "k8s-knative: at zero after $((SECONDS - started)) s"
}

KNATIVE_URL=""
KNATIVE_HEADERS=()
knative_up() {
  apply_overlay knative "$cpu" "$out/k8s-knative-apply.log"
  local revision
  revision="$(knative_revision)"
  [[ -n "$revision" ]] || die "configuration/workload has no ready revision"
  KNATIVE_URL="http://$(node_ip):$ACTIVATOR_NODE_PORT"
  KNATIVE_HEADERS=("Knative-Serving-Revision: $revision" "Knative-Serving-Namespace: $NAMESPACE")
}

# cold_start I: from zero, one request, recorded by the watcher as a cold start.
cold_start() {
  local i="$1" file="$out/cold-starts/$1.json" header_flags=() h
  wait_zero
  for h in "${KNATIVE_HEADERS[@]}"; do header_flags+=(-H "$h"); done
  "$loadgen" --target "$KNATIVE_URL/api/v1/hello" --method POST --body '{}' -H 'content-type: application/json' \
    "${header_flags[@]}" --requests 1 --concurrency 1 --timeout 60s --quiet \
    --watch configuration/workload --namespace "$NAMESPACE" --deployment k8s-knative \
    --out "$file" >"$out/cold-starts/$i.log" 2>&1 ||
    { tail -n 20 "$out/cold-starts/$i.log" >&2; die "cold start $i: the request failed"; }
  log "cold start $i: $(python3 -c '
import json, sys
c = json.load(open(sys.argv[1]))["replicas"]["cold_starts"]
print("%.2f s to the first response" % c[0]["to_first_response_s"] if c and c[0]["to_first_response_s"] is not None else "none answered")
' "$file")"
}

for d in "${deployments[@]}"; do
  case "$d" in
    docker)
      scenario "$out/rate-steps-docker.yaml"
      compose_up "$cpu" "$out/docker-compose.log"
      run docker "$COMPOSE_URL" "$out/rate-steps-docker.yaml"
      compose_down
      ;;
    k8s-hpa)
      scenario "$out/rate-steps-k8s-hpa.yaml"
      apply_overlay minikube-hpa "$cpu" "$out/k8s-hpa-apply.log"
      wait_ready "http://$(node_ip):$NODE_PORT" 60
      wait_hpa_metrics
      run k8s-hpa "http://$(node_ip):$NODE_PORT" "$out/rate-steps-k8s-hpa.yaml" --watch deployment/workload --namespace "$NAMESPACE"
      ;;
    k8s-knative)
      knative_up
      scenario "$out/rate-steps-k8s-knative.yaml" "${KNATIVE_HEADERS[@]}"
      wait_zero
      run k8s-knative "$KNATIVE_URL" "$out/rate-steps-k8s-knative.yaml" --watch configuration/workload --namespace "$NAMESPACE"
      ;;
  esac
done
for ((i = 1; i <= cold_starts; i++)); do
  cold_start "$i"
done

python3 "$ROOT/bench/serverless_table.py" --out "$out" "${deployments[@]}"
reports=()
for d in "${deployments[@]}"; do reports+=("$out/$d.json"); done
"$loadgen" report --html "$out/compare.html" "${reports[@]}" >/dev/null
log "wrote $out/serverless.json and $out/compare.html"
