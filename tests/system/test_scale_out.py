"""Scale-out behind a Service that balances per connection, on the real kernel (issue 11).

Three `workload` replicas (pods) sit behind a ClusterIP built as kube-proxy builds it in iptables
mode, in a network namespace of the test's own (netns_support.py). The Service starts with one
endpoint; a few seconds into a closed-loop run of 24 users it gets the other two, switched
atomically with `iptables-restore --noflush`, and at that moment the recorded Kubernetes API
(fake_kube_api.py) announces the Deployment's scale-out 1 -> 3 to `loadgen --watch`.

The trap the issue reported: the load generator's keep-alive connections were all opened while
there was one endpoint; conntrack keeps each on the endpoint its first packet was DNATed to, so
the new replicas serve nothing for the whole run. The test shows that on the kernel.

See docs/testing-scale-out.md.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest

from conftest import IN_CI, figure, require_tool
from fake_kube_api import (
    NAMESPACE,
    SCALE_TO_3_DEPLOYMENT_EVENTS,
    SCALE_TO_3_HPA_EVENTS,
    FakeKubeApi,
)
from netns_support import ClusterIpService, NetNamespace, Replica, run
from procs import kill_quietly, spawn
from reliability_support import samples

# The issue ran 16 s with the switch at 4 s. 15 s with the switch at 3.5 s proves the same in a
# little less time, and leaves what the pinning analysis needs (loadgen/src/analysis/spread.rs
# judges 10 s windows with the same ready count throughout): windows from 4 s to 15 s. The switch
# is mid-second on purpose: the time series has 1 s buckets, and the test's clock and loadgen's
# differ by a few milliseconds, so a new replica that answered a millisecond after a switch at a
# whole second could land in the bucket before it and count as known before the scale-out.
RUN_S = 15.0
SWITCH_AT_S = 3.5
USERS = 24

CLUSTER_IP = "10.96.0.10"
SERVICE_PORT = 80
TARGET_PORT = 8080
CLIENT_IP = "10.0.0.1"  # the "node" the load generator runs on
PODS = {"workload-a": "10.244.0.11", "workload-b": "10.244.0.12", "workload-c": "10.244.0.13"}
FIRST_POD = "workload-a"
NEW_PODS = ["workload-b", "workload-c"]

_ns_counter = itertools.count()


def require_root_and_tools() -> None:
    if os.geteuid() != 0:
        message = "needs root (network namespaces and iptables)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    for tool in ("ip", "iptables", "iptables-restore"):
        require_tool(tool)


@dataclass
class Cluster:
    """The namespace, its Service and its replicas, ready for a run."""

    namespace: NetNamespace
    service: ClusterIpService
    replicas: dict[str, Replica]
    workdir: Path
    loadgen: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    kube_apis: list[FakeKubeApi] = field(default_factory=list)

    def served_by_replica(self) -> dict[str, int]:
        """Requests to /ping each replica counted itself (its own metrics, not the client's view)."""
        counts = {}
        for name, replica in self.replicas.items():
            text = replica.metrics()
            counts[name] = int(
                sum(
                    value
                    for labels, value in samples(text, "http_server_request_duration_seconds_count")
                    if labels.get("route") == "/ping"
                )
            )
        return counts


@pytest.fixture
def make_cluster(binaries, tmp_path) -> Iterator[Any]:
    """Builds a Cluster whose replicas get `workload_args`; tears everything down afterwards,
    whatever the test did: only the processes it started, then the namespace itself."""
    require_root_and_tools()
    made: list[Cluster] = []

    def make(workload_args: list[str] | None = None) -> Cluster:
        namespace = NetNamespace(f"sb-scale-{os.getpid()}-{next(_ns_counter)}")
        cluster = Cluster(
            namespace=namespace,
            service=ClusterIpService(namespace, CLUSTER_IP, SERVICE_PORT, TARGET_PORT),
            replicas={},
            workdir=tmp_path,
            loadgen=binaries["loadgen"],
        )
        made.append(cluster)
        namespace.create()
        namespace.ip("addr", "add", f"{CLIENT_IP}/32", "dev", "lo")
        for ip in PODS.values():
            namespace.ip("addr", "add", f"{ip}/32", "dev", "lo")
        # The Service CIDR has a route (as on a node) but no address: only DNAT makes it answer.
        namespace.ip("route", "add", "10.96.0.0/16", "dev", "lo", "src", CLIENT_IP)
        for name, ip in PODS.items():
            cluster.replicas[name] = Replica(
                namespace, binaries["workload"], name, ip, tmp_path / f"{namespace.name}-{name}.log",
                port=TARGET_PORT, extra_args=list(workload_args or []),
            ).start()
        # Endpoints list only ready pods: every replica is ready before its endpoint is published.
        for replica in cluster.replicas.values():
            replica.wait_ready()
        cluster.service.install([PODS[FIRST_POD]])
        return cluster

    yield make

    for cluster in made:
        try:
            for proc in cluster.procs:
                kill_quietly(proc)
            for api in cluster.kube_apis:
                api.stop()
            for replica in cluster.replicas.values():
                replica.stop()
        finally:
            # Whatever failed above, the namespace (and its iptables rules) goes.
            cluster.namespace.delete()


@dataclass
class ScaleOutRun:
    report: dict[str, Any]
    switch_s: float  # when the endpoints changed, in seconds of the run's own clock
    connections_before: int  # connections opened through the Service before the switch
    served: dict[str, int]  # per replica, from its own metrics
    new_connections: dict[str, int]  # per replica, connections DNATed to it after the switch
    kube_api: FakeKubeApi
    output: str  # loadgen's stdout and stderr: the summary, warnings included

    @property
    def backends(self) -> dict[str, int]:
        return self.report["summary"]["backends"]


def run_scale_out(cluster: Cluster, name: str, loadgen_args: list[str] | None = None) -> ScaleOutRun:
    """`loadgen -c 24` for RUN_S inside the namespace; at SWITCH_AT_S the Service gets all three
    endpoints and the recorded API announces the scale-out."""
    ns = cluster.namespace
    kube_api = FakeKubeApi(
        SCALE_TO_3_DEPLOYMENT_EVENTS, SCALE_TO_3_HPA_EVENTS, on_cue=True, listener=ns.listen()
    )
    cluster.kube_apis.append(kube_api)
    kubeconfig = kube_api.write_kubeconfig(cluster.workdir / f"{name}.kubeconfig")
    kube_api.start()
    out = cluster.workdir / f"{name}.json"
    output_path = cluster.workdir / f"{name}.output"
    argv = [
        str(cluster.loadgen),
        "--target", f"http://{CLUSTER_IP}:{SERVICE_PORT}/ping",
        "-c", str(USERS),
        "--duration", f"{RUN_S:g}s",
        "--watch", "deployment/workload",
        "--namespace", NAMESPACE,
        "--watch-interval", "100ms",
        "--out", str(out),
        *(loadgen_args or []),
    ]
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "NO_COLOR": "1"}
    # No --quiet: the end-of-run summary (what a user reads, warnings included) is checked too.
    proc = spawn(ns.command(argv), output_path, env)
    cluster.procs.append(proc)
    spawned = time.monotonic()
    time.sleep(max(0.0, spawned + SWITCH_AT_S - time.monotonic()))
    connections_before = sum(cluster.service.jump_counts().values())
    assert connections_before >= USERS, f"each user connects through the Service: {connections_before}"
    switched_wall = cluster.service.set_endpoints(list(PODS.values()))
    kube_api.announce()
    try:
        proc.wait(timeout=RUN_S + 30)
    except subprocess.TimeoutExpired:
        kill_quietly(proc)
        raise AssertionError(f"loadgen did not finish; stderr:\n{output_path.read_text()[-4000:]}")
    output = output_path.read_text(errors="replace")
    assert proc.returncode == 0, f"loadgen exited {proc.returncode}:\n{output[-4000:]}"
    report = json.loads(out.read_text())
    jumps = cluster.service.jump_counts()
    new_connections = {
        pod: jumps.get(cluster.service.sep_chain(ip), 0) for pod, ip in PODS.items()
    }
    return ScaleOutRun(
        report=report,
        switch_s=switched_wall - report["started_at_unix_ms"] / 1000.0,
        connections_before=connections_before,
        served=cluster.served_by_replica(),
        new_connections=new_connections,
        kube_api=kube_api,
        output=output,
    )


