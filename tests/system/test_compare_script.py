"""bench/compare.sh end to end: real workloads, the real loadgen, the real script.

Two workload processes on 127.0.0.1 differ in capacity: "small" sheds load beyond 2 requests in
flight (503 + Retry-After), "big" has the default limit. A short open-loop scenario of 100 ms I/O
waits at 20 then 40 arrivals per second keeps about 2 to 4 requests in flight, so small must shed
a good part of it and big none. The script runs the scenario against both plus a port where
nothing listens, and must print a table with both rows, report and skip the dead target, and leave
the JSON reports and the HTML comparison behind.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT, require_tool
from procs import free_port, start_workload

SCRIPT = ROOT / "bench" / "compare.sh"

# About 4 s of load: long enough for a few hundred milliseconds of warm-up not to matter.
SCENARIO = """\
name: compare-test
load:
  max_in_flight: 50
  phases:
    - { duration: 2s, rate: 20 }
    - { duration: 2s, rate: 40 }
requests:
  - name: io
    path: /work/io?ms=100
thresholds:
  - success_rate>99%
"""


@pytest.fixture(scope="module")
def workloads(binaries):
    require_tool("curl")
    started = [
        start_workload(binaries["workload"], "--max-in-flight", "2"),
        start_workload(binaries["workload"]),
    ]
    yield {"small": started[0][1], "big": started[1][1]}
    for proc, _ in started:
        proc.terminate()
    for proc, _ in started:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    path = tmp_path / "compare-test.yaml"
    path.write_text(SCENARIO)
    return path


def run_script(*args: str, env: dict | None = None, timeout: int = 120) -> subprocess.CompletedProcess:
    # No Prometheus unless a test provides one: a developer's own on :9090 must not get test runs.
    no_prometheus = {"COMPARE_PROMETHEUS_URL": f"http://127.0.0.1:{free_port()}"}
    return subprocess.run(
        [str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        # No COLUMNS: the table's row-per-run layout is what table_rows reads (compare.txt's).
        env={**{k: v for k, v in os.environ.items() if k != "COLUMNS"}, **no_prometheus, **(env or {})},
    )


def table_rows(stdout: str) -> dict[str, dict[str, str]]:
    """The comparison table's data rows, keyed by the deployment column; each row maps a column
    name to its cell, a change column as "<column> vs first" (e.g. "rps vs first"). Only the first
    table: the phase-by-phase table that follows has rows of its own."""
    rows: dict[str, dict[str, str]] = {}
    header: list[str] = []
    for line in stdout.splitlines():
        if line.startswith("└"):
            break
        if "┆" not in line:
            continue
        cells = [c.strip() for c in line.strip().strip("│").split("┆")]
        if cells[0] == "phase":
            break  # the phase-by-phase table that follows has rows of its own
        if cells[0] == "run":
            header = []
            for cell in cells:
                header.append(f"{header[-1]} vs first" if cell == "vs first" else cell)
            continue
        rows[cells[1]] = dict(zip(header, cells))
    for column in ("run", "deployment", "requests", "duration", "duration vs first", "rps", "rps vs first",
                   "p50", "p50 vs first", "p99", "p99 vs first", "success", "success vs first"):
        assert column in header, (column, header)
    return rows


def number(cell: str) -> float:
    m = re.match(r"^([0-9]+(?:\.[0-9]+)?)", cell)
    assert m, f"not a number: {cell!r}"
    return float(m.group(1))


def test_compares_two_deployments_and_skips_an_unreachable_one(binaries, workloads, scenario, tmp_path):
    out = tmp_path / "reports"
    dead = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    result = run_script(
        "--loadgen", str(binaries["loadgen"]),
        "--scenario", str(scenario),
        "--out-dir", str(out),
        "--ready-timeout", "1",
        f"small={workloads['small']}",
        f"big={workloads['big']}",
        f"gone={dead}",
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert elapsed < 60, f"two 4 s runs took {elapsed:.0f} s"

    rows = table_rows(result.stdout)
    assert set(rows) == {"small", "big"}, result.stdout
    small, big = rows["small"], rows["big"]
    for row in (small, big):
        assert number(row["requests"]) >= 100, row  # requests: 2 s x 20/s + 2 s x 40/s = 120 planned
        assert 3.5 <= number(row["duration"]) <= 10, row  # duration in s
        assert number(row["rps"]) > 10, row  # rps
        assert row["p50"].endswith("ms") and number(row["p50"]) > 0, row  # p50
        assert row["p99"].endswith("ms") and number(row["p99"]) >= 90, row  # p99: served 100 ms waits
    # The first row is the baseline; the second carries its change against it.
    assert small["rps vs first"] == "x1.00 (=)" and small["success vs first"] == "+0.00 pt", small
    assert small["duration vs first"] == "x1.00 (=)", small
    assert re.match(r"^x[0-9]+\.[0-9]{2} \(", big["rps vs first"]), big
    assert re.match(r"^x[0-9]+\.[0-9]{2} \(", big["duration vs first"]), big
    # The capacities differ and the table shows it.
    assert number(big["success"]) == 100.0, big
    assert number(big["p50"]) >= 90, big  # every request waited its 100 ms
    assert number(small["success"]) < 90.0, small
    assert re.match(r"^\+[0-9]+\.[0-9]{2} pt$", big["success vs first"]), big

    # The dead target: reported with the reason, skipped, and not in the table.
    assert re.search(r"SKIPPED gone \(http://127\.0\.0\.1:[0-9]+\): not reachable", result.stderr), result.stderr
    assert "gone" not in result.stdout
    # The scenario's threshold failed on small only: reported, not fatal.
    assert re.search(r"thresholds of the scenario failed for: small \(", result.stderr), result.stderr

    # Files: one report and log per run, the table, the HTML comparison; nothing for the dead one.
    for name in ("small", "big"):
        report = json.loads((out / f"{name}.json").read_text())
        assert report["labels"]["deployment"] == name
        assert report["labels"]["comparison"].startswith("compare-")
        assert report["run"].startswith("compare-") and report["run"].endswith(f"-{name}")
        assert report["target"] == workloads[name]
        assert report["summary"]["requests"] == number(rows[name]["requests"])
        assert "report written to" in (out / f"{name}.log").read_text()
    assert not (out / "gone.json").exists()
    assert (out / "compare.txt").read_text().strip() == result.stdout.strip()
    html = (out / "compare.html").read_text()
    assert html.lstrip().lower().startswith("<!doctype html")
    assert "<title>loadgen comparison</title>" in html
    assert "small" in html and "big" in html


def test_defaults_run_docker_and_skip_the_cluster_without_a_context(binaries, workloads, scenario, tmp_path):
    """No NAME=URL: the docker default (pointed at a local workload) runs; with no kubectl
    context the cluster targets are skipped with a reason, not an error."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n")
    out = tmp_path / "reports"
    result = run_script(
        "--loadgen", str(binaries["loadgen"]),
        "--scenario", str(scenario),
        "--out-dir", str(out),
        "--quiet",
        env={"COMPARE_DOCKER_URL": workloads["big"], "KUBECONFIG": str(kubeconfig)},
    )
    assert result.returncode == 0, result.stderr
    rows = table_rows(result.stdout)
    assert set(rows) == {"docker"}, result.stdout
    assert number(rows["docker"]["success"]) == 100.0
    assert (out / "docker.json").exists() and (out / "compare.html").exists()
    if shutil.which("kubectl"):
        assert "SKIPPED k8s-single, k8s-hpa: kubectl has no current context" in result.stderr, result.stderr
    else:
        assert "SKIPPED k8s-single, k8s-hpa: kubectl is not installed" in result.stderr, result.stderr
    # --quiet: the run's summary is in its log, not echoed.
    assert "report written to" not in result.stderr
    assert "report written to" in (out / "docker.log").read_text()


