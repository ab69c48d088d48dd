#!/usr/bin/env python3
"""Generate the Grafana dashboards in grafana/dashboards/ from the compact description below.

Why a generator: the dashboards share one datasource uid, the same template variables, the same
selectors and the same panel conventions (unit, legend, description on every panel). Writing that
by hand in 2,000 lines of JSON drifts; here it is stated once. The committed JSON must equal this
script's output (tests/system/test_prometheus_rules.py checks it), so edit this file and run:

    python3 grafana/build_dashboards.py          # rewrite grafana/dashboards/*.json
    python3 grafana/build_dashboards.py --check  # exit 1 if the committed JSON is stale

Queries use the recording rules of prometheus/rules/recording.yml where one exists, and only
metric names of the contract in docs/metrics.md (tests/system/test_dashboards.py proves every
query returns data from a real run).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DASHBOARD_DIR = Path(__file__).resolve().parent / "dashboards"

# Fixed uid of the provisioned Prometheus datasource (grafana/provisioning/datasources).
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}

# Selectors shared by the queries. Workload series carry `deployment` (scrape config); loadgen
# series carry `deployment` and `run` (loadgen flags).
WL = 'job="workload", deployment=~"$deployment"'
DEP = 'deployment=~"$deployment"'
LG = 'deployment=~"$deployment", run=~"$run"'

CORES = "suffix: cores"

# Shown instead of an empty graph on panels that read only the workload's own metrics, when the
# target is another service that exports none of them (docs/own-service.md).
NO_WORKLOAD_METRICS = "No workload metrics: this target exports none of the workload's metrics (docs/own-service.md)"
# Shown on the panels fed by the kubelet's cAdvisor (job `cadvisor` of deploy/monitoring): compose
# has no cAdvisor, so there they are empty by design, not broken.
NO_CADVISOR = "No cAdvisor series: container CPU comes from the kubelet, in the cluster's Prometheus only (deploy/monitoring)"
# The cAdvisor recording rules (prometheus/rules/recording.yml, group scalebench-containers).
CONTAINER_USED = "deployment_pod_container:container_cpu_usage_seconds:rate30s"
CONTAINER_REQUEST = "deployment_pod_container:container_cpu_request:cores"
CONTAINER_LIMIT = "deployment_pod_container:container_cpu_limit:cores"
CONTAINER_OVER_REQUEST = "deployment_pod_container:container_cpu_usage_over_request:ratio_rate30s"
# Series names of the workload's side of the contract, and of the recording rules built on them.
WORKLOAD_SIDE = ("http_server_", "process_", "workload_", ":http_server_", ":workload_")


# The loadgen's request durations arrive as classic `_bucket`/`_count` series (scraped, or
# remote-written with --remote-write-histograms classic|both) and/or as a native histogram of the
# bare name (remote-written with native|both). Panels read the native series where a run has them
# (`A or B` keeps B only for the label sets A lacks), the classic ones otherwise.
DURATION = "loadgen_request_duration_seconds"


def duration_count(fn: str, by: str, selector: str, window: str) -> str:
    """Requests counted by the duration histogram, `sum by (BY, run)` of FN(...[WINDOW]) (rate or
    increase), from the native series where the run has it, else from `_count`."""
    inner = ", ".join(dict.fromkeys(["deployment", "run", *(x.strip() for x in by.split(","))]))
    return (
        f"sum by ({by}) ("
        f"sum by ({inner}) (histogram_count({fn}({DURATION}{{{selector}}}[{window}])))"
        f" or sum by ({inner}) ({fn}({DURATION}_count{{{selector}}}[{window}]))"
        ")"
    )


def duration_quantile(q: float, by: str, selector: str, window: str) -> str:
    """The Q-quantile of the request durations by BY, from the native histogram where present."""
    return (
        f"histogram_quantile({q}, sum by ({by}) (rate({DURATION}{{{selector}}}[{window}])))"
        f" or histogram_quantile({q}, sum by ({by}, le) (rate({DURATION}_bucket{{{selector}}}[{window}])))"
    )


# ----------------------------------------------------------------------------- panel builders
def target(expr: str, legend: str, *, instant: bool = False, fmt: str = "time_series") -> dict:
    return {
        "expr": expr,
        "legendFormat": legend,
        "instant": instant,
        "range": not instant,
        "format": fmt,
    }


def timeseries(
    title: str,
    description: str,
    unit: str,
    targets: list[dict],
    *,
    width: int = 12,
    minimum: float | None = 0,
    maximum: float | None = None,
    threshold: float | None = None,
    decimals: int | None = None,
    axis_label: str = "",
) -> dict:
    """A time series panel. `threshold` draws a dashed red line (an SLO or a target)."""
    defaults: dict = {
        "unit": unit,
        "color": {"mode": "palette-classic"},
        "custom": {
            "drawStyle": "line",
            "lineWidth": 1,
            "fillOpacity": 10,
            "gradientMode": "none",
            "showPoints": "never",
            "spanNulls": False,
            "axisLabel": axis_label,
            "axisPlacement": "auto",
            "stacking": {"mode": "none", "group": "A"},
            "thresholdsStyle": {"mode": "dashed" if threshold is not None else "off"},
        },
        "thresholds": {
            "mode": "absolute",
            "steps": [{"color": "green", "value": None}]
            + ([{"color": "red", "value": threshold}] if threshold is not None else []),
        },
    }
    if minimum is not None:
        defaults["min"] = minimum
    if maximum is not None:
        defaults["max"] = maximum
    if decimals is not None:
        defaults["decimals"] = decimals
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "_width": width,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "legend": {
                "showLegend": True,
                "displayMode": "table",
                "placement": "bottom",
                "calcs": ["lastNotNull", "max"],
            },
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        "targets": targets,
    }


def stat(
    title: str,
    description: str,
    unit: str,
    targets: list[dict],
    *,
    width: int = 6,
    decimals: int | None = None,
) -> dict:
    defaults: dict = {
        "unit": unit,
        "color": {"mode": "palette-classic"},
        "thresholds": {"mode": "absolute", "steps": [{"color": "green", "value": None}]},
    }
    if decimals is not None:
        defaults["decimals"] = decimals
    return {
        "type": "stat",
        "title": title,
        "description": description,
        "_width": width,
        "_height": 5,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "area",
            "justifyMode": "auto",
            "orientation": "auto",
            "textMode": "value_and_name",
        },
        "targets": targets,
    }


def heatmap(title: str, description: str, expr: str, *, width: int = 12) -> dict:
    """A heatmap of a histogram's buckets as Prometheus stores them (no re-bucketing)."""
    return {
        "type": "heatmap",
        "title": title,
        "description": description,
        "_width": width,
        "fieldConfig": {
            "defaults": {"unit": "reqps", "custom": {"scaleDistribution": {"type": "linear"}}},
            "overrides": [],
        },
        "options": {
            "calculate": False,
            "cellGap": 1,
            "color": {"mode": "scheme", "scheme": "Oranges", "steps": 64, "exponent": 0.5},
            "yAxis": {"axisPlacement": "left", "unit": "s"},
            "rowsFrame": {"layout": "auto"},
            "legend": {"show": True},
            "tooltip": {"mode": "single", "yHistogram": True, "showColorScale": True},
            "showValue": "never",
            "filterValues": {"le": 1e-9},
        },
        "targets": [target(expr, "{{le}}", fmt="heatmap")],
    }


