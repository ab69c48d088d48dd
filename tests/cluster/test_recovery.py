"""A failure on a real cluster: the workload's container is killed with SIGKILL in the middle of a
loadgen run. The kubelet restarts it, the pod leaves the Service's endpoints while it is not ready,
and the requests that failed meanwhile are in the report, not lost.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time

import pytest

from conftest import NAMESPACE, ROOT, Cluster, wait_until, workload_pods

SCENARIO = "k8s-steady.yaml"
START_DELAY_S = 20
# Into the 60 s run: late enough that every client is sending, early enough to see the recovery.
KILL_AT_S = 15


class EndpointWatch:
    """`kubectl get endpointslices -w` in the background: every readiness the Service's slices
    reported for each address, in order."""

    def __init__(self, cluster: Cluster):
        self.proc = subprocess.Popen(
            ["kubectl", "-n", NAMESPACE, "get", "endpointslices", "-l", "kubernetes.io/service-name=workload",
             "-w", "--output-watch-events", "-o", "json"],
            env=cluster.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        self.seen: list[tuple[float, str, bool]] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        decoder = json.JSONDecoder()
        buffer = ""
        for line in self.proc.stdout:
            buffer += line
            try:
                event, end = decoder.raw_decode(buffer.lstrip())
            except json.JSONDecodeError:
                continue
            buffer = buffer.lstrip()[end:]
            for endpoint in event.get("object", {}).get("endpoints") or []:
                ready = bool(endpoint.get("conditions", {}).get("ready"))
                for address in endpoint.get("addresses", []):
                    self.seen.append((time.monotonic(), address, ready))

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def kill_container(cluster: Cluster, pod: dict) -> None:
    """SIGKILL to the container's init process, through the cluster's containerd."""
    (status,) = [s for s in pod["status"]["containerStatuses"] if s["name"] == "workload"]
    container_id = status["containerID"].removeprefix("containerd://")
    socket = cluster.env.get("SCALEBENCH_CLUSTER_STATE", "/var/lib/scalebench/local-cluster") + "/containerd/containerd.sock"
    subprocess.run(["ctr", "--address", socket, "--namespace", "k8s.io", "tasks", "kill", "--signal", "SIGKILL",
                    container_id], check=True, timeout=30)


@pytest.fixture(scope="module")
def killed_run(cluster: Cluster, images, tmp_path_factory) -> dict:
    cluster.script("teardown.sh", timeout=300)
    cluster.script("apply.sh", "single", timeout=400)
    (pod,) = workload_pods(cluster)
    pod_ip = pod["status"]["podIP"]
    out = tmp_path_factory.mktemp("reports")
    watch = EndpointWatch(cluster)
    loadgen = subprocess.Popen(
        ["bash", "deploy/scripts/run-loadgen.sh", "--scenario", SCENARIO, "--start-delay", str(START_DELAY_S),
         "--timeout", "300", "--out-dir", str(out)],
        env=cluster.env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        time.sleep(START_DELAY_S + KILL_AT_S)
        killed_at = time.monotonic()
        kill_container(cluster, pod)
        wait_until("the kubelet restarts the container", lambda: _restarts(cluster, pod["metadata"]["name"]) >= 1, 90)
        wait_until("the restarted pod is ready again", lambda: _ready(cluster, pod["metadata"]["name"]), 90)
        stdout, stderr = loadgen.communicate(timeout=400)
    finally:
        if loadgen.poll() is None:
            loadgen.kill()
        watch.stop()
    (run_dir,) = [d for d in out.iterdir() if d.is_dir()]
    merged = json.loads((run_dir / "merged.json").read_text())
    yield {"pod_ip": pod_ip, "killed_at": killed_at, "watch": watch.seen, "merged": merged,
           "returncode": loadgen.returncode, "stderr": stderr}
    cluster.script("teardown.sh", timeout=300, check=False)


def _pod(cluster: Cluster, name: str) -> dict:
    return cluster.json("-n", NAMESPACE, "get", "pod", name)


def _restarts(cluster: Cluster, name: str) -> int:
    statuses = _pod(cluster, name)["status"].get("containerStatuses") or []
    return sum(s["restartCount"] for s in statuses if s["name"] == "workload")


def _ready(cluster: Cluster, name: str) -> bool:
    conditions = _pod(cluster, name)["status"].get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def test_the_run_completes_with_every_client_report(killed_run):
    assert killed_run["returncode"] == 0, killed_run["stderr"][-4000:]


def test_the_pod_leaves_the_endpoints_while_not_ready_and_comes_back(killed_run):
    after_kill = [(t, ready) for t, address, ready in killed_run["watch"]
                  if address == killed_run["pod_ip"] and t >= killed_run["killed_at"]]
    states = [ready for _, ready in after_kill]
    assert False in states, f"the pod never left the Service's ready endpoints: {after_kill}"
    assert states[-1] is True, f"the pod did not come back into the endpoints: {after_kill}"


def test_the_requests_failed_meanwhile_are_counted(killed_run):
    summary = killed_run["merged"]["summary"]
    assert summary["failures"] > 0, "a killed single replica failed no request: the kill went unseen"
    assert summary["successes"] + summary["failures"] == summary["requests"], summary
    per_second = sum(p["failures"] for p in killed_run["merged"]["timeseries"])
    assert per_second == summary["failures"], "the per-second series lost failures the summary counts"
    assert summary["successes"] > summary["failures"], "the pod did not recover for the rest of the run"