# A kubectl double for the cluster branch (there is no cluster on these machines). It renders
# with the real kubectl (so deploy/scripts/apply.sh applies the real overlays), records what is
# applied, and answers `port-forward` with the port of a real workload: the one standing in for
# the single replica while the last applied manifests had no HorizontalPodAutoscaler, the other
# once they had one. Everything else a cluster would answer (context, /readyz, rollout) succeeds.
FAKE_KUBECTL = r"""#!/usr/bin/env python3
import json, os, sys, time

args = sys.argv[1:]
state = os.environ["FAKE_KUBECTL_STATE"]
with open(state + ".log", "a") as log:
    log.write(json.dumps(args) + "\n")
if args[:1] in (["kustomize"], ["create"]):
    os.execv(os.environ["REAL_KUBECTL"], [os.environ["REAL_KUBECTL"], *args])
if args[:2] == ["config", "current-context"]:
    print("fake-cluster")
elif "apply" in args:
    manifests = sys.stdin.read()
    kinds = [l.split(":", 1)[1].strip() for l in manifests.splitlines() if l.startswith("kind:")]
    with open(state + ".applied", "a") as out:
        out.write(json.dumps(kinds) + "\n")
    with open(state, "w") as out:
        out.write("hpa" if "HorizontalPodAutoscaler" in kinds else "single")
elif "port-forward" in args:
    which = open(state).read().strip()
    port = os.environ["FAKE_PORT_" + which.upper()]
    with open(state + ".forwards", "a") as out:
        out.write(f"{os.getpid()}\n")
    print(f"Forwarding from 127.0.0.1:{port} -> 8080", flush=True)
    time.sleep(300)
elif any("nodePort" in a for a in args):
    pass  # a ClusterIP Service: no NodePort
else:
    print("ok")
"""


