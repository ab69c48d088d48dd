# shellcheck shell=bash
# Builds the cluster's binaries from their Go modules (deploy/local-cluster/*/go.mod), each into a
# cache directory named by a hash of its module's sources and the Go version: nothing is built
# twice, nothing is downloaded as a binary. Go's own build and module caches make a rebuild after
# a source change cheap too.

# Components and the module directory each is built from: what `up` needs, then what an add-on
# command builds when it is first used (`build` builds both, so CI times them apart).
LC_COMPONENTS=(kubernetes etcd metrics-server coredns pause)
# shellcheck disable=SC2034  # used by deploy/scripts/local-cluster.sh
LC_ADDON_COMPONENTS=(knative)

# source_hash DIR: a hash of what decides the build of module DIR.
source_hash() {
  local dir="$LC_SRC/$1"
  {
    go env GOVERSION GOARCH
    find "$dir" -maxdepth 2 -type f \( -name '*.go' -o -name go.mod -o -name go.sum \) -print0 |
      sort -z | xargs -0 sha256sum | sed "s|$dir/||"
  } | sha256sum | cut -c1-16
}

# bin_dir COMPONENT: where COMPONENT's binaries are (or will be) for the current sources.
bin_dir() { printf '%s/%s-%s\n' "$LC_CACHE" "$1" "$(source_hash "$1")"; }

# with_progress LABEL CMD...: CMD with its output in a log, a line every 30 s while it runs.
with_progress() {
  local label="$1" log started pid rc=0
  shift
  log="$LC_CACHE/build-$label.log"
  started=$SECONDS
  "$@" >"$log" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 5
    if (((SECONDS - started) % 30 < 5)) && kill -0 "$pid" 2>/dev/null; then
      lc_log "  ... still building $label ($((SECONDS - started)) s)"
    fi
  done
  wait "$pid" || rc=$?
  if ((rc != 0)); then
    tail -n 30 "$log" >&2
    lc_die "building $label failed (full log: $log)"
  fi
  lc_log "built $label in $((SECONDS - started)) s"
}

go_build() {
  local module="$1" out="$2"
  shift 2
  (cd "$LC_SRC/$module" && CGO_ENABLED=0 GOFLAGS=-mod=readonly go build -trimpath -o "$out/" "$@")
}

build_component() {
  local component="$1" out tmp
  out="$(bin_dir "$component")"
  [[ -f "$out/.complete" ]] && return 0
  command -v go >/dev/null || lc_die "Go is not installed: the cluster is built from its Go modules"
  mkdir -p "$LC_CACHE"
  tmp="$out.partial"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  case "$component" in
    kubernetes)
      lc_log "building Kubernetes $K8S_VERSION (apiserver, controller-manager, scheduler, kubelet, kube-proxy, kubectl; cold: about 8 min on 2 cores)"
      local minor="${K8S_VERSION#v1.}"
      minor="${minor%%.*}"
      with_progress kubernetes go_build kubernetes "$tmp" -ldflags "-s -w \
        -X k8s.io/component-base/version.gitVersion=$K8S_VERSION \
        -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor \
        -X k8s.io/component-base/version.gitTreeState=clean" \
        k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
        k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet \
        k8s.io/kubernetes/cmd/kube-proxy k8s.io/kubernetes/cmd/kubectl
      ;;
    etcd)
      lc_log "building etcd $ETCD_VERSION"
      with_progress etcd go_build etcd "$tmp" -ldflags "-s -w" .
      ;;
    metrics-server)
      lc_log "building metrics-server $METRICS_SERVER_VERSION (cold: about 2.5 min)"
      with_progress metrics-server go_build metrics-server "$tmp" -ldflags "-s -w \
        -X sigs.k8s.io/metrics-server/pkg/version.gitVersion=$METRICS_SERVER_VERSION" \
        sigs.k8s.io/metrics-server/cmd/metrics-server
      ;;
    coredns)
      lc_log "building CoreDNS $COREDNS_VERSION (kubernetes, bind, cache, health, ready, errors, loadbalance)"
      with_progress coredns go_build coredns "$tmp" -ldflags "-s -w" .
      ;;
    pause)
      with_progress pause go_build pause "$tmp" -ldflags "-s -w" .
      ;;
    knative)
      lc_log "building Knative Serving $KNATIVE_VERSION (controller, webhook, activator, autoscaler, queue-proxy; cold: about 6 min)"
      with_progress knative go_build knative "$tmp" -ldflags "-s -w" \
        knative.dev/serving/cmd/activator knative.dev/serving/cmd/autoscaler \
        knative.dev/serving/cmd/controller knative.dev/serving/cmd/queue knative.dev/serving/cmd/webhook
      ;;
    *) lc_die "unknown component $component" ;;
  esac
  touch "$tmp/.complete"
  rm -rf "$out"
  mv "$tmp" "$out"
}

# build_all: every component, built where missing. Prints nothing when all are cached.
build_all() {
  local component
  for component in "${LC_COMPONENTS[@]}"; do
    build_component "$component"
  done
}

# bin COMPONENT NAME: the path of binary NAME of COMPONENT.
bin() { printf '%s/%s\n' "$(bin_dir "$1")" "$2"; }
