"""Live proof that the dashboards show data: a real run, scraped by a real Prometheus.

The test starts, on 127.0.0.1 and free ports:
  - the real `workload` binary,
  - the real `loadgen` binary: a short open-loop run of a mixed scenario (CPU work, I/O wait, task
    CRUD, failing statuses, a request slower than the loadgen's timeout) labelled
    deployment=docker and run=<unique id>, scraped, and watching deployment/workload through a
    Kubernetes API that replays recorded responses (a scale-out 1 -> 3 -> 5, fake_kube_api.py),
    so the replica and HPA panels are proven on real series too,
  - a second, lighter loadgen run labelled deployment=pushed that reaches Prometheus through the
    remote-write receiver (as a Kubernetes run does), so multi-value panels must overlay both,
  - a kubelet's cAdvisor endpoint replaying a recorded exposition (fake_kubelet.py), so the
    container CPU panels (any image, cluster only) are proven on real series too,
  - the real `prometheus` binary of the release compose and the cluster pin (3.x, built from its
    Go module by scripts/build-prometheus.sh) with a config derived from prometheus/prometheus.yml:
    the same jobs, labels and rule files, targets rewritten to those ports, 1 s scrape interval,
    plus deploy/monitoring's `cadvisor` job with its own relabeling (discovery and the API
    server's TLS replaced by one static node target on that endpoint),
  - beside it, the oldest release the README promises (Debian bookworm's 2.42, the `prometheus` on
    PATH in CI) with the same config, scraping the same targets.
Then it evaluates every target of every panel of every dashboard through the HTTP API, with the
template variables substituted as Grafana substitutes them (single value, multi value, All), and
fails on any error or empty result; on the oldest release, every target with All. It also fails when a dashboard or a rule names a metric that
neither binary exports. Grafana itself cannot run here; test_prometheus_rules.py checks the
provisioning files' structure.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, prometheus_release, prometheus_tool, require_tool
from fake_kube_api import NAMESPACE, FakeKubeApi
from procs import free_port, log_tail, spawn, terminate, wait_until_ready
from fake_kubelet import NODE, WORKLOAD_LIMIT_CORES, WORKLOAD_POD, WORKLOAD_REQUEST_CORES, CPU_CORES, FakeKubelet
from dashboard_queries import (
    PROMETHEUS_DIR,
    SYNTHETIC_NAMES,
    PanelTarget,
    exposition_names,
    metric_names,
    panel_targets,
    parse_label_values,
    provisioned_scrape_interval,
    recorded_names,
    rule_files,
    rules,
    substitute,
    variable_queries,
)

RUN_SECONDS = 24
RATE = 40  # arrivals (iterations) per second, open loop
DEPLOYMENT = "docker"
# A second, lighter loadgen run that reaches Prometheus by remote write instead of a scrape, the way
# a run against a Kubernetes deployment lands in the compose Prometheus. Its label must overlay
# with `docker` on every client-side panel.
PUSHED = "pushed"
PUSHED_RATE = 10
# The recorded scale-out the watched Deployment goes through (fake_kube_api.py's fixtures).
RECORDED_MAX_READY = 5

TARGETS = panel_targets()
VARIABLES = variable_queries()


# ----------------------------------------------------------------------------- processes
def shipped_cadvisor_job(address: str) -> dict:
    """deploy/monitoring's `cadvisor` job aimed at the fake kubelet: node discovery becomes one
    static target carrying the meta label the node role sets, the API server's TLS and token go
    (plain HTTP), and the API server's address becomes ADDRESS. The node-proxy path rewrite and the
    metric relabeling are the shipped ones."""
    config = yaml.safe_load((ROOT / "deploy" / "monitoring" / "prometheus.yml").read_text())
    (job,) = [copy.deepcopy(sc) for sc in config["scrape_configs"] if sc["job_name"] == "cadvisor"]
    for key in ("authorization", "tls_config", "kubernetes_sd_configs"):
        del job[key]
    job["scheme"] = "http"
    job["static_configs"] = [{"targets": ["discovered-node"], "labels": {"__meta_kubernetes_node_name": NODE}}]
    (to_api_server,) = [r for r in job["relabel_configs"] if r.get("target_label") == "__address__"]
    to_api_server["replacement"] = address
    return job


def derived_prometheus_config(ports: dict[str, int], tmp: Path) -> Path:
    """prometheus/prometheus.yml with its targets on 127.0.0.1 and a 1 s interval, plus the
    cluster's cAdvisor job (shipped_cadvisor_job).

    Everything else (jobs, labels, honor_labels, rule files) is the real file's: a change there is
    what this test runs against. The workload target also gets the `namespace` and `pod` labels the
    cluster's workload job gives a pod (deploy/monitoring/prometheus.yml), naming the recorded pod,
    so the container rules can attach its deployment label.
    """
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    config["global"].update({"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"})
    config["rule_files"] = [str(p) for p in rule_files()]
    jobs = {sc["job_name"]: sc for sc in config["scrape_configs"]}
    assert set(jobs) == {"workload", "loadgen", "prometheus"}, "scrape jobs are part of the metric contract"
    for name, scrape in jobs.items():
        (static,) = scrape["static_configs"]
        assert len(static["targets"]) == 1, name
        static["targets"] = [f"127.0.0.1:{ports[name]}"]
    jobs["workload"]["static_configs"][0]["labels"].update({"namespace": NAMESPACE, "pod": WORKLOAD_POD})
    config["scrape_configs"].append(shipped_cadvisor_job(f"127.0.0.1:{ports['kubelet']}"))
    path = tmp / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@dataclass
class Stack:
    prometheus: str  # base URL of the pinned Prometheus 3 release
    oldest: str | None  # base URL of the oldest promised release (Debian's 2.42), when installed
    workload_metrics: str
    loadgen_metrics: str
    run_id: str
    pushed_run_id: str
    start: float  # unix time the load started
    kubelet: FakeKubelet
    logs: dict[str, Path] = field(default_factory=dict)

    def api(self, path: str, params: dict, *, post: bool = True, base: str | None = None) -> dict:
        """POST like Grafana's datasource (httpMethod POST); GET where the API only allows GET.
        BASE: another Prometheus of the stack (default: the pinned release)."""
        base = base or self.prometheus
        query = urllib.parse.urlencode(params, doseq=True)
        url, data = (f"{base}{path}", query.encode()) if post else (f"{base}{path}?{query}", None)
        try:
            with urllib.request.urlopen(url, data=data, timeout=30) as resp:
                body = json.load(resp)
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"{path} {params}: HTTP {exc.code}: {exc.read().decode(errors='replace')}")
        assert body["status"] == "success", body
        return body["data"]


# The loadgen's per-request timeout is below the workload's, so a request the workload serves in
# 700 ms times out at the client (loadgen_errors_total{kind="timeout"}) and never at the server.
CLIENT_TIMEOUT = "500ms"
WORKLOAD_TIMEOUT = "1s"


def loadgen_scenario(tmp: Path) -> Path:
    """A mixed open-loop scenario so that every series the dashboards plot exists and moves:
    CPU work, I/O wait, CRUD with a capture, a 500, a 503, and a request slower than the timeout."""
    scenario = {
        "name": "dashboards-proof",
        "description": "tests/system/test_dashboards.py: every panel must have data",
        "timeout": CLIENT_TIMEOUT,
        "load": {"rate": RATE, "duration": f"{RUN_SECONDS}s", "max_in_flight": 200},
        "requests": [
            {"name": "ping", "weight": 4, "path": "/ping"},
            {"name": "hello", "weight": 2, "method": "POST", "path": "/api/v1/hello", "json": {}},
            {"name": "cpu", "weight": 2, "path": "/work/cpu?ms=5"},
            {"name": "io", "weight": 2, "path": "/work/io?ms=20"},
            {"name": "io-too-slow", "weight": 1, "path": "/work/io?ms=700"},
            {"name": "fail-500", "weight": 1, "path": "/status/500"},
            {"name": "fail-503", "weight": 1, "path": "/status/503"},
            {
                "name": "task-lifecycle",
                "weight": 2,
                "steps": [
                    {
                        "name": "create",
                        "method": "POST",
                        "path": "/tasks",
                        "json": {"title": "proof {{counter}}"},
                        "capture": {"task_id": "$.id"},
                    },
                    {"name": "get", "path": "/tasks/{{task_id}}"},
                    {"name": "delete", "method": "DELETE", "path": "/tasks/{{task_id}}"},
                ],
            },
        ],
    }
    path = tmp / "scenario.yaml"
    path.write_text(yaml.safe_dump(scenario, sort_keys=False))
    return path


def loadgen_command(binary: Path, target: str, scenario: Path, metrics_port: int, run_id: str) -> list[str]:
    return [
        str(binary),
        "run",
        str(scenario),
        "--target",
        target,
        "--metrics-addr",
        f"127.0.0.1:{metrics_port}",
        # long enough for every query below to run while the final values are still served
        "--metrics-linger",
        "300s",
        "--deployment",
        DEPLOYMENT,
        "--run-id",
        run_id,
        "--threads",
        "1",
        "--watch",
        "deployment/workload",
        "--namespace",
        NAMESPACE,
        "--watch-interval",
        "200ms",
        "--out",
        str(scenario.parent / "report.json"),
        "--quiet",
    ]


@pytest.fixture(scope="module")
def stack(binaries, tmp_path_factory) -> Stack:
    prometheus = prometheus_tool("prometheus")
    # The oldest promised release is optional here; the test that reads it skips (fails in CI)
    # when it is absent.
    oldest = shutil.which("prometheus")
    tmp = tmp_path_factory.mktemp("dashboards")
    ports = {name: free_port() for name in ("app", "workload", "loadgen", "prometheus", "oldest")}
    run_id = f"proof-{uuid.uuid4().hex[:8]}"
    procs: list[subprocess.Popen] = []
    logs = {name: tmp / f"{name}.log" for name in ("workload", "loadgen", "pusher", "prometheus", "oldest")}
    kube_api = FakeKubeApi()
    kubelet = FakeKubelet()
    ports["kubelet"] = kubelet.port

    def launch(name: str, cmd: list[str], env: dict | None = None) -> subprocess.Popen:
        proc = spawn(cmd, logs[name], {**os.environ, **(env or {})}, cwd=tmp)
        procs.append(proc)
        return proc

    try:
        workload = launch(
            "workload",
            [str(binaries["workload"])],
            {
                "WORKLOAD_ADDR": f"127.0.0.1:{ports['app']}",
                "WORKLOAD_METRICS_ADDR": f"127.0.0.1:{ports['workload']}",
                "WORKLOAD_LOG_FORMAT": "text",
                "WORKLOAD_LOG": "warn",
                # a request that sleeps longer than this is cut with 503, reason "timeout"
                "WORKLOAD_REQUEST_TIMEOUT": WORKLOAD_TIMEOUT,
                "WORKLOAD_DRAIN_DELAY": "0s",
                "WORKLOAD_SHUTDOWN_TIMEOUT": "2s",
            },
        )
        wait_until_ready(f"http://127.0.0.1:{ports['app']}/healthz", 30, workload, logs["workload"])

        kubelet.start()
        config = derived_prometheus_config(ports, tmp)
        check = subprocess.run(
            [prometheus_tool("promtool"), "check", "config", str(config)], capture_output=True, text=True, timeout=60
        )
        assert check.returncode == 0, check.stdout + check.stderr
        prom = launch(
            "prometheus",
            [
                prometheus,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{ports['prometheus']}",
                "--web.enable-remote-write-receiver",
                "--log.level=warn",
            ],
        )
        base = f"http://127.0.0.1:{ports['prometheus']}"
        oldest_base = None
        if oldest is not None:
            old = launch(
                "oldest",
                [
                    oldest,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={tmp / 'tsdb-oldest'}",
                    f"--web.listen-address=127.0.0.1:{ports['oldest']}",
                    "--log.level=warn",
                ],
            )
            oldest_base = f"http://127.0.0.1:{ports['oldest']}"
            wait_until_ready(f"{oldest_base}/-/ready", 60, old, logs["oldest"])
        wait_until_ready(f"{base}/-/ready", 60, prom, logs["prometheus"])

        scenario = loadgen_scenario(tmp)
        kubeconfig = kube_api.write_kubeconfig(tmp / "kubeconfig")
        start = time.time()
        kube_api.start()
        loadgen = launch(
            "loadgen",
            loadgen_command(
                binaries["loadgen"], f"http://127.0.0.1:{ports['app']}", scenario, ports["loadgen"], run_id
            ),
            {"KUBECONFIG": str(kubeconfig)},
        )
        pushed_run_id = f"{run_id}-pushed"
        pusher = launch(
            "pusher",
            [
                str(binaries["loadgen"]),
                "--target",
                f"http://127.0.0.1:{ports['app']}/ping",
                "--rate",
                str(PUSHED_RATE),
                "--duration",
                f"{RUN_SECONDS}s",
                "--remote-write",
                f"{base}/api/v1/write",
                "--remote-write-interval",
                "1s",
                "--deployment",
                PUSHED,
                "--run-id",
                pushed_run_id,
                "--threads",
                "1",
                "--quiet",
            ],
        )
        wait_until_ready(f"http://127.0.0.1:{ports['loadgen']}/metrics", 30, loadgen, logs["loadgen"])
        # Let the run finish and Prometheus scrape and evaluate its end (the loadgen lingers).
        deadline = start + RUN_SECONDS + 4
        while time.time() < deadline:
            assert loadgen.poll() is None, f"loadgen exited early ({loadgen.returncode}):\n{log_tail(logs['loadgen'])}"
            assert workload.poll() is None, f"workload exited:\n{log_tail(logs['workload'])}"
            assert pusher.poll() in (None, 0), f"remote-writing loadgen failed:\n{log_tail(logs['pusher'])}"
            time.sleep(0.5)
        try:
            assert pusher.wait(timeout=30) == 0, f"remote-writing loadgen failed:\n{log_tail(logs['pusher'])}"
        except subprocess.TimeoutExpired:
            raise AssertionError(f"remote-writing loadgen did not finish:\n{log_tail(logs['pusher'])}") from None
        yield Stack(
            prometheus=base,
            oldest=oldest_base,
            workload_metrics=f"http://127.0.0.1:{ports['workload']}/metrics",
            loadgen_metrics=f"http://127.0.0.1:{ports['loadgen']}/metrics",
            run_id=run_id,
            pushed_run_id=pushed_run_id,
            start=start,
            kubelet=kubelet,
            logs=logs,
        )
    finally:
        for proc in reversed(procs):
            terminate(proc)
        kube_api.stop()
        kubelet.stop()


# ----------------------------------------------------------------------------- the proof
def substitutions(stack: Stack) -> dict[str, dict[str, str]]:
    """The three ways Grafana fills `deployment` and `run`: one value, several values, All."""
    return {
        "single": {"deployment": DEPLOYMENT, "run": stack.run_id},
        "multi": {"deployment": f"({DEPLOYMENT}|{PUSHED})", "run": f"({stack.run_id}|{stack.pushed_run_id})"},
        "all": {"deployment": ".*", "run": ".*"},
    }


def evaluate(stack: Stack, tgt: PanelTarget, variables: dict[str, str], base: str | None = None) -> list[dict]:
    """Run a panel target as Grafana would for the last minute (or since the run began), on the
    pinned Prometheus or BASE."""
    scrape = provisioned_scrape_interval()
    end = time.time()
    start = min(stack.start - 10, end - 60)
    interval = scrape  # Grafana's $__interval for this range is clamped to the min interval
    expr = substitute(tgt.expr, variables, interval_s=interval, scrape_s=scrape, range_s=end - start)
    if tgt.instant:
        data = stack.api("/api/v1/query", {"query": expr, "time": f"{end:.3f}"}, base=base)
        values = [data_point for series in data["result"] for data_point in [series["value"]]]
    else:
        data = stack.api(
            "/api/v1/query_range",
            {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{interval}"},
            base=base,
        )
        values = [v for series in data["result"] for v in series["values"]]
    assert data["result"], f"{tgt.id}: no data for {expr}"
    finite = [v for _, v in values if not math.isnan(float(v))]
    assert finite, f"{tgt.id}: only NaN for {expr}"
    return data["result"]


@pytest.mark.parametrize("form", ["single", "multi", "all"])
@pytest.mark.parametrize("tgt", TARGETS, ids=[t.id for t in TARGETS])
def test_panel_query_returns_data(stack: Stack, tgt: PanelTarget, form: str):
    result = evaluate(stack, tgt, substitutions(stack)[form])
    deployments = {s["metric"]["deployment"] for s in result if "deployment" in s["metric"]}
    runs = {s["metric"]["run"] for s in result if "run" in s["metric"]}
    if form == "single":
        assert deployments <= {DEPLOYMENT} and runs <= {stack.run_id}, (deployments, runs)
    else:
        assert deployments <= {DEPLOYMENT, PUSHED} and runs <= {stack.run_id, stack.pushed_run_id}
    if form == "multi" and "$run" in tgt.expr and "deployment" in tgt.legend:
        # a client-side panel overlays the scraped run and the remote-written one
        assert deployments == {DEPLOYMENT, PUSHED}, f"{tgt.id}: only {deployments}"
    # every {{label}} of the legend is a label of the result, or Grafana prints it empty
    for label in re.findall(r"\{\{\s*(\w+)\s*\}\}", tgt.legend):
        assert any(label in s["metric"] for s in result), f"{tgt.id}: legend uses {{{{{label}}}}}, result has none"


def oldest_release(stack: Stack) -> str:
    """The oldest promised release's base URL; skips (fails in CI) where it is not installed."""
    if stack.oldest is None:
        require_tool("prometheus")
        pytest.fail("a `prometheus` is on PATH but the stack did not start it")
    return stack.oldest


