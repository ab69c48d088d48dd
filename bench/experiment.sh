#!/usr/bin/env bash
# The seed's headline from one command: the classic experiment (three clients, N requests each,
# classic-3x100k.yaml) against one container limited to C cores, the same image as one replica
# with that limit on Kubernetes, and under the HPA with replicas of that limit. One table, one
# JSON file, one HTML comparison.
#
# The three clients run on this machine, started together (loadgen --start-at) and merged
# exactly (loadgen merge), against every deployment alike: the compose container on 127.0.0.1,
# the cluster's workload through its NodePort (the minikube-* overlays; on the local cluster the
# node is 10.213.0.2). Runs are sequential: two deployments loaded at once would measure their
# contention.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH_NAME=experiment
# shellcheck source-path=SCRIPTDIR source=deployments-common.sh
source "$ROOT/bench/deployments-common.sh"
SCENARIO="$ROOT/loadgen/scenarios/classic-3x100k.yaml"
CLIENTS=3

usage() {
  cat <<USAGE
Usage: bench/experiment.sh [--requests-per-client N] [--cpu C] [--out DIR] [--only LIST] [--loadgen PATH]
                           [--prometheus URL | --no-prometheus]

Runs $CLIENTS clients x N requests (loadgen/scenarios/classic-3x100k.yaml: POST /api/v1/hello,
one closed-loop user per client) against, in turn:
  docker      the compose workload container with --cpus C (docker compose, project sbexp)
  k8s-single  overlays/minikube-single with a CPU limit of C (deploy/scripts/apply.sh --cpu-limit)
  k8s-hpa     overlays/minikube-hpa, replicas of C each, under the HPA (CPU 50 %, 1..10)
on the cluster of the current kubeconfig (the local cluster: eval "\$(deploy/scripts/local-cluster.sh env)").
Prints the seed's table (elapsed, throughput, p50, p99, replicas, speedup against docker) and
writes DIR/experiment.json, DIR/<deployment>/client-*.json and merged.json, DIR/compare.html.

  --requests-per-client N   requests per client (default 100000, the seed's)
  --cpu C                   cores per container and per replica (default: a quarter of this
                            machine's cores, at most 1: on 2 cores 0.5, which leaves the HPA room
                            for about 4 replicas beside the clients)
  --out DIR                 where everything goes (default reports/experiment-<UTC time>)
  --only LIST               a comma-separated subset of docker,k8s-single,k8s-hpa (default all)
  --loadgen PATH            loadgen binary (default target/release/loadgen, else target/debug/loadgen,
                            else loadgen on PATH)
  --prometheus URL          push every client's metrics there by remote write when it answers
                            (default http://127.0.0.1:9090, the compose stack's: \`make up\`), so
                            the compose Grafana shows the three runs, told apart by deployment
  --no-prometheus           push no metrics
  -h, --help                this help

Needs: the images scalebench/workload:0.1.0 and scalebench/loadgen:0.1.0 built (and loaded into
the cluster: deploy/scripts/build-load.sh), docker compose, kubectl with a cluster whose node
answers on its InternalIP, python3.
USAGE
}

requests=100000
cpu=""
out=""
only="docker,k8s-single,k8s-hpa"
loadgen="${LOADGEN_BIN:-}"
prom_url="${EXPERIMENT_PROMETHEUS_URL:-http://127.0.0.1:9090}"
while [[ $# -gt 0 ]]; do
  common_flag "$@"
  if ((TAKEN)); then shift "$TAKEN"; continue; fi
  case "$1" in
    --requests-per-client) requests="${2:?--requests-per-client needs a value}"; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
[[ "$requests" =~ ^[1-9][0-9]*$ ]] || die "--requests-per-client is a positive whole number, not '$requests'"
if [[ -z "$cpu" ]]; then
  cpu="$(default_cpu)"
  log "cpu per container and per replica: $cpu (a quarter of this machine's $(nproc) cores, at most 1)"
fi
check_cpu "$cpu"
IFS=, read -r -a deployments <<<"$only"
for d in "${deployments[@]}"; do
  [[ "$d" == docker || "$d" == k8s-single || "$d" == k8s-hpa ]] || die "--only: unknown deployment '$d'"
done
loadgen="$(find_loadgen "$loadgen")"
out="${out:-$ROOT/reports/experiment-$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$out"
# The dashboards read what the compose Prometheus holds: the clients push there when it answers.
remote_write_flags "$prom_url"

# run_clients NAME URL [WATCH...]: the three clients, together, then their exact merge.
run_clients() {
  local name="$1" url="$2" dir="$out/$1" start_at i pids=() rc=0
  shift 2
  mkdir -p "$dir"
  start_at=$(($(date +%s) + 3))
  for ((i = 0; i < CLIENTS; i++)); do
    # One run id for the three clients: their series and reports belong together.
    LOADGEN_RUN_ID="experiment-$name-$start_at" "$loadgen" run "$SCENARIO" --target "$url" --concurrency 1 --requests "$requests" \
      --start-at "$start_at" --deployment "$name" --quiet "${REMOTE_WRITE[@]}" "$@" \
      --out "$dir/client-$i.json" >"$dir/client-$i.log" 2>&1 &
    pids+=("$!")
  done
  for pid in "${pids[@]}"; do wait "$pid" || rc=$?; done
  # Exit 99 is a missed threshold (success rate): the report is still written and counted.
  [[ "$rc" -eq 0 || "$rc" -eq 99 ]] || { tail -n 20 "$dir"/client-*.log >&2; die "a client of $name failed ($rc)"; }
  "$loadgen" merge "$dir"/client-*.json --out "$dir/merged.json" >/dev/null
  log "$name: done ($(python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))["summary"]
print("%d requests in %.1f s" % (s["requests"], s["duration_s"]))
' "$dir/merged.json"))"
}

run_docker() {
  compose_up "$cpu" "$out/docker-compose.log"
  run_clients docker "$COMPOSE_URL"
  compose_down
}

run_k8s() {
  local name="$1" overlay="$2" url
  apply_overlay "$overlay" "$cpu" "$out/$name-apply.log"
  url="http://$(node_ip):$NODE_PORT"
  wait_ready "$url" 60
  [[ "$name" != k8s-hpa ]] || wait_hpa_metrics
  run_clients "$name" "$url" --watch deployment/workload --namespace "$NAMESPACE"
}

for d in "${deployments[@]}"; do
  case "$d" in
    docker) run_docker ;;
    k8s-single) run_k8s k8s-single minikube-single ;;
    k8s-hpa) run_k8s k8s-hpa minikube-hpa ;;
  esac
done

python3 "$ROOT/bench/experiment_table.py" --out "$out" --clients "$CLIENTS" --requests-per-client "$requests" \
  --cpu "$cpu" "${deployments[@]}"
merged=()
for d in "${deployments[@]}"; do merged+=("$out/$d/merged.json"); done
"$loadgen" report --html "$out/compare.html" "${merged[@]}" >/dev/null
log "wrote $out/experiment.json and $out/compare.html"
