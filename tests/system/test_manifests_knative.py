"""deploy/overlays/knative without a cluster: the workload's Deployment as a Knative
Configuration, held to the Deployment it mirrors so the two cannot drift, and to the rules
Knative's webhook enforces (tests/cluster/test_knative.py applies it to a real Knative).
"""

from __future__ import annotations

from conftest import ROOT
from manifests_support import KNATIVE, env_value, find, of_kind, render, workload_container

# What Knative's admission allows of a pod (knative.dev/serving pkg/apis/serving/fieldmask.go,
# with the default feature flags): no init containers, no pod-level security context, one port.
KNATIVE_POD_FIELDS = {"serviceAccountName", "automountServiceAccountToken", "containers", "volumes",
                      "timeoutSeconds", "containerConcurrency", "enableServiceLinks", "imagePullSecrets"}


def configuration() -> dict:
    config = find(render(KNATIVE), "Configuration", "workload")
    assert config is not None, "no Configuration workload"
    return config


def base_container() -> dict:
    return workload_container(find(render("base"), "Deployment", "workload"))


def test_the_configuration_runs_the_deployments_container():
    (container,) = configuration()["spec"]["template"]["spec"]["containers"]
    base = base_container()
    for key in ("image", "resources"):
        assert container[key] == base[key], key
    for name in ("WORKLOAD_ADDR", "WORKLOAD_METRICS_ADDR", "WORKLOAD_REQUEST_TIMEOUT", "WORKLOAD_LOG_FORMAT"):
        assert env_value(container, name) == env_value(base, name), name
    assert container["readinessProbe"]["httpGet"]["path"] == base["readinessProbe"]["httpGet"]["path"]
    assert container["livenessProbe"]["httpGet"]["path"] == base["livenessProbe"]["httpGet"]["path"]


def test_the_pod_security_of_the_deployment_moves_onto_the_container():
    base_pod = find(render("base"), "Deployment", "workload")["spec"]["template"]["spec"]["securityContext"]
    (container,) = configuration()["spec"]["template"]["spec"]["containers"]
    merged = {**base_container()["securityContext"], **{k: v for k, v in base_pod.items()}}
    assert container["securityContext"] == merged


def test_knative_admits_the_pod_spec():
    template = configuration()["spec"]["template"]
    assert set(template["spec"]) <= KNATIVE_POD_FIELDS, set(template["spec"]) - KNATIVE_POD_FIELDS
    (container,) = template["spec"]["containers"]
    (port,) = container["ports"]
    assert port["name"] == "http1" and f":{port['containerPort']}" in env_value(container, "WORKLOAD_ADDR")
    # A readiness probe without a period is probed by queue-proxy every 25 ms until it passes:
    # the cold start ends when the process answers.
    assert "periodSeconds" not in container["readinessProbe"]
    # The request timeout fits inside the revision's (Knative's terminationGracePeriod too).
    assert template["spec"]["timeoutSeconds"] > int(env_value(container, "WORKLOAD_REQUEST_TIMEOUT").rstrip("s"))


def test_the_revision_scales_to_zero_and_is_labelled_for_the_dashboards():
    docs = render(KNATIVE)
    template = configuration()["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    assert annotations["autoscaling.knative.dev/min-scale"] == "0"
    assert int(annotations["autoscaling.knative.dev/max-scale"]) >= 3
    assert annotations["prometheus.io/port"] == env_value(template["spec"]["containers"][0], "WORKLOAD_METRICS_ADDR").rsplit(":", 1)[1]
    assert template["metadata"]["labels"]["scalebench.io/deployment"] == "k8s-knative"
    assert find(docs, "ConfigMap", "scalebench-deployment")["data"] == {"deployment": "k8s-knative"}
    assert of_kind(docs, "Deployment") == [] and of_kind(docs, "HorizontalPodAutoscaler") == []


def test_the_network_policy_lets_knatives_data_plane_and_prometheus_in():
    policy = find(render(KNATIVE), "NetworkPolicy", "workload-knative")
    assert policy["spec"]["podSelector"]["matchLabels"] == {"serving.knative.dev/configuration": "workload"}
    sources = {}
    for rule in policy["spec"]["ingress"]:
        ports = {p["port"] for p in rule["ports"]}
        for peer in rule["from"]:
            key = str(peer.get("namespaceSelector") or peer.get("podSelector"))
            sources[key] = ports
    assert 8012 in sources[str({"matchLabels": {"kubernetes.io/metadata.name": "knative-serving"}})]
    assert {9000, 9091} <= sources[str({"matchLabels": {"app.kubernetes.io/name": "prometheus"}})]


def test_the_cluster_install_serves_the_activator_where_the_bench_looks():
    service = (ROOT / "deploy" / "local-cluster" / "knative" / "config" / "activator-nodeport.yaml").read_text()
    bench = (ROOT / "bench" / "deployments-common.sh").read_text()
    port = next(line.split(":")[1].strip() for line in service.splitlines() if "nodePort:" in line)
    assert f"ACTIVATOR_NODE_PORT={port}" in bench
