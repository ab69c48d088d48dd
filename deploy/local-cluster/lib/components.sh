# shellcheck shell=bash
# The cluster's processes: their configuration files, how each is started in the namespace, and
# how `down` stops exactly those. Every process gets a pid file holding its pid and executable, so
# a stale file never leads to killing an unrelated process that reused the pid.

# --- processes -------------------------------------------------------------------------------

# start_proc NAME EXE ARGS...: EXE in the namespace, in a session of its own (so the cluster
# outlives the shell that started it), output in logs/NAME.log.
start_proc() {
  local name="$1" exe="$2" pid
  shift 2
  mkdir -p "$LC_LOGS" "$LC_PIDS"
  # nsenter and setsid exec (no fork): $! is the component's own pid.
  nsenter --net="$LC_NETNS_PATH" -- setsid "$exe" "$@" >>"$LC_LOGS/$name.log" 2>&1 </dev/null &
  pid=$!
  printf '%s %s\n' "$pid" "$exe" >"$LC_PIDS/$name.pid"
}

# proc_alive NAME: the process a pid file names is running and is still that executable.
proc_alive() {
  local file="$LC_PIDS/$1.pid" pid exe
  [[ -f "$file" ]] || return 1
  read -r pid exe <"$file"
  [[ -n "$pid" && "$(readlink "/proc/$pid/exe" 2>/dev/null)" == "$exe" ]]
}

# stop_proc NAME: SIGTERM, then SIGKILL after 10 s; only the process its pid file names.
stop_proc() {
  local file="$LC_PIDS/$1.pid" pid exe waited=0
  [[ -f "$file" ]] || return 0
  read -r pid exe <"$file"
  if proc_alive "$1"; then
    kill -TERM "$pid" 2>/dev/null || true
    while proc_alive "$1" && ((waited < 100)); do
      sleep 0.1
      waited=$((waited + 1))
    done
    if proc_alive "$1"; then kill -KILL "$pid" 2>/dev/null || true; fi
  fi
  rm -f "$file"
}