@pytest.mark.parametrize("tgt", TARGETS, ids=[t.id for t in TARGETS])
def test_panel_query_returns_data_on_the_oldest_promised_release(stack: Stack, tgt: PanelTarget):
    """README promises the dashboards on Prometheus 2.42 too: every target, with All, has data
    scraped by it (the remote-written run goes to the pinned release only)."""
    evaluate(stack, tgt, substitutions(stack)["all"], base=oldest_release(stack))


def test_the_stack_runs_the_pinned_release_and_the_oldest_promised_one(stack: Stack):
    """The proofs above ran on the release compose and the cluster pin, and on a 2.x."""
    versions = {}
    for name, base in (("pinned", stack.prometheus), ("oldest", oldest_release(stack))):
        versions[name] = stack.api("/api/v1/status/buildinfo", {}, post=False, base=base)["version"]
    assert versions["pinned"] == prometheus_release(), versions
    assert versions["oldest"].startswith("2."), versions


@pytest.mark.parametrize(("dashboard", "name", "query"), VARIABLES, ids=[f"{d}:{n}" for d, n, _ in VARIABLES])
def test_template_variable_lists_the_run(stack: Stack, dashboard: str, name: str, query: str):
    selector, label = parse_label_values(query)
    variables = {"deployment": ".*", "run": ".*"}
    params: dict = {"start": f"{stack.start - 10:.3f}", "end": f"{time.time():.3f}"}
    if selector:
        params["match[]"] = substitute(selector, variables, interval_s=5, scrape_s=5, range_s=60)
    url = f"{stack.prometheus}/api/v1/label/{label}/values?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=30) as resp:
        values = json.load(resp)["data"]
    expected = {"deployment": {DEPLOYMENT, PUSHED}, "run": {stack.run_id, stack.pushed_run_id}}[name]
    assert expected <= set(values), f"{dashboard} ${name}: {values}"


