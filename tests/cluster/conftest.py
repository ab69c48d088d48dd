"""The real-cluster tests' fixtures: a single-node Kubernetes from deploy/scripts/local-cluster.sh,
the project's images in its containerd, and the shipped deploy scripts run against it.

The cluster is started once per session and stopped at its end, unless it was up before the
session began (a developer's cluster is left as it was). Where root or Go is missing the tests are
skipped with the reason; in CI (CI=true) that is a failure instead: CI never skips them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "deploy" / "scripts"
LOCAL_CLUSTER = SCRIPTS / "local-cluster.sh"
SEED_SCRIPT = ROOT / ".ci" / "seed-images.sh"
IN_CI = os.environ.get("CI") == "true"
NAMESPACE = "scalebench"
# The node's address as the host sees it (deploy/local-cluster/lib/settings.sh).
NODE_IP = os.environ.get("SCALEBENCH_CLUSTER_NODE_IP", "10.213.0.2")
NODE_PORT = 30080


def unavailable(reason: str):
    """Skip outside CI; in CI a missing prerequisite is a failure, never a silent skip."""
    if IN_CI:
        pytest.fail(f"the cluster tests cannot run in CI: {reason}")
    pytest.skip(reason)


def missing_prerequisite() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespace, cgroups, mounts)"
    if shutil.which("go") is None:
        return "needs Go (the cluster is built from its Go modules)"
    for tool in ("containerd", "runc", "kubectl", "iptables", "nsenter", "openssl"):
        if shutil.which(tool) is None:
            return f"needs {tool} (Debian: containerd runc containernetworking-plugins iptables openssl)"
    if not Path("/usr/lib/cni/bridge").exists():
        return "needs the CNI plugins (Debian: containernetworking-plugins)"
    return None


def run(cmd: list[str], *, env: dict | None = None, timeout: float, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env, timeout=timeout, cwd=ROOT)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, cmd))} exited {proc.returncode}\n--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-6000:]}"
        )
    return proc


@dataclass
class Cluster:
    env: dict[str, str]
    kubeconfig: str
    timings: dict[str, float] = field(default_factory=dict)

    def kubectl(self, *args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
        return run(["kubectl", *args], env=self.env, timeout=timeout, check=check)

    def json(self, *args: str) -> dict:
        return json.loads(self.kubectl(*args, "-o", "json").stdout)

    def script(self, name: str, *args: str, timeout: float = 600, check: bool = True,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """One of the shipped deploy scripts, against this cluster."""
        return run(["bash", SCRIPTS / name, *args], env={**self.env, **(env or {})}, timeout=timeout, check=check)

    def raw(self, path: str) -> str:
        return self.kubectl("get", "--raw", path).stdout

    def prometheus(self, path: str, params: dict[str, str]) -> dict:
        """A Prometheus API call to the in-cluster Prometheus, through the apiserver's service proxy."""
        from urllib.parse import urlencode

        body = json.loads(self.raw(f"/api/v1/namespaces/{NAMESPACE}/services/prometheus:http/proxy{path}?{urlencode(params)}"))
        assert body["status"] == "success", body
        return body["data"]


@pytest.fixture(scope="session")
def cluster() -> Cluster:
    reason = missing_prerequisite()
    if reason:
        unavailable(reason)
    was_up = run(["bash", LOCAL_CLUSTER, "status"], timeout=60, check=False).returncode == 0
    started = time.monotonic()
    up = subprocess.run(["bash", str(LOCAL_CLUSTER), "up"], cwd=ROOT, timeout=3600, text=True,
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    print(up.stdout[-6000:])
    if up.returncode != 0:
        # A half-started cluster (namespace, mounts, processes) is removed, not left behind.
        if not was_up:
            run(["bash", LOCAL_CLUSTER, "down"], timeout=300, check=False)
        pytest.fail(f"local-cluster.sh up failed:\n{up.stdout[-8000:]}")
    env_lines = run(["bash", LOCAL_CLUSTER, "env"], timeout=30).stdout
    env = dict(os.environ)
    for line in env_lines.splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        env[key] = value.strip("'\"")
    c = Cluster(env=env, kubeconfig=env["KUBECONFIG"], timings={"up_s": round(time.monotonic() - started, 1)})
    try:
        yield c
    finally:
        if not was_up:
            down = run(["bash", LOCAL_CLUSTER, "down"], timeout=300, check=False)
            print(down.stdout, down.stderr)


SCALE_OUT_SCENARIO = "k8s-scale-out.yaml"
CLIENTS = 3


@dataclass
class ScaleOutRun:
    """The `hpa` overlay under run-loadgen.sh, with deploy/monitoring scraping it all."""
    returncode: int
    stderr: str
    clients: list[dict]
    merged: dict | None
    hpa: dict
    pods: list[dict]
    started: float  # unix time the Job was applied
    ended: float


def docker_answers() -> bool:
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="session")
def images(cluster: Cluster) -> dict[str, str]:
    """The workload and loadgen images, built from the Dockerfile (base images seeded locally)
    and copied into the cluster's containerd by the shipped build-load.sh."""
    if shutil.which("docker") is None:
        unavailable("needs Docker to build the images")
    started_dockerd = False
    if not docker_answers():
        if not IN_CI:
            pytest.skip("no Docker engine answers (start dockerd, or run .ci/seed-images.sh as root)")
        started_dockerd = True
    try:
        seed = run(["bash", SEED_SCRIPT], timeout=1800)
        seeded = dict(line.split("=", 1) for line in seed.stdout.splitlines() if "=" in line)
        build_args = [arg for key in ("RUST_IMAGE", "RUNTIME_IMAGE") for arg in ("--build-arg", f"{key}={seeded[key]}")]
        # A developer iterating on the tests may keep the images already built:
        # SCALEBENCH_CLUSTER_TEST_IMAGES=loaded only loads them. CI always builds.
        reuse = os.environ.get("SCALEBENCH_CLUSTER_TEST_IMAGES") == "loaded" and not IN_CI
        cluster.script("build-load.sh", *(["--no-build"] if reuse else build_args), timeout=3600)
        yield seeded
    finally:
        if started_dockerd:
            run(["bash", SEED_SCRIPT, "--stop-dockerd"], timeout=120, check=False)


