"""deploy/scripts/local-cluster.sh itself: idempotent, recoverable after a crash, and inside its
network namespace with nowhere to send a packet but the node, its pods and the host's /30.

The network is checked by its configuration (routes, the host's FORWARD rule), never by sending
a packet to an address this machine does not own.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from conftest import LOCAL_CLUSTER, NODE_IP, Cluster, run

STATE = Path(os.environ.get("SCALEBENCH_CLUSTER_STATE", "/var/lib/scalebench/local-cluster"))
NETNS = os.environ.get("SCALEBENCH_CLUSTER_NETNS", "scalebench-cluster")
CONTAINERD_SOCK = STATE / "containerd" / "containerd.sock"


def in_netns(*cmd: str) -> str:
    return run(["nsenter", f"--net=/run/netns/{NETNS}", "--", *cmd], timeout=30).stdout


def pids() -> dict[str, str]:
    return {p.stem: p.read_text().split()[0] for p in (STATE / "pids").glob("*.pid")}


def cluster_images() -> set[str]:
    out = run(["ctr", "--address", CONTAINERD_SOCK, "--namespace", "k8s.io", "images", "ls", "-q"], timeout=60).stdout
    return set(out.split())


def test_a_second_up_leaves_a_running_cluster_alone(cluster: Cluster):
    before = pids()
    again = run(["bash", LOCAL_CLUSTER, "up"], timeout=600)
    assert "up already" in again.stderr, again.stderr
    assert pids() == before


def test_status_and_env(cluster: Cluster):
    status = run(["bash", LOCAL_CLUSTER, "status"], timeout=60)
    for component in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "containerd",
                      "kubelet", "kube-proxy", "coredns", "metrics-server"):
        assert f"{component}" in status.stdout and "not running" not in status.stdout, status.stdout
    assert "Metrics API answers" in status.stdout
    env = run(["bash", LOCAL_CLUSTER, "env"], timeout=30).stdout
    assert f"export KUBECONFIG={STATE}/admin.kubeconfig" in env
    assert "export SCALEBENCH_CLUSTER=local" in env
    assert cluster.kubectl("get", "--raw", "/readyz").stdout == "ok"


def test_the_namespace_routes_nowhere_but_the_node_and_the_host_link(cluster: Cluster):
    routes = in_netns("ip", "-4", "route", "show").splitlines()
    default = [r for r in routes if r.startswith("default")]
    assert [r.strip() for r in default] == ["default dev sbc-dead scope link"], routes
    # The dead end is a bridge with no ports.
    assert "bridge" in in_netns("ip", "-d", "link", "show", "sbc-dead")
    assert in_netns("ip", "link", "show", "master", "sbc-dead").strip() == ""
    link = [r for r in routes if r.startswith("10.213.0.0/30")]
    assert link and "dev sbc-node" in link[0], routes
    # The host forwards nothing from or to the namespace.
    rules = run(["iptables", "-w", "-S", "FORWARD"], timeout=30).stdout
    assert "-A FORWARD -i sbc-host -m comment --comment scalebench-local-cluster -j DROP" in rules, rules
    assert "-A FORWARD -o sbc-host -m comment --comment scalebench-local-cluster -j DROP" in rules, rules
    # The host reaches the node's address through the veth, and nothing else of the cluster.
    host_routes = run(["ip", "-4", "route", "show", "dev", "sbc-host"], timeout=30).stdout
    assert host_routes.strip().startswith("10.213.0.0/30"), host_routes
    assert len(host_routes.strip().splitlines()) == 1, host_routes


def test_the_cluster_dns_resolves_services_and_nothing_else(cluster: Cluster):
    """CoreDNS answers cluster.local names from the node, and forwards nothing off the machine."""
    answer = in_netns("python3", "-c", DNS_QUERY, "10.96.0.10", "kubernetes.default.svc.cluster.local")
    assert answer.strip() == "10.96.0.1", answer
    refused = in_netns("python3", "-c", DNS_QUERY, "10.96.0.10", "example.com")
    assert refused.strip().startswith("rcode"), refused


# A minimal A query over UDP (no resolver library needed): prints the first A record or the rcode.
DNS_QUERY = r"""
import socket, struct, sys
server, name = sys.argv[1], sys.argv[2]
q = struct.pack(">HHHHHH", 0x5ca1, 0x0100, 1, 0, 0, 0)
q += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0" + struct.pack(">HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(5); s.sendto(q, (server, 53))
r, _ = s.recvfrom(4096)
rcode, ancount = r[3] & 0xF, struct.unpack(">H", r[6:8])[0]
if rcode or not ancount:
    print(f"rcode {rcode} answers {ancount}"); sys.exit(0)
i = len(q)
for _ in range(ancount):
    i += 2 if r[i] & 0xC0 == 0xC0 else r.index(b"\0", i) + 1 - i
    rtype, _, _, rdlen = struct.unpack(">HHIH", r[i:i + 10]); i += 10
    if rtype == 1:
        print(socket.inet_ntoa(r[i:i + 4])); sys.exit(0)
    i += rdlen
print("no A record")
"""


def test_up_after_a_crash_brings_a_working_cluster_back(cluster: Cluster):
    """The apiserver and the kubelet die (SIGKILL): `status` says so, and `up` clears what is
    left and starts a cluster that answers again, with the images it had."""
    # The project's images from the local Docker (build-load.sh), not the ones the script packs
    # itself (the pause image, Knative's under dev.local/, imported again when next needed).
    images = {i for i in cluster_images() if i.startswith("docker.io/scalebench/") and "pause" not in i}
    for name in ("kube-apiserver", "kubelet"):
        os.kill(int(pids()[name]), 9)
    assert run(["bash", LOCAL_CLUSTER, "status"], timeout=60, check=False).returncode == 1
    up = run(["bash", LOCAL_CLUSTER, "up"], timeout=900)
    assert "clearing what an earlier cluster left" in up.stderr, up.stderr
    assert run(["bash", LOCAL_CLUSTER, "status"], timeout=60).returncode == 0
    assert cluster.kubectl("get", "node", "scalebench", "-o", "name").stdout.strip() == "node/scalebench"
    if images:
        # The state went with the crashed cluster: the shipped script loads the images again.
        cluster.script("build-load.sh", "--no-build", timeout=600)
        assert images <= cluster_images()
    assert not [p for p in (STATE / "pids").glob("*.pid") if subprocess.run(
        ["kill", "-0", p.read_text().split()[0]], capture_output=True).returncode != 0]
    assert NODE_IP in cluster.kubectl("get", "node", "scalebench", "-o", "wide").stdout
