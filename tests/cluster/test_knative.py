"""The seed's serverless row on a real cluster: Knative Serving built here from its Go module
(deploy/scripts/local-cluster.sh knative), the workload as a Configuration whose revision scales
to zero (deploy/overlays/knative, applied by the shipped apply.sh), the activator holding the
requests that arrive at zero, and the loadgen's watcher recording each cold start.

Requests come from the host through the activator's NodePort with the Knative-Serving-Revision
and -Namespace headers, as bench/serverless.sh sends them.
"""

from __future__ import annotations

import json
import math
import sys
import time

import pytest

from conftest import LOCAL_CLUSTER, NAMESPACE, NODE_IP, ROOT, Cluster, apply_monitoring, run, wait_until

sys.path.insert(0, str(ROOT / "tests" / "system"))
from dashboard_queries import (  # noqa: E402  (a helper module of the system tests, not a test module)
    PanelTarget,
    panel_targets,
    provisioned_scrape_interval,
    substitute,
)

ACTIVATOR_NODE_PORT = 30081
# The overlay's stable window (20 s) plus the local cluster's grace period (10 s), with room for
# the autoscaler's tick and the Deployment controller.
ZERO_WITHIN_S = 120
BURST = 100


class Knative:
    def __init__(self, cluster: Cluster, loadgen: str):
        self.cluster = cluster
        self.loadgen = loadgen
        self.started = 0.0  # unix time the overlay was applied

    def revision(self) -> str:
        config = self.cluster.json("-n", NAMESPACE, "get", "configurations.serving.knative.dev", "workload")
        return config["status"]["latestReadyRevisionName"]

    def deployments(self) -> list[dict]:
        return self.cluster.json("-n", NAMESPACE, "get", "deployments", "-l",
                                 "serving.knative.dev/configuration=workload")["items"]

    def at_zero(self) -> bool:
        deps = self.deployments()
        return bool(deps) and all(d["spec"].get("replicas", 1) == 0 and not d["status"].get("readyReplicas")
                                  for d in deps)

    def wait_zero(self) -> float:
        started = time.monotonic()
        wait_until("the revision scales to zero", self.at_zero, ZERO_WITHIN_S)
        return time.monotonic() - started

    def load(self, out, *, requests: int, concurrency: int) -> dict:
        """`requests` POSTs to the revision through the activator, `concurrency` at once, with the
        watcher following the Configuration; the JSON report."""
        proc = run([self.loadgen, "--target", f"http://{NODE_IP}:{ACTIVATOR_NODE_PORT}/api/v1/hello",
                    "--method", "POST", "--body", "{}", "-H", "content-type: application/json",
                    "-H", f"Knative-Serving-Revision: {self.revision()}", "-H", f"Knative-Serving-Namespace: {NAMESPACE}",
                    "--requests", str(requests), "--concurrency", str(concurrency), "--timeout", "60s",
                    "--watch", "configuration/workload", "--namespace", NAMESPACE, "--deployment", "k8s-knative",
                    "--quiet", "--out", str(out)], env=self.cluster.env, timeout=300, check=False)
        assert proc.returncode in (0, 99), proc.stderr[-4000:]
        return json.loads(out.read_text())


@pytest.fixture(scope="module")
def knative(cluster: Cluster, images, loadgen_bin: str) -> Knative:
    installed = run(["bash", LOCAL_CLUSTER, "knative"], timeout=1800)
    print(installed.stderr[-3000:])
    cluster.script("teardown.sh", timeout=300)
    # Prometheus first, so it sees the revision from its first pod to zero and back.
    apply_monitoring(cluster, images)
    applied = cluster.script("apply.sh", "knative", timeout=400)
    assert "Warning" not in applied.stderr, applied.stderr
    k = Knative(cluster, loadgen_bin)
    k.started = time.time()
    yield k
    cluster.script("teardown.sh", timeout=300, check=False)
    # The next tests measure the HPA on a 2-core node: Knative's pods go with it.
    run(["bash", LOCAL_CLUSTER, "knative", "remove"], timeout=600, check=False)


def test_knative_runs_from_images_built_here(cluster: Cluster, knative: Knative):
    status = run(["bash", LOCAL_CLUSTER, "knative", "status"], timeout=60)
    assert "answers" in status.stdout
    pods = cluster.json("-n", "knative-serving", "get", "pods")["items"]
    images = {c["image"] for p in pods for c in p["spec"]["containers"]}
    assert images and all(i.startswith("dev.local/scalebench/knative-") for i in images), images
    for app in ("activator", "autoscaler", "controller", "webhook"):
        assert any(p["metadata"]["labels"].get("app") == app and p["status"]["phase"] == "Running" for p in pods), app


def test_the_overlay_makes_a_ready_revision_of_the_workload_image(cluster: Cluster, knative: Knative):
    revision = cluster.json("-n", NAMESPACE, "get", "revisions.serving.knative.dev", knative.revision())
    ready = {c["type"]: c["status"] for c in revision["status"]["conditions"]}
    assert ready["Ready"] == "True", revision["status"]
    (container,) = [c for c in revision["spec"]["containers"]]
    assert container["image"] == "scalebench/workload:0.1.0"
    assert revision["metadata"]["labels"]["scalebench.io/deployment"] == "k8s-knative"


def test_the_revision_scales_to_zero_after_idle(knative: Knative):
    waited = knative.wait_zero()
    assert waited < ZERO_WITHIN_S
    pods = knative.cluster.json("-n", NAMESPACE, "get", "pods", "-l", "serving.knative.dev/configuration=workload")
    serving = [p for p in pods["items"] if p["metadata"].get("deletionTimestamp") is None]
    assert serving == [], [p["metadata"]["name"] for p in serving]


