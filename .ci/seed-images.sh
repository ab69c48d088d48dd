#!/usr/bin/env bash
# Seed local stand-ins for the base images the Dockerfile and docker-compose.yml name, without
# any registry, under the project's own names (scalebench-seed/...), never under upstream tags.
#
# CI machines reach crates.io and deb.debian.org but no container registry, so `docker build`
# cannot pull `rust:...` or `gcr.io/distroless/...`. This script builds stand-ins and prints, on
# stdout, which stand-in replaces which upstream reference (`RUST_IMAGE=scalebench-seed/rust:...`).
# The tests pass them to the Dockerfile's build arguments (RUST_IMAGE, RUNTIME_IMAGE) and to
# compose through an override file used only by the tests, so a machine that ran CI still pulls
# the real images for `docker compose up`:
#   - builder  (for ARG RUST_IMAGE):    debootstrap'd bookworm + gcc, libc6-dev + this machine's
#              Rust toolchain under /usr/local + the machine's CA bundle;
#   - runtime  (for ARG RUNTIME_IMAGE): a distroless/static-style tree (CA bundle, passwd/group
#              with nonroot 65532, nsswitch, os-release, tzdata, /tmp), as lean as the real one
#              so the image size measured in CI means something;
#   - prometheus (for compose's tag):   the release compose pins, built from its Go module by
#              scripts/build-prometheus.sh (static, without the embedded web UI), on busybox
#              like the official image (its `sh` and `wget` serve the compose healthcheck).
#              Tagged scalebench-seed/prometheus:v<release>; the in-cluster Prometheus of a local
#              cluster can load the same image (`.ci/seed-images.sh --prometheus` seeds it alone).
# Every stand-in carries the label io.scalebench.stand-in saying what it really is.
# Grafana and Tempo are not seeded: CI never starts them.
#
# Usage: .ci/seed-images.sh             seed (idempotent; FORCE=1 rebuilds), print the mapping
#        .ci/seed-images.sh --prometheus
#                                       seed the Prometheus image only, print PROMETHEUS_IMAGE=...
#        .ci/seed-images.sh --print     print the mapping only
#        .ci/seed-images.sh --stop-dockerd
#                                       stop the dockerd an earlier run of this script started
#                                       (recorded in .ci/cache/dockerd.pid); no other
# When no engine answers, the script starts dockerd and records its pid; whoever called it stops
# it with --stop-dockerd when done (the tests' session finalizer, and .ci/run's exit trap).
# Stand-ins of earlier versions of this script that sit under upstream tags are untagged (only
# images this script made: labelled io.scalebench.stand-in, or a bare `docker import`).
# The debootstrap tarball is cached under .ci/cache/ (gitignored).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CACHE=$ROOT/.ci/cache
mkdir -p "$CACHE"
FORCE=${FORCE:-0}
SUITE=bookworm
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

