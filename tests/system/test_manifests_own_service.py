"""Your own service on Kubernetes: deploy/components/own-service and its example overlay.

The example (stefanprodan/podinfo under the HPA) must render, validate strictly, keep every
invariant that is not about the bundled workload (HPA on a CPU request, hardened securityContext,
probes and Service on ports the container exposes, NetworkPolicy and Prometheus discovery by
port name), and carry nothing only the workload understands.
"""

from __future__ import annotations

import pytest

from conftest import require_tool
from test_manifests import (
    K8S_VERSIONS,
    _render_text,
    _run,
    check_hpa_policy,
    check_hpa_targets_existing_deployment,
    check_hpa_targets_set_cpu_requests,
    check_images_pinned,
    check_probes_use_exposed_ports,
    check_security_context_hardened,
    check_services_select_pods,
    find,
    render,
    scrape_targets,
)

EXAMPLE = "overlays/own-service-example"
IMAGE = "ghcr.io/stefanprodan/podinfo:6.9.2"


def _deployment() -> dict:
    return find(render(EXAMPLE), "Deployment", "workload")


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_example_renders_and_validates_strictly(version: str, tmp_path) -> None:
    validator = require_tool("kubernetes-validate")
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(_render_text(EXAMPLE))
    proc = _run([validator, "--strict", "--quiet", "--kubernetes-version", version, str(rendered)])
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "check",
    [
        check_hpa_targets_existing_deployment,
        check_hpa_targets_set_cpu_requests,
        check_hpa_policy,
        check_images_pinned,
        check_probes_use_exposed_ports,
        check_security_context_hardened,
        check_services_select_pods,
    ],
)
def test_example_keeps_the_invariants_of_any_target(check) -> None:
    assert check(render(EXAMPLE)) == []


def test_example_swaps_image_ports_probe_paths_and_resources() -> None:
    spec = _deployment()["spec"]["template"]["spec"]
    assert "initContainers" not in spec, "check-config checks the workload's settings, not another image's"
    [c] = spec["containers"]
    assert c["image"] == IMAGE
    assert not [e for e in c.get("env", []) if e["name"].startswith("WORKLOAD_")], c.get("env")
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"http": 9898, "metrics": 9797}, ports
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert c["resources"]["requests"] == {"cpu": "100m", "memory": "32Mi"}
    service = find(render(EXAMPLE), "Service", "workload")
    assert service["spec"]["ports"][0]["targetPort"] == "http", "the Service must follow the port by name"


def test_prometheus_scrapes_the_example_on_its_metrics_port() -> None:
    targets = [t for t in scrape_targets(render("monitoring"), render(EXAMPLE))["workload"] if t["phase"] == "Running"]
    assert targets, "the in-cluster Prometheus discovers no target among the example's pods"
    assert {t["port"] for t in targets} == {"9797"}, targets
    assert {t["deployment"] for t in targets} == {"k8s-hpa"}, targets
