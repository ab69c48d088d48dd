# shellcheck shell=bash
# The cluster's network namespace (docs/local-cluster.md draws it):
#
#   host ── sbc-host 10.213.0.1/30 ══ veth ══ sbc-node 10.213.0.2/30 ── the node (every process)
#                                               │  sbc-cni0 10.244.0.1/24 ── pods (bridge CNI)
#                                               └─ default route: sbc-dead, a bridge with no ports
#
# Pod and Service addresses (10.x) exist only inside the namespace. Its default route leads to a
# bridge with no ports (this kernel has no `dummy` links), so a packet for anywhere else is
# dropped there; the host's end of the veth carries only the /30, and the host forwards nothing
# that comes in on it (a FORWARD rule, tagged with LC_IPTABLES_TAG, that `down` removes).

LC_IPTABLES_TAG="scalebench-local-cluster"

netns_exists() { [[ -e "$LC_NETNS_PATH" ]] && ip netns list | grep -qw "$LC_NETNS"; }

# host_forward_rule -I|-D|-C -i|-o: the host's refusal to forward anything from (-i) or to (-o)
# the namespace.
host_forward_rule() {
  iptables -w "$1" FORWARD "$2" "$LC_HOST_IF" -m comment --comment "$LC_IPTABLES_TAG" -j DROP
}

network_up() {
  if netns_exists; then
    lc_log "network namespace $LC_NETNS exists; reusing it"
  else
    lc_log "network namespace $LC_NETNS: node $LC_NODE_IP, host end $LC_HOST_IP (/$LC_LINK_PREFIX), dead-end default route"
    ip netns add "$LC_NETNS"
    ip link add "$LC_HOST_IF" type veth peer name "$LC_NODE_IF"
    ip link set "$LC_NODE_IF" netns "$LC_NETNS"
    ip addr add "$LC_HOST_IP/$LC_LINK_PREFIX" dev "$LC_HOST_IF"
    ip link set "$LC_HOST_IF" up
    in_ns ip link set lo up
    in_ns ip addr add "$LC_NODE_IP/$LC_LINK_PREFIX" dev "$LC_NODE_IF"
    in_ns ip link set "$LC_NODE_IF" up
    in_ns ip link add "$LC_DEAD_IF" type bridge
    in_ns ip link set "$LC_DEAD_IF" up
    in_ns ip route add default dev "$LC_DEAD_IF"
  fi
  # NodePort traffic from the host is routed to the pods' bridge; Service traffic between pods on
  # that bridge must pass iptables (kube-proxy's DNAT and its reverse) although it is bridged.
  in_ns sysctl -qw net.ipv4.ip_forward=1
  in_ns sysctl -qw net.bridge.bridge-nf-call-iptables=1 2>/dev/null ||
    lc_log "warning: net.bridge.bridge-nf-call-iptables is not settable here; pod-to-Service-to-pod on one bridge may fail"
  local dir
  for dir in -i -o; do
    host_forward_rule -C "$dir" 2>/dev/null || host_forward_rule -I "$dir"
  done
}

network_down() {
  local dir
  for dir in -i -o; do
    while host_forward_rule -C "$dir" 2>/dev/null; do host_forward_rule -D "$dir"; done
  done
  if netns_exists; then
    # Deleting the namespace deletes its devices (the veth's host end with its peer) and every
    # iptables rule kube-proxy wrote, which all live in it.
    ip netns delete "$LC_NETNS"
  fi
  ip link delete "$LC_HOST_IF" 2>/dev/null || true
}
