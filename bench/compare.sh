#!/usr/bin/env bash
# The classic comparison in one command: one scenario, run in turn against several deployments of
# the workload, then one table (`loadgen compare`) and one HTML page (`loadgen report --html`).
#
# Runs are sequential on purpose: two deployments loaded at once would share the machine's CPU
# and the figures would measure the contention, not the deployments. Every run writes its JSON
# report and full log into one directory, so a comparison can be re-rendered or extended later
# (`loadgen compare DIR/*.json`) without running anything again.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The namespace and Service every kustomization of deploy/ uses (deploy/scripts/lib.sh).
NAMESPACE=scalebench
K8S_SERVICE=workload
K8S_WATCH=deployment/workload

usage() {
  cat <<USAGE
Usage: bench/compare.sh [OPTIONS] [NAME=URL ...] [-- LOADGEN_RUN_FLAGS...]

Runs one scenario against each target in turn, then prints the comparison table (deployment,
duration, throughput, p50, p99, success rate, change against the first target) and writes every
JSON report, every run's log and an HTML comparison page into the reports directory.

Targets:
  NAME=URL             e.g. docker=http://127.0.0.1:8080 small=http://127.0.0.1:9001
                       NAME labels the run (--deployment NAME) and names its files.
                       Given targets replace the defaults; the cluster is then left alone.
  (none)               the defaults, in this order:
                         docker      the compose workload at --docker-url (default
                                     http://127.0.0.1:8080); start it with \`make up\`
                         k8s-single  } when kubectl has a current context whose cluster answers:
                         k8s-hpa     } deploy/scripts/apply.sh applies each overlay and waits for
                                     the rollout; the run watches $K8S_WATCH (replicas recorded)
A target whose readiness path (--ready-path) does not answer 2xx is reported and skipped; the
script fails only when no target ran.