def assert_replica_counts_agree(run: ScaleOutRun) -> None:
    """The client's x-served-by counts and the replicas' own counts tell the same story (the
    replicas may have answered a few requests the client cut off at the end of the run)."""
    for pod in PODS:
        client, server = run.backends.get(pod, 0), run.served[pod]
        assert client <= server <= client + USERS, f"{pod}: client saw {client}, replica counted {server}"


def full_seconds_from(run: ScaleOutRun, start_s: float) -> list[dict[str, Any]]:
    """The time series' buckets that begin at or after `start_s` and end before the run did."""
    resolution = run.report["timeseries_resolution_s"]
    end = run.report["summary"]["duration_s"]
    return [p for p in run.report["timeseries"] if p["t_s"] >= start_s - 1e-9 and p["t_s"] + resolution <= end + 1e-9]


def served_within_s(run: ScaleOutRun, pod: str) -> float | None:
    """Seconds from the switch to the end of the first bucket in which `pod` answered (an upper
    bound, exact to the bucket width, as loadgen's time_to_first_new_backend_s)."""
    for point in run.report["timeseries"]:
        if point.get("backends", {}).get(pod):
            return point["t_s"] + run.report["timeseries_resolution_s"] - run.switch_s
    return None


def assert_load_spreads_to_new_replicas(run: ScaleOutRun, age_s: float, name: str) -> None:
    """The issue's bar for recycling: each new replica serves at least 15 % of the whole run, and
    every full second from switch + 2 x age (the reconnect window) names all three replicas."""
    summary = run.report["summary"]
    total = summary["requests"]
    shares = {pod: run.backends.get(pod, 0) / total for pod in PODS}
    window_from = run.switch_s + 2 * age_s
    checked = full_seconds_from(run, window_from)
    figure(
        name,
        requests=total,
        rps=summary["rps"],
        switch_s=run.switch_s,
        **{f"share_{pod}": shares[pod] for pod in PODS},
        **{f"served_within_s_{pod}": served_within_s(run, pod) for pod in NEW_PODS},
        **{f"new_connections_{pod}": run.new_connections[pod] for pod in PODS},
        seconds_checked=len(checked),
        time_to_first_new_backend_s=run.report["scale_events"][0]["time_to_first_new_backend_s"]
        if run.report["scale_events"] else None,
    )
    assert summary["failures"] == 0, summary["errors"]
    assert total > 1000, summary
    assert_replica_counts_agree(run)
    assert_watch_saw_the_scale_out(run)
    event = the_scale_event(run)
    assert event["first_new_backend"] in NEW_PODS, event
    # End of the bucket in which a new pod first answered: within a reconnect window and a bucket.
    assert event["time_to_first_new_backend_s"] <= 2 * age_s + 1.0, event
    assert run.report.get("warnings", []) == [], run.report.get("warnings", [])
    for pod in PODS:
        # The kernel's own view: connections opened after the switch were DNATed to every pod.
        assert run.new_connections[pod] > 0, run.new_connections
    for pod in NEW_PODS:
        assert shares[pod] >= 0.15, f"{pod} served {shares[pod]:.1%} of the run: {run.backends}"
    assert len(checked) >= 3, f"too few full seconds after {window_from:.2f}s: {run.report['timeseries']}"
    for point in checked:
        missing = [pod for pod in PODS if not point.get("backends", {}).get(pod)]
        assert not missing, f"second {point['t_s']:g} has no requests served by {missing}: {point}"