log() { printf '[seed %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# --- the tags, read from the files that use them (single source of truth) -------------------
arg_default() { sed -n "s/^ARG $1=//p" Dockerfile | head -n1; }
UPSTREAM_RUST=$(arg_default RUST_IMAGE)
UPSTREAM_RUNTIME=$(arg_default RUNTIME_IMAGE)
UPSTREAM_PROMETHEUS=$(sed -n 's/^ *image: *\(prom\/prometheus:[^ ]*\).*/\1/p' docker-compose.yml | head -n1)
for v in UPSTREAM_RUST UPSTREAM_RUNTIME UPSTREAM_PROMETHEUS; do
  [[ -n ${!v} ]] || { log "cannot read $v from Dockerfile/docker-compose.yml"; exit 1; }
done
# The project's own name for the stand-in of an upstream reference: the last path component and
# the tag, under scalebench-seed/ (rust:1.95-slim-bookworm -> scalebench-seed/rust:1.95-slim-bookworm).
seed_name() {
  local repo=${1%:*} tag=${1##*:}
  printf 'scalebench-seed/%s:%s\n' "${repo##*/}" "$tag"
}
RUST_IMAGE=$(seed_name "$UPSTREAM_RUST")
RUNTIME_IMAGE=$(seed_name "$UPSTREAM_RUNTIME")
PROMETHEUS_IMAGE=$(seed_name "$UPSTREAM_PROMETHEUS")
STAND_IN_LABEL=io.scalebench.stand-in

print_mapping() {
  printf 'RUST_IMAGE=%s\nRUNTIME_IMAGE=%s\nPROMETHEUS_IMAGE=%s\n' "$RUST_IMAGE" "$RUNTIME_IMAGE" "$PROMETHEUS_IMAGE"
}

# --- a docker engine that answers ------------------------------------------------------------
DOCKERD_PIDFILE=$CACHE/dockerd.pid
ensure_dockerd() {
  if docker info >/dev/null 2>&1; then return; fi
  command -v dockerd >/dev/null || { log "dockerd not installed (apt-get install docker.io)"; exit 1; }
  log "starting dockerd in the background (log: $CACHE/dockerd.log, pid: $DOCKERD_PIDFILE)"
  rm -f "$DOCKERD_PIDFILE"
  # dockerd writes its own pid there (and removes the file when it exits): --stop-dockerd stops
  # exactly this daemon and no other.
  setsid nohup dockerd --pidfile "$DOCKERD_PIDFILE" >"$CACHE/dockerd.log" 2>&1 </dev/null &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && return
    sleep 1
  done
  log "dockerd did not answer within 60 s; last log lines:"; tail -n 20 "$CACHE/dockerd.log" >&2
  stop_dockerd
  exit 1
}

stop_dockerd() {
  [[ -s $DOCKERD_PIDFILE ]] || { log "no dockerd started by this script is recorded"; return 0; }
  local pid
  pid=$(<"$DOCKERD_PIDFILE")
  if [[ ! $pid =~ ^[0-9]+$ ]] || [[ $(cat "/proc/$pid/comm" 2>/dev/null) != dockerd ]]; then
    log "recorded pid '$pid' is not a running dockerd; nothing to stop"
    rm -f "$DOCKERD_PIDFILE"
    return 0
  fi
  log "stopping the dockerd this script started (pid $pid)"
  kill -TERM "$pid"
  for _ in $(seq 1 60); do
    [[ -d /proc/$pid ]] || { rm -f "$DOCKERD_PIDFILE"; return 0; }
    sleep 0.5
  done
  log "dockerd $pid did not stop within 30 s"
  return 1
}

ONLY=""
case "${1:-}" in
  --print) print_mapping; exit 0 ;;
  --stop-dockerd) stop_dockerd; exit $? ;;
  --prometheus) ONLY=prometheus ;;
  "") ;;
  *) log "unknown argument: $1 (see the header of $0)"; exit 2 ;;
esac

# Earlier versions of this script imported stand-ins under the upstream tags themselves. Untag
# (never force-delete) those, and only those this script made: labelled as a stand-in, or a bare
# `docker import` (one history entry "Imported from -"), which no registry serves for these tags.
untag_legacy_stand_in() {
  local ref=$1 label history
  docker image inspect "$ref" >/dev/null 2>&1 || return 0
  label=$(docker image inspect -f "{{index .Config.Labels \"$STAND_IN_LABEL\"}}" "$ref" 2>/dev/null || true)
  history=$(docker history --no-trunc --format '{{.Comment}}' "$ref" 2>/dev/null || true)
  if [[ ( -n $label && $label != "<no value>" ) || $history == "Imported from -" ]]; then
    log "untagging $ref: a stand-in left by an earlier seed run, not the upstream image"
    docker image rm "$ref" >/dev/null
  fi
}

have_image() { [[ $FORCE != 1 ]] && docker image inspect "$1" >/dev/null 2>&1; }

# --- the debootstrap tarball (cached) ----------------------------------------------------------
MINBASE_TAR=$CACHE/$SUITE-minbase.tar
minbase_tar() {
  if [[ -s $MINBASE_TAR ]]; then return; fi
  local dir
  dir=$(mktemp -d /tmp/seed-debootstrap.XXXXXX)
  log "debootstrap --variant=minbase $SUITE (about 30 s to a few minutes)"
  debootstrap --variant=minbase "$SUITE" "$dir" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
    || { tail -n 20 "$CACHE/debootstrap.log" >&2; rm -rf "$dir"; exit 1; }
  tar -C "$dir" --numeric-owner -cf "$MINBASE_TAR.tmp" .
  mv "$MINBASE_TAR.tmp" "$MINBASE_TAR"
  rm -rf "$dir"
}

