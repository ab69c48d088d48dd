"""Dashboards for any target (docs/own-service.md): a panel that reads only the workload's own
series says so when the target exports none of them, instead of drawing blank; a panel with a
client-side (loadgen) query never does, since it has data for every target."""

from __future__ import annotations

from dashboard_queries import load_dashboards, metric_names, panels

WORKLOAD_SIDE = ("http_server_", "process_", "workload_")


def _names(panel: dict) -> set[str]:
    return {n for t in panel.get("targets", []) for n in metric_names(t["expr"])}


def _is_workload_side(name: str) -> bool:
    return any(name.startswith(p) or f":{p}" in name for p in WORKLOAD_SIDE)


def _classified():
    for file, dashboard in load_dashboards().items():
        for panel in panels(dashboard):
            names = _names(panel)
            if names:
                yield file, panel, names


def test_panels_of_workload_metrics_only_say_a_target_without_them_has_none():
    missing = []
    checked = 0
    for file, panel, names in _classified():
        if all(_is_workload_side(n) for n in names):
            checked += 1
            text = panel["fieldConfig"]["defaults"].get("noValue", "")
            if "docs/own-service.md" not in text or "No workload metrics" not in text:
                missing.append(f"{file} / {panel['title']}")
    assert checked >= 10, checked
    assert missing == [], missing


def test_panels_with_client_side_queries_never_claim_missing_workload_metrics():
    wrong = [f"{file} / {panel['title']}" for file, panel, names in _classified()
             if any(n.startswith("loadgen_") or ":loadgen_" in n for n in names)
             and "noValue" in panel["fieldConfig"]["defaults"]]
    assert wrong == [], wrong