def cluster_only(panel: dict) -> dict:
    """The panel with NO_CADVISOR as its no-data text."""
    defaults = dict(panel["fieldConfig"]["defaults"], noValue=NO_CADVISOR)
    return dict(panel, fieldConfig=dict(panel["fieldConfig"], defaults=defaults))


def row(title: str) -> dict:
    return {"type": "row", "title": title, "collapsed": False, "panels": []}


def variables() -> list[dict]:
    """`deployment` and `run`: multi-value with All (`.*`), so several deployments overlay."""
    deployment_query = (
        'label_values({__name__=~"loadgen_requests_total|http_server_request_duration_seconds_count"}, '
        "deployment)"
    )
    run_query = 'label_values(loadgen_requests_total{deployment=~"$deployment"}, run)'

    def var(name: str, label: str, query: str, description: str) -> dict:
        return {
            "name": name,
            "label": label,
            "description": description,
            "type": "query",
            "datasource": DATASOURCE,
            "definition": query,
            # The plain string form: every Grafana version reads it and migrates it for its editor.
            "query": query,
            "refresh": 2,
            "multi": True,
            "includeAll": True,
            "allValue": ".*",
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "options": [],
            "regex": "",
            "sort": 1,
            "hide": 0,
        }

    return [
        var(
            "deployment",
            "Deployment",
            deployment_query,
            "Where the workload ran: docker (one container, compose), k8s-single, k8s-hpa.",
        ),
        var("run", "Run", run_query, "The loadgen run id (`--label run=...`); workload panels ignore it."),
    ]


