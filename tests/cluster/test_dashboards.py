"""The dashboards against the in-cluster Prometheus of deploy/monitoring after a real scale-out:
it discovered the workload and loadgen pods, scraped the kubelet's cAdvisor, and every query of
every dashboard, the cAdvisor and scale-event panels included, returns data from it.

The queries are the dashboards' own, with Grafana's variables substituted as Grafana does
(tests/system/dashboard_queries.py); they reach Prometheus through the API server's service proxy.
"""

from __future__ import annotations

import math
import sys
import time

import pytest

from conftest import ROOT, Cluster, ScaleOutRun

sys.path.insert(0, str(ROOT / "tests" / "system"))
from dashboard_queries import (  # noqa: E402  (a helper module of the system tests, not a test module)
    PanelTarget,
    panel_targets,
    provisioned_scrape_interval,
    substitute,
)

DEPLOYMENT = "k8s-hpa"
# The HPA run's dashboards; the scale-to-zero one is proven after a Knative run (test_knative.py).
TARGETS = panel_targets("stack")


def run_id(run: ScaleOutRun) -> str:
    ids = {c["run"] for c in run.clients}
    assert len(ids) == 1, f"the three clients carry different run ids: {ids}"
    return ids.pop()


def evaluate(cluster: Cluster, run: ScaleOutRun, tgt: PanelTarget) -> list[dict]:
    scrape = provisioned_scrape_interval()
    end = time.time()
    start = run.started
    expr = substitute(tgt.expr, {"deployment": DEPLOYMENT, "run": run_id(run)}, interval_s=scrape,
                      scrape_s=scrape, range_s=end - start)
    if tgt.instant:
        # An instant panel reads "now"; the run has ended, so ask at its end as Grafana would
        # while looking at it.
        data = cluster.prometheus("/api/v1/query", {"query": expr, "time": f"{run.ended:.3f}"})
        values = [series["value"] for series in data["result"]]
    else:
        data = cluster.prometheus("/api/v1/query_range", {"query": expr, "start": f"{start:.3f}",
                                                          "end": f"{end:.3f}", "step": f"{scrape}"})
        values = [v for series in data["result"] for v in series["values"]]
    assert data["result"], f"{tgt.id}: no data for {expr}"
    if not [v for _, v in values if not math.isnan(float(v))]:
        # NaN is the truth only for the cost of a scale-out that never completed: the HPA asked
        # for more replicas than the node holds (its metrics lag behind the new pods), so the
        # last event has no time to ready, no first response and no recovery in any report.
        assert "loadgen_scale_event_" in expr, f"{tgt.id}: only NaN for {expr}"
        for client in run.clients:
            last = max(client["scale_events"], key=lambda e: e["t_s"])
            assert (last["time_to_ready_s"], last["time_to_first_new_backend_s"], last["recovery_s"]) == (None,) * 3, (
                f"{tgt.id}: NaN on the dashboard, but the report has the last scale-out's cost: {last}")
    return data["result"]


def test_prometheus_scrapes_the_pods_and_the_kubelet(cluster: Cluster, scale_out_run: ScaleOutRun):
    """Every job had a target that answered during the run (the loadgen pods have completed by
    now, so they are asked about over the run, not now)."""
    window = f"{int(scale_out_run.ended - scale_out_run.started) + 30}s"
    for job in ("workload", "loadgen", "cadvisor", "prometheus"):
        data = cluster.prometheus("/api/v1/query", {"query": f'max_over_time(up{{job="{job}"}}[{window}])',
                                                    "time": f"{scale_out_run.ended:.3f}"})
        answered = [s for s in data["result"] if float(s["value"][1]) == 1]
        assert answered, f"no {job} target answered a scrape during the run: {data['result']}"
    pods = cluster.prometheus("/api/v1/query", {"query": f'count(max_over_time(up{{job="workload"}}[{window}]))',
                                                "time": f"{scale_out_run.ended:.3f}"})
    assert float(pods["result"][0]["value"][1]) >= 3, "Prometheus did not discover the new replicas"


@pytest.mark.parametrize("tgt", TARGETS, ids=[t.id for t in TARGETS])
def test_every_panel_query_returns_data(cluster: Cluster, scale_out_run: ScaleOutRun, tgt: PanelTarget):
    result = evaluate(cluster, scale_out_run, tgt)
    deployments = {s["metric"]["deployment"] for s in result if "deployment" in s["metric"]}
    assert deployments <= {DEPLOYMENT}, f"{tgt.id}: series of {deployments}"
