"""`make experiment` in small: bench/experiment.sh runs the classic three-client experiment against
the compose container, the single replica and the HPA on the local cluster, and writes the
seed's table as experiment.json, each run's merged report and the HTML comparison.

The 2x goal of the full experiment (100,000 requests per client) is measured by hand and recorded
in bench/RESULTS.md: a run of a few hundred requests ends before any autoscaler could act.
"""

from __future__ import annotations

import json

import pytest

from conftest import ROOT, Cluster, run

REQUESTS_PER_CLIENT = 300
CPU = 0.5


@pytest.fixture(scope="module")
def experiment(cluster: Cluster, images, loadgen_bin: str, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("experiment")
    done = run(["bash", ROOT / "bench" / "experiment.sh", "--requests-per-client", str(REQUESTS_PER_CLIENT),
                "--cpu", str(CPU), "--loadgen", loadgen_bin, "--out", out], env=cluster.env, timeout=1200)
    document = json.loads((out / "experiment.json").read_text())
    yield {"out": out, "document": document, "stdout": done.stdout}
    cluster.script("teardown.sh", timeout=300, check=False)


def test_experiment_json_has_the_seed_table(experiment):
    document = experiment["document"]
    assert document["clients"] == 3
    assert document["requests_per_client"] == REQUESTS_PER_CLIENT
    assert document["cpu_per_replica"] == CPU
    assert [r["deployment"] for r in document["runs"]] == ["docker", "k8s-single", "k8s-hpa"]
    for r in document["runs"]:
        assert set(r) == {"deployment", "elapsed_s", "requests", "ok", "throughput_rps", "p50_ms", "p99_ms",
                          "max_replicas", "speedup", "report"}
        assert r["requests"] == 3 * REQUESTS_PER_CLIENT, r
        assert r["ok"] == r["requests"], r
        assert r["elapsed_s"] > 0 and r["throughput_rps"] > 0, r
        assert 0 < r["p50_ms"] <= r["p99_ms"], r
        assert r["max_replicas"] >= 1
        merged = json.loads(open(r["report"]).read())
        assert merged["summary"]["requests"] == r["requests"]
        assert merged["labels"]["deployment"] == r["deployment"]
    docker = document["runs"][0]
    assert docker["speedup"] == 1.0
    for r in document["runs"][1:]:
        assert r["speedup"] == pytest.approx(docker["elapsed_s"] / r["elapsed_s"], rel=0.01)


def test_the_table_is_printed_and_the_comparison_page_written(experiment):
    for name in ("docker", "k8s-single", "k8s-hpa"):
        assert name in experiment["stdout"]
    assert "speedup" in experiment["stdout"]
    page = (experiment["out"] / "compare.html").read_text()
    assert page.startswith("<!DOCTYPE html>") or page.lower().startswith("<!doctype html>")
    assert "k8s-hpa" in page


def test_the_cluster_runs_were_watched(experiment):
    for r in experiment["document"]["runs"][1:]:
        merged = json.loads(open(r["report"]).read())
        assert merged["replicas"] is not None, f"{r['deployment']}: no replica timeline"