def dashboard(uid: str, title: str, description: str, panels: list[dict]) -> dict:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["scalebench"],
        "editable": True,
        "graphTooltip": 1,
        "refresh": "5s",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-15m", "to": "now"},
        "timepicker": {"refresh_intervals": ["5s", "10s", "30s", "1m", "5m"]},
        "timezone": "browser",
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "weekStart": "",
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "links": [
            {
                "title": "scalebench",
                "type": "dashboards",
                "tags": ["scalebench"],
                "asDropdown": True,
                "includeVars": True,
                "keepTime": True,
                "icon": "external link",
                "targetBlank": False,
                "tooltip": "",
                "url": "",
            }
        ],
        "templating": {"list": variables()},
        "panels": layout(panels),
    }


def reads_only_the_workload(panel: dict) -> bool:
    """True when every query of the panel reads workload-side series and none the loadgen's."""
    exprs = [t["expr"] for t in panel.get("targets", [])]
    return bool(exprs) and all(any(m in e for m in WORKLOAD_SIDE) and "loadgen_" not in e for e in exprs)


def layout(panels: list[dict]) -> list[dict]:
    """Assign ids, gridPos, datasource and refIds; rows span the width, panels flow left to right."""
    out: list[dict] = []
    x = y = 0
    line_height = 0
    for panel_id, panel in enumerate(panels, start=1):
        panel = dict(panel)
        if panel["type"] == "row":
            if x:
                y += line_height
            panel["gridPos"] = {"h": 1, "w": 24, "x": 0, "y": y}
            y += 1
            x = line_height = 0
        else:
            width = panel.pop("_width")
            height = panel.pop("_height", 8)
            if x + width > 24:
                x = 0
                y += line_height
                line_height = 0
            panel["gridPos"] = {"h": height, "w": width, "x": x, "y": y}
            x += width
            line_height = max(line_height, height)
            panel["datasource"] = DATASOURCE
            if reads_only_the_workload(panel):
                defaults = dict(panel["fieldConfig"]["defaults"], noValue=NO_WORKLOAD_METRICS)
                panel["fieldConfig"] = dict(panel["fieldConfig"], defaults=defaults)
            panel["targets"] = [
                {"refId": chr(ord("A") + i), "datasource": DATASOURCE, "editorMode": "code", **t}
                for i, t in enumerate(panel["targets"])
            ]
        out.append({"id": panel_id, **panel})
    return out


