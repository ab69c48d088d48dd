"""Native histograms end to end: the loadgen's HDR latencies remote-written as native histograms
into the pinned Prometheus 3 (its remote-write receiver keeps them; no feature flag since 3.8),
read back by the dashboards' own queries and recording rules.

One workload and one Prometheus on 127.0.0.1; two short open-loop runs against a scenario of two
well-separated latencies (90% /ping, 10% a 60 ms I/O wait), so the p50 lies among the fast
requests and the p99 among the slow ones, each far from the other mode:
  - `--remote-write-histograms native`: the run's durations are native histograms only (no
    `_bucket`/`_count` series), and the p50 and p99 that the dashboards show (the compare
    dashboard's client p99 stat, from the recording rule; the loadgen dashboard's latency by
    endpoint) lie within one native bucket of the report's;
  - the default `both`: native and classic series side by side, and the recording rule takes the
    native one.
Then the oldest promised release (Debian's 2.42, no native histograms) refuses the default push
and the loadgen says what to do; `classic` goes through.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, figure, prometheus_tool, require_tool
from procs import start_prometheus, start_workload
from dashboard_queries import panel_targets, rule_files, substitute

RATE = 40
RUN_SECONDS = 10
SLOW_MS = 60
SCHEMA = 3  # loadgen/src/metrics/native.rs
DEPLOYMENT = "native-proof"


def bucket(seconds: float) -> int:
    """The native bucket of SCHEMA holding SECONDS: the smallest i with seconds <= 2^(i/2^SCHEMA)."""
    return math.ceil(math.log2(seconds) * 2**SCHEMA - 1e-9)


def start_rules_prometheus(binary: str, tmp: Path, name: str, *flags: str) -> tuple[subprocess.Popen, str]:
    """A Prometheus on a free 127.0.0.1 port with the shipped rule files, evaluated every second,
    taking remote writes."""
    config = tmp / f"{name}.yml"
    config.write_text(yaml.safe_dump({
        "global": {"evaluation_interval": "1s", "scrape_interval": "1s"},
        "rule_files": [str(p) for p in rule_files()],
    }))  # fmt: skip
    return start_prometheus(
        binary, f"--config.file={config}", f"--storage.tsdb.path={tmp / (name + '-data')}",
        "--web.enable-remote-write-receiver", *flags, log=tmp / f"{name}.log",
    )  # fmt: skip


def query(base: str, expr: str) -> list[dict]:
    data = urllib.parse.urlencode({"query": expr, "time": f"{time.time():.3f}"}).encode()
    with urllib.request.urlopen(f"{base}/api/v1/query", data=data, timeout=30) as resp:
        body = json.load(resp)
    assert body["status"] == "success", body
    return body["data"]["result"]


def scenario(tmp: Path) -> Path:
    path = tmp / "two-modes.yaml"
    path.write_text(yaml.safe_dump({
        "name": "two-modes",
        "load": {"rate": RATE, "duration": f"{RUN_SECONDS}s", "max_in_flight": 100},
        "requests": [
            {"name": "fast", "weight": 9, "path": "/ping"},
            {"name": "slow", "weight": 1, "path": f"/work/io?ms={SLOW_MS}"},
        ],
    }))  # fmt: skip
    return path


@dataclass
class Run:
    run_id: str
    report: dict
    stderr: str


def run_loadgen(loadgen: Path, target: str, tmp: Path, write_url: str, *extra: str, seconds: int = RUN_SECONDS) -> Run:
    run_id = f"native-{uuid.uuid4().hex[:8]}"
    out = tmp / f"{run_id}.json"
    proc = subprocess.run(
        [str(loadgen), "run", str(scenario(tmp)), "--target", target, "--duration", f"{seconds}s",
         "--remote-write", write_url, "--remote-write-interval", "1s", "--deployment", DEPLOYMENT,
         "--run-id", run_id, "--threads", "1", "--out", str(out), "--quiet", *extra],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return Run(run_id, json.loads(out.read_text()), proc.stderr)


def dashboard_target(dashboard: str, panel: str, legend_suffix: str = ""):
    (tgt,) = [t for t in panel_targets() if t.dashboard == dashboard and t.panel == panel and t.legend.endswith(legend_suffix)]
    return tgt


def dashboard_value(base: str, tgt, run_id: str, window_s: int) -> list[dict]:
    """A panel target as Grafana sends it for this run, its rate window covering the whole run."""
    expr = tgt.expr.replace("$__rate_interval", f"{window_s}s")
    expr = substitute(expr, {"deployment": DEPLOYMENT, "run": run_id}, interval_s=1, scrape_s=1, range_s=window_s)
    return query(base, expr)


@pytest.fixture(scope="module")
def stack(binaries, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("native")
    workload, target = start_workload(binaries["workload"])
    prom, base = start_rules_prometheus(prometheus_tool("prometheus"), tmp, "pinned")
    try:
        yield {"tmp": tmp, "target": target, "base": base, "loadgen": binaries["loadgen"]}
    finally:
        for proc in (prom, workload):
            proc.terminate()
            proc.wait(timeout=15)


@pytest.fixture(scope="module")
def native_run(stack) -> Run:
    run = run_loadgen(stack["loadgen"], stack["target"], stack["tmp"], f"{stack['base']}/api/v1/write",
                      "--remote-write-histograms", "native")
    time.sleep(3)  # the rules evaluate every second
    return run


def test_a_native_run_writes_native_histograms_only(stack, native_run: Run):
    sel = f'run="{native_run.run_id}"'
    series = query(stack["base"], f"loadgen_request_duration_seconds{{{sel}}}")
    assert {s["metric"]["endpoint"] for s in series} == {"fast", "slow"}, series
    for s in series:
        assert "histogram" in s and "value" not in s, s
        assert s["metric"]["deployment"] == DEPLOYMENT and s["metric"]["scenario"] == "two-modes", s
    total = sum(float(s["histogram"][1]["count"]) for s in series)
    assert total == native_run.report["summary"]["requests"], (total, native_run.report["summary"])
    classic = query(stack["base"], f'{{__name__=~"loadgen_request_duration_seconds_(bucket|count|sum)", {sel}}}')
    assert classic == [], classic
    # The first push goes out as the run starts, so the series begin near zero and a rate over
    # the run counts its first interval too.
    (first,) = query(stack["base"], f'loadgen_request_duration_seconds{{{sel}, endpoint="fast", outcome="success"}}[1m]')
    counts = [float(h["count"]) for _, h in first["histograms"]]
    assert counts[0] < 0.1 * counts[-1], counts
    # The other series of the run still arrive.
    assert query(stack["base"], f"loadgen_requests_total{{{sel}}}"), "no loadgen_requests_total"


def test_the_dashboard_p99_is_within_one_bucket_of_the_reports(stack, native_run: Run):
    """The compare dashboard's client p99 stat (recording rule over 30 s, longer than the run) and
    the loadgen dashboard's p50/p99 by endpoint, against the report's figures."""
    report = native_run.report
    window = RUN_SECONDS + 10
    stat = dashboard_target("compare-deployments.json", "Client p99 latency")
    (p99,) = dashboard_value(stack["base"], stat, native_run.run_id, window)
    shown, reported = float(p99["value"][1]), report["summary"]["latency_ms"]["p99"] / 1000
    figure("native p99", dashboard_s=shown, report_s=reported, dashboard_bucket=bucket(shown), report_bucket=bucket(reported))
    assert abs(bucket(shown) - bucket(reported)) <= 1, (shown, reported)
    assert reported >= SLOW_MS / 1000, "the p99 should lie among the slow requests"

    by_endpoint = {e["name"]: e["latency_ms"] for e in report["endpoints"]}
    for quantile, suffix in (("p50", "p50"), ("p99", "p99")):
        tgt = dashboard_target("loadgen.json", "Latency by endpoint (p50, p99)", suffix)
        shown_by_endpoint = {s["metric"]["endpoint"]: float(s["value"][1]) for s in dashboard_value(stack["base"], tgt, native_run.run_id, window)}
        assert set(shown_by_endpoint) == {"fast", "slow"}, shown_by_endpoint
        # The slow endpoint's latencies sit in one or two buckets: its quantiles must agree. The
        # fast one's tail is whatever this machine's scheduler did, so only its median is held.
        for endpoint in ("slow",) if quantile == "p99" else ("fast", "slow"):
            got, want = shown_by_endpoint[endpoint], by_endpoint[endpoint][quantile] / 1000
            assert abs(bucket(got) - bucket(want)) <= 1, (endpoint, quantile, got, want)


def test_with_both_the_rules_read_the_native_series(stack):
    run = run_loadgen(stack["loadgen"], stack["target"], stack["tmp"], f"{stack['base']}/api/v1/write", seconds=4)
    time.sleep(3)
    sel = f'run="{run.run_id}"'
    kinds = {("histogram" in s) for s in query(stack["base"], f"loadgen_request_duration_seconds{{{sel}}}")}
    assert kinds == {True}, "no native series with the default export"
    assert query(stack["base"], f"loadgen_request_duration_seconds_bucket{{{sel}}}"), "no classic series with both"
    recorded = query(stack["base"], f'deployment_run:loadgen_request_duration_seconds:quantile30s{{quantile="0.99", {sel}}}')
    native = query(stack["base"], f"histogram_quantile(0.99, deployment_run:loadgen_request_duration_seconds:rate30s{{{sel}}})")
    classic = query(stack["base"], f"histogram_quantile(0.99, deployment_run_le:loadgen_request_duration_seconds_bucket:rate30s{{{sel}}})")
    assert recorded and native and classic, (recorded, native, classic)
    # The classic buckets (…, 0.05, 0.1, …) put a 60 ms p99 at a different interpolated value
    # than the native ones: the rule's figure is the native one.
    assert float(recorded[0]["value"][1]) == pytest.approx(float(native[0]["value"][1]), rel=0.02)
    assert float(native[0]["value"][1]) != pytest.approx(float(classic[0]["value"][1]), rel=0.001)


def test_a_receiver_without_native_histograms_gets_a_clear_error_and_classic_still_works(stack):
    """Debian's 2.42 (native histograms off by default) refuses the default push: the loadgen
    warns with the fix; `--remote-write-histograms classic` lands."""
    oldest = shutil.which("prometheus") or require_tool("prometheus")
    tmp = stack["tmp"]
    proc, base = start_rules_prometheus(oldest, tmp, "oldest")
    try:
        refused = run_loadgen(stack["loadgen"], stack["target"], tmp, f"{base}/api/v1/write", seconds=2)
        assert "--remote-write-histograms classic" in refused.stderr, refused.stderr[-2000:]
        landed = run_loadgen(stack["loadgen"], stack["target"], tmp, f"{base}/api/v1/write", "--remote-write-histograms", "classic", seconds=2)
        assert "warning" not in landed.stderr, landed.stderr[-2000:]
        assert query(base, f'loadgen_request_duration_seconds_count{{run="{landed.run_id}"}}')
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_the_flag_has_an_env_twin_and_rejects_unknown_modes(binaries):
    env = {**os.environ, "LOADGEN_REMOTE_WRITE_HISTOGRAMS": "sparse"}
    proc = subprocess.run([str(binaries["loadgen"]), "--target", "http://127.0.0.1:9/", "-n", "1"],
                          capture_output=True, text=True, timeout=60, env=env, cwd=ROOT)  # fmt: skip
    assert proc.returncode == 2 and "native" in proc.stderr and "classic" in proc.stderr, proc.stderr