def test_cluster_targets_apply_single_then_hpa_and_watch(binaries, workloads, scenario, tmp_path):
    real_kubectl = require_tool("kubectl")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "kubectl"
    fake.write_text(FAKE_KUBECTL)
    fake.chmod(0o755)
    state = tmp_path / "kubectl-state"
    kubeconfig = tmp_path / "kubeconfig"  # what loadgen's own kube client sees: no cluster
    kubeconfig.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n")
    out = tmp_path / "reports"
    result = run_script(
        "--loadgen", str(binaries["loadgen"]),
        "--scenario", str(scenario),
        "--out-dir", str(out),
        "--ready-timeout", "1",
        "--quiet",
        env={
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "REAL_KUBECTL": real_kubectl,
            "FAKE_KUBECTL_STATE": str(state),
            "FAKE_PORT_SINGLE": workloads["small"].rsplit(":", 1)[1],
            "FAKE_PORT_HPA": workloads["big"].rsplit(":", 1)[1],
            "KUBECONFIG": str(kubeconfig),
            "COMPARE_DOCKER_URL": f"http://127.0.0.1:{free_port()}",
        },
    )
    assert result.returncode == 0, result.stderr
    assert re.search(r"SKIPPED docker \(http://127\.0\.0\.1:[0-9]+\): not reachable", result.stderr)
    rows = table_rows(result.stdout)
    assert list(rows) == ["k8s-single", "k8s-hpa"], result.stdout
    # single ran against the single stand-in (it sheds), hpa against the other.
    assert number(rows["k8s-single"]["success"]) < 90.0 and number(rows["k8s-hpa"]["success"]) == 100.0, result.stdout

    applied = [json.loads(line) for line in (state.with_suffix(".applied")).read_text().splitlines()]
    workload_applies = [kinds for kinds in applied if "Deployment" in kinds]
    assert len(workload_applies) == 2, applied
    assert "HorizontalPodAutoscaler" not in workload_applies[0]
    assert "HorizontalPodAutoscaler" in workload_applies[1]
    calls = (state.with_suffix(".log")).read_text()
    assert calls.count('"rollout", "status", "deployment/workload"') == 2, calls
    for name, target in (("k8s-single", workloads["small"]), ("k8s-hpa", workloads["big"])):
        report = json.loads((out / f"{name}.json").read_text())
        assert report["labels"]["deployment"] == name
        assert report["target"] == target
        # --watch was passed: the watcher ran, found no cluster, said so, and the run went on.
        assert report["replicas"]["target"] == "deployment/workload"
        assert report["replicas"]["namespace"] == "scalebench"
        assert report["replicas"]["warnings"], report["replicas"]
        assert (out / f"apply-{name.removeprefix('k8s-')}.log").exists()
    assert (out / "compare.html").exists()
    # One port-forward per overlay, each stopped by the script once its run was over.
    forwards = [int(pid) for pid in state.with_suffix(".forwards").read_text().split()]
    assert len(forwards) == 2, forwards
    for pid in forwards:
        assert not Path(f"/proc/{pid}").exists(), f"port-forward {pid} outlived the script"


def test_fails_when_no_target_runs(binaries, scenario, tmp_path):
    result = run_script(
        "--loadgen", str(binaries["loadgen"]),
        "--scenario", str(scenario),
        "--out-dir", str(tmp_path / "reports"),
        "--ready-timeout", "0",
        f"a=http://127.0.0.1:{free_port()}",
        timeout=30,
    )
    assert result.returncode == 1, result.stderr
    assert "SKIPPED a (" in result.stderr
    assert "no target ran" in result.stderr
    assert result.stdout == ""


