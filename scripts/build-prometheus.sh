#!/usr/bin/env bash
# Builds `prometheus` and `promtool` of the release tools/prometheus/go.mod requires, from the Go
# module proxy, and prints the directory that holds them (stdout, one line; progress on stderr).
#
# Why build: Debian ships Prometheus 2.x while users, compose and the cluster run 3.x, and PromQL
# changed between them; no container registry or release download is reachable here, the Go
# module proxy is. The binaries are what upstream's release builds are, less the embedded web UI
# (the `builtinassets` tag needs npm-built assets): the HTTP API, rules, alerts, remote write and
# native histograms are all there, and `/` answers without the React pages.
#
# Cached: .ci/cache/prometheus-<version>/ (gitignored) is reused when both binaries are there
# and say that version (FORCE=1 rebuilds); Go's build and module caches are the user's usual
# ones, so a rebuild after a bump recompiles only what changed. Concurrent callers (parallel test
# sessions, .ci/run) wait on one lock instead of building twice.
#
# Usage: scripts/build-prometheus.sh            build if needed, print the directory
#        scripts/build-prometheus.sh --version  print the release (e.g. 3.16.0) only
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MODULE_DIR=$ROOT/tools/prometheus
FORCE=${FORCE:-0}

log() { printf '[build-prometheus %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "$*"; exit 1; }

# --- the release: read from go.mod's require line (v0.316.0 -> 3.16.0) -----------------------
MODULE_VERSION=$(sed -n 's#^[[:space:]]*github.com/prometheus/prometheus \(v0\.[0-9]*\.[0-9]*\)\( .*\)\?$#\1#p' \
  "$MODULE_DIR/go.mod" | head -n1)
[[ $MODULE_VERSION =~ ^v0\.([0-9]+)([0-9][0-9])\.([0-9]+)$ ]] \
  || die "cannot read a v0.3XX.Y requirement of github.com/prometheus/prometheus from $MODULE_DIR/go.mod"
VERSION="${BASH_REMATCH[1]}.$((10#${BASH_REMATCH[2]})).${BASH_REMATCH[3]}"

case "${1:-}" in
  --version) printf '%s\n' "$VERSION"; exit 0 ;;
  "") ;;
  *) die "unknown argument: $1 (see the header of $0)" ;;
esac

OUT=$ROOT/.ci/cache/prometheus-$VERSION
mkdir -p "$ROOT/.ci/cache"

built() {
  [[ -x $OUT/prometheus && -x $OUT/promtool ]] \
    && "$OUT/prometheus" --version 2>&1 | grep -q "version $VERSION " \
    && "$OUT/promtool" --version 2>&1 | grep -q "version $VERSION "
}

exec 9>"$ROOT/.ci/cache/prometheus-build.lock"
flock 9
if [[ $FORCE != 1 ]] && built; then
  log "have Prometheus $VERSION in $OUT"
  printf '%s\n' "$OUT"
  exit 0
fi

command -v go >/dev/null || die "go is not installed (the Go toolchain builds Prometheus from its module)"
# go.mod's `go` line is the oldest toolchain the module accepts; a newer module than this
# machine's Go needs GOTOOLCHAIN set to a release the proxy serves (e.g. go1.27.3).
log "building Prometheus $VERSION (module $MODULE_VERSION) with $(go version | cut -d' ' -f3), CGO off; a cold build takes minutes"
TMP=$(mktemp -d "$ROOT/.ci/cache/prometheus-$VERSION.tmp.XXXXXX")
chmod 0755 "$TMP"
trap 'rm -rf "$TMP"' EXIT
PKG=github.com/prometheus/common/version
# What upstream's promu stamps; the module zip carries no VCS revision, so the module version
# stands in for it.
LDFLAGS="-s -w -X $PKG.Version=$VERSION -X $PKG.Revision=$MODULE_VERSION -X $PKG.Branch=HEAD"
LDFLAGS+=" -X $PKG.BuildUser=scalebench@build-prometheus.sh -X $PKG.BuildDate=$(date -u +%Y%m%d-%H:%M:%S)"
for cmd in prometheus promtool; do
  log "go build ./cmd/$cmd"
  CGO_ENABLED=0 go build -C "$MODULE_DIR" -mod=readonly -trimpath -tags netgo -ldflags "$LDFLAGS" \
    -o "$TMP/$cmd" "github.com/prometheus/prometheus/cmd/$cmd"
done
rm -rf "$OUT"
mv "$TMP" "$OUT"
trap - EXIT
built || die "the binaries in $OUT do not report version $VERSION"
log "built $("$OUT/prometheus" --version 2>&1 | head -n1) in $OUT"
printf '%s\n' "$OUT"
