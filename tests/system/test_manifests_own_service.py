"""Your own service on Kubernetes: deploy/components/own-service and its example overlay.

The example (stefanprodan/podinfo under the HPA) must render, validate strictly, keep every
invariant that is not about the bundled workload (HPA on a CPU request, hardened securityContext,
probes and Service on ports the container exposes, NetworkPolicy and Prometheus discovery by
port name), and carry nothing only the workload understands.
"""

from __future__ import annotations

import pytest

from manifests_support import (
    check_hpa_policy,
    check_hpa_targets_existing_deployment,
    check_hpa_targets_set_cpu_requests,
    check_images_pinned,
    check_probes_use_exposed_ports,
    check_security_context_hardened,
    check_services_select_pods,
    rules_bound_to,
    find,
    prometheus_config,
    relabel,
    render,
    scrape_targets,
)

EXAMPLE = "overlays/own-service-example"
IMAGE = "ghcr.io/stefanprodan/podinfo:6.9.2"


def _deployment() -> dict:
    return find(render(EXAMPLE), "Deployment", "workload")


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


# ------------------------------------------------------------- container CPU for any image
def _cadvisor_job() -> dict:
    jobs = {j["job_name"]: j for j in prometheus_config(render("monitoring"))["scrape_configs"]}
    assert "cadvisor" in jobs, sorted(jobs)
    return jobs["cadvisor"]


def test_cadvisor_job_reads_every_node_through_the_api_server_proxy_with_the_pod_token() -> None:
    job = _cadvisor_job()
    assert [sd["role"] for sd in job["kubernetes_sd_configs"]] == ["node"]
    assert job["scheme"] == "https"
    assert job["authorization"]["credentials_file"] == "/var/run/secrets/kubernetes.io/serviceaccount/token"
    assert job["tls_config"]["ca_file"] == "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
    # What the relabelling makes of a discovered node (the special labels made visible).
    expose = [{"source_labels": ["__address__"], "target_label": "address"},
              {"source_labels": ["__metrics_path__"], "target_label": "path"}]
    target = relabel({"__address__": "192.168.49.2:10250", "__metrics_path__": "/metrics",
                      "__meta_kubernetes_node_name": "minikube"}, job["relabel_configs"] + expose)
    assert target == {"address": "kubernetes.default.svc:443", "path": "/api/v1/nodes/minikube/proxy/metrics/cadvisor",
                      "node": "minikube"}, target


@pytest.mark.parametrize(
    ("series", "kept"),
    [
        ({"__name__": "container_cpu_usage_seconds_total", "namespace": "scalebench", "container": "workload"}, True),
        ({"__name__": "container_spec_cpu_shares", "namespace": "scalebench", "container": "workload"}, True),
        ({"__name__": "container_cpu_usage_seconds_total", "namespace": "kube-system", "container": "coredns"}, False),
        ({"__name__": "container_cpu_usage_seconds_total", "namespace": "scalebench", "container": ""}, False),
        ({"__name__": "container_network_receive_bytes_total", "namespace": "scalebench", "container": "workload"}, False),
    ],
)
def test_cadvisor_job_keeps_only_this_namespaces_container_cpu_and_memory(series: dict, kept: bool) -> None:
    assert (relabel(series, _cadvisor_job()["metric_relabel_configs"]) is not None) is kept


def test_prometheus_may_read_the_kubelets_through_the_proxy_and_nothing_more() -> None:
    docs = render("monitoring")
    rules = rules_bound_to(docs, "prometheus")
    def grants(resource: str, verb: str) -> bool:
        return any("" in r.get("apiGroups", []) and resource in r.get("resources", []) and verb in r.get("verbs", [])
                   for r in rules)
    assert grants("nodes", "list") and grants("nodes", "watch"), rules
    assert grants("nodes/proxy", "get"), rules
    assert not any(set(r.get("verbs", [])) - {"get", "list", "watch"} for r in rules), rules
    binding = find(docs, "ClusterRoleBinding", "scalebench-prometheus-nodes")
    assert binding and binding["subjects"] == [{"kind": "ServiceAccount", "name": "prometheus", "namespace": "scalebench"}]
