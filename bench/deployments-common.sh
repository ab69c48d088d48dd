# shellcheck shell=bash disable=SC2034  # sourced: its variables are used by the scripts sourcing it
# Shared by the benches that run one load against several deployments of the workload in turn
# (experiment.sh, serverless.sh; sourced with ROOT set): logging, the loadgen binary, the
# Prometheus the clients push to, the compose container and the cluster's node address.

NAMESPACE=scalebench
# The workload overlays' NodePort (the minikube-* overlays), and the activator's on the local
# cluster's Knative (deploy/local-cluster/knative/config/activator-nodeport.yaml).
NODE_PORT=30080
ACTIVATOR_NODE_PORT=30081
COMPOSE_PROJECT=sbexp
COMPOSE=(docker compose)
docker compose version >/dev/null 2>&1 || COMPOSE=(docker-compose)

# common_flag ARGS...: the flags every bench of deployments takes. Sets the caller's variable
# (cpu, out, only, loadgen, prom_url) when $1 is one of them, and TAKEN to the arguments it used
# (0 when $1 is not one).
TAKEN=0
common_flag() {
  TAKEN=2
  case "$1" in
    --cpu) cpu="${2:?--cpu needs a value}" ;;
    --out) out="${2:?--out needs a value}" ;;
    --only) only="${2:?--only needs a value}" ;;
    --loadgen) loadgen="${2:?--loadgen needs a value}" ;;
    --prometheus) prom_url="${2:?--prometheus needs a value}" ;;
    --no-prometheus) prom_url="" TAKEN=1 ;;
    *) TAKEN=0 ;;
  esac
}

log() { printf '[%s %s] %s\n' "$BENCH_NAME" "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 2; }

# default_cpu: a quarter of this machine's cores, at most 1 (0.5 on 2 cores: room for the HPA's
# replicas beside the clients).
default_cpu() { awk -v n="$(nproc)" 'BEGIN { c = n / 4; if (c > 1) c = 1; printf "%g", c }'; }

check_cpu() {
  if ! [[ "$1" =~ ^[0-9]+(\.[0-9]{1,3})?$ ]] || ! awk -v c="$1" 'BEGIN { exit !(c > 0) }'; then
    die "--cpu is a number of cores above 0, not '$1'"
  fi
}

# find_loadgen [PATH]: PATH, else target/release/loadgen, else target/debug/loadgen, else PATH's.
find_loadgen() {
  local candidate
  for candidate in "${1:-}" "$ROOT/target/release/loadgen" "$ROOT/target/debug/loadgen" "$(command -v loadgen || true)"; do
    if [[ -n "$candidate" && -x "$candidate" ]]; then
      printf '%s\n' "$candidate"
      return 0
    fi
  done
  die "no loadgen binary: cargo build --release -p loadgen, or --loadgen PATH"
}

# remote_write_flags URL: sets REMOTE_WRITE to the loadgen flags that push to URL's Prometheus
# when it answers (the compose stack's, so its Grafana shows the runs), else to nothing.
REMOTE_WRITE=()
remote_write_flags() {
  local url="${1%/}"
  REMOTE_WRITE=()
  [[ -n "$url" ]] || return 0
  [[ "$url" =~ ^https?://[^/]+ ]] || die "--prometheus: '$url' is not an http:// or https:// URL"
  if curl -fsS -o /dev/null --connect-timeout 2 --max-time 5 "$url/-/ready" 2>/dev/null; then
    REMOTE_WRITE=(--remote-write "$url/api/v1/write")
    log "pushing the clients' metrics to $url/api/v1/write (dashboards: deployment and run)"
  else
    log "no Prometheus answers at $url: no metrics pushed (start the compose stack, or --no-prometheus)"
  fi
}

wait_ready() {
  local url="$1" limit="$2" started=$SECONDS
  until curl -fsS -o /dev/null "$url/readyz"; do
    ((SECONDS - started < limit)) || die "$url/readyz did not answer within $limit s"
    sleep 1
  done
}

node_ip() {
  local ip
  ip="$(kubectl get nodes -o jsonpath='{.items[0].status.addresses[?(@.type=="InternalIP")].address}')"
  [[ -n "$ip" ]] || die "no node InternalIP in the current kubeconfig's cluster"
  printf '%s\n' "$ip"
}

compose_down() {
  WORKLOAD_CPUS=1 "${COMPOSE[@]}" -p "$COMPOSE_PROJECT" -f "$ROOT/docker-compose.yml" down -v >/dev/null 2>&1 || true
  trap - EXIT
}

# compose_up CPU LOG: the compose workload container limited to CPU cores on a free port of
# 127.0.0.1, ready, its URL in COMPOSE_URL (not printed: a command substitution's subshell would
# run the EXIT trap that removes it). `compose_down` removes it, and so does the exit.
COMPOSE_URL=""
compose_up() {
  local cpu="$1" logfile="$2" port
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  log "docker: the compose workload with --cpus $cpu on 127.0.0.1:$port"
  trap compose_down EXIT
  WORKLOAD_CPUS="$cpu" WORKLOAD_PORT="$port" "${COMPOSE[@]}" -p "$COMPOSE_PROJECT" -f "$ROOT/docker-compose.yml" \
    up -d --no-build workload >"$logfile" 2>&1 || { cat "$logfile" >&2; die "docker compose up failed"; }
  COMPOSE_URL="http://127.0.0.1:$port"
  wait_ready "$COMPOSE_URL" 60
}

# apply_overlay OVERLAY CPU LOG: a clean namespace, then OVERLAY with the CPU limit, rolled out.
apply_overlay() {
  local overlay="$1" cpu="$2" logfile="$3"
  log "deploy/scripts/apply.sh --cpu-limit $cpu $overlay"
  "$ROOT/deploy/scripts/teardown.sh" >/dev/null 2>&1
  "$ROOT/deploy/scripts/apply.sh" --cpu-limit "$cpu" "$overlay" >"$logfile" 2>&1 ||
    { tail -n 30 "$logfile" >&2; die "apply.sh $overlay failed"; }
}

# wait_hpa_metrics: the HPA decides blind until metrics-server has a CPU figure for the pod.
wait_hpa_metrics() {
  local started=$SECONDS
  until kubectl -n "$NAMESPACE" get hpa workload -o jsonpath='{.status.currentMetrics[0].resource.current.averageUtilization}' | grep -q .; do
    ((SECONDS - started < 180)) || die "the HPA reports no CPU utilization after 180 s (is metrics-server running?)"
    sleep 2
  done
}
