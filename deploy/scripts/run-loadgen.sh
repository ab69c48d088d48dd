#!/usr/bin/env bash
# Run the loadgen Job (three clients) against the deployed workload and collect the reports.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<USAGE
Usage: deploy/scripts/run-loadgen.sh [--scenario FILE] [--remote-write URL [--remote-write-password-file FILE]]
                                     [--start-delay SECONDS] [--timeout SECONDS] [--out-dir DIR]

Replaces the Job $NAMESPACE/loadgen with a fresh run of deploy/loadgen (3 pods, each running
loadgen against http://workload.$NAMESPACE.svc:8080, watching deployment/workload and its HPA),
waits until it completes or fails, and writes each client's JSON report (from its log: the Job
runs \`loadgen --out -\`) and full log to DIR/<deployment>-<UTC time>/.
Apply a workload overlay first (deploy/scripts/apply.sh); its deployment label
(k8s-single | k8s-hpa) labels the loadgen's metrics and names the report directory.

  --scenario FILE     a scenario file name from loadgen/scenarios/ or deploy/loadgen/scenarios/
                      (default: k8s-ramp.yaml: docker-ramp.yaml split over the 3 clients)
  --remote-write URL  also push the clients' metrics to this Prometheus remote-write endpoint,
                      e.g. the compose stack's from Minikube's docker driver:
                      http://host.minikube.internal:9090/api/v1/write (publish it beyond
                      127.0.0.1 first, with basic auth: PROMETHEUS_BIND=0.0.0.0 make up)
  --remote-write-password-file FILE
                      push as user $REMOTE_WRITE_USER with the password in FILE (default:
                      $SECRETS_DIR/prometheus-password when it exists, the compose
                      stack's); it reaches the clients as Secret loadgen-remote-write
  --start-delay SECONDS
                      the clients wait until this long after the Job is applied, then start
                      together (loadgen --start-at), so the merged run is not stretched by
                      pods that started seconds apart (default 30; 0 = each starts at once).
                      A client that starts over 60 s after that moment fails (exit 2): raise
                      it when images must be pulled
  --timeout SECONDS   give up waiting after this long (default 1800)
  --out-dir DIR       where reports go (default: reports/ at the repository root)
  -h, --help          this help
USAGE
}

scenario=""
remote_write=""
password_file=""
start_delay=30
timeout=1800
out_dir="$SCALEBENCH_ROOT/reports"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --scenario) scenario="${2:?--scenario needs a value}"; shift 2 ;;
    --remote-write) remote_write="${2:?--remote-write needs a value}"; shift 2 ;;
    --remote-write-password-file) password_file="${2:?--remote-write-password-file needs a value}"; shift 2 ;;
    --start-delay) start_delay="${2:?--start-delay needs a value}"; shift 2 ;;
    --timeout) timeout="${2:?--timeout needs a value}"; shift 2 ;;
    --out-dir) out_dir="${2:?--out-dir needs a value}"; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
[[ "$timeout" =~ ^[0-9]+$ ]] || die "--timeout is a number of seconds, not '$timeout'"
[[ "$start_delay" =~ ^[0-9]+$ && "$start_delay" -le 3600 ]] ||
  die "--start-delay is a number of seconds up to 3600, not '$start_delay'"
if [[ -n "$scenario" ]]; then
  [[ "$scenario" =~ ^[A-Za-z0-9._-]+$ ]] || die "--scenario is a file name, not '$scenario'"
  [[ -f "$SCALEBENCH_ROOT/loadgen/scenarios/$scenario" || -f "$DEPLOY_DIR/loadgen/scenarios/$scenario" ]] ||
    die "no scenario $scenario in loadgen/scenarios/ or deploy/loadgen/scenarios/"
fi
[[ -z "$remote_write" || "$remote_write" =~ ^https?://[^/]+ ]] ||
  die "--remote-write is an http:// or https:// URL, not '$remote_write'"
if [[ -n "$password_file" ]]; then
  [[ -n "$remote_write" ]] || die "--remote-write-password-file needs --remote-write"
  [[ -s "$password_file" ]] || die "--remote-write-password-file: no password in '$password_file'"
elif [[ -n "$remote_write" && -s "$SECRETS_DIR/prometheus-password" ]]; then
  password_file="$SECRETS_DIR/prometheus-password"
fi
need kubectl awk

deployment_label="$(kubectl -n "$NAMESPACE" get configmap scalebench-deployment \
  -o jsonpath='{.data.deployment}' 2>/dev/null)" ||
  die "no workload deployed in $NAMESPACE: run deploy/scripts/apply.sh OVERLAY first"

# A Job's pod template is immutable: every run is a new Job.
kubectl -n "$NAMESPACE" delete job loadgen --ignore-not-found --cascade=foreground --wait=true

dir="$DEPLOY_DIR/loadgen"
# Where the clients read the remote-write password (loadgen --remote-write-password-file).
password_mount=/var/run/secrets/scalebench/remote-write
if [[ -n "$password_file" ]]; then
  apply_secret_from_file loadgen-remote-write password "$password_file"
  log "Secret loadgen-remote-write holds the password of $password_file"
fi
if [[ -n "$scenario" || -n "$remote_write" || "$start_delay" -gt 0 ]]; then
  # A throw-away overlay that only changes which scenario the clients run, when they start and
  # where they push.
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  {
    printf 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - %s\n' \
      "$(realpath --relative-to="$tmp" "$DEPLOY_DIR/loadgen")"
    if [[ -n "$scenario" || "$start_delay" -gt 0 ]]; then
      printf 'configMapGenerator:\n  - name: loadgen-run\n    behavior: merge\n    literals:\n'
      [[ -z "$scenario" ]] || printf '      - scenario=%s\n' "$scenario"
      # Unix seconds, UTC by definition: the clients' clocks need no time zone.
      [[ "$start_delay" -eq 0 ]] || printf '      - start_at=%s\n' "$(($(date +%s) + start_delay))"
    fi
    if [[ -n "$remote_write" ]]; then
      # loadgen reads LOADGEN_REMOTE_WRITE as --remote-write.
      printf 'patches:\n  - target: {kind: Job, name: loadgen}\n    patch: |-\n'
      printf '      - op: add\n        path: /spec/template/spec/containers/0/env/-\n'
      printf '        value: {name: LOADGEN_REMOTE_WRITE, value: "%s"}\n' "$remote_write"
      if [[ -n "$password_file" ]]; then
        # Basic auth: the user on the command line, the password from the mounted Secret.
        printf '      - op: add\n        path: /spec/template/spec/containers/0/args/-\n        value: %s\n' \
          --remote-write-user "$REMOTE_WRITE_USER" --remote-write-password-file "$password_mount/password"
        printf '      - op: add\n        path: /spec/template/spec/volumes/-\n'
        printf '        value: {name: remote-write, secret: {secretName: loadgen-remote-write, defaultMode: 292}}  # 0444: the pod runs as 65532 without fsGroup\n'
        printf '      - op: add\n        path: /spec/template/spec/containers/0/volumeMounts/-\n'
        printf '        value: {name: remote-write, mountPath: %s, readOnly: true}\n' "$password_mount"
      fi
    fi
  } >"$tmp/kustomization.yaml"
  dir="$tmp"
fi
log "starting loadgen (deployment=$deployment_label${scenario:+, scenario=$scenario}${remote_write:+, pushing to $remote_write}; clients start together in ${start_delay}s)"
render "$dir" | apply_rendered
job_uid="$(kubectl -n "$NAMESPACE" get job loadgen -o jsonpath='{.metadata.uid}')"

deadline=$((SECONDS + timeout))
state=""
while [[ $SECONDS -lt $deadline ]]; do
  state="$(kubectl -n "$NAMESPACE" get job loadgen \
    -o jsonpath='{range .status.conditions[?(@.status=="True")]}{.type}{" "}{end}')"
  case "$state" in
    *Complete*) break ;;
    *Failed*) break ;;
  esac
  printf '.' >&2
  sleep 5
done
printf '\n' >&2
[[ "$state" == *Complete* || "$state" == *Failed* ]] || log "timed out after ${timeout}s; collecting what there is"

run_dir="$out_dir/$deployment_label-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$run_dir"
pods="$(kubectl -n "$NAMESPACE" get pods -l "batch.kubernetes.io/controller-uid=$job_uid" \
  -o jsonpath='{range .items[*]}{.metadata.name}{" "}{.metadata.annotations.batch\.kubernetes\.io/job-completion-index}{"\n"}{end}')"
collected=0
while read -r pod index; do
  [[ -n "$pod" ]] || continue
  kubectl -n "$NAMESPACE" logs "$pod" >"$run_dir/client-$index.log" || true
  if extract_report <"$run_dir/client-$index.log" >"$run_dir/client-$index.json"; then
    collected=$((collected + 1))
    log "report: $run_dir/client-$index.json"
  else
    rm -f "$run_dir/client-$index.json"
    log "no JSON report in $pod's log (see $run_dir/client-$index.log)"
  fi
done <<<"$pods"

log "$collected report(s) in $run_dir; job state: ${state:-unknown}"
if [[ "$collected" -gt 0 ]]; then
  # The clients' histograms add up exactly into one report of the whole run.
  merger=""
  for candidate in "$(command -v loadgen || true)" \
    "$SCALEBENCH_ROOT/target/release/loadgen" "$SCALEBENCH_ROOT/target/debug/loadgen"; do
    if [[ -n "$candidate" && -x "$candidate" ]]; then
      merger="$candidate"
      break
    fi
  done
  if [[ -n "$merger" ]]; then
    "$merger" merge "$run_dir"/client-*.json --out "$run_dir/merged.json" >&2 ||
      log "loadgen merge failed; the per-client reports are intact"
    # The clients run --quiet (their summaries would interleave with the reports in the logs):
    # their figures side by side, and the merged run's, from the reports.
    [[ ! -f "$run_dir/merged.json" ]] || "$merger" compare "$run_dir"/client-*.json "$run_dir/merged.json" >&2 || true
  else
    log "merge them with: cargo run -q -p loadgen -- merge $run_dir/client-*.json --out $run_dir/merged.json"
  fi
fi
[[ "$state" == *Complete* && "$collected" -eq 3 ]]