# ----------------------------------------------------------------------------- the dashboards
def compare() -> dict:
    client_q = "deployment_run:loadgen_request_duration_seconds:quantile30s"
    server_q = "deployment:http_server_request_duration_seconds:quantile30s"
    panels = [
        row("Now"),
        stat(
            "Achieved throughput",
            "Requests per second the load generator completed over the last 30 s, per deployment "
            "(recording rule deployment_run:loadgen_requests:rate30s, summed over runs).",
            "reqps",
            [target(f"sum by (deployment) (deployment_run:loadgen_requests:rate30s{{{LG}}})", "{{deployment}}")],
        ),
        stat(
            "Client p99 latency",
            "99th percentile of the latency the load generator measured over the last 30 s, from the "
            "intended send time (includes queueing, no coordinated omission).",
            "s",
            [target(f'max by (deployment) ({client_q}{{quantile="0.99", {LG}}})', "{{deployment}}")],
        ),
        stat(
            "Success ratio over the time range",
            "Share of the requests in the selected time range that the load generator counted as a "
            "success (outcome=\"success\"). Anything below 100% needs an explanation.",
            "percentunit",
            [
                target(
                    duration_count("increase", "deployment", f'outcome="success", {LG}', "$__range")
                    + " / "
                    + duration_count("increase", "deployment", LG, "$__range"),
                    "{{deployment}}",
                    instant=True,
                )
            ],
        ),
        stat(
            "Ready replicas",
            "Ready pods as the loadgen's --watch sees them; without a watched Deployment (docker), "
            "the workload targets Prometheus scrapes successfully.",
            "none",
            [
                target(
                    f'max by (deployment) (loadgen_observed_replicas{{kind="ready", {DEP}}})'
                    f" or deployment:workload_up_replicas:count{{{DEP}}}",
                    "{{deployment}}",
                )
            ],
            decimals=0,
        ),
        row("Throughput and latency (client side)"),
        timeseries(
            "Throughput: achieved vs target",
            "Client-side requests per second completed (achieved) against the arrivals per second "
            "the open-loop schedule asks for (target; 0 in closed loop). A multi-step flow is one "
            "arrival but several requests, so with flows achieved sits above target. Achieved "
            "falling away from target means the deployment, or the generator (see the Load "
            "generator dashboard), cannot keep up.",
            "reqps",
            [
                target(
                    f"sum by (deployment) (deployment_run:loadgen_requests:rate30s{{{LG}}})",
                    "{{deployment}} achieved",
                ),
                target(f"sum by (deployment) (loadgen_target_rate{{{LG}}})", "{{deployment}} target"),
            ],
        ),
        timeseries(
            "Client latency percentiles",
            "p50, p95 and p99 of the client-side latency over 30 s windows, per deployment and run. "
            "Measured from the intended send time, so a stalled server shows up here in full.",
            "s",
            [target(f"{client_q}{{{LG}}}", "{{deployment}} {{run}} q{{quantile}}")],
            threshold=0.5,
        ),
        timeseries(
            "Success ratio",
            "1 - the share of requests the load generator counted as failures (transport errors and "
            "unexpected statuses) over 30 s windows.",
            "percentunit",
            [
                target(
                    f"1 - deployment_run:loadgen_request_errors:ratio_rate30s{{{LG}}}",
                    "{{deployment}} {{run}}",
                )
            ],
            maximum=1,
            threshold=0.99,
        ),
        timeseries(
            "Server vs client latency (the gap is queueing)",
            "Median and p99 measured by the workload itself (server) and by the load generator "
            "(client). The server only sees time in its handler; the client also sees connection "
            "setup, the network and time spent queued before a worker picked the request up. A "
            "widening gap under load means requests wait, not that handlers got slower.",
            "s",
            [
                target(f'{client_q}{{quantile=~"0.5|0.99", {LG}}}', "{{deployment}} client q{{quantile}}"),
                target(f'{server_q}{{quantile=~"0.5|0.99", {DEP}}}', "{{deployment}} server q{{quantile}}"),
            ],
        ),
        row("Scaling"),
        timeseries(
            "Replicas over time",
            "desired/current/ready: the Deployment and HPA as the loadgen's --watch reports them. "
            "scraped: workload targets Prometheus scrapes successfully (always 1 for docker). The "
            "delay between desired rising and ready following is the scale-up time.",
            "none",
            [
                target(
                    f"max by (deployment, kind) (loadgen_observed_replicas{{{DEP}}})"
                    f' or label_replace(deployment:workload_up_replicas:count{{{DEP}}}, "kind", "scraped", "", "")',
                    "{{deployment}} {{kind}}",
                )
            ],
            decimals=0,
        ),
        timeseries(
            "Cost of the last scale-out",
            "From the loadgen's --watch, set when a run ends, for its last scale-out: seconds from "
            "the HPA's desired count rising to the new pods ready (to ready), to the first response "
            "served by a backend not seen before (to first response), and until client p99 was back "
            "under its level before the event or --recovery-p99 (recovery). Read beside the replica "
            "timeline. A figure the event never reached is NaN (a gap). Every event is in the run's JSON "
            "and HTML report (docs/autoscaling-cost.md).",
            "s",
            [
                target(
                    f'label_replace(max by (deployment) (loadgen_scale_event_time_to_ready_seconds{{{DEP}}}), "figure", "to ready", "", "")'
                    f' or label_replace(max by (deployment) (loadgen_scale_event_time_to_first_response_seconds{{{DEP}}}), "figure", "to first response", "", "")'
                    f' or label_replace(max by (deployment) (loadgen_scale_event_recovery_seconds{{{DEP}}}), "figure", "recovery", "", "")',
                    "{{deployment}} {{figure}}",
                )
            ],
        ),
        timeseries(
            "CPU used vs allowed per replica",
            "CPU cores each workload instance burns (rate of process_cpu_seconds_total) against the "
            "cores it may use (workload_cpu_quota_cores: the cgroup quota, else the host's cores). "
            "Used pinned at allowed means the quota caps throughput.",
            CORES,
            [
                target(
                    f"sum by (deployment, instance) (rate(process_cpu_seconds_total{{{WL}}}[$__rate_interval]))",
                    "{{deployment}} {{instance}} used",
                ),
                target(
                    f"max by (deployment, instance) (workload_cpu_quota_cores{{{WL}}})",
                    "{{deployment}} {{instance}} allowed",
                ),
            ],
            axis_label="CPU cores",
        ),
        timeseries(
            "CPU utilization: HPA view vs measured",
            "HPA: the average utilization the autoscaler acts on (percent of the CPU *request*, from "
            "--watch). measured: CPU used as a percent of the CPU quota, summed over replicas "
            "(recording rule). cAdvisor: container CPU over the CPU request read from cgroup shares, "
            "summed over pods, any image (cluster only): it should track HPA; a steady gap means the "
            "cgroup v2 shares conversion is off (docs/dashboards.md). The dashed line is the HPA "
            "target of 50%.",
            "percent",
            [
                target(
                    f'label_replace(max by (deployment) (loadgen_observed_cpu_utilization_percent{{{DEP}}}), "source", "HPA", "", "")'
                    f' or label_replace(100 * deployment:workload_cpu_utilization:ratio_rate30s{{{DEP}}}, "source", "measured", "", "")'
                    f' or label_replace(100 * sum by (deployment) ({CONTAINER_USED}{{{DEP}}})'
                    f' / sum by (deployment) ({CONTAINER_REQUEST}{{{DEP}}}), "source", "cAdvisor", "", "")',
                    "{{deployment}} {{source}}",
                )
            ],
            threshold=50,
        ),
        cluster_only(
            timeseries(
                "Container CPU vs request and limit per pod",
                "Any image in the workload's place, from the kubelet's cAdvisor (cluster only): CPU "
                "cores each pod's container uses (rate of container_cpu_usage_seconds_total), its CPU "
                "request (cgroup shares / 1024) and its limit (CFS quota / period; no line without a "
                "limit). The HPA scales on used / request; a pod pinned at its limit is throttled.",
                CORES,
                [
                    target(f"{CONTAINER_USED}{{{DEP}}}", "{{deployment}} {{pod}} {{container}} used"),
                    target(f"{CONTAINER_REQUEST}{{{DEP}}}", "{{deployment}} {{pod}} {{container}} request"),
                    target(f"{CONTAINER_LIMIT}{{{DEP}}}", "{{deployment}} {{pod}} {{container}} limit"),
                ],
                axis_label="CPU cores",
            )
        ),
        cluster_only(
            timeseries(
                "Container CPU as a share of its request per pod",
                "Any image, from the kubelet's cAdvisor (cluster only): each pod's container CPU over "
                "its CPU request, the per-pod figure the HPA averages. Above the dashed 50% target the "
                "HPA adds pods; new pods start near 0 until the Service sends them traffic.",
                "percentunit",
                [target(f"{CONTAINER_OVER_REQUEST}{{{DEP}}}", "{{deployment}} {{pod}} {{container}}")],
                threshold=0.5,
            )
        ),
        timeseries(
            "Requests per backend",
            "Client-side requests per second by the x-served-by header, i.e. by the pod or container "
            "that answered. Even lines mean the Service spreads load; new pods should pick up "
            "traffic as soon as they are ready.",
            "reqps",
            [
                target(
                    f"sum by (deployment, backend) (rate(loadgen_backend_requests_total{{{LG}}}[$__rate_interval]))",
                    "{{deployment}} {{backend}}",
                )
            ],
        ),
        row("Errors"),
        timeseries(
            "Error ratio: server 5xx vs client failures",
            "server: share of workload responses that were 5xx (shed requests included, probes "
            "excluded). client: share of requests the load generator counted as failed, which also "
            "covers refused connections and timeouts the server never saw. Dashed line: 1% alert.",
            "percentunit",
            [
                target(
                    f"deployment:http_server_request_errors:ratio_rate30s{{{DEP}}}",
                    "{{deployment}} server 5xx",
                ),
                target(
                    f"deployment_run:loadgen_request_errors:ratio_rate30s{{{LG}}}",
                    "{{deployment}} {{run}} client failures",
                ),
            ],
            threshold=0.01,
        ),
        timeseries(
            "Client responses by status",
            "Client-side requests per second by HTTP status, or by error kind (timeout, "
            "connect_refused, ...) when there was no response.",
            "reqps",
            [
                target(
                    f"sum by (deployment, status) (rate(loadgen_requests_total{{{LG}}}[$__rate_interval]))",
                    "{{deployment}} {{status}}",
                )
            ],
        ),
    ]
    return dashboard(
        "scalebench-compare",
        "scalebench / Compare deployments",
        "One container against the autoscaled deployment on the same queries, told apart by the "
        "deployment label.",
        panels,
    )