# switch_s comes from the report's started_at_unix_ms, whole milliseconds: it may be up to 1 ms
# late against the run's own clock, on which the watcher times its events (a CI run saw an event
# 0.2 ms "before" the switch that caused it).
CLOCK_SLACK_S = 0.002


def assert_watch_saw_the_scale_out(run: ScaleOutRun) -> None:
    replicas = run.report["replicas"]
    assert not replicas["warnings"], replicas["warnings"]
    summary = replicas["summary"]
    assert summary["initial_replicas"] == 1 and summary["max_replicas"] == 3, summary
    ready_at = summary["time_to_max_replicas_s"]
    # Released 0.15 s after the switch; sampled at most every 100 ms; generous for a busy machine.
    assert run.switch_s - CLOCK_SLACK_S <= ready_at <= run.switch_s + 2.0, (run.switch_s, summary)


def the_scale_event(run: ScaleOutRun) -> dict[str, Any]:
    """loadgen's one scale event, checked against what the recorded API announced at the switch:
    desired 1 -> 3 as the endpoints changed, all three ready 0.15 s later, nothing failed."""
    events = run.report["scale_events"]
    assert len(events) == 1, events
    event = events[0]
    assert (event["from_replicas"], event["to_replicas"]) == (1, 3), event
    assert run.switch_s - CLOCK_SLACK_S <= event["t_s"] <= run.switch_s + 1.0, (run.switch_s, event)
    assert event["time_to_ready_s"] is not None and 0.0 <= event["time_to_ready_s"] <= 1.0, event
    assert event["failed_during"] == 0 and event["shed_during"] == 0, event
    return event


def pinning_warnings(run: ScaleOutRun) -> list[str]:
    return [w for w in run.report.get("warnings", []) if w.startswith("load is pinned")]