def hpa_current_cpu(cluster: Cluster) -> int | None:
    hpa = cluster.json("-n", NAMESPACE, "get", "hpa", "workload")
    for metric in hpa.get("status", {}).get("currentMetrics") or []:
        value = metric.get("resource", {}).get("current", {}).get("averageUtilization")
        if value is not None:
            return value
    return None


def apply_monitoring(cluster: Cluster, images: dict[str, str]) -> None:
    """deploy/monitoring through apply.sh, its Prometheus image the seeded stand-in (no registry
    here), rolled out."""
    prometheus_image = images["PROMETHEUS_IMAGE"]
    run(["bash", LOCAL_CLUSTER, "load-images", prometheus_image], timeout=600)
    applied = cluster.script("apply.sh", "--no-wait", "--image", f"prom/prometheus={prometheus_image}", "monitoring",
                             timeout=300)
    assert "Warning" not in applied.stderr, applied.stderr
    cluster.kubectl("-n", NAMESPACE, "rollout", "status", "deployment/prometheus", "--timeout=240s", timeout=300)


@pytest.fixture(scope="session")
def scale_out_run(cluster: Cluster, images, tmp_path_factory) -> ScaleOutRun:
    """deploy/monitoring (its Prometheus image the seeded stand-in: no registry here), then the
    `hpa` overlay, then the three clients of the loadgen Job on the k8s-scale-out scenario, all
    through the shipped scripts. The namespace stays for the tests that read Prometheus."""
    cluster.script("teardown.sh", timeout=300)
    apply_monitoring(cluster, images)
    applied = cluster.script("apply.sh", "hpa", timeout=400)
    assert "Warning" not in applied.stderr, applied.stderr
    # The HPA must read a CPU figure before the load starts, or its first decisions are blind.
    wait_until("the HPA reads CPU through metrics-server", lambda: hpa_current_cpu(cluster) is not None, 180)
    out = tmp_path_factory.mktemp("reports")
    started = time.time()
    loadgen = cluster.script("run-loadgen.sh", "--scenario", SCALE_OUT_SCENARIO, "--start-delay", "20",
                             "--timeout", "400", "--out-dir", str(out), timeout=600, check=False)
    ended = time.time()
    (run_dir,) = [d for d in out.iterdir() if d.is_dir()]
    clients = [json.loads((run_dir / f"client-{i}.json").read_text()) for i in range(CLIENTS)
               if (run_dir / f"client-{i}.json").exists()]
    merged = run_dir / "merged.json"
    yield ScaleOutRun(
        returncode=loadgen.returncode, stderr=loadgen.stderr, clients=clients,
        merged=json.loads(merged.read_text()) if merged.exists() else None,
        hpa=cluster.json("-n", NAMESPACE, "get", "hpa", "workload"), pods=workload_pods(cluster),
        started=started, ended=ended,
    )
    cluster.script("teardown.sh", timeout=300, check=False)


@pytest.fixture(scope="session")
def loadgen_bin() -> str:
    """The loadgen of this checkout, built now (debug, as the Rust tests build it): a release
    binary left by an earlier build may predate the flags the tests use."""
    run(["cargo", "build", "-q", "-p", "loadgen", "--bin", "loadgen"], timeout=1800)
    return str(ROOT / "target" / "debug" / "loadgen")


def workload_pods(cluster: Cluster) -> list[dict]:
    return cluster.json("-n", NAMESPACE, "get", "pods", "-l", "app.kubernetes.io/name=workload")["items"]


def wait_until(what: str, predicate, timeout: float, interval: float = 1.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout} s (last: {last!r})")
