"""The product's main experiment on a real cluster: the `hpa` overlay under the three-client
loadgen Job, scaled by the real HorizontalPodAutoscaler from CPU that metrics-server reads from
the kubelet, watched by the clients with the Job's own ServiceAccount.

Everything goes through the shipped scripts (apply.sh, run-loadgen.sh, teardown.sh); the test
only reads what they produced: the merged report and the cluster's objects.
"""

from __future__ import annotations

from conftest import CLIENTS, NAMESPACE

# The share of the requests after a scale event that each replica it added must serve: an even
# spread over 3 to 5 replicas is 20-33 %; a replica that the Service never reached gets ~0.
MIN_SHARE_OF_A_NEW_REPLICA = 0.15


def test_the_job_completes_with_three_reports_and_a_merge(scale_out_run):
    assert scale_out_run.returncode == 0, scale_out_run.stderr[-4000:]
    assert len(scale_out_run.clients) == CLIENTS
    assert scale_out_run.merged is not None


def test_the_hpa_scales_the_deployment_to_at_least_three_replicas(scale_out_run):
    hpa = scale_out_run.hpa
    assert hpa["metadata"]["namespace"] == NAMESPACE
    for client in scale_out_run.clients:
        assert client["replicas"]["warnings"] == [], client["replicas"]["warnings"]
        assert client["replicas"]["hpa"] == "workload", "the watcher did not find the HPA"
    watched_max = max(c["replicas"]["summary"]["max_replicas"] or 0 for c in scale_out_run.clients)
    assert watched_max >= 3, f"the HPA never went past {watched_max} replicas: {hpa['status']}"


def test_the_clients_start_together_through_the_barrier(scale_out_run):
    spread = scale_out_run.merged["start_spread_s"]
    assert spread is not None and spread < 1.0, f"the three clients began {spread} s apart"


def test_the_merged_report_is_the_exact_sum_of_the_clients(scale_out_run):
    merged = scale_out_run.merged["summary"]
    clients = [c["summary"] for c in scale_out_run.clients]
    for key in ("requests", "successes", "failures", "iterations"):
        assert merged[key] == sum(c[key] for c in clients), key
    backends: dict[str, int] = {}
    for c in clients:
        for name, count in c.get("backends", {}).items():
            backends[name] = backends.get(name, 0) + count
    assert merged.get("backends", {}) == backends


def test_the_watcher_records_the_real_scale_events(scale_out_run):
    """Each client watched the Deployment with the Job's ServiceAccount; the scale-ups it saw
    carry the timings a real cluster produces."""
    events = [e for c in scale_out_run.clients for e in c["scale_events"]]
    ups = [e for e in events if e["to_replicas"] > (e["from_replicas"] or 0)]
    assert ups, "no scale-up recorded"
    first = min(ups, key=lambda e: e["t_s"])
    assert first["time_to_ready_s"] is not None and 0 < first["time_to_ready_s"] < 120, first
    assert first["time_to_first_new_backend_s"] is not None, first
    assert first["first_new_backend"], first
    assert first["recovery_s"] is not None or first["after"] is not None, first


def test_each_new_replica_serves_its_share_after_the_scale_out(scale_out_run):
    """A Service balances per connection; with connections recycled every 5 s, every replica the
    HPA added serves a real share of the requests once it is ready."""
    merged = scale_out_run.merged
    ups = [e for e in merged["scale_events"] if e["to_replicas"] > (e["from_replicas"] or 0)]
    assert ups
    last = max(ups, key=lambda e: e["t_s"])
    settled = last["t_s"] + (last["time_to_ready_s"] or 0) + 5
    after: dict[str, int] = {}
    for point in merged["timeseries"]:
        if point["t_s"] >= settled:
            for name, count in point.get("backends", {}).items():
                after[name] = after.get(name, 0) + count
    total = sum(after.values())
    assert total > 0, f"no request after {settled:.1f} s"
    before = {name for point in merged["timeseries"] if point["t_s"] < ups[0]["t_s"]
              for name in point.get("backends", {})}
    new = {name: count / total for name, count in after.items() if name not in before}
    assert len(new) >= 2, f"after the scale-out only {sorted(after)} served (before: {sorted(before)})"
    low = {name: share for name, share in new.items() if share < MIN_SHARE_OF_A_NEW_REPLICA}
    assert not low, f"new replicas below {MIN_SHARE_OF_A_NEW_REPLICA:.0%} of the requests: {low} (all: {after})"


def test_no_request_failed(scale_out_run):
    summary = scale_out_run.merged["summary"]
    assert summary["failures"] == 0, summary.get("errors")