# dead_procs: the components started so far whose process has exited.
dead_procs() {
  local file name
  for file in "$LC_PIDS"/*.pid; do
    [[ -f "$file" ]] || continue
    name="$(basename "$file" .pid)"
    proc_alive "$name" || printf '%s ' "$name"
  done
}

# wait_for WHAT SECONDS CMD...: CMD until it succeeds; dies with the components' log tails when
# the time is up or a component has exited meanwhile.
wait_for() {
  local what="$1" limit="$2" started=$SECONDS dead
  shift 2
  until "$@" >/dev/null 2>&1; do
    dead="$(dead_procs)"
    if ((SECONDS - started >= limit)) || [[ -n "$dead" ]]; then
      lc_log "$what not ready after $((SECONDS - started)) s${dead:+; exited: $dead}"
      local log
      for log in "$LC_LOGS"/*.log; do
        [[ -f "$log" ]] || continue
        printf -- '--- %s (last 15 lines)\n' "$log" >&2
        tail -n 15 "$log" >&2
      done
      lc_die "$what did not become ready"
    fi
    sleep 1
  done
  lc_log "$what ready ($((SECONDS - started)) s)"
}

# --- etcd ------------------------------------------------------------------------------------
start_etcd() {
  mkdir -p "$LC_STATE/etcd"
  chmod 0700 "$LC_STATE/etcd"
  # Plain HTTP on the namespace's loopback: only the apiserver, beside it, talks to etcd.
  start_proc etcd "$(bin etcd etcd)" --name scalebench --data-dir "$LC_STATE/etcd" \
    --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster scalebench=http://127.0.0.1:2380 --listen-metrics-urls http://127.0.0.1:2381 \
    --quota-backend-bytes 2147483648 --log-level warn
  wait_for etcd 60 in_ns curl -fsS http://127.0.0.1:2381/health
}

# --- control plane ---------------------------------------------------------------------------
start_apiserver() {
  start_proc kube-apiserver "$(bin kubernetes kube-apiserver)" \
    --etcd-servers=http://127.0.0.1:2379 \
    --advertise-address="$LC_NODE_IP" --bind-address=0.0.0.0 --secure-port="$LC_APISERVER_PORT" \
    --service-cluster-ip-range="$LC_SERVICE_CIDR" --service-node-port-range=30000-32767 \
    --client-ca-file="$LC_PKI/ca.crt" \
    --tls-cert-file="$LC_PKI/apiserver.crt" --tls-private-key-file="$LC_PKI/apiserver.key" \
    --kubelet-client-certificate="$LC_PKI/apiserver-kubelet-client.crt" \
    --kubelet-client-key="$LC_PKI/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority="$LC_PKI/ca.crt" \
    --kubelet-preferred-address-types=InternalIP \
    --service-account-issuer="https://kubernetes.default.svc.$LC_CLUSTER_DOMAIN" \
    --service-account-key-file="$LC_PKI/sa.pub" --service-account-signing-key-file="$LC_PKI/sa.key" \
    --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
    --allow-privileged=true \
    --requestheader-client-ca-file="$LC_PKI/front-proxy-ca.crt" \
    --requestheader-allowed-names=front-proxy-client \
    --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
    --requestheader-extra-headers-prefix=X-Remote-Extra- \
    --proxy-client-cert-file="$LC_PKI/front-proxy-client.crt" \
    --proxy-client-key-file="$LC_PKI/front-proxy-client.key" \
    --profiling=false --v=1
  wait_for kube-apiserver 120 lc_kubectl get --raw /readyz
}

start_controller_manager() {
  local kc="$LC_PKI/controller-manager.kubeconfig"
  # The HPA syncs every 5 s (upstream: 15 s) so a short CI run sees it act; everything else is
  # upstream's default.
  start_proc kube-controller-manager "$(bin kubernetes kube-controller-manager)" \
    --kubeconfig="$kc" --authentication-kubeconfig="$kc" --authorization-kubeconfig="$kc" \
    --bind-address=127.0.0.1 --leader-elect=false --cluster-name=scalebench \
    --root-ca-file="$LC_PKI/ca.crt" --service-account-private-key-file="$LC_PKI/sa.key" \
    --use-service-account-credentials=true --service-cluster-ip-range="$LC_SERVICE_CIDR" \
    --horizontal-pod-autoscaler-sync-period=5s --profiling=false --v=1
}

start_scheduler() {
  local kc="$LC_PKI/scheduler.kubeconfig"
  start_proc kube-scheduler "$(bin kubernetes kube-scheduler)" \
    --kubeconfig="$kc" --authentication-kubeconfig="$kc" --authorization-kubeconfig="$kc" \
    --bind-address=127.0.0.1 --leader-elect=false --profiling=false --v=1
}

# --- containerd ------------------------------------------------------------------------------
write_containerd_config() {
  mkdir -p "$LC_ETC" "$LC_STATE/cni/net.d" "$LC_STATE/containerd"
  cat >"$LC_ETC/containerd.toml" <<EOF
# Debian's containerd, its own root, state and socket beside any Docker's (generated by
# deploy/scripts/local-cluster.sh).
version = 2
root = "$LC_STATE/containerd/root"
state = "$LC_STATE/containerd/state"
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]

[grpc]
  address = "$CONTAINERD_SOCK"

[ttrpc]
  address = "$CONTAINERD_SOCK.ttrpc"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$LC_PAUSE_IMAGE"
  # Root here lacks CAP_SYS_RESOURCE: without this every sandbox fails with "can't get final
  # child's PID from pipe: EOF" (runc cannot lower oom_score_adj below its own).
  restrict_oom_score_adj = true
  disable_apparmor = true
  # Pod network namespaces under our state, not /run/netns: \`down\` finds and removes them all.
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$LC_STATE/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$LC_STATE/cni/net.d"
EOF
  # One bridge for the node's pods; no masquerade (there is nowhere to masquerade to).
  cat >"$LC_STATE/cni/net.d/10-scalebench.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "scalebench-cluster",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$LC_CNI_BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$LC_POD_CIDR"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "$LC_STATE/cni/ipam"
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
}

start_containerd() {
  write_containerd_config
  start_proc containerd "$(command -v containerd)" --config "$LC_ETC/containerd.toml" --log-level warn
  wait_for containerd 60 ctr --address "$CONTAINERD_SOCK" version
}

# --- node ------------------------------------------------------------------------------------

# cgroup_root_up / cgroup_root_down: LC_CGROUP_ROOT in every cgroup v1 hierarchy; the kubelet
# makes its pods' cgroups under it. cpuset needs its cpus and mems set before it takes tasks.
cgroup_hierarchies() {
  local dir
  for dir in /sys/fs/cgroup/*/; do
    [[ -f "$dir/cgroup.procs" && "$dir" != */unified/ ]] && printf '%s\n' "${dir%/}"
  done
}