def test_without_recycling_the_new_replicas_serve_nothing(make_cluster):
    """The trap: keep-alive connections opened while the Service had one endpoint stay on it."""
    cluster = make_cluster(["--max-connection-age", "0"])  # 0: the replicas never close either
    # loadgen recycles every 10 s by default (docs/connections.md): the trap needs `forever`.
    run = run_scale_out(cluster, "keepalive", ["--connection-max-age", "forever"])
    summary = run.report["summary"]
    event = the_scale_event(run)
    figure(
        "scale_out_keepalive",
        requests=summary["requests"],
        rps=summary["rps"],
        switch_s=run.switch_s,
        **{f"served_{pod}": run.served[pod] for pod in PODS},
        new_connections=sum(run.new_connections.values()),
        scale_event_t_s=event["t_s"],
        time_to_ready_s=event["time_to_ready_s"],
        time_to_first_new_backend_s=event["time_to_first_new_backend_s"],
        pinning_warnings=len(pinning_warnings(run)),
    )
    assert summary["failures"] == 0, summary["errors"]
    assert summary["requests"] > 1000, summary
    assert_replica_counts_agree(run)
    assert_watch_saw_the_scale_out(run)
    # One connection per user, opened before the switch; none after, so none could reach a new pod.
    assert run.connections_before == USERS, run.connections_before
    assert sum(run.new_connections.values()) == 0, run.new_connections
    for pod in NEW_PODS:
        assert run.backends.get(pod, 0) == 0 and run.served[pod] == 0, (pod, run.backends, run.served)
    assert run.backends[FIRST_POD] == summary["requests"], run.backends
    after = full_seconds_from(run, run.switch_s)
    assert len(after) >= 5, run.report["timeseries"]
    for point in after:
        assert set(point["backends"]) == {FIRST_POD}, f"second {point['t_s']:g}: {point}"
    # The scale event knows no new backend answered, and the report says why, with the fix.
    assert event["time_to_first_new_backend_s"] is None and event["first_new_backend"] is None, event
    pinned = pinning_warnings(run)
    assert len(pinned) == 1 and pinned[0].startswith("load is pinned to 1 of 3 ready pods"), run.report.get("warnings", [])
    assert "--connection-max-age" in pinned[0], pinned
    assert "load is pinned to 1 of 3 ready pods" in run.output, run.output[-3000:]


def test_kube_proxy_rules_are_switched_in_one_transaction(make_cluster):
    """The rules the test writes have kube-proxy's shape: 1/(n-i) probabilities, the last endpoint
    unconditional, one DNAT per endpoint chain, and a switch that leaves the hooks in place."""
    cluster = make_cluster()
    service = cluster.service
    rules = service.rules()
    assert f"-A KUBE-SERVICES -d {CLUSTER_IP}/32 -p tcp" in rules
    assert "statistic" not in rules, "one endpoint: no random choice"
    service.set_endpoints(list(PODS.values()))
    rules = service.rules()
    svc = [line for line in rules.splitlines() if line.startswith(f"-A {service.svc_chain} ")]
    assert len(svc) == 3, rules
    assert "--probability 0.33333333349" in svc[0] and "--probability 0.50000000000" in svc[1], svc
    assert "statistic" not in svc[2], svc
    for pod, ip in PODS.items():
        assert f"-A {service.sep_chain(ip)} " in rules and f"--to-destination {ip}:{TARGET_PORT}" in rules
    assert rules.count("-j KUBE-SERVICES") == 2, "PREROUTING and OUTPUT hooks survive --noflush"
    backend = run(["iptables", "-V"]).strip()
    figure("scale_out_iptables", version=backend.replace(" ", "_"))


# A one-second lifetime in the test (the overlays use 15 s, see deploy/overlays/hpa): the proof
# needs several lifetimes inside the twelve seconds after the switch.
CONNECTION_AGE_S = 1.0


def test_workload_max_connection_age_spreads_the_load_over_new_replicas(make_cluster):
    """Recycling on the server: each replica answers `Connection: close` once a connection is
    older than --max-connection-age, so a client that keeps connections reconnects anyway, and
    each new connection's first packet takes kube-proxy's random choice among the endpoints."""
    cluster = make_cluster(["--max-connection-age", f"{CONNECTION_AGE_S:g}s"])
    run = run_scale_out(cluster, "server-max-age", ["--connection-max-age", "forever"])
    assert_load_spreads_to_new_replicas(run, CONNECTION_AGE_S, "scale_out_server_max_age")


def test_loadgen_connection_max_age_spreads_the_load_over_new_replicas(make_cluster):
    """Recycling on the client: each user reconnects after --connection-max-age (replicas that
    never close), and each new connection's first packet takes kube-proxy's random choice."""
    cluster = make_cluster(["--max-connection-age", "0"])
    run = run_scale_out(cluster, "client-max-age", ["--connection-max-age", f"{CONNECTION_AGE_S:g}s"])
    assert_load_spreads_to_new_replicas(run, CONNECTION_AGE_S, "scale_out_client_max_age")