def test_every_recording_rule_has_data(stack: Stack):
    missing = []
    for name in sorted(recorded_names()):
        data = stack.api("/api/v1/query", {"query": f'{{__name__="{name}"}}', "time": f"{time.time():.3f}"})
        if not data["result"]:
            missing.append(name)
    assert missing == [], "recording rules with no data after a real run"


@pytest.mark.parametrize("release", ["pinned", "oldest"])
def test_rule_health(stack: Stack, release: str):
    """Prometheus evaluated every rule without error, on both releases."""
    base = stack.prometheus if release == "pinned" else oldest_release(stack)
    data = stack.api("/api/v1/rules", {}, post=False, base=base)
    bad = [
        (r.get("name"), r.get("lastError"))
        for group in data["groups"]
        for r in group["rules"]
        if r.get("health") != "ok"
    ]
    assert bad == []
    loaded = {r["name"] for group in data["groups"] for r in group["rules"]}
    assert loaded == {r.get("record") or r.get("alert") for r in rules()}


def test_no_metric_name_without_an_exporter(stack: Stack):
    exported = set(SYNTHETIC_NAMES)
    for url in (stack.workload_metrics, stack.loadgen_metrics):
        with urllib.request.urlopen(url, timeout=10) as resp:
            exported |= exposition_names(resp.read().decode())
    exported |= exposition_names(stack.kubelet.exposition())  # the kubelet's, in the cluster
    known = exported | recorded_names()

    referenced: dict[str, set[str]] = {}
    for tgt in TARGETS:
        for name in metric_names(tgt.expr):
            referenced.setdefault(name, set()).add(tgt.id)
    for dashboard, var, query in VARIABLES:
        for name in metric_names(parse_label_values(query)[0] or ""):
            referenced.setdefault(name, set()).add(f"{dashboard}:${var}")
    for rule in rules():
        for name in metric_names(rule["expr"]):
            referenced.setdefault(name, set()).add(rule.get("record") or rule.get("alert"))
    assert len(referenced) > 20, "the metric-name extractor found suspiciously little"
    unknown = {name: sorted(users) for name, users in referenced.items() if name not in known}
    assert unknown == {}, "names no binary exports (see the metric contract in docs/metrics.md)"