def workload() -> dict:
    routes = "deployment_route_status:http_server_requests:rate30s"
    panels = [
        row("Traffic: rate, errors and duration per route"),
        timeseries(
            "Request rate per route",
            "Requests per second the workload served, by route template (recording rule, 30 s "
            "window). Probes appear under /healthz and /readyz.",
            "reqps",
            [target(f"sum by (deployment, route) ({routes}{{{DEP}}})", "{{deployment}} {{route}}")],
        ),
        timeseries(
            "Responses by status",
            "Requests per second by HTTP status code. 503 with reason overload are shed requests "
            "(see Shed requests); 500 comes from the app or injected faults.",
            "reqps",
            [target(f"sum by (deployment, status) ({routes}{{{DEP}}})", "{{deployment}} {{status}}")],
        ),
        timeseries(
            "Error ratio per route (5xx)",
            "Share of each route's responses that were 5xx over 30 s windows; routes without errors "
            "read 0. Dashed line: the 1% alert threshold.",
            "percentunit",
            [
                target(
                    f'(sum by (deployment, route) ({routes}{{status=~"5..", {DEP}}})'
                    f" / sum by (deployment, route) ({routes}{{{DEP}}}))"
                    f" or 0 * sum by (deployment, route) ({routes}{{{DEP}}})",
                    "{{deployment}} {{route}}",
                )
            ],
            threshold=0.01,
        ),
        timeseries(
            "Offered vs served load",
            "offered: requests per second the load generator completed (client side, selected "
            "runs). served: requests per second the workload answered, probes excluded. They should "
            "match; served below offered means requests fail before reaching a handler.",
            "reqps",
            [
                target(f"sum by (deployment) (deployment_run:loadgen_requests:rate30s{{{LG}}})", "{{deployment}} offered"),
                target(f"deployment:http_server_requests:rate30s{{{DEP}}}", "{{deployment}} served"),
            ],
        ),
        timeseries(
            "p99 latency per route",
            "99th percentile of the server-side request duration by route (handler time only; "
            "queueing in front of the server is not in here).",
            "s",
            [
                target(
                    "histogram_quantile(0.99, sum by (deployment, route, le) "
                    f"(rate(http_server_request_duration_seconds_bucket{{{WL}}}[$__rate_interval])))",
                    "{{deployment}} {{route}}",
                )
            ],
            threshold=0.5,
        ),
        timeseries(
            "Median latency per route",
            "Median server-side request duration by route. A p99 that moves while the median stays "
            "put points at contention (CPU quota, worker pool), not at the handler's own cost.",
            "s",
            [
                target(
                    "histogram_quantile(0.5, sum by (deployment, route, le) "
                    f"(rate(http_server_request_duration_seconds_bucket{{{WL}}}[$__rate_interval])))",
                    "{{deployment}} {{route}}",
                )
            ],
        ),
        row("Saturation per instance"),
        timeseries(
            "CPU used vs quota per instance",
            "CPU cores each instance burns against the cores its cgroup quota allows. The HPA scales "
            "on CPU relative to the request; a single container is capped by its quota.",
            CORES,
            [
                target(
                    f"sum by (deployment, instance) (rate(process_cpu_seconds_total{{{WL}}}[$__rate_interval]))",
                    "{{deployment}} {{instance}} used",
                ),
                target(
                    f"max by (deployment, instance) (workload_cpu_quota_cores{{{WL}}})",
                    "{{deployment}} {{instance}} allowed",
                ),
            ],
            axis_label="CPU cores",
        ),
        timeseries(
            "Resident memory per instance",
            "Resident set size of each workload process. Should stay flat under steady load; "
            "growth with load means buffering (queues, task store).",
            "bytes",
            [
                target(
                    f"max by (deployment, instance) (process_resident_memory_bytes{{{WL}}})",
                    "{{deployment}} {{instance}}",
                )
            ],
        ),
        timeseries(
            "In-flight requests per instance",
            "Requests being handled right now in each instance. It climbs towards the max-in-flight "
            "limit before the instance starts shedding.",
            "none",
            [
                target(
                    f"sum by (deployment, instance) (http_server_active_requests{{{WL}}})",
                    "{{deployment}} {{instance}}",
                )
            ],
        ),
        timeseries(
            "Shed requests by reason",
            "Requests per second refused by load shedding (reason overload: 503 + Retry-After when "
            "the in-flight limit is reached) or cut by the request timeout (reason timeout).",
            "reqps",
            [
                target(
                    "sum by (deployment, instance, reason) "
                    f"(rate(http_server_rejected_requests_total{{{WL}}}[$__rate_interval]))",
                    "{{deployment}} {{instance}} {{reason}}",
                )
            ],
        ),
        timeseries(
            "Threads and open file descriptors",
            "OS threads (runtime workers plus the blocking pool for CPU work) and open file "
            "descriptors (mostly sockets: one per client connection) of each instance.",
            "none",
            [
                target(f"max by (deployment, instance) (process_threads{{{WL}}})", "{{deployment}} {{instance}} threads"),
                target(f"max by (deployment, instance) (process_open_fds{{{WL}}})", "{{deployment}} {{instance}} fds"),
            ],
        ),
        stat(
            "Instances by version",
            "How many scraped workload instances run each build version (workload_build_info). "
            "Compare deployments only when they run the same version.",
            "none",
            [target(f"count by (deployment, version) (workload_build_info{{{WL}}})", "{{deployment}} {{version}}")],
            width=12,
            decimals=0,
        ),
    ]
    return dashboard(
        "scalebench-workload",
        "scalebench / Workload",
        "The workload's own view: rate, errors and duration per route; saturation per instance.",
        panels,
    )


