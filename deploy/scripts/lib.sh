# shellcheck shell=bash
# shellcheck disable=SC2034  # the variables are used by the scripts that source this file
# Shared by the deploy scripts: paths, names, and the one way this repository renders kustomize.
#
# deploy/monitoring and deploy/loadgen generate ConfigMaps from files outside their kustomization
# roots (prometheus/rules, grafana/, loadgen/scenarios), which kustomize refuses by default; every
# render here (and in tests/system/test_manifests.py) therefore passes
# `--load-restrictor LoadRestrictionsNone`. Output is applied server-side: no last-applied
# annotation, so the dashboards ConfigMap is not bound by its 256 KiB limit.

SCALEBENCH_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DEPLOY_DIR="$SCALEBENCH_ROOT/deploy"
# Fixed in every kustomization (`namespace: scalebench`).
NAMESPACE=scalebench
# The image tag every manifest pins (tests/system/test_manifests.py checks they agree).
SCALEBENCH_VERSION=0.1.0
WORKLOAD_IMAGE="scalebench/workload:$SCALEBENCH_VERSION"
LOADGEN_IMAGE="scalebench/loadgen:$SCALEBENCH_VERSION"
MINIKUBE_PROFILE="${MINIKUBE_PROFILE:-scalebench}"
FIELD_MANAGER=scalebench
# Where scripts/compose-secrets.sh keeps the compose stack's passwords (docs/security.md).
SECRETS_DIR="${SCALEBENCH_SECRETS_DIR:-$SCALEBENCH_ROOT/.secrets}"
# The user the compose Prometheus accepts remote writes from when published beyond 127.0.0.1.
REMOTE_WRITE_USER=scalebench

log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

need() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed (see the README's Minikube walkthrough)"
  done
}

# render DIR: the manifests of a kustomization directory on stdout.
render() {
  kubectl kustomize --load-restrictor LoadRestrictionsNone "$1"
}

# apply_rendered: server-side apply of manifests read from stdin.
apply_rendered() {
  kubectl apply --server-side --force-conflicts --field-manager="$FIELD_MANAGER" -f -
}

# random_password: 192 random bits as 48 hex digits.
random_password() { od -An -N24 -tx1 /dev/urandom | tr -d ' \n'; }

# apply_secret_from_file NAME KEY FILE: Secret NAME holding FILE's content under KEY, applied
# server-side. The value goes through a file, never a command line.
apply_secret_from_file() {
  kubectl -n "$NAMESPACE" create secret generic "$1" --from-file="$2=$3" --dry-run=client -o yaml |
    apply_rendered >/dev/null
}

ensure_namespace() {
  kubectl create namespace "$NAMESPACE" --dry-run=client -o yaml | apply_rendered >/dev/null
}

# extract_report < LOG: the JSON report out of a loadgen pod's log. `kubectl logs` interleaves
# stdout (the report, `--out -`) with stderr (progress, summary, log lines). The report is the
# object whose first key is "schema_version": either one compact line, or pretty-printed from a
# line `{` to the first line `}` at column 0 (nested braces are indented). Exit 1 if absent.
extract_report() {
  awk '
    state == 0 && /^\{"schema_version":/ { print; found = 1; exit }
    state == 0 && /^\{[[:space:]]*$/ { held = $0; state = 1; next }
    state == 1 && /^[[:space:]]+"schema_version":/ { print held; print; state = 2; next }
    state == 1 { state = 0; if ($0 ~ /^\{[[:space:]]*$/) { held = $0; state = 1 }; next }
    state == 2 { print; if ($0 ~ /^\}[[:space:]]*$/) { found = 1; exit } }
    END { exit found ? 0 : 1 }'
}