def test_watched_replicas_and_hpa_utilization_reach_prometheus(stack: Stack):
    """The `--watch` arms of the replica and CPU panels carry the recorded scale-out themselves
    (not only their scraped fallbacks): ready replicas rise to 5, the HPA's utilization is there."""
    sel = f'deployment="{DEPLOYMENT}",run="{stack.run_id}"'
    window = f"{int(time.time() - stack.start) + 30}s"
    ready = stack.api("/api/v1/query", {"query": f'max_over_time(loadgen_observed_replicas{{{sel},kind="ready"}}[{window}])'})
    assert ready["result"], f"no loadgen_observed_replicas series:\n{log_tail(stack.logs['loadgen'])}"
    assert float(ready["result"][0]["value"][1]) == RECORDED_MAX_READY, ready["result"]
    kinds = stack.api("/api/v1/query", {"query": f"count by (kind) (loadgen_observed_replicas{{{sel}}})"})
    assert {r["metric"]["kind"] for r in kinds["result"]} >= {"desired", "current", "ready"}, kinds["result"]
    cpu = stack.api("/api/v1/query", {"query": f"max_over_time(loadgen_observed_cpu_utilization_percent{{{sel}}}[{window}])"})
    assert cpu["result"] and float(cpu["result"][0]["value"][1]) > 100, cpu["result"]