def loadgen() -> dict:
    panels = [
        row("Schedule: is the generator keeping up?"),
        timeseries(
            "Target vs achieved rate",
            "The open-loop schedule's planned arrivals per second (target; 0 in closed loop) against "
            "the requests per second actually completed (a multi-step flow is one arrival, several "
            "requests). A gap with late or dropped iterations below is the generator's limit; a gap "
            "without them is the workload's.",
            "reqps",
            [
                target(f"sum by (deployment, run) (loadgen_target_rate{{{LG}}})", "{{deployment}} {{run}} target"),
                target(
                    f"sum by (deployment, run) (rate(loadgen_requests_total{{{LG}}}[$__rate_interval]))",
                    "{{deployment}} {{run}} achieved",
                ),
            ],
        ),
        timeseries(
            "Users and in-flight requests",
            "users: virtual users (closed loop) or workers (open loop) currently active. in-flight: "
            "requests sent and not yet answered. In open loop, in-flight grows when the server slows "
            "down (Little's law: in-flight = rate x latency).",
            "none",
            [
                target(f"sum by (deployment, run) (loadgen_active_users{{{LG}}})", "{{deployment}} {{run}} users"),
                target(f"sum by (deployment, run) (loadgen_in_flight{{{LG}}})", "{{deployment}} {{run}} in-flight"),
            ],
        ),
        timeseries(
            "Late and dropped iterations",
            "Iterations per second that started after their scheduled time (late) or never started "
            "because no worker was free (dropped). Any sustained value means the offered load was "
            "lower than planned: the LoadgenSaturated alert.",
            "ops",
            [
                target(
                    f"sum by (deployment, run) (rate(loadgen_late_iterations_total{{{LG}}}[$__rate_interval]))",
                    "{{deployment}} {{run}} late",
                ),
                target(
                    f"sum by (deployment, run) (rate(loadgen_dropped_iterations_total{{{LG}}}[$__rate_interval]))",
                    "{{deployment}} {{run}} dropped",
                ),
            ],
        ),
        timeseries(
            "Schedule lag",
            "How far behind its schedule the generator currently is. Above a few milliseconds the "
            "generator itself is short of CPU.",
            "s",
            [target(f"max by (deployment, run) (loadgen_schedule_lag_seconds{{{LG}}})", "{{deployment}} {{run}}")],
        ),
        row("Latency"),
        heatmap(
            "Latency heatmap",
            "Client-side latency distribution over time (all endpoints, selected deployments and "
            "runs): each column is one interval, each cell the requests per second in one histogram "
            "bucket. A second band appearing above the first is queueing. Classic buckets: a run "
            "remote-written with --remote-write-histograms native has none here.",
            f"sum by (le) (rate(loadgen_request_duration_seconds_bucket{{{LG}}}[$__rate_interval]))",
        ),
        timeseries(
            "Latency by endpoint (p50, p99)",
            "Client-side median and 99th percentile per scenario endpoint, from the native histogram "
            "(finer buckets) where a run remote-writes one, else from the classic buckets.",
            "s",
            [
                target(
                    duration_quantile(0.5, "deployment, endpoint", LG, "$__rate_interval"),
                    "{{deployment}} {{endpoint}} p50",
                ),
                target(
                    duration_quantile(0.99, "deployment, endpoint", LG, "$__rate_interval"),
                    "{{deployment}} {{endpoint}} p99",
                ),
            ],
        ),
        row("Outcomes"),
        timeseries(
            "Errors by kind",
            "Requests per second that got no usable response, by kind: connect_refused, timeout, "
            "reset, tls, body, other. Refused connections during a rollout or scale-down point at "
            "readiness and draining.",
            "reqps",
            [
                target(
                    f"sum by (deployment, run, kind) (rate(loadgen_errors_total{{{LG}}}[$__rate_interval]))",
                    "{{deployment}} {{run}} {{kind}}",
                )
            ],
        ),
        timeseries(
            "Responses by endpoint and status",
            "Requests per second per scenario endpoint and HTTP status (or error kind).",
            "reqps",
            [
                target(
                    f"sum by (deployment, endpoint, status) (rate(loadgen_requests_total{{{LG}}}[$__rate_interval]))",
                    "{{deployment}} {{endpoint}} {{status}}",
                )
            ],
        ),
        timeseries(
            "Outcome by endpoint",
            "Requests per second the generator judged success or failure, per endpoint (failure: "
            "transport error or a status the scenario did not expect).",
            "reqps",
            [
                target(
                    duration_count("rate", "deployment, endpoint, outcome", LG, "$__rate_interval"),
                    "{{deployment}} {{endpoint}} {{outcome}}",
                )
            ],
        ),
    ]
    return dashboard(
        "scalebench-loadgen",
        "scalebench / Load generator",
        "Is the generator honest? Schedule, users, late and dropped iterations, latency "
        "distribution and errors of each run.",
        panels,
    )