cgroup_root_up() {
  local h
  while read -r h; do
    mkdir -p "$h$LC_CGROUP_ROOT"
    if [[ "$h" == */cpuset ]]; then
      cat "$h/cpuset.cpus" >"$h$LC_CGROUP_ROOT/cpuset.cpus"
      cat "$h/cpuset.mems" >"$h$LC_CGROUP_ROOT/cpuset.mems"
    fi
  done < <(cgroup_hierarchies)
}

# cgroup_pids: every process in a cgroup under LC_CGROUP_ROOT (the pods' processes).
cgroup_pids() {
  local h
  while read -r h; do
    [[ -d "$h$LC_CGROUP_ROOT" ]] || continue
    find "$h$LC_CGROUP_ROOT" -name cgroup.procs -exec cat {} + 2>/dev/null
  done < <(cgroup_hierarchies) | sort -u
}

cgroup_root_down() {
  local h pids _
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    pids="$(cgroup_pids)"
    [[ -n "$pids" ]] || break
    # shellcheck disable=SC2086  # one pid per word
    kill -KILL $pids 2>/dev/null || true
    sleep 0.5
  done
  while read -r h; do
    [[ -d "$h$LC_CGROUP_ROOT" ]] || continue
    # Leaves first: a cgroup directory goes only once it has no children and no tasks.
    find "$h$LC_CGROUP_ROOT" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done < <(cgroup_hierarchies)
}