def test_the_cost_of_the_last_scale_out_reaches_prometheus(stack: Stack):
    """The recorded scale-out's last event (HPA desired 3 -> 5 at 5.5 s, 5 pods ready at 8.0 s in
    fake_kube_api.py) is published when the run ends: its time to ready, and the count of events."""
    sel = f'deployment="{DEPLOYMENT}",run="{stack.run_id}"'
    ready = stack.api("/api/v1/query", {"query": f"loadgen_scale_event_time_to_ready_seconds{{{sel}}}"})
    assert ready["result"], f"no loadgen_scale_event_time_to_ready_seconds:\n{log_tail(stack.logs['loadgen'])}"
    assert 1.5 <= float(ready["result"][0]["value"][1]) <= 3.5, ready["result"]
    events = stack.api("/api/v1/query", {"query": f"loadgen_scale_events{{{sel}}}"})
    assert [float(r["value"][1]) for r in events["result"]] == [2.0], events["result"]


def test_metrics_endpoints_declare_the_text_format(stack: Stack):
    """Prometheus 3 (the compose image may pin one) refuses a scrape without a known Content-Type."""
    for url in (stack.workload_metrics, stack.loadgen_metrics):
        with urllib.request.urlopen(url, timeout=10) as resp:
            content_type = resp.headers.get("Content-Type", "")
        assert content_type.startswith("text/plain"), f"{url}: Content-Type {content_type!r}"


