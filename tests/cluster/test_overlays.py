"""Every kustomization of deploy/ against a real API server, and the workload under a real kubelet.

Rendering and strict schema validation (tests/system/test_manifests.py) let a namespace-less HPA
through; the API server's admission, defaulting and field validation are the next proof, and
pods that pass their init container and probes under a kubelet the last.
"""

from __future__ import annotations

import pytest

from conftest import NAMESPACE, Cluster, workload_pods

# Every overlay apply.sh knows (deploy/scripts/apply.sh OVERLAYS), monitoring included.
OVERLAYS = ["single", "hpa", "minikube-single", "minikube-hpa", "minikube-hpa-tls", "own-service-example",
            "monitoring", "monitoring-remote-write"]
# The overlays whose pods run the project's own image (the others need images no registry here serves).
RUNNABLE = ["single", "hpa", "minikube-single", "minikube-hpa"]


@pytest.fixture(scope="module")
def namespace(cluster: Cluster):
    cluster.script("teardown.sh", timeout=300)
    yield
    cluster.script("teardown.sh", timeout=300, check=False)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_api_server_admits_every_object_with_no_warning(cluster: Cluster, namespace, overlay: str, tmp_path):
    # monitoring-remote-write reads the compose stack's password file first (make secrets).
    (tmp_path / "prometheus-password").write_text("not-a-real-password\n")
    dry = cluster.script("apply.sh", "--dry-run", overlay, timeout=120, check=False,
                         env={"SCALEBENCH_SECRETS_DIR": str(tmp_path)})
    assert dry.returncode == 0, dry.stderr
    assert "Warning" not in dry.stderr and "Warning" not in dry.stdout, dry.stderr
    assert "serverside-applied (server dry run)" in dry.stdout, dry.stdout


@pytest.mark.parametrize("overlay", RUNNABLE)
def test_the_workload_passes_its_init_container_and_probes_under_the_kubelet(cluster: Cluster, images, namespace,
                                                                               overlay: str):
    applied = cluster.script("apply.sh", overlay, timeout=400)
    assert "Warning" not in applied.stderr, applied.stderr
    pods = [p for p in workload_pods(cluster) if p["metadata"].get("deletionTimestamp") is None]
    assert pods, "no workload pod"
    for pod in pods:
        (init,) = pod["status"]["initContainerStatuses"]
        assert init["state"]["terminated"]["exitCode"] == 0, init
        ready = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
        assert ready.get("Ready") == "True", pod["status"]
        assert pod["metadata"]["labels"]["scalebench.io/deployment"] in ("k8s-single", "k8s-hpa")
    hpas = cluster.json("-n", NAMESPACE, "get", "hpa")["items"]
    assert [h["metadata"]["name"] for h in hpas] == (["workload"] if "hpa" in overlay else [])