WORK=$(mktemp -d /tmp/seed-images.XXXXXX)
cleanup() {
  # A chroot's /proc must be unmounted before the tree can be removed.
  if mountpoint -q "$WORK/builder/proc" 2>/dev/null; then umount "$WORK/builder/proc" || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

unpack_minbase() { mkdir -p "$1" && tar -C "$1" --numeric-owner -xf "$MINBASE_TAR"; }

# --- builder: rootfs + gcc + the machine's Rust toolchain ------------------------------------
seed_builder() {
  have_image "$RUST_IMAGE" && { log "have $RUST_IMAGE"; return; }
  command -v rustc >/dev/null || { log "rustc not found: the builder image copies this machine's toolchain"; exit 1; }
  local sysroot host dir=$WORK/builder
  sysroot=$(rustc --print sysroot)
  host=$(rustc -vV | sed -n 's/^host: //p')
  log "building $RUST_IMAGE from $SUITE minbase + gcc + $(rustc --version) ($sysroot)"
  minbase_tar
  unpack_minbase "$dir"
  cp /etc/resolv.conf "$dir/etc/resolv.conf"
  mount -t proc proc "$dir/proc"
  chroot "$dir" /usr/bin/env DEBIAN_FRONTEND=noninteractive LC_ALL=C \
    sh -c 'apt-get update -qq && apt-get install -y -qq --no-install-recommends gcc libc6-dev >/dev/null && apt-get clean && rm -rf /var/lib/apt/lists/*'
  umount "$dir/proc"
  : >"$dir/etc/resolv.conf"
  # The machine's CA bundle: inside containers TLS to crates.io only verifies with it.
  mkdir -p "$dir/etc/ssl/certs"
  cp /etc/ssl/certs/ca-certificates.crt "$dir/etc/ssl/certs/ca-certificates.crt"
  # The toolchain goes to /usr/local like the standalone installer puts it (rustc finds its
  # sysroot from its own path); CARGO_HOME and PATH match the official rust image.
  install -d "$dir/usr/local/bin" "$dir/usr/local/lib/rustlib" "$dir/usr/local/cargo/bin"
  cp -a "$sysroot/bin/cargo" "$sysroot/bin/rustc" "$sysroot/bin/rustdoc" "$dir/usr/local/bin/"
  cp -a "$sysroot"/lib/*.so* "$dir/usr/local/lib/"
  cp -a "$sysroot/lib/rustlib/$host" "$dir/usr/local/lib/rustlib/"
  [[ -d $sysroot/libexec ]] && cp -a "$sysroot/libexec" "$dir/usr/local/"
  tar -C "$dir" --numeric-owner -c . | docker import \
    --change 'ENV RUSTUP_HOME=/usr/local/rustup' \
    --change 'ENV CARGO_HOME=/usr/local/cargo' \
    --change 'ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' \
    --change "LABEL $STAND_IN_LABEL=\"stand-in for $UPSTREAM_RUST: $SUITE minbase + gcc + $(rustc --version)\"" \
    - "$RUST_IMAGE" >/dev/null
  # rustc finds its libraries through $ORIGIN, which needs /proc: check inside a container.
  docker run --rm "$RUST_IMAGE" sh -c 'rustc --version && cargo --version && gcc --version | head -n1' >&2
  log "seeded $RUST_IMAGE"
}

# --- runtime: a distroless/static-debian12:nonroot stand-in -----------------------------------
seed_runtime() {
  have_image "$RUNTIME_IMAGE" && { log "have $RUNTIME_IMAGE"; return; }
  local src=$WORK/minbase dir=$WORK/runtime
  log "building $RUNTIME_IMAGE (distroless/static-style: CA bundle, nonroot user, tzdata)"
  minbase_tar
  [[ -d $src ]] || unpack_minbase "$src"
  install -d -m 0755 "$dir"/{etc/ssl/certs,usr/share,root,home} "$dir/var/lib"
  install -d -m 1777 "$dir/tmp"
  install -d -m 0700 -o 65532 -g 65532 "$dir/home/nonroot"
  cp /etc/ssl/certs/ca-certificates.crt "$dir/etc/ssl/certs/ca-certificates.crt"
  [[ -d $src/usr/share/zoneinfo ]] && cp -a "$src/usr/share/zoneinfo" "$dir/usr/share/"
  cp "$src/etc/os-release" "$dir/etc/os-release" 2>/dev/null || cp "$src/usr/lib/os-release" "$dir/etc/os-release"
  cat >"$dir/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
EOF
  cat >"$dir/etc/group" <<'EOF'
root:x:0:
nobody:x:65534:
nonroot:x:65532:
EOF
  printf 'hosts: files dns\n' >"$dir/etc/nsswitch.conf"
  cp "$src/etc/services" "$dir/etc/services" 2>/dev/null || true
  tar -C "$dir" --numeric-owner -c . | docker import \
    --change 'USER 65532:65532' \
    --change 'WORKDIR /home/nonroot' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
    --change "LABEL $STAND_IN_LABEL=\"stand-in for $UPSTREAM_RUNTIME: $SUITE files, distroless-style\"" \
    - "$RUNTIME_IMAGE" >/dev/null
  log "seeded $RUNTIME_IMAGE"
}

# --- prometheus: the release scripts/build-prometheus.sh builds, on a busybox base -----------
seed_prometheus() {
  local version built
  version=$(bash scripts/build-prometheus.sh --version)
  [[ $UPSTREAM_PROMETHEUS == prom/prometheus:v$version ]] \
    || { log "docker-compose.yml pins $UPSTREAM_PROMETHEUS but tools/prometheus/go.mod builds $version: pin the same release"; exit 1; }
  local label="Prometheus $version built by scripts/build-prometheus.sh (stand-in for $UPSTREAM_PROMETHEUS)"
  if [[ $FORCE != 1 ]] && [[ $(docker image inspect -f "{{index .Config.Labels \"$STAND_IN_LABEL\"}}" \
      "$PROMETHEUS_IMAGE" 2>/dev/null) == "$label" ]]; then
    log "have $PROMETHEUS_IMAGE"; return
  fi
  built=$(bash scripts/build-prometheus.sh)
  local dir=$WORK/prometheus
  log "building $PROMETHEUS_IMAGE from $built (static, CGO off) on busybox"
  # The official image's layout: busybox, /bin/prometheus and /bin/promtool, the example config,
  # /prometheus owned by nobody. The compose healthcheck (a CMD-SHELL reading the password file,
  # then `wget`) uses busybox's sh and wget, as it does in the official image.
  install -d "$dir/bin" "$dir/etc/prometheus" "$dir/etc/ssl/certs"
  install -d -m 1777 "$dir/tmp"
  install -m 0755 "$built/prometheus" "$built/promtool" "$dir/bin/"
  cp /etc/ssl/certs/ca-certificates.crt "$dir/etc/ssl/certs/ca-certificates.crt"
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n' >"$dir/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\n' >"$dir/etc/group"
  printf 'hosts: files dns\n' >"$dir/etc/nsswitch.conf"
  # The example config upstream ships: Prometheus scraping itself.
  cat >"$dir/etc/prometheus/prometheus.yml" <<'YAML'
global:
  scrape_interval: 15s
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ["localhost:9090"]
YAML
  install -d -m 0775 -o 65534 -g 65534 "$dir/prometheus"
  (cd "$WORK" && apt-get download busybox-static >/dev/null 2>&1) \
    || { log "apt-get download busybox-static failed (apt-get update first?)"; exit 1; }
  local bbs=("$WORK"/busybox-static_*.deb)
  mkdir -p "$WORK/busybox-deb" && dpkg-deb -x "${bbs[0]}" "$WORK/busybox-deb"
  cp "$WORK/busybox-deb/bin/busybox" "$dir/bin/busybox"
  local applet
  for applet in sh wget cat ls; do ln -s busybox "$dir/bin/$applet"; done
  chroot "$dir" /bin/prometheus --version >/dev/null
  chroot "$dir" /bin/promtool check config /etc/prometheus/prometheus.yml >/dev/null
  chroot "$dir" /bin/wget --help >/dev/null 2>&1
  # shellcheck disable=SC2016  # expanded by the stand-in's sh
  chroot "$dir" /bin/sh -c 'read -r x </etc/passwd && [ -n "$x" ]'
  # Same interface as the official image: entrypoint, default flags, user, data dir.
  tar -C "$dir" --numeric-owner -c . | docker import \
    --change "LABEL $STAND_IN_LABEL=\"$label\"" \
    --change 'USER 65534:65534' \
    --change 'WORKDIR /prometheus' \
    --change 'EXPOSE 9090' \
    --change 'VOLUME ["/prometheus"]' \
    --change 'ENV PATH=/bin' \
    --change 'ENTRYPOINT ["/bin/prometheus"]' \
    --change 'CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]' \
    - "$PROMETHEUS_IMAGE" >/dev/null
  log "seeded $PROMETHEUS_IMAGE"
}

ensure_dockerd
if [[ $ONLY == prometheus ]]; then
  untag_legacy_stand_in "$UPSTREAM_PROMETHEUS"
  seed_prometheus
  printf 'PROMETHEUS_IMAGE=%s\n' "$PROMETHEUS_IMAGE"
  exit 0
fi
for upstream in "$UPSTREAM_RUST" "$UPSTREAM_RUNTIME" "$UPSTREAM_PROMETHEUS"; do
  untag_legacy_stand_in "$upstream"
done
seed_runtime
seed_prometheus
seed_builder
docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' \
  | grep -F -e "$RUST_IMAGE" -e "$RUNTIME_IMAGE" -e "$PROMETHEUS_IMAGE" >&2 || true
print_mapping