write_kubelet_config() {
  mkdir -p "$LC_ETC" "$LC_STATE/kubelet"
  # Pods resolve through CoreDNS only; the node's own resolver is never handed to them.
  : >"$LC_ETC/resolv.conf"
  cat >"$LC_ETC/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# containerd 1.6 has no RuntimeConfig RPC to tell the driver; cgroup v1 here: cgroupfs.
cgroupDriver: cgroupfs
cgroupRoot: $LC_CGROUP_ROOT
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
failSwapOn: false
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $LC_PKI/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: $LC_PKI/kubelet.crt
tlsPrivateKeyFile: $LC_PKI/kubelet.key
clusterDNS: [$LC_DNS_IP]
clusterDomain: $LC_CLUSTER_DOMAIN
resolvConf: $LC_ETC/resolv.conf
# A shared development machine: never evict for disk or memory pressure the host itself causes,
# and never collect images (nothing could pull them back).
evictionHard: {memory.available: "0%", nodefs.available: "0%", nodefs.inodesFree: "0%", imagefs.available: "0%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
rotateCertificates: false
serverTLSBootstrap: false
EOF
}

start_kubelet() {
  write_kubelet_config
  cgroup_root_up
  # --containerd: cAdvisor reads container names and labels from containerd; without it the
  # kubelet reports only pod-level cgroups (container="") and per-container panels stay empty.
  start_proc kubelet "$(bin kubernetes kubelet)" \
    --config="$LC_ETC/kubelet.yaml" --kubeconfig="$LC_PKI/kubelet-client.kubeconfig" \
    --root-dir="$LC_STATE/kubelet" --cert-dir="$LC_STATE/kubelet/pki" \
    --hostname-override="$LC_NODE_NAME" --node-ip="$LC_NODE_IP" \
    --containerd="$CONTAINERD_SOCK" --v=1
}

node_ready() {
  [[ "$(lc_kubectl get node "$LC_NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" == True ]]
}

start_kube_proxy() {
  cat >"$LC_ETC/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $LC_PKI/kube-proxy.kubeconfig}
mode: iptables
clusterCIDR: $LC_CLUSTER_CIDR
hostnameOverride: $LC_NODE_NAME
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
# Leave the kernel's conntrack settings as they are (they are not the namespace's to change).
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
iptables: {localhostNodePorts: false}
EOF
  start_proc kube-proxy "$(bin kubernetes kube-proxy)" --config="$LC_ETC/kube-proxy.yaml" --v=1
  wait_for kube-proxy 60 in_ns curl -fsS http://127.0.0.1:10256/healthz
}

# --- add-ons: CoreDNS and metrics-server, as processes on the node behind Services ---------
apply_addon_objects() {
  local ca_bundle
  ca_bundle="$(base64 -w0 <"$LC_PKI/ca.crt")"
  lc_kubectl apply --server-side --field-manager=scalebench-local-cluster -f "$LC_SRC/manifests/cluster-addons-rbac.yaml" >/dev/null
  # Services without selectors, their endpoints the node's address, where the processes listen.
  lc_kubectl apply --server-side --field-manager=scalebench-local-cluster -f - >/dev/null <<EOF
apiVersion: v1
kind: Service
metadata: {name: kube-dns, namespace: kube-system, labels: {k8s-app: kube-dns}}
spec:
  clusterIP: $LC_DNS_IP
  ports:
    - {name: dns, port: 53, protocol: UDP, targetPort: 53}
    - {name: dns-tcp, port: 53, protocol: TCP, targetPort: 53}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: kube-dns-node
  namespace: kube-system
  labels: {kubernetes.io/service-name: kube-dns, endpointslice.kubernetes.io/managed-by: scalebench-local-cluster}
addressType: IPv4
endpoints:
  - addresses: ["$LC_NODE_IP"]
    conditions: {ready: true}
ports:
  - {name: dns, port: 53, protocol: UDP}
  - {name: dns-tcp, port: 53, protocol: TCP}
---
apiVersion: v1
kind: Service
metadata: {name: metrics-server, namespace: kube-system, labels: {k8s-app: metrics-server}}
spec:
  ports:
    - {name: https, port: 443, protocol: TCP, targetPort: $LC_METRICS_SERVER_PORT}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: metrics-server-node
  namespace: kube-system
  labels: {kubernetes.io/service-name: metrics-server, endpointslice.kubernetes.io/managed-by: scalebench-local-cluster}
addressType: IPv4
endpoints:
  - addresses: ["$LC_NODE_IP"]
    conditions: {ready: true}
ports:
  - {name: https, port: $LC_METRICS_SERVER_PORT, protocol: TCP}
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: v1beta1.metrics.k8s.io}
spec:
  group: metrics.k8s.io
  version: v1beta1
  groupPriorityMinimum: 100
  versionPriority: 100
  caBundle: $ca_bundle
  service: {name: metrics-server, namespace: kube-system, port: 443}
EOF
}

start_coredns() {
  cat >"$LC_ETC/Corefile" <<EOF
# cluster.local only: no forward plugin, so no query leaves the namespace.
.:53 {
    bind $LC_NODE_IP
    errors
    health 127.0.0.1:8181
    ready 127.0.0.1:8182
    kubernetes $LC_CLUSTER_DOMAIN in-addr.arpa ip6.arpa {
        kubeconfig $LC_PKI/coredns.kubeconfig
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    cache 30
    loadbalance
}
EOF
  start_proc coredns "$(bin coredns coredns)" -conf "$LC_ETC/Corefile"
  wait_for coredns 60 in_ns curl -fsS http://127.0.0.1:8182/ready
}

start_metrics_server() {
  local kc="$LC_PKI/metrics-server.kubeconfig"
  start_proc metrics-server "$(bin metrics-server metrics-server)" \
    --kubeconfig="$kc" --authentication-kubeconfig="$kc" --authorization-kubeconfig="$kc" \
    --bind-address="$LC_NODE_IP" --secure-port="$LC_METRICS_SERVER_PORT" \
    --tls-cert-file="$LC_PKI/metrics-server-serving.crt" \
    --tls-private-key-file="$LC_PKI/metrics-server-serving.key" \
    --kubelet-certificate-authority="$LC_PKI/ca.crt" \
    --kubelet-preferred-address-types=InternalIP --kubelet-use-node-status-port \
    --metric-resolution=10s --kubelet-request-timeout=5s --v=1
}

# metrics_api_answers: the Metrics API lists the node with a CPU figure (what the HPA reads).
metrics_api_answers() {
  lc_kubectl get --raw /apis/metrics.k8s.io/v1beta1/nodes 2>/dev/null | grep -q '"cpu"'
}

# shellcheck disable=SC2034  # used by deploy/scripts/local-cluster.sh
# The order `down` stops things in: the node's consumers first, etcd last.
LC_PROCS=(metrics-server coredns kube-proxy kubelet kube-scheduler kube-controller-manager kube-apiserver containerd etcd)