def test_a_request_at_zero_is_held_and_answered_as_a_recorded_cold_start(knative: Knative, tmp_path):
    knative.wait_zero()
    report = knative.load(tmp_path / "one.json", requests=1, concurrency=1)
    assert report["summary"]["successes"] == 1, report["summary"]
    replicas = report["replicas"]
    assert replicas["warnings"] == [], replicas["warnings"]
    (cold,) = replicas["cold_starts"]
    assert cold["held"] == 1 and cold["failed"] == 0, cold
    assert cold["to_first_response_s"] is not None and 0 < cold["to_first_response_s"] < 30, cold
    # The one request waited for the whole start: its latency is the cold start.
    assert report["summary"]["latency_ms"]["max"] / 1000 == pytest.approx(cold["to_first_response_s"], abs=0.05)
    samples = replicas["samples"]
    assert samples[0]["ready"] == 0 and max(s["ready"] or 0 for s in samples) >= 1, samples


def test_a_burst_at_zero_loses_no_request(knative: Knative, tmp_path):
    knative.wait_zero()
    report = knative.load(tmp_path / "burst.json", requests=BURST, concurrency=BURST)
    summary = report["summary"]
    assert (summary["requests"], summary["successes"], summary["failures"]) == (BURST, BURST, 0), summary
    (cold,) = report["replicas"]["cold_starts"]
    assert cold["failed"] == 0 and cold["held"] >= BURST // 2, cold


KNATIVE_TARGETS = panel_targets("knative")


def test_prometheus_scrapes_the_revision_pods_and_the_activator(knative: Knative):
    """deploy/monitoring's jobs: the workload container of a revision pod (its metrics port from
    the annotation, the pod declaring only the serving one), its queue-proxy, and the activator in
    knative-serving (discovery granted there by the local cluster's Knative install)."""
    window = f"{int(time.time() - knative.started) + 30}s"
    for job in ("workload", "knative-queue-proxy", "knative-activator"):
        data = knative.cluster.prometheus("/api/v1/query", {
            "query": f'max_over_time(up{{job="{job}", deployment="k8s-knative"}}[{window}])'})
        answered = [s for s in data["result"] if float(s["value"][1]) == 1]
        assert answered, f"no {job} target of k8s-knative answered a scrape: {data['result']}"


@pytest.mark.parametrize("tgt", KNATIVE_TARGETS, ids=[t.id for t in KNATIVE_TARGETS])
def test_every_scale_to_zero_panel_returns_data(knative: Knative, tgt: PanelTarget):
    """The runs above (a cold start, a burst at zero) as the dashboard shows them, from the
    cluster's Prometheus: every query returns data over them, and the pods panel saw both zero
    and a serving pod."""
    scrape = provisioned_scrape_interval()
    # The last scrapes of the burst's pods must be in before the range ends.
    time.sleep(2 * scrape)
    end = time.time()
    expr = substitute(tgt.expr, {"deployment": "k8s-knative", "run": ".*"}, interval_s=scrape, scrape_s=scrape,
                      range_s=end - knative.started)
    data = knative.cluster.prometheus("/api/v1/query_range", {"query": expr, "start": f"{knative.started:.3f}",
                                                               "end": f"{end:.3f}", "step": f"{scrape}"})
    values = [float(v) for series in data["result"] for _, v in series["values"]]
    assert [v for v in values if not math.isnan(v)], f"{tgt.id}: no data for {expr}"
    if tgt.panel == "Pods serving":
        assert min(values) == 0 and max(values) >= 1, f"{tgt.id}: never at zero and serving: {values}"


def test_the_serverless_bench_writes_the_seed_table(cluster: Cluster, knative: Knative, tmp_path):
    """`make experiment-serverless` in small: 3 s steps, two cold starts."""
    out = tmp_path / "serverless"
    done = run(["bash", ROOT / "bench" / "serverless.sh", "--scale", "0.1", "--cold-starts", "2", "--cpu", "0.5",
                "--no-prometheus", "--loadgen", knative.loadgen, "--out", out], env=cluster.env, timeout=1800)
    document = json.loads((out / "serverless.json").read_text())
    assert [s["name"] for s in document["steps"]] == ["step-10", "step-50", "step-100", "step-500", "cool-down"]
    assert [s["rate"] for s in document["steps"]] == [10, 50, 100, 500, 50]
    for step in document["steps"]:
        assert [r["deployment"] for r in step["rows"]] == ["docker", "k8s-hpa", "k8s-knative"]
        for r in step["rows"]:
            assert set(r) == {"deployment", "mean_ms", "p99_ms", "success_rate", "max_replicas"}
            # (A mean above the p99 is possible: one cold start among a hundred fast requests.)
            assert r["mean_ms"] > 0 and r["p99_ms"] > 0, r
            assert r["max_replicas"] is not None and r["max_replicas"] >= 1, r
    # At 10 requests per second every deployment keeps up, the one started from zero included:
    # the activator holds the first requests instead of failing them.
    for r in document["steps"][0]["rows"]:
        assert r["success_rate"] == 100.0, r
    assert len(document["cold_starts"]) == 2
    for c in document["cold_starts"]:
        assert set(c) == {"to_first_response_s", "held", "failed"}
        assert c["failed"] == 0 and c["held"] == 1 and c["to_first_response_s"] > 0, c
    assert "cold starts" in done.stdout and "k8s-knative" in done.stdout
    assert "k8s-knative" in (out / "compare.html").read_text()