Options:
  -s, --scenario FILE    scenario to run (default: the rate-steps scenario of loadgen/scenarios/,
                         the classic 10/50/100/500 requests per second steps)
  -o, --out-dir DIR      where reports go (default: reports/compare-<UTC time>)
      --loadgen PATH     loadgen binary (env LOADGEN_BIN; default: target/release/loadgen, else
                         target/debug/loadgen, else loadgen on PATH)
      --docker-url URL   URL of the default docker target (env COMPARE_DOCKER_URL)
      --no-k8s           defaults only: leave the cluster alone
      --k8s-overlays "A B"  overlays for the cluster targets (default: "minikube-single
                         minikube-hpa" when the context is a Minikube profile, else "single hpa")
      --k8s-url URL      reach the cluster workload here instead of discovering the NodePort
                         (\`minikube ip\` + nodePort) or falling back to kubectl port-forward
      --watch NAME=deployment/D  record replicas of D (namespace --namespace) during NAME's run
      --namespace NS     namespace for --watch (default $NAMESPACE)
      --ready-path PATH  readiness probe path (default /readyz)
      --ready-timeout S  seconds a target may take to become ready (default 10)
      --hpa-wait S       after applying an HPA overlay, seconds to wait for the HPA to report CPU
                         utilization before loading it (default 180)
      --pause S          seconds to wait between runs, e.g. to let an HPA cool down (default 0)
      --prometheus URL   push every run's metrics to this Prometheus by remote write, when it
                         answers (env COMPARE_PROMETHEUS_URL; default http://127.0.0.1:9090, the
                         compose stack's): the runs then sit side by side on the Grafana
                         dashboards, told apart by deployment and run
      --no-prometheus    push no metrics
  -q, --quiet            do not echo each run's summary (it is still written to NAME.log)
  -h, --help             this help

Everything after \`--\` is passed to every \`loadgen run\`, e.g. -- --threads 1 --timeout 5s
(load flags given there replace the scenario's load block).

Output (in the reports directory): NAME.json and NAME.log per run, compare.txt (the table, also
printed on stdout), compare.html (self-contained, open it in a browser).
Exit: 0 when at least one target ran, 1 when none did or a prerequisite (loadgen, curl) is
missing, 2 bad usage or a scenario loadgen rejects.

Examples:
  bench/compare.sh                                     # compose, then Minikube single and HPA
  bench/compare.sh docker=http://127.0.0.1:8080 other=http://10.0.0.5:8080   # never touches a cluster
  bench/compare.sh -s loadgen/scenarios/crud.yaml -- --duration 30s --users 20
USAGE
}

log() { printf '[compare %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() {
  printf 'error: %s\n' "$1" >&2
  exit "${2:-2}"
}

scenario=""
out_dir=""
loadgen="${LOADGEN_BIN:-}"
docker_url="${COMPARE_DOCKER_URL:-http://127.0.0.1:8080}"
use_k8s=1
k8s_overlays=""
k8s_url=""
watch_ns="$NAMESPACE"
ready_path=/readyz
ready_timeout=10
hpa_wait=180
pause=0
quiet=0
prom_url="${COMPARE_PROMETHEUS_URL:-http://127.0.0.1:9090}"
names=()
urls=()
declare -A watch_for=()
extra=()

while [[ $# -gt 0 ]]; do
  case "$1" in
    -s | --scenario) scenario="${2:?$1 needs a value}"; shift 2 ;;
    -o | --out-dir) out_dir="${2:?$1 needs a value}"; shift 2 ;;
    --loadgen) loadgen="${2:?$1 needs a value}"; shift 2 ;;
    --docker-url) docker_url="${2:?$1 needs a value}"; shift 2 ;;
    --no-k8s) use_k8s=0; shift ;;
    --k8s-overlays) k8s_overlays="${2:?$1 needs a value}"; shift 2 ;;
    --k8s-url) k8s_url="${2:?$1 needs a value}"; shift 2 ;;
    --watch)
      w="${2:?$1 needs a value}"
      [[ "$w" == *=deployment/?* ]] || die "--watch is NAME=deployment/D, not '$w'"
      watch_for["${w%%=*}"]="${w#*=}"
      shift 2
      ;;
    --namespace) watch_ns="${2:?$1 needs a value}"; shift 2 ;;
    --ready-path) ready_path="${2:?$1 needs a value}"; shift 2 ;;
    --ready-timeout) ready_timeout="${2:?$1 needs a value}"; shift 2 ;;
    --hpa-wait) hpa_wait="${2:?$1 needs a value}"; shift 2 ;;
    --pause) pause="${2:?$1 needs a value}"; shift 2 ;;
    --prometheus) prom_url="${2:?$1 needs a value}"; shift 2 ;;
    --no-prometheus) prom_url=""; shift ;;
    -q | --quiet) quiet=1; shift ;;
    -h | --help) usage; exit 0 ;;
    --) shift; extra=("$@"); break ;;
    -*) usage >&2; die "unknown option: $1" ;;
    *=*)
      name="${1%%=*}" url="${1#*=}"
      [[ "$name" =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] ||
        die "target name '$name' must be letters, digits, '.', '_' or '-' (it names files and labels)"
      [[ "$url" =~ ^https?://[^/]+ ]] || die "target $name: '$url' is not an http:// or https:// URL"
      for n in "${names[@]}"; do [[ "$n" != "$name" ]] || die "target name '$name' given twice"; done
      names+=("$name")
      urls+=("${url%/}")
      shift
      ;;
    *) usage >&2; die "unknown argument '$1' (targets are NAME=URL)" ;;
  esac
done
[[ "$ready_timeout" =~ ^[0-9]+$ ]] || die "--ready-timeout is a number of seconds, not '$ready_timeout'"
[[ "$pause" =~ ^[0-9]+$ ]] || die "--pause is a number of seconds, not '$pause'"
[[ "$hpa_wait" =~ ^[0-9]+$ ]] || die "--hpa-wait is a number of seconds, not '$hpa_wait'"
[[ "$ready_path" == /* ]] || die "--ready-path must start with /, not '$ready_path'"
[[ -z "$prom_url" || "$prom_url" =~ ^https?://[^/]+ ]] ||
  die "--prometheus: '$prom_url' is not an http:// or https:// URL"
for w in "${!watch_for[@]}"; do
  known=0
  for n in "${names[@]}"; do [[ "$n" != "$w" ]] || known=1; done
  [[ $known -eq 1 ]] || die "--watch names target '$w', which is not among the NAME=URL targets"
done

if [[ -z "$scenario" ]]; then
  # The classic rate-steps experiment, whatever its exact file name (.yaml, .yml or .toml).
  shopt -s nullglob
  candidates=("$ROOT"/loadgen/scenarios/*rate*step*.{yaml,yml,toml})
  shopt -u nullglob
  ((${#candidates[@]} > 0)) ||
    die "no rate-steps scenario in $ROOT/loadgen/scenarios/: pass --scenario FILE"
  scenario="${candidates[0]}"
fi
[[ -f "$scenario" ]] || die "scenario '$scenario' is not a file"

if [[ -z "$loadgen" ]]; then
  for candidate in "${CARGO_TARGET_DIR:-$ROOT/target}/release/loadgen" "${CARGO_TARGET_DIR:-$ROOT/target}/debug/loadgen"; do
    if [[ -x "$candidate" ]]; then loadgen="$candidate"; break; fi
  done
  [[ -n "$loadgen" ]] || loadgen="$(command -v loadgen || true)"
  [[ -n "$loadgen" ]] ||
    die "no loadgen binary: build it (cargo build --release -p loadgen), put it on PATH or pass --loadgen" 1
fi
[[ -x "$loadgen" ]] || die "--loadgen '$loadgen' is not an executable file" 1
if [[ "$loadgen" == "$ROOT"/target/* && -n "$(find "$ROOT/loadgen/src" -newer "$loadgen" -print -quit)" ]]; then
  log "WARNING: $loadgen is older than loadgen/src: rebuild it (cargo build --release -p loadgen)"
fi
command -v curl >/dev/null || die "curl is not installed (used to check each target answers)" 1

stamp="$(date -u +%Y%m%dT%H%M%SZ)"
out_dir="${out_dir:-$ROOT/reports/compare-$stamp}"
mkdir -p "$out_dir" || die "cannot create the reports directory $out_dir" 1

# --- bookkeeping ------------------------------------------------------------------------------
ran=()         # names of targets whose report exists
reports=()     # their JSON files, in run order
skipped=()     # "NAME (URL): reason"
thresholds_failed=()
forward_pid=""

stop_forward() {
  if [[ -n "$forward_pid" ]]; then
    kill "$forward_pid" 2>/dev/null || true
    wait "$forward_pid" 2>/dev/null || true
    forward_pid=""
  fi
}
trap stop_forward EXIT
trap 'stop_forward; log "interrupted"; exit 130' INT TERM

skip() {
  skipped+=("$1")
  log "SKIPPED $1"
}

# ready URL: waits up to --ready-timeout for a 2xx on the readiness path. On failure, prints why
# on stdout (the caller puts it into the skip message) and returns 1.
ready() {
  local url="$1" code="" deadline=$((SECONDS + ready_timeout)) err
  err="$(mktemp)"
  while :; do
    code="$(curl -sS -o /dev/null -w '%{http_code}' --connect-timeout 2 --max-time 5 \
      "$url$ready_path" 2>"$err")" || code="000"
    [[ "$code" == 2?? ]] && { rm -f "$err"; return 0; }
    ((SECONDS < deadline)) || break
    sleep 1
  done
  if [[ "$code" == 000 ]]; then
    # curl's own words: "Failed to connect to ... Connection refused", "Could not resolve host".
    printf 'not reachable: %s' "$(sed -n 's/^curl: ([0-9]*) //p' "$err" | head -n 1)"
  else
    printf 'not ready: GET %s answered %s' "$ready_path" "$code"
  fi
  rm -f "$err"
  return 1
}

# run_one NAME URL [WATCH]: one loadgen run; records the outcome.
run_one() {
  local name="$1" url="$2" watch="${3:-}" why rc
  local json="$out_dir/$name.json" runlog="$out_dir/$name.log"
  if ! why="$(ready "$url")"; then
    skip "$name ($url): $why"
    return 0
  fi
  if ((${#ran[@]} > 0 && pause > 0)); then
    log "pausing ${pause}s before $name"
    sleep "$pause"
  fi
  local args=(run "$scenario" --target "$url" --out "$json"
    # --deployment rather than --label deployment=: it wins over a LOADGEN_DEPLOYMENT in the
    # environment. The run id is the `run` label of every metric and the report's `run`; a
    # --label run= would put a second `run` label on the metrics.
    --deployment "$name" --run-id "compare-$stamp-$name" --label "comparison=compare-$stamp")
  if [[ -n "$watch" ]]; then
    args+=(--watch "$watch" --namespace "$watch_ns")
  fi
  if [[ -n "$remote_write" ]]; then
    args+=(--remote-write "$remote_write")
  fi
  args+=("${extra[@]}")
  log "running $name against $url${watch:+ (watching $watch)}"
  rm -f "$json"
  set +e
  if ((quiet)); then
    env -u LOADGEN_WATCH -u LOADGEN_TARGET "$loadgen" "${args[@]}" >"$runlog" 2>&1
    rc=$?
  else
    env -u LOADGEN_WATCH -u LOADGEN_TARGET "$loadgen" "${args[@]}" 2>&1 | tee "$runlog" >&2
    rc=${PIPESTATUS[0]}
  fi
  set -e
  case "$rc" in
    0 | 99)
      [[ -s "$json" ]] || { skip "$name ($url): loadgen exited $rc without writing $json (see $runlog)"; return 0; }
      ran+=("$name")
      reports+=("$json")
      [[ "$rc" -eq 0 ]] || thresholds_failed+=("$name")
      ;;
    2)
      why="$(grep -m 1 '^error:' "$runlog" || tail -n 1 "$runlog")"
      die "loadgen rejected the run of $name (exit 2, bad usage or scenario; log $runlog): ${why#error: }" 2
      ;;
    130) log "loadgen was interrupted"; exit 130 ;;
    *) skip "$name ($url): loadgen failed (exit $rc), see $runlog" ;;
  esac
}

# --- the cluster ------------------------------------------------------------------------------

# k8s_workload_url: sets k8s_target to a URL that reaches the Service from here, after an overlay
# is applied. Not run in $(...): a port-forward started in a subshell would escape stop_forward.
# A NodePort (Minikube) goes through kube-proxy, which spreads connections over every ready pod:
# what the HPA experiment needs. port-forward pins one pod, so it is the last resort.
k8s_target=""
k8s_workload_url() {
  k8s_target=""
  if [[ -n "$k8s_url" ]]; then
    k8s_target="${k8s_url%/}"
    return 0
  fi
  local node_port ip
  node_port="$(kubectl -n "$NAMESPACE" get service "$K8S_SERVICE" \
    -o jsonpath='{.spec.ports[0].nodePort}' 2>/dev/null || true)"
  if [[ -n "$node_port" && -n "$minikube_profile" ]] &&
    ip="$(minikube -p "$minikube_profile" ip 2>/dev/null)" && [[ -n "$ip" ]]; then
    k8s_target="http://$ip:$node_port"
    return 0
  fi
  log "no NodePort reachable: using kubectl port-forward, which sends every request to ONE pod" \
    "(HPA replicas will not share the load; expose the Service and pass --k8s-url for a fair run)"
  local pf_log="$out_dir/port-forward.log" port="" i
  kubectl -n "$NAMESPACE" port-forward "service/$K8S_SERVICE" :8080 >"$pf_log" 2>&1 &
  forward_pid=$!
  for ((i = 0; i < 30; i++)); do
    port="$(sed -n 's/^Forwarding from 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$pf_log" | head -n 1)"
    [[ -z "$port" ]] || break
    kill -0 "$forward_pid" 2>/dev/null || break
    sleep 0.5
  done
  if [[ -z "$port" ]]; then
    stop_forward
    return 1
  fi
  k8s_target="http://127.0.0.1:$port"
}

# wait_for_hpa_metrics: when the applied overlay has an HPA, waits (up to --hpa-wait) until it
# reports a CPU utilization. A fresh HPA shows <unknown> until metrics-server has sampled the new
# pods (about a minute); load sent before then measures that gap, not the autoscaler.
wait_for_hpa_metrics() {
  local hpa cpu="" deadline=$((SECONDS + hpa_wait))
  hpa="$(kubectl -n "$NAMESPACE" get horizontalpodautoscaler "$K8S_SERVICE" --ignore-not-found -o name 2>/dev/null || true)"
  [[ -n "$hpa" ]] || return 0
  log "waiting up to ${hpa_wait}s for the HPA to report CPU utilization"
  while :; do
    cpu="$(kubectl -n "$NAMESPACE" get "$hpa" \
      -o jsonpath='{.status.currentMetrics[0].resource.current.averageUtilization}' 2>/dev/null || true)"
    [[ -z "$cpu" ]] || return 0
    ((SECONDS < deadline)) || break
    sleep 5
  done
  log "WARNING: the HPA still shows no CPU utilization after ${hpa_wait}s (is metrics-server" \
    "enabled? minikube addons enable metrics-server); running anyway, expect no scale-out"
}

minikube_profile=""
run_k8s() {
  local ctx overlays overlay name
  if ! command -v kubectl >/dev/null; then
    skip "k8s-single, k8s-hpa: kubectl is not installed"
    return 0
  fi
  if ! ctx="$(kubectl config current-context 2>/dev/null)" || [[ -z "$ctx" ]]; then
    skip "k8s-single, k8s-hpa: kubectl has no current context (start Minikube: deploy/scripts/minikube-up.sh)"
    return 0
  fi
  if ! kubectl --request-timeout=5s get --raw /readyz >/dev/null 2>&1; then
    skip "k8s-single, k8s-hpa: the cluster of context '$ctx' does not answer"
    return 0
  fi
  if command -v minikube >/dev/null && minikube -p "$ctx" ip >/dev/null 2>&1; then
    minikube_profile="$ctx"
  fi
  overlays="$k8s_overlays"
  if [[ -z "$overlays" ]]; then
    if [[ -n "$minikube_profile" ]]; then overlays="minikube-single minikube-hpa"; else overlays="single hpa"; fi
  fi
  for overlay in $overlays; do
    name="k8s-${overlay#minikube-}"
    if [[ ! -d "$ROOT/deploy/overlays/$overlay" ]]; then
      skip "$name: overlay deploy/overlays/$overlay does not exist"
      continue
    fi
    log "applying overlay $overlay in context $ctx"
    if ! "$ROOT/deploy/scripts/apply.sh" "$overlay" >"$out_dir/apply-$overlay.log" 2>&1; then
      skip "$name: deploy/scripts/apply.sh $overlay failed (see $out_dir/apply-$overlay.log)"
      continue
    fi
    wait_for_hpa_metrics
    if ! k8s_workload_url; then
      skip "$name: no way to reach service/$K8S_SERVICE (see $out_dir/port-forward.log; or pass --k8s-url)"
      continue
    fi
    watch_ns="$NAMESPACE" run_one "$name" "$k8s_target" "$K8S_WATCH"
    stop_forward
  done
}

# --- the runs ---------------------------------------------------------------------------------
log "scenario $scenario, loadgen $loadgen, reports in $out_dir"
# Metrics go where the dashboards are: the compose Prometheus takes remote writes. Without one the
# runs still compare in the table and the HTML page.
remote_write=""
if [[ -n "$prom_url" ]]; then
  prom_url="${prom_url%/}"
  if curl -fsS -o /dev/null --connect-timeout 2 --max-time 5 "$prom_url/-/ready" 2>/dev/null; then
    remote_write="$prom_url/api/v1/write"
    log "pushing each run's metrics to $remote_write (dashboards: deployment and run variables)"
  else
    log "no Prometheus answers at $prom_url: the runs push no metrics (start the compose stack," \
      "or pass --prometheus URL; --no-prometheus silences this)"
  fi
fi
# The compose stack starts its own load run; two generators at once would skew every figure.
if command -v docker >/dev/null; then
  busy="$(timeout 5 docker ps --filter "ancestor=scalebench/loadgen:0.1.0" --format '{{.Names}}' 2>/dev/null || true)"
  [[ -z "$busy" ]] || log "WARNING: a loadgen container is running ($busy): its load adds to this" \
    "comparison's; wait for it to finish or stop it (docker compose stop loadgen)"
fi
if ((${#names[@]} > 0)); then
  for i in "${!names[@]}"; do
    run_one "${names[$i]}" "${urls[$i]}" "${watch_for[${names[$i]}]:-}"
  done
else
  run_one docker "${docker_url%/}"
  if ((use_k8s)); then run_k8s; fi
fi

# --- the comparison ---------------------------------------------------------------------------
for s in "${skipped[@]}"; do log "skipped: $s"; done
if ((${#reports[@]} == 0)); then
  die "no target ran, nothing to compare (reports directory: $out_dir)" 1
fi
((${#thresholds_failed[@]} == 0)) ||
  log "thresholds of the scenario failed for: ${thresholds_failed[*]} (see their .log)"
"$loadgen" compare "${reports[@]}" >"$out_dir/compare.txt"
"$loadgen" report "${reports[@]}" --html "$out_dir/compare.html"
cat "$out_dir/compare.txt"
log "ran: ${ran[*]}"
log "table: $out_dir/compare.txt  HTML: $out_dir/compare.html  reports: ${reports[*]}"