def test_a_scenario_loadgen_rejects_stops_the_comparison(binaries, workloads, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nrequests:\n  - path: /ping\n    bogus: 1\n")
    result = run_script(
        "--loadgen", str(binaries["loadgen"]),
        "--scenario", str(bad),
        "--out-dir", str(tmp_path / "reports"),
        "--quiet",
        f"small={workloads['small']}",
        f"big={workloads['big']}",
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert "loadgen rejected the run of small" in result.stderr
    assert "unknown field `bogus`" in result.stderr, result.stderr
    assert "running big" not in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    "args, message",
    [
        (["bad/name=http://127.0.0.1:1"], "target name 'bad/name'"),
        (["a=ftp://x"], "is not an http:// or https:// URL"),
        (["a=http://127.0.0.1:1", "a=http://127.0.0.1:2"], "given twice"),
        (["--watch", "b=deployment/w", "a=http://127.0.0.1:1"], "not among the NAME=URL targets"),
        (["--ready-timeout", "soon", "a=http://127.0.0.1:1"], "number of seconds"),
        (["--scenario", "/nonexistent.yaml", "a=http://127.0.0.1:1"], "is not a file"),
        (["--bogus"], "unknown option: --bogus"),
    ],
)
def test_bad_usage_exits_2_with_a_clear_message(binaries, args, message):
    result = run_script("--loadgen", str(binaries["loadgen"]), *args, timeout=30)
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert message in result.stderr, result.stderr


def test_help_names_every_option():
    result = run_script("--help", timeout=30)
    assert result.returncode == 0
    for option in ("--scenario", "--out-dir", "--loadgen", "--docker-url", "--no-k8s", "--k8s-url",
                   "--watch", "--ready-timeout", "--hpa-wait", "--pause", "--prometheus",
                   "--no-prometheus", "COMPARE_PROMETHEUS_URL", "NAME=URL", "LOADGEN_BIN"):
        assert option in result.stdout, option


def test_shellcheck_clean():
    shellcheck = require_tool("shellcheck")
    result = subprocess.run([shellcheck, str(SCRIPT)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout


class _FakePrometheus(http.server.BaseHTTPRequestHandler):
    """Answers /-/ready and records each remote-write POST (headers and body size)."""

    writes: list[dict] = []

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.send_response(200 if self.path == "/-/ready" else 404)
        self.end_headers()

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).writes.append({"path": self.path, "headers": dict(self.headers), "size": len(body)})
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_runs_push_their_metrics_to_a_prometheus_that_answers(binaries, workloads, scenario, tmp_path):
    """With a Prometheus at --prometheus (the compose stack's by default), every run pushes its
    metrics there by remote write, so the dashboards overlay the compared deployments."""
    _FakePrometheus.writes = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakePrometheus)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        result = run_script(
            "--loadgen", str(binaries["loadgen"]),
            "--scenario", str(scenario),
            "--out-dir", str(tmp_path / "reports"),
            "--prometheus", f"http://127.0.0.1:{server.server_address[1]}",
            f"big={workloads['big']}",
        )
    finally:
        server.shutdown()
        thread.join(timeout=5)
    assert result.returncode == 0, result.stderr
    assert "pushing each run's metrics to" in result.stderr, result.stderr
    writes = _FakePrometheus.writes
    assert writes, f"no remote write reached the fake Prometheus:\n{result.stderr[-2000:]}"
    for write in writes:
        assert write["path"] == "/api/v1/write", write
        headers = {k.lower(): v for k, v in write["headers"].items()}
        assert headers["content-encoding"] == "snappy", headers
        assert headers["content-type"] == "application/x-protobuf", headers
        assert write["size"] > 0, write


def test_a_prometheus_that_does_not_answer_is_reported_not_fatal(binaries, workloads, scenario, tmp_path):
    result = run_script(
        "--loadgen", str(binaries["loadgen"]),
        "--scenario", str(scenario),
        "--out-dir", str(tmp_path / "reports"),
        "--prometheus", f"http://127.0.0.1:{free_port()}",
        f"big={workloads['big']}",
    )
    assert result.returncode == 0, result.stderr
    assert "no Prometheus answers at" in result.stderr, result.stderr
    assert "pushing each run's metrics" not in result.stderr, result.stderr
    assert (tmp_path / "reports" / "big.json").is_file()