# Knative's data plane (deploy/overlays/knative, scraped by deploy/monitoring's jobs
# knative-activator and knative-queue-proxy): the activator holds a revision's requests while it
# has no ready pod and proxies them after; queue-proxy sits beside the workload in every pod.
ACTIVATOR = 'job="knative-activator", deployment=~"$deployment"'
QUEUE_PROXY = 'job="knative-queue-proxy", deployment=~"$deployment"'
# Shown where the cluster runs no Knative: these series exist in the cluster's Prometheus only.
NO_KNATIVE = "No Knative series: the scale-to-zero overlay runs on Knative Serving, scraped by the cluster's Prometheus only (deploy/overlays/knative)"


def knative_only(panel: dict) -> dict:
    """The panel with NO_KNATIVE as its no-data text."""
    defaults = dict(panel["fieldConfig"]["defaults"], noValue=NO_KNATIVE)
    return dict(panel, fieldConfig=dict(panel["fieldConfig"], defaults=defaults))


def scale_to_zero() -> dict:
    panels = [
        row("Pods: zero, one, many"),
        knative_only(
            timeseries(
                "Pods serving",
                "Revision pods whose queue-proxy answered the last scrape: 0 while the revision is "
                "scaled to zero (the activator then holds every request), N under load. The drop to "
                "0 comes a stable window plus the grace period after the last request.",
                "short",
                [
                    target(
                        f"count by (deployment) (up{{{QUEUE_PROXY}}} == 1) or on () vector(0)",
                        "{{deployment}} pods",
                    )
                ],
                decimals=0,
            )
        ),
        knative_only(
            timeseries(
                "Requests per pod (queue-proxy)",
                "Requests per second each revision pod's queue-proxy passed to the workload: how "
                "Knative spread the load once pods were ready.",
                "reqps",
                [
                    target(
                        f"sum by (deployment, pod) (rate(http_server_request_duration_seconds_count{{{QUEUE_PROXY}}}[$__rate_interval]))",
                        "{{pod}}",
                    )
                ],
            )
        ),
        row("The activator: cold starts"),
        knative_only(
            timeseries(
                "Requests waiting in the activator",
                "Requests the activator holds or proxies for each revision right now. While the "
                "revision is at zero this is the queue of a cold start; it empties when the first "
                "pod is ready.",
                "short",
                [
                    target(
                        f"sum by (deployment, kn_revision_name) (kn_revision_request_concurrency{{{ACTIVATOR}}})",
                        "{{kn_revision_name}}",
                    )
                ],
            )
        ),
        knative_only(
            timeseries(
                "Activator p99 (a cold start's wait included)",
                "The 99th percentile of the time the activator took per request, held time "
                "included: at a cold start it is the time from zero to the first response; once "
                "pods serve, the proxying cost.",
                "s",
                [
                    target(
                        "histogram_quantile(0.99, sum by (deployment, kn_revision_name, le) "
                        f"(rate(http_server_request_duration_seconds_bucket{{{ACTIVATOR}}}[$__rate_interval])))",
                        "{{kn_revision_name}} p99",
                    )
                ],
            )
        ),
        knative_only(
            timeseries(
                "Requests through the activator by status",
                "Requests per second the activator answered, by HTTP status: a 5xx here is a request "
                "a cold start lost (a timeout or a revision that could not start).",
                "reqps",
                [
                    target(
                        "sum by (deployment, http_response_status_code) "
                        f"(rate(http_server_request_duration_seconds_count{{{ACTIVATOR}}}[$__rate_interval]))",
                        "{{http_response_status_code}}",
                    )
                ],
            )
        ),
    ]
    return dashboard(
        "scalebench-scale-to-zero",
        "scalebench / Scale to zero (Knative)",
        "The scale-to-zero deployment (k8s-knative): pods from zero to many and back, the requests "
        "the activator held while there were none, and what a cold start cost them.",
        panels,
    )


DASHBOARDS = {
    "compare-deployments.json": compare,
    "workload.json": workload,
    "loadgen.json": loadgen,
    "scale-to-zero.json": scale_to_zero,
}


def render() -> dict[str, str]:
    """File name -> JSON text, exactly as committed."""
    return {name: json.dumps(build(), indent=2) + "\n" for name, build in DASHBOARDS.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed JSON differs")
    parser.add_argument("--out", type=Path, default=DASHBOARD_DIR, help="output directory")
    args = parser.parse_args()
    stale = []
    for name, text in render().items():
        path = args.out / name
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if stale:
        print(f"stale: {', '.join(stale)}; run python3 grafana/build_dashboards.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