def test_targets_are_up_with_the_contract_labels(stack: Stack):
    data = stack.api("/api/v1/targets", {"state": "active"}, post=False)
    targets = {t["labels"]["job"]: t for t in data["activeTargets"]}
    assert set(targets) == {"workload", "loadgen", "prometheus", "cadvisor"}
    for job, tgt in targets.items():
        assert tgt["health"] == "up", (job, tgt.get("lastError"))
    assert targets["workload"]["labels"]["deployment"] == DEPLOYMENT


def _last(result: list[dict]) -> dict[tuple[str, str], float]:
    """(pod, container) -> the last value of each series of a range result."""
    return {(s["metric"]["pod"], s["metric"]["container"]): float(s["values"][-1][1]) for s in result}


def test_container_cpu_panels_read_the_kubelet_through_the_shipped_cadvisor_job(stack: Stack):
    """The recorded workload container burns 0.2 cores against a 250m request (256 shares) and a
    1-core limit: the panels show exactly that pod and container with used 0.2, request 0.25, limit
    1 and 80% of the request, carrying its pod's deployment label; the namespace's Prometheus pod,
    CoreDNS, pod cgroups and the pause sandbox stay out."""
    cores = CPU_CORES[(NAMESPACE, WORKLOAD_POD, "workload")]
    expected = {
        "used": cores,
        "request": WORKLOAD_REQUEST_CORES,
        "limit": WORKLOAD_LIMIT_CORES,
        "share": cores / WORKLOAD_REQUEST_CORES,
    }
    panels = {
        "Container CPU vs request and limit per pod": ["used", "request", "limit"],
        "Container CPU as a share of its request per pod": ["share"],
    }
    # rate(...[30s]) reads the whole rate once its window holds 30 s of scrapes and the rule has
    # run since; earlier it extrapolates a shorter span and reads low.
    assert stack.kubelet.first_scrape is not None, "Prometheus never scraped the kubelet"
    time.sleep(max(0.0, stack.kubelet.first_scrape + 30 + 5 - time.time()))
    for title, figures in panels.items():
        targets = [t for t in TARGETS if t.dashboard == "compare-deployments.json" and t.panel == title]
        assert len(targets) == len(figures), f"{title}: {targets}"
        for tgt, figure in zip(targets, figures, strict=True):
            result = evaluate(stack, tgt, {"deployment": DEPLOYMENT, "run": stack.run_id})
            assert {s["metric"]["deployment"] for s in result} == {DEPLOYMENT}, result
            values = _last(result)
            assert set(values) == {(WORKLOAD_POD, "workload")}, f"{title} {figure}: {sorted(values)}"
            assert abs(values[(WORKLOAD_POD, "workload")] - expected[figure]) < 0.01 * expected[figure], (figure, values)
    assert stack.kubelet.paths and set(stack.kubelet.paths) == {f"/api/v1/nodes/{NODE}/proxy/metrics/cadvisor"}


def test_the_cadvisor_job_keeps_only_the_namespace_containers_cpu_series(stack: Stack):
    """The shipped metric relabeling: of the recorded node, only containers of this namespace (no
    pod cgroups, no sandbox, container!="") and only the CPU and memory families are stored."""
    series = stack.api("/api/v1/series", {"match[]": '{job="cadvisor"}', "start": f"{stack.start:.3f}"})
    stored = {(s["__name__"], s.get("namespace"), s.get("container")) for s in series if not s["__name__"].startswith(("up", "scrape_"))}
    assert {n for n, _, _ in stored} == {
        "container_cpu_usage_seconds_total", "container_memory_working_set_bytes",
        "container_spec_cpu_shares", "container_spec_cpu_quota", "container_spec_cpu_period",
    }, stored  # fmt: skip
    assert {(ns, c) for _, ns, c in stored} == {("scalebench", "workload"), ("scalebench", "prometheus")}, stored
