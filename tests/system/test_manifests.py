"""The Kubernetes manifests, proven without a cluster.

Every kustomization under deploy/ is rendered with the real `kubectl kustomize`, validated against
the Kubernetes OpenAPI schemas in strict mode (`kubernetes-validate --strict`, pinned versions),
linted with yamllint, and checked for the invariants a cluster would only reveal at run time:
an HPA that targets nothing, a Deployment without CPU requests (HPA shows `<unknown>`), probes on
ports the container does not expose, a Service that selects no pod, `latest` images, a soft
securityContext, a loadgen Role that can write, a drain that SIGKILL cuts short, readiness that
flips after the drain is over, and rollouts that drop capacity.

Each invariant is a check function returning the problems it finds; its test asserts the rendered
manifests have none, and `test_check_catches_mutation` proves every check complains about a
manifest broken on purpose, so no check passes vacuously.

Rendering uses kustomize's default load restrictor throughout, exactly like deploy/scripts/lib.sh
and `kubectl apply -k`: the ConfigMaps of prometheus/, grafana/ and loadgen/scenarios/ are generated
by kustomizations beside those files, which deploy/ includes as resources (deploy/README.md).
`test_every_kustomization_renders_with_default_load_restrictions` holds every directory to that.
"""

from __future__ import annotations

import base64
import copy
import functools
import json
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

import pytest
import yaml

from conftest import ROOT, figure, free_port, prometheus_tool, require_tool

DEPLOY = ROOT / "deploy"

WORKLOAD_OVERLAYS = ["overlays/single", "overlays/hpa", "overlays/minikube-single", "overlays/minikube-hpa"]
HPA_OVERLAYS = ["overlays/hpa", "overlays/minikube-hpa"]
SINGLE_OVERLAYS = ["overlays/single", "overlays/minikube-single"]
MINIKUBE_OVERLAYS = ["overlays/minikube-single", "overlays/minikube-hpa"]
# deploy/monitoring with the in-cluster Prometheus remote-writing into the compose one (optional).
REMOTE_WRITE = "overlays/monitoring-remote-write"
# Your own image in the workload's place, and HTTPS through an Ingress (docs/own-service.md,
# docs/tls-deploy.md): held to every invariant that is not about the bundled workload itself.
VARIANT_OVERLAYS = ["overlays/own-service-example", "overlays/minikube-hpa-tls"]
KUSTOMIZATIONS = ["base", *WORKLOAD_OVERLAYS, *VARIANT_OVERLAYS, "monitoring", REMOTE_WRITE, "loadgen"]
WITH_WORKLOAD = ["base", *WORKLOAD_OVERLAYS]
# The deployment label each overlay gives its pods (and the loadgen, through a ConfigMap).
EXPECTED_DEPLOYMENT_LABEL = {
    "base": "k8s",
    "overlays/single": "k8s-single",
    "overlays/minikube-single": "k8s-single",
    "overlays/hpa": "k8s-hpa",
    "overlays/minikube-hpa": "k8s-hpa",
}
DEPLOYMENT_LABEL_KEY = "scalebench.io/deployment"
# Every namespaced object of every kustomization lives here (deploy/scripts/lib.sh NAMESPACE).
NAMESPACE = "scalebench"
WORKLOAD_IMAGE = "scalebench/workload"
# Oldest and newest Kubernetes versions the manifests are validated against (kubernetes-validate
# ships schemas up to its own version; 1.33 is the oldest Minikube release we document).
K8S_VERSIONS = ["1.33.0", "1.37.0"]
# The workload's defaults (service config), used when the manifest does not set the env var.
DEFAULT_DRAIN_DELAY = 5.0
DEFAULT_SHUTDOWN_TIMEOUT = 20.0
DEFAULT_REQUEST_TIMEOUT = 30.0


def _shutdown_overhead_s() -> float:
    """service/src/shutdown.rs's SHUTDOWN_OVERHEAD: the bounded clean-up after the shutdown
    timeout (metrics listener, blocking pool, trace flush), read from the source it is defined in."""
    text = (ROOT / "service" / "src" / "shutdown.rs").read_text()
    m = re.search(r"pub const SHUTDOWN_OVERHEAD: Duration = Duration::from_(secs|millis)\((\d+)\);", text)
    assert m, "SHUTDOWN_OVERHEAD is no longer a literal in service/src/shutdown.rs"
    return int(m.group(2)) / (1 if m.group(1) == "secs" else 1000)


SHUTDOWN_OVERHEAD = _shutdown_overhead_s()

Docs = list[dict]


# --------------------------------------------------------------------------------- rendering
def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kwargs)


@functools.lru_cache(maxsize=None)
def _render_text(name: str) -> str:
    kubectl = require_tool("kubectl")
    proc = _run([kubectl, "kustomize", str(DEPLOY / name)])
    assert proc.returncode == 0, f"kubectl kustomize deploy/{name} failed:\n{proc.stderr}"
    return proc.stdout


def render(name: str) -> Docs:
    """The rendered documents of deploy/NAME (a fresh copy: mutations stay local)."""
    docs = [d for d in yaml.safe_load_all(_render_text(name)) if d]
    assert docs, f"deploy/{name} rendered nothing"
    return docs


def of_kind(docs: Docs, kind: str) -> list[dict]:
    return [d for d in docs if d.get("kind") == kind]


def find(docs: Docs, kind: str, name: str) -> dict | None:
    return next((d for d in of_kind(docs, kind) if d["metadata"]["name"] == name), None)


def pod_templates(docs: Docs) -> list[tuple[str, dict]]:
    """(kind/name, pod template) of every workload resource."""
    out = []
    for d in docs:
        if d.get("kind") in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
            out.append((f"{d['kind']}/{d['metadata']['name']}", d["spec"]["template"]))
        elif d.get("kind") == "CronJob":
            out.append((f"CronJob/{d['metadata']['name']}", d["spec"]["jobTemplate"]["spec"]["template"]))
    return out


def containers(pod_spec: dict) -> list[dict]:
    return [*pod_spec.get("initContainers", []), *pod_spec.get("containers", [])]


def image_repo(image: str) -> str:
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return name.rsplit(":", 1)[0] if ":" in last else name


def workload_deployments(docs: Docs) -> list[dict]:
    return [
        d
        for d in of_kind(docs, "Deployment")
        if any(image_repo(c["image"]) == WORKLOAD_IMAGE for c in d["spec"]["template"]["spec"]["containers"])
    ]


def workload_container(deployment: dict) -> dict:
    return next(
        c for c in deployment["spec"]["template"]["spec"]["containers"] if image_repo(c["image"]) == WORKLOAD_IMAGE
    )


def env_value(container: dict, name: str) -> str | None:
    for var in container.get("env", []):
        if var["name"] == name:
            return var.get("value")
    return None


_DURATION_UNITS = {
    "ns": 1e-9, "nsec": 1e-9, "us": 1e-6, "usec": 1e-6, "ms": 1e-3, "msec": 1e-3,
    "s": 1.0, "sec": 1.0, "secs": 1.0, "second": 1.0, "seconds": 1.0,
    "m": 60.0, "min": 60.0, "mins": 60.0, "minute": 60.0, "minutes": 60.0,
    "h": 3600.0, "hr": 3600.0, "hrs": 3600.0, "hour": 3600.0, "hours": 3600.0,
    "d": 86400.0, "day": 86400.0, "days": 86400.0,
}  # fmt: skip


def humantime_seconds(text: str) -> float:
    """Seconds in a humantime duration as the workload parses it (`10s`, `1m 30s`, `500ms`)."""
    parts = re.findall(r"(\d+)\s*([a-z]+)", text.strip().lower())
    rebuilt = "".join(f"{n}{u}" for n, u in parts)
    if not parts or rebuilt != re.sub(r"\s+", "", text.strip().lower()):
        raise ValueError(f"not a humantime duration: {text!r}")
    total = 0.0
    for number, unit in parts:
        if unit not in _DURATION_UNITS:
            raise ValueError(f"unknown unit {unit!r} in {text!r}")
        total += int(number) * _DURATION_UNITS[unit]
    return total


def container_ports(container: dict) -> tuple[set[int], set[str]]:
    ports = container.get("ports", [])
    return {p["containerPort"] for p in ports}, {p["name"] for p in ports if "name" in p}


# ------------------------------------------------------------------------------------ checks
# Each check takes rendered documents and returns a list of problems (empty = invariant holds).
def check_hpa_targets_existing_deployment(docs: Docs) -> list[str]:
    problems = []
    hpas = of_kind(docs, "HorizontalPodAutoscaler")
    for hpa in hpas:
        ref = hpa["spec"]["scaleTargetRef"]
        target = find(docs, ref.get("kind", ""), ref.get("name", ""))
        if ref.get("kind") != "Deployment" or ref.get("apiVersion") != "apps/v1" or target is None:
            problems.append(f"HPA {hpa['metadata']['name']} targets {ref}, which is not a Deployment here")
    return problems


# Kinds that have no namespace; every other kind must be in the workload's. A namespaced object
# rendered without `metadata.namespace` is created in whatever namespace the kubeconfig points at:
# an HPA there never finds its Deployment (`failed to query scale subresource for
# Deployment/default/workload`), and nothing scales. Strict schema validation accepts it.
CLUSTER_SCOPED_KINDS = {
    "Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "APIService",
    "PersistentVolume", "StorageClass", "IngressClass", "PriorityClass",
    "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration",
}


def check_namespaced_objects_in_workload_namespace(docs: Docs) -> list[str]:
    problems = []
    for doc in docs:
        if doc["kind"] in CLUSTER_SCOPED_KINDS:
            continue
        namespace = doc["metadata"].get("namespace")
        if namespace != NAMESPACE:
            where = f"namespace {namespace!r}" if namespace else "no namespace (the kubeconfig's would be used)"
            problems.append(f"{doc['kind']} {doc['metadata']['name']} has {where}, not {NAMESPACE!r}")
    return problems


def check_hpa_targets_set_cpu_requests(docs: Docs) -> list[str]:
    problems = []
    for hpa in of_kind(docs, "HorizontalPodAutoscaler"):
        ref = hpa["spec"]["scaleTargetRef"]
        target = find(docs, "Deployment", ref.get("name", ""))
        if target is None:
            continue  # reported by check_hpa_targets_existing_deployment
        for c in target["spec"]["template"]["spec"]["containers"]:
            if not c.get("resources", {}).get("requests", {}).get("cpu"):
                problems.append(f"container {c['name']} of {ref['name']} has no CPU request: HPA shows <unknown>")
    return problems


def check_hpa_policy(docs: Docs) -> list[str]:
    """autoscaling/v2 on CPU at 50%, 1..10, fast up, down within minutes, replicas left to the HPA."""
    problems = []
    for hpa in of_kind(docs, "HorizontalPodAutoscaler"):
        spec = hpa["spec"]
        name = hpa["metadata"]["name"]
        if hpa["apiVersion"] != "autoscaling/v2":
            problems.append(f"HPA {name} is {hpa['apiVersion']}, not autoscaling/v2")
        if (spec.get("minReplicas", 1), spec.get("maxReplicas")) != (1, 10):
            problems.append(f"HPA {name} range is {spec.get('minReplicas', 1)}..{spec.get('maxReplicas')}, not 1..10")
        cpu = [
            m["resource"]["target"]
            for m in spec.get("metrics", [])
            if m.get("type") == "Resource" and m["resource"]["name"] == "cpu"
        ]
        if cpu != [{"type": "Utilization", "averageUtilization": 50}]:
            problems.append(f"HPA {name} CPU target is {cpu}, not one Utilization target of 50%")
        behavior = spec.get("behavior", {})
        up = behavior.get("scaleUp", {}).get("stabilizationWindowSeconds")
        down = behavior.get("scaleDown", {}).get("stabilizationWindowSeconds")
        if up is None or up > 15:
            problems.append(f"HPA {name} scale-up stabilization is {up}: not within seconds")
        if down is None or down > 180:
            problems.append(f"HPA {name} scale-down stabilization is {down}: not within a few minutes")
        target = find(docs, "Deployment", spec["scaleTargetRef"].get("name", ""))
        if target is not None and "replicas" in target["spec"]:
            problems.append(f"Deployment {target['metadata']['name']} pins replicas under an HPA: apply fights it")
    return problems


def check_probes_use_exposed_ports(docs: Docs) -> list[str]:
    problems = []
    for owner, template in pod_templates(docs):
        for c in containers(template["spec"]):
            numbers, names = container_ports(c)
            for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
                probe = c.get(kind)
                if probe is None:
                    continue
                action = probe.get("httpGet") or probe.get("tcpSocket") or probe.get("grpc")
                if action is None:
                    continue  # exec probes use no port
                port = action.get("port")
                if not ((isinstance(port, int) and port in numbers) or (isinstance(port, str) and port in names)):
                    problems.append(f"{owner} {c['name']} {kind} uses port {port!r}, exposed: {sorted(numbers)} {sorted(names)}")
    return problems


def check_workload_probes(docs: Docs) -> list[str]:
    """Liveness on /healthz, readiness on /readyz, both on the application port."""
    problems = []
    for d in workload_deployments(docs):
        c = workload_container(d)
        app_port = next((p for p in c.get("ports", []) if p["containerPort"] == 8080), None)
        allowed = {8080, app_port.get("name") if app_port else None} - {None}
        for kind, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            get = c.get(kind, {}).get("httpGet")
            if get is None or get.get("path") != path or get.get("port") not in allowed:
                problems.append(f"{d['metadata']['name']} {kind} is {get}, want GET {path} on the app port 8080")
    return problems


def check_services_select_pods(docs: Docs) -> list[str]:
    problems = []
    templates = pod_templates(docs)
    for svc in of_kind(docs, "Service"):
        selector = svc["spec"].get("selector") or {}
        name = svc["metadata"]["name"]
        if not selector:
            problems.append(f"Service {name} has no selector")
            continue
        matched = [
            (owner, t)
            for owner, t in templates
            if all(t["metadata"].get("labels", {}).get(k) == v for k, v in selector.items())
        ]
        if not matched:
            problems.append(f"Service {name} selector {selector} matches no pod template")
        for owner, t in matched:
            for port in svc["spec"]["ports"]:
                target = port.get("targetPort", port["port"])
                exposed = [container_ports(c) for c in t["spec"]["containers"]]
                if not any((target in nums) if isinstance(target, int) else (target in names) for nums, names in exposed):
                    problems.append(f"Service {name} targetPort {target!r} is not a port of {owner}")
    return problems


def check_workload_service_app_port_only(docs: Docs) -> list[str]:
    problems = []
    for svc in of_kind(docs, "Service"):
        if svc["metadata"]["name"] != "workload":
            continue
        ports = [(p["port"], p.get("targetPort")) for p in svc["spec"]["ports"]]
        if ports not in ([(8080, "http")], [(8080, 8080)]):
            problems.append(f"Service workload exposes {ports}: want the application port 8080 only")
    return problems


def check_images_pinned(docs: Docs) -> list[str]:
    problems = []
    for owner, template in pod_templates(docs):
        for c in containers(template["spec"]):
            image = c.get("image", "")
            last = image.split("@", 1)[0].rsplit("/", 1)[-1]
            tag = last.split(":", 1)[1] if ":" in last else None
            if "@sha256:" in image:
                continue
            if tag is None or tag == "" or tag == "latest":
                problems.append(f"{owner} {c['name']} image {image!r} is not pinned to a version tag")
    return problems


def check_security_context_hardened(docs: Docs) -> list[str]:
    problems = []
    for owner, template in pod_templates(docs):
        pod_sc = template["spec"].get("securityContext", {})
        for c in containers(template["spec"]):
            sc = c.get("securityContext", {})
            where = f"{owner} {c['name']}"
            if not sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")):
                problems.append(f"{where}: runAsNonRoot is not true")
            if sc.get("runAsUser", pod_sc.get("runAsUser")) == 0:
                problems.append(f"{where}: runs as uid 0")
            if sc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{where}: readOnlyRootFilesystem is not true")
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: allowPrivilegeEscalation is not false")
            if sc.get("privileged"):
                problems.append(f"{where}: privileged")
            caps = sc.get("capabilities", {})
            if caps.get("drop") != ["ALL"] or caps.get("add"):
                problems.append(f"{where}: capabilities are {caps}, want drop [ALL] and no add")
            seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile", {}))
            if seccomp.get("type") != "RuntimeDefault":
                problems.append(f"{where}: seccompProfile is {seccomp}, want RuntimeDefault")
    return problems


def check_roles_read_only(docs: Docs) -> list[str]:
    """Every Role and ClusterRole here grants only get, list and watch."""
    problems = []
    for role in [*of_kind(docs, "Role"), *of_kind(docs, "ClusterRole")]:
        for rule in role.get("rules", []):
            extra = set(rule.get("verbs", [])) - {"get", "list", "watch"}
            if extra:
                problems.append(f"{role['kind']} {role['metadata']['name']} grants {sorted(extra)} on {rule.get('resources')}")
    return problems


def _rules_bound_to(docs: Docs, service_account: str) -> list[dict]:
    rules = []
    for binding in [*of_kind(docs, "RoleBinding"), *of_kind(docs, "ClusterRoleBinding")]:
        if any(s.get("kind") == "ServiceAccount" and s.get("name") == service_account for s in binding.get("subjects", [])):
            ref = binding["roleRef"]
            role = find(docs, ref["kind"], ref["name"])
            if role is None:
                rules.append({"missing": f"{ref['kind']} {ref['name']}"})
            else:
                rules.extend(role.get("rules", []))
    return rules


def check_loadgen_rbac(docs: Docs) -> list[str]:
    """The loadgen may get/list/watch Deployments and HPAs, in its namespace, and nothing else."""
    problems = []
    rules = _rules_bound_to(docs, "loadgen")
    if not rules:
        problems.append("no Role is bound to ServiceAccount loadgen")
    allowed = {("apps", "deployments"), ("autoscaling", "horizontalpodautoscalers")}
    granted = set()
    for rule in rules:
        if "missing" in rule:
            problems.append(f"loadgen binding refers to a missing {rule['missing']}")
            continue
        if rule.get("resourceNames") or rule.get("nonResourceURLs"):
            problems.append(f"unexpected rule shape {rule}")
        if set(rule.get("verbs", [])) != {"get", "list", "watch"}:
            problems.append(f"loadgen rule verbs are {rule.get('verbs')}, want exactly get, list, watch")
        for group in rule.get("apiGroups", []):
            for resource in rule.get("resources", []):
                if (group, resource) not in allowed:
                    problems.append(f"loadgen may access {resource!r} in API group {group!r}")
                granted.add((group, resource))
    if rules and granted != allowed:
        problems.append(f"loadgen is granted {sorted(granted)}, want {sorted(allowed)}")
    if of_kind(docs, "ClusterRoleBinding"):
        problems.append("the loadgen needs no cluster-wide binding")
    return problems


def check_drain_fits_grace(docs: Docs) -> list[str]:
    problems = []
    for d in workload_deployments(docs):
        c = workload_container(d)
        drain = humantime_seconds(env_value(c, "WORKLOAD_DRAIN_DELAY") or f"{DEFAULT_DRAIN_DELAY:g}s")
        shutdown = humantime_seconds(env_value(c, "WORKLOAD_SHUTDOWN_TIMEOUT") or f"{DEFAULT_SHUTDOWN_TIMEOUT:g}s")
        grace = d["spec"]["template"]["spec"].get("terminationGracePeriodSeconds", 30)
        request = humantime_seconds(env_value(c, "WORKLOAD_REQUEST_TIMEOUT") or f"{DEFAULT_REQUEST_TIMEOUT:g}s")
        if request > shutdown:
            problems.append(
                f"{d['metadata']['name']}: a request may run {request:g}s but shutdown waits only {shutdown:g}s"
            )
        if not drain + shutdown + SHUTDOWN_OVERHEAD < grace:
            problems.append(
                f"{d['metadata']['name']}: drain {drain:g}s + shutdown {shutdown:g}s + clean-up "
                f"{SHUTDOWN_OVERHEAD:g}s does not fit inside terminationGracePeriodSeconds {grace}: "
                "SIGKILL cuts the drain short"
            )
    return problems


def check_readiness_flips_before_drain_ends(docs: Docs) -> list[str]:
    problems = []
    for d in workload_deployments(docs):
        c = workload_container(d)
        drain = humantime_seconds(env_value(c, "WORKLOAD_DRAIN_DELAY") or f"{DEFAULT_DRAIN_DELAY:g}s")
        probe = c.get("readinessProbe")
        if probe is None:
            problems.append(f"{d['metadata']['name']} has no readiness probe: nothing flips before the drain")
            continue
        flip = probe.get("periodSeconds", 10) * probe.get("failureThreshold", 3)
        if not drain >= flip:
            problems.append(
                f"{d['metadata']['name']}: readiness needs {flip}s to report unready but the drain lasts "
                f"{drain:g}s: the pod stops serving while still in the endpoints"
            )
    return problems


# WORKLOAD_MAX_CONNECTION_AGE bounds: below 5 s every client connection reconnects so often that
# handshakes and TIME_WAIT sockets (60 s each on Linux: 12 per connection at 5 s) start to cost;
# above 60 s a scale-out waits minutes of HPA periods before the load reaches the new pods.
CONNECTION_AGE_RANGE_S = (5.0, 60.0)


def check_connection_lifetime(docs: Docs) -> list[str]:
    """kube-proxy balances per connection: the workload must close its connections after a while
    (WORKLOAD_MAX_CONNECTION_AGE), or clients with keep-alive stay on the pods that existed when
    they connected (docs/testing-scale-out.md). Set explicitly, a duration the workload parses,
    within CONNECTION_AGE_RANGE_S, and under an HPA no longer than its fastest scale-up period, so
    the load has moved to the new pods before the autoscaler decides again."""
    problems = []
    low, high = CONNECTION_AGE_RANGE_S
    scale_up_periods = {
        hpa["spec"]["scaleTargetRef"].get("name"): min(
            (p["periodSeconds"] for p in hpa["spec"].get("behavior", {}).get("scaleUp", {}).get("policies", [])),
            default=15,  # the HPA controller's sync period
        )
        for hpa in of_kind(docs, "HorizontalPodAutoscaler")
    }
    for d in workload_deployments(docs):
        name = d["metadata"]["name"]
        value = env_value(workload_container(d), "WORKLOAD_MAX_CONNECTION_AGE")
        if value is None:
            problems.append(f"{name}: WORKLOAD_MAX_CONNECTION_AGE unset: keep-alive clients never reach new pods")
            continue
        try:
            age = humantime_seconds(value)
        except ValueError as exc:
            problems.append(f"{name}: WORKLOAD_MAX_CONNECTION_AGE {exc}")
            continue
        if not low <= age <= high:
            problems.append(f"{name}: WORKLOAD_MAX_CONNECTION_AGE {value} outside {low:g}s..{high:g}s")
        period = scale_up_periods.get(name)
        if period is not None and age > period:
            problems.append(
                f"{name}: connections live {age:g}s, longer than the HPA's scale-up period {period}s: "
                "the autoscaler decides again before the load has reached the pods it added"
            )
    return problems


def check_rollout_keeps_capacity(docs: Docs) -> list[str]:
    problems = []
    for d in workload_deployments(docs):
        strategy = d["spec"].get("strategy", {})
        unavailable = strategy.get("rollingUpdate", {}).get("maxUnavailable", "25%")
        if strategy.get("type", "RollingUpdate") != "RollingUpdate" or unavailable not in (0, "0", "0%"):
            problems.append(f"{d['metadata']['name']}: strategy {strategy} may drop capacity (want maxUnavailable 0)")
        surge = strategy.get("rollingUpdate", {}).get("maxSurge", "25%")
        if surge in (0, "0", "0%"):
            problems.append(f"{d['metadata']['name']}: maxSurge 0 with maxUnavailable 0 can never roll")
    return problems


def check_workload_resources(docs: Docs) -> list[str]:
    problems = []
    for d in workload_deployments(docs):
        res = workload_container(d).get("resources", {})
        for section in ("requests", "limits"):
            for key in ("cpu", "memory"):
                if not res.get(section, {}).get(key):
                    problems.append(f"{d['metadata']['name']}: no {key} {section[:-1]}")
    return problems


def check_no_needless_tokens(docs: Docs) -> list[str]:
    """ServiceAccounts do not automount; only pods that talk to the API (watch, SD) mount a token."""
    needs_api = {"loadgen", "prometheus"}
    problems = []
    for sa in of_kind(docs, "ServiceAccount"):
        if sa.get("automountServiceAccountToken") is not False:
            problems.append(f"ServiceAccount {sa['metadata']['name']} automounts its token")
    for owner, template in pod_templates(docs):
        spec = template["spec"]
        if spec.get("serviceAccountName") not in needs_api and spec.get("automountServiceAccountToken") is not False:
            problems.append(f"{owner} mounts an API token it does not need")
    return problems


def check_recommended_labels(docs: Docs) -> list[str]:
    problems = []
    for d in docs:
        labels = d["metadata"].get("labels", {})
        # Generated ConfigMaps belong to the whole stack, not to one app: no `name` for them.
        wanted = ["app.kubernetes.io/part-of", "app.kubernetes.io/managed-by"]
        if d["kind"] != "ConfigMap":
            wanted.append("app.kubernetes.io/name")
        for key in wanted:
            if key not in labels:
                problems.append(f"{d['kind']}/{d['metadata']['name']} lacks label {key}")
    for owner, template in pod_templates(docs):
        labels = template["metadata"].get("labels", {})
        for key in ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/part-of"):
            if key not in labels:
                problems.append(f"{owner} pod template lacks label {key}")
    return problems


def check_deployment_label(docs: Docs, expected: str) -> list[str]:
    """Pods carry scalebench.io/deployment=EXPECTED, and the loadgen's ConfigMap says the same."""
    problems = []
    for d in workload_deployments(docs):
        got = d["spec"]["template"]["metadata"].get("labels", {}).get(DEPLOYMENT_LABEL_KEY)
        if got != expected:
            problems.append(f"{d['metadata']['name']} pods are labelled {DEPLOYMENT_LABEL_KEY}={got!r}, want {expected!r}")
        if any(k == DEPLOYMENT_LABEL_KEY for k in d["spec"]["selector"].get("matchLabels", {})):
            problems.append("the deployment label is in the selector: switching overlays would need a delete")
    cm = find(docs, "ConfigMap", "scalebench-deployment")
    if cm is None or cm.get("data", {}).get("deployment") != expected:
        problems.append(f"ConfigMap scalebench-deployment is {cm and cm.get('data')}, want deployment={expected!r}")
    return problems


def check_minikube(docs: Docs) -> list[str]:
    problems = []
    for d in workload_deployments(docs):
        c = workload_container(d)
        if c.get("imagePullPolicy") != "IfNotPresent":
            problems.append(f"workload imagePullPolicy is {c.get('imagePullPolicy')}: a loaded local image gets pulled")
    svc = find(docs, "Service", "workload")
    if svc is None or svc["spec"].get("type") != "NodePort":
        problems.append("the workload Service is not a NodePort on Minikube")
    return problems


# ------------------------------------------------------------------- monitoring and loadgen
def _pod_spec(docs: Docs, kind: str, name: str) -> dict:
    obj = find(docs, kind, name)
    assert obj is not None, f"{kind}/{name} missing"
    return obj["spec"]["template"]["spec"]


def materialize_volume(docs: Docs, pod_spec: dict, volume_name: str, dest: Path) -> None:
    """Write a configMap or projected volume's files under DEST as the kubelet would."""
    volume = next(v for v in pod_spec["volumes"] if v["name"] == volume_name)
    sources = volume["projected"]["sources"] if "projected" in volume else [{"configMap": volume["configMap"]}]
    for source in sources:
        ref = source["configMap"]
        cm = find(docs, "ConfigMap", ref["name"])
        assert cm is not None, f"volume {volume_name} refers to a missing ConfigMap {ref['name']}"
        items = ref.get("items") or [{"key": k, "path": k} for k in cm.get("data", {})]
        for item in items:
            assert item["key"] in cm["data"], f"ConfigMap {ref['name']} has no key {item['key']}"
            path = dest / item["path"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(cm["data"][item["key"]])


def _mount_path(container: dict, volume: str) -> str | None:
    return next((m["mountPath"] for m in container.get("volumeMounts", []) if m["name"] == volume), None)


def prometheus_config(docs: Docs) -> dict:
    cm = next(c for c in of_kind(docs, "ConfigMap") if c["metadata"]["name"].startswith("prometheus-config"))
    return yaml.safe_load(cm["data"]["prometheus.yml"])


def _label_meta(label: str) -> str:
    return "__meta_kubernetes_pod_label_" + re.sub(r"[^a-zA-Z0-9_]", "_", label)


def check_prometheus_discovery(docs: Docs) -> list[str]:
    """workload and loadgen jobs discover pods, and workload series get `deployment` from the pod label."""
    problems = []
    jobs = {j["job_name"]: j for j in prometheus_config(docs).get("scrape_configs", [])}
    for name in ("workload", "loadgen", "prometheus"):
        if name not in jobs:
            problems.append(f"no scrape job {name!r} (the metric contract's job names)")
    for name in ("workload", "loadgen"):
        job = jobs.get(name, {})
        if not any(sd.get("role") == "pod" for sd in job.get("kubernetes_sd_configs", [])):
            problems.append(f"job {name} does not discover pods through the Kubernetes API")
    for name, job in jobs.items():
        for sd in job.get("kubernetes_sd_configs", []):
            # promtool parses these blocks too (test_prometheus_config_checks_with_promtool); this
            # names the offending job and key in the problem list the mutation proofs read.
            if sd.get("role") not in ("pod", "endpoints", "endpointslice", "service", "node", "ingress"):
                problems.append(f"job {name}: unknown kubernetes_sd role {sd.get('role')!r}")
            unknown = set(sd) - {"role", "namespaces", "selectors", "api_server", "kubeconfig_file", "attach_metadata"}
            if unknown:
                problems.append(f"job {name}: unknown kubernetes_sd_configs keys {sorted(unknown)}")
            if set(sd.get("namespaces", {})) - {"own_namespace", "names"}:
                problems.append(f"job {name}: unknown namespaces keys {sorted(sd['namespaces'])}")
    workload = jobs.get("workload", {})
    if not any(
        r.get("source_labels") == [_label_meta(DEPLOYMENT_LABEL_KEY)]
        and r.get("target_label") == "deployment"
        and r.get("action", "replace") == "replace"
        for r in workload.get("relabel_configs", [])
    ):
        problems.append(f"job workload does not copy pod label {DEPLOYMENT_LABEL_KEY} into `deployment`")
    if not jobs.get("loadgen", {}).get("honor_labels"):
        problems.append("job loadgen must honor the loadgen's own `deployment` and `run` labels")
    # Discovery needs list/watch on pods, granted to Prometheus' ServiceAccount.
    deployment = find(docs, "Deployment", "prometheus")
    sa = deployment["spec"]["template"]["spec"].get("serviceAccountName") if deployment else None
    rules = _rules_bound_to(docs, sa or "")
    if not any(
        "" in r.get("apiGroups", []) and "pods" in r.get("resources", []) and {"list", "watch"} <= set(r.get("verbs", []))
        for r in rules
    ):
        problems.append(f"ServiceAccount {sa} may not list/watch pods: discovery finds nothing")
    return problems


def relabel(labels: dict[str, str], configs: list[dict]) -> dict[str, str] | None:
    """Prometheus' relabelling (keep, drop, replace) of one target; None when it is dropped."""
    labels = dict(labels)
    for rc in configs:
        action = rc.get("action", "replace")
        value = rc.get("separator", ";").join(labels.get(name, "") for name in rc.get("source_labels", []))
        match = re.fullmatch(rc.get("regex", "(.*)"), value)
        if action == "keep" and not match:
            return None
        if action == "drop" and match:
            return None
        if action == "replace" and match:
            replacement = re.sub(r"\$\{?(\d+)\}?", lambda m: match.group(int(m.group(1))) or "", rc.get("replacement", "$1"))
            if replacement:
                labels[rc["target_label"]] = replacement
            else:
                labels.pop(rc["target_label"], None)
        elif action not in ("keep", "drop", "replace"):
            raise ValueError(f"relabel action {action!r} not modelled here")
    return {k: v for k, v in labels.items() if not k.startswith("__")}


def discovered_targets(pod_template: dict, namespace: str, pod: str, phase: str = "Running") -> list[dict[str, str]]:
    """The meta labels Kubernetes pod discovery gives each container port of a pod."""
    meta = pod_template["metadata"]
    base = {
        "__meta_kubernetes_namespace": namespace,
        "__meta_kubernetes_pod_name": pod,
        "__meta_kubernetes_pod_phase": phase,
        **{_label_meta(k): v for k, v in meta.get("labels", {}).items()},
        **{
            "__meta_kubernetes_pod_annotation_" + re.sub(r"[^a-zA-Z0-9_]", "_", k): v
            for k, v in meta.get("annotations", {}).items()
        },
    }
    out = []
    for c in pod_template["spec"]["containers"]:
        for port in c.get("ports", []):
            out.append({
                **base,
                "__address__": f"10.0.0.1:{port['containerPort']}",
                "__meta_kubernetes_pod_container_port_name": port.get("name", ""),
            })
    return out


def scrape_targets(monitoring: Docs, workload_docs: Docs) -> dict[str, list[dict[str, str]]]:
    """job -> the label sets of the targets its relabelling keeps among these pods (+ monitoring's own)."""
    jobs = {j["job_name"]: j for j in prometheus_config(monitoring)["scrape_configs"] if "kubernetes_sd_configs" in j}
    templates = [(o, t, d["metadata"]["namespace"]) for d in [*monitoring, *workload_docs] for o, t in pod_templates([d])]
    kept: dict[str, list[dict[str, str]]] = {name: [] for name in jobs}
    for owner, template, namespace in templates:
        for phase in ("Running", "Pending"):
            for target in discovered_targets(template, namespace, owner.split("/")[1] + "-abc12", phase):
                for name, job in jobs.items():
                    result = relabel(target, job.get("relabel_configs", []))
                    if result is not None:
                        kept[name].append({**result, "phase": phase, "port": target["__address__"].split(":")[1]})
    return kept


def check_grafana_provisioning(docs: Docs) -> list[str]:
    """Dashboards are mounted where the provider looks, and the datasource URL is a Service here."""
    problems = []
    spec = _pod_spec(docs, "Deployment", "grafana")
    grafana = spec["containers"][0]
    prov = next(c for c in of_kind(docs, "ConfigMap") if c["metadata"]["name"].startswith("grafana-provisioning"))
    providers = yaml.safe_load(prov["data"]["dashboards.yml"])["providers"]
    dashboards_at = _mount_path(grafana, "dashboards")
    for p in providers:
        if p["options"]["path"] != dashboards_at:
            problems.append(f"provider {p['name']} reads {p['options']['path']}, dashboards are mounted at {dashboards_at}")
    home = env_value(grafana, "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    dashboards_cm = find(docs, "ConfigMap", next(v for v in spec["volumes"] if v["name"] == "dashboards")["configMap"]["name"])
    if home is not None and (
        str(Path(home).parent) != dashboards_at or dashboards_cm is None or Path(home).name not in dashboards_cm["data"]
    ):
        problems.append(f"home dashboard {home} is not one of the mounted dashboards")
    if _mount_path(grafana, "provisioning") != "/etc/grafana/provisioning":
        problems.append("provisioning is not mounted at /etc/grafana/provisioning")
    datasources = yaml.safe_load(prov["data"]["datasources.yml"])["datasources"]
    prom = [d for d in datasources if d["type"] == "prometheus"]
    for ds in prom:
        match = re.fullmatch(r"http://([a-z0-9-]+):(\d+)/?", ds["url"])
        svc = find(docs, "Service", match.group(1)) if match else None
        if svc is None or int(match.group(2)) not in [p["port"] for p in svc["spec"]["ports"]]:
            problems.append(f"datasource {ds['name']} url {ds['url']} is not a Service in deploy/monitoring")
    if not prom:
        problems.append("no Prometheus datasource is provisioned")
    return problems


def _arg_after(args: list[str], flag: str) -> str | None:
    for i, a in enumerate(args):
        if a == flag and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


def check_loadgen_job(docs: Docs) -> list[str]:
    problems = []
    job = find(docs, "Job", "loadgen")
    if job is None:
        return ["no Job loadgen"]
    spec = job["spec"]
    if (spec.get("parallelism"), spec.get("completions")) != (3, 3):
        problems.append(f"parallelism/completions are {spec.get('parallelism')}/{spec.get('completions')}, want 3/3")
    c = spec["template"]["spec"]["containers"][0]
    args = c.get("args", [])
    target = _arg_after(args, "--target") or ""
    if not re.fullmatch(r"http://workload(\.\$\(POD_NAMESPACE\)\.svc(\.cluster\.local)?)?:8080/?", target):
        problems.append(f"--target {target!r} is not the workload Service's DNS name and port")
    metrics_addr = _arg_after(args, "--metrics-addr") or ""
    metrics_port = next((p for p in c.get("ports", []) if p.get("name") == "metrics"), None)
    if metrics_addr != "0.0.0.0:9464" or metrics_port is None or metrics_port["containerPort"] != 9464:
        problems.append(f"--metrics-addr {metrics_addr!r} and port `metrics` {metrics_port} disagree (want 9464)")
    if _arg_after(args, "--out") != "-":
        problems.append("the report is not written to stdout (`--out -`), so it cannot be fetched from logs")
    if _arg_after(args, "--watch") != "deployment/workload":
        problems.append(f"--watch is {_arg_after(args, '--watch')!r}, want deployment/workload")
    labels = [args[i + 1] for i, a in enumerate(args[:-1]) if a == "--label"]
    if "deployment=$(SCALEBENCH_DEPLOYMENT)" not in labels:
        problems.append(f"--label deployment=... is missing from {labels}")
    env = {e["name"]: e for e in c.get("env", [])}
    ref = env.get("SCALEBENCH_DEPLOYMENT", {}).get("valueFrom", {}).get("configMapKeyRef", {})
    if (ref.get("name"), ref.get("key")) != ("scalebench-deployment", "deployment"):
        problems.append(f"SCALEBENCH_DEPLOYMENT comes from {ref}, not the overlay's scalebench-deployment ConfigMap")
    run_id = env.get("LOADGEN_RUN_ID", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
    if run_id != "metadata.labels['batch.kubernetes.io/controller-uid']":
        problems.append(f"LOADGEN_RUN_ID is {run_id!r}: the three clients must share the Job's run id")
    # Every $(VAR) in the args must be a variable of the container, or Kubernetes passes it literally.
    for var in re.findall(r"\$\(([A-Z_][A-Z0-9_]*)\)", " ".join(args)):
        if var not in env:
            problems.append(f"args use $({var}) but the container defines no {var}")
    # The scenario the run names is in the mounted ConfigMap.
    scenario_ref = env.get("SCALEBENCH_SCENARIO", {}).get("valueFrom", {}).get("configMapKeyRef", {})
    run_cm = find(docs, "ConfigMap", scenario_ref.get("name", ""))
    scenarios_volume = next((v for v in spec["template"]["spec"]["volumes"] if v["name"] == "scenarios"), None)
    scenarios_cm = find(docs, "ConfigMap", scenarios_volume["configMap"]["name"]) if scenarios_volume else None
    if run_cm is None or scenarios_cm is None or run_cm["data"].get("scenario") not in scenarios_cm.get("data", {}):
        problems.append("the scenario named by loadgen-run is not in the mounted scenarios ConfigMap")
    return problems


# ---------------------------------------------------------------------------- network policies
# A small model of NetworkPolicy semantics (podSelector, namespaceSelector, ports by number or
# name), enough to state who may reach whom. An endpoint is a pod (labels, namespace, ports) or
# an address outside every pod (the node, the host, the API server), which only ipBlock peers or
# peer-less rules admit.
class Endpoint:
    def __init__(self, name: str, labels: dict[str, str] | None, namespace: str = "scalebench",
                 ports: dict[str, int] | None = None) -> None:
        self.name, self.labels, self.namespace, self.ports = name, labels, namespace, ports or {}

    @property
    def is_pod(self) -> bool:
        return self.labels is not None

    def __repr__(self) -> str:
        return self.name


def selects(selector: dict | None, labels: dict[str, str]) -> bool:
    """A label selector (matchLabels, matchExpressions) against LABELS; {} selects everything."""
    selector = selector or {}
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        ok = {"In": lambda: labels.get(key) in values, "NotIn": lambda: labels.get(key) not in values,
              "Exists": lambda: key in labels, "DoesNotExist": lambda: key not in labels}[op]()
        if not ok:
            return False
    return True


def pod_endpoints(docs: Docs) -> list[Endpoint]:
    out = []
    for d in docs:
        for owner, template in pod_templates([d]):
            ports = {p.get("name", str(p["containerPort"])): p["containerPort"]
                     for c in template["spec"]["containers"] for p in c.get("ports", [])}
            out.append(Endpoint(owner, template["metadata"].get("labels", {}), d["metadata"].get("namespace", "default"), ports))
    return out


def _peer_admits(peer: dict, other: Endpoint, policy_namespace: str) -> bool:
    if "ipBlock" in peer:
        return True  # conservatively: any address, pod or not
    if not other.is_pod:
        return False
    if "namespaceSelector" in peer:
        if not selects(peer["namespaceSelector"], {"kubernetes.io/metadata.name": other.namespace}):
            return False
    elif other.namespace != policy_namespace:
        return False
    return selects(peer.get("podSelector"), other.labels)


def _port_admits(rule_ports: list[dict] | None, port: int, dst: Endpoint) -> bool:
    if not rule_ports:
        return True
    for p in rule_ports:
        if p.get("protocol", "TCP") != "TCP":
            continue
        want = p.get("port")
        if want is None or want == port or (isinstance(want, str) and dst.ports.get(want) == port):
            return True
        if isinstance(want, int) and p.get("endPort") and want <= port <= p["endPort"]:
            return True
    return False


def _side_allows(policies: list[dict], me: Endpoint, other: Endpoint, port: int, dst: Endpoint, kind: str) -> bool:
    """Ingress (kind) to ME from OTHER, or Egress from ME to OTHER, on PORT of DST."""
    mine = [p for p in policies
            if p["metadata"].get("namespace") == me.namespace and selects(p["spec"].get("podSelector"), me.labels)
            and kind in p["spec"].get("policyTypes", ["Ingress"])]
    if not mine:
        return True  # not isolated in this direction
    key, peers = ("ingress", "from") if kind == "Ingress" else ("egress", "to")
    for policy in mine:
        for rule in policy["spec"].get(key, []) or []:
            peer_list = rule.get(peers)
            if (not peer_list or any(_peer_admits(peer, other, policy["metadata"]["namespace"]) for peer in peer_list)) \
                    and _port_admits(rule.get("ports"), port, dst):
                return True
    return False


def may_connect(docs: Docs, src: Endpoint, dst: Endpoint, port: int) -> bool:
    """Whether SRC may open a TCP connection to DST:PORT under the NetworkPolicies in DOCS."""
    policies = of_kind(docs, "NetworkPolicy")
    egress_ok = not src.is_pod or _side_allows(policies, src, dst, port, dst, "Egress")
    ingress_ok = not dst.is_pod or _side_allows(policies, dst, src, port, dst, "Ingress")
    return egress_ok and ingress_ok


def check_every_pod_isolated(docs: Docs) -> list[str]:
    """Every pod is selected by a NetworkPolicy of its own kustomization that restricts its ingress."""
    policies = of_kind(docs, "NetworkPolicy")
    problems = []
    for pod in pod_endpoints(docs):
        if not any(p["metadata"].get("namespace") == pod.namespace and selects(p["spec"].get("podSelector"), pod.labels)
                   and "Ingress" in p["spec"].get("policyTypes", ["Ingress"]) for p in policies):
            problems.append(f"{pod} is selected by no NetworkPolicy restricting its ingress")
    for p in policies:
        if not p["spec"].get("podSelector", {}).get("matchLabels"):
            problems.append(f"NetworkPolicy {p['metadata']['name']} selects every pod of the namespace")
    return problems


def check_prometheus_ingress_only_from_grafana_or_loadgen(docs: Docs) -> list[str]:
    """Prometheus' ingress rules name pods of this namespace labelled grafana or loadgen, on 9090."""
    problems = []
    prometheus = next((e for e in pod_endpoints(docs) if e.name == "Deployment/prometheus"), None)
    if prometheus is None:
        return ["no Deployment/prometheus"]
    mine = [p for p in of_kind(docs, "NetworkPolicy")
            if selects(p["spec"].get("podSelector"), prometheus.labels) and "Ingress" in p["spec"].get("policyTypes", [])]
    if not mine:
        problems.append("no NetworkPolicy restricts Prometheus' ingress")
    for policy in mine:
        for rule in policy["spec"].get("ingress", []) or []:
            peers = rule.get("from") or []
            if not peers:
                problems.append(f"{policy['metadata']['name']}: an ingress rule admits every source")
            for peer in peers:
                name = peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name")
                if set(peer) != {"podSelector"} or name not in ("grafana", "loadgen"):
                    problems.append(f"{policy['metadata']['name']}: Prometheus admits {peer}")
            ports = rule.get("ports") or [{}]
            if any(prometheus.ports.get(p.get("port"), p.get("port")) != 9090 for p in ports):
                problems.append(f"{policy['metadata']['name']}: Prometheus admits ports {ports}, want 9090 only")
    return problems


def check_grafana_admin_password_from_secret(docs: Docs) -> list[str]:
    """Grafana's admin password is read from the Secret apply.sh creates, never written here."""
    problems = []
    spec = _pod_spec(docs, "Deployment", "grafana")
    grafana = spec["containers"][0]
    env = {e["name"]: e for e in grafana.get("env", [])}
    if "GF_SECURITY_ADMIN_PASSWORD" in env:
        problems.append("GF_SECURITY_ADMIN_PASSWORD is set in the manifest: a password in the repository")
    path = env.get("GF_SECURITY_ADMIN_PASSWORD__FILE", {}).get("value", "")
    mount = next((m for m in grafana.get("volumeMounts", []) if path.startswith(m["mountPath"].rstrip("/") + "/")), None)
    volume = next((v for v in spec.get("volumes", []) if mount and v["name"] == mount["name"]), None)
    secret = (volume or {}).get("secret", {})
    items = {i["path"]: i["key"] for i in secret.get("items", [])}
    relative = path[len(mount["mountPath"].rstrip("/")) + 1:] if mount else None
    if secret.get("secretName") != "grafana-admin" or items.get(relative) != "admin-password" or secret.get("optional"):
        problems.append(f"GF_SECURITY_ADMIN_PASSWORD__FILE {path!r} is not key admin-password of Secret grafana-admin")
    if of_kind(docs, "Secret"):
        problems.append("a Secret is rendered from the repository: its value would be known to everyone")
    if env.get("GF_AUTH_ANONYMOUS_ORG_ROLE", {}).get("value") not in (None, "Viewer"):
        problems.append("anonymous users are more than Viewers")
    return problems


# ------------------------------------------------------------------------------------- tests
@pytest.mark.parametrize("name", KUSTOMIZATIONS)
@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_renders_and_validates_strictly(name: str, version: str, tmp_path: Path) -> None:
    validator = require_tool("kubernetes-validate")
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(_render_text(name))
    proc = _run([validator, "--strict", "--quiet", "--kubernetes-version", version, str(rendered)])
    assert proc.returncode == 0, f"deploy/{name} fails strict validation for {version}:\n{proc.stdout}{proc.stderr}"


def test_strict_validation_rejects_unknown_fields(tmp_path: Path) -> None:
    """The validator is strict enough to catch a misspelt field (kustomize would render it happily)."""
    validator = require_tool("kubernetes-validate")
    docs = render("overlays/single")
    deployment = find(docs, "Deployment", "workload")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {"periodSeconds": 1}
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump_all(docs))
    proc = _run([validator, "--strict", "--quiet", "--kubernetes-version", K8S_VERSIONS[-1], str(broken)])
    assert proc.returncode != 0, f"strict validation accepted a misspelt field:\n{proc.stdout}"


def _kustomization_files() -> dict[str, dict]:
    """Every kustomization.yaml of the repository (deploy/ and the source directories beside their
    files), by directory relative to the root."""
    found = [*DEPLOY.rglob("kustomization.yaml"), *ROOT.glob("*/kustomization.yaml")]
    return {str(p.parent.relative_to(ROOT)): yaml.safe_load(p.read_text()) for p in sorted(set(found))}


KUSTOMIZATION_FILES = _kustomization_files()
# Components render only inside a kustomization that lists them.
BUILDABLE = sorted(d for d, k in KUSTOMIZATION_FILES.items() if k.get("kind", "Kustomization") == "Kustomization")
COMPONENTS = sorted(d for d, k in KUSTOMIZATION_FILES.items() if k.get("kind") == "Component")


@pytest.mark.parametrize("directory", BUILDABLE)
def test_every_kustomization_renders_with_default_load_restrictions(directory: str) -> None:
    """`kubectl apply --server-side -k DIR` works for every directory: no generator or patch reads a
    file outside its kustomization (kustomize's default LoadRestrictionsRootOnly)."""
    kubectl = require_tool("kubectl")
    proc = _run([kubectl, "kustomize", "--load-restrictor", "LoadRestrictionsRootOnly", str(ROOT / directory)])
    assert proc.returncode == 0, f"kubectl kustomize {directory} needs a relaxed load restrictor:\n{proc.stderr}"
    assert [d for d in yaml.safe_load_all(proc.stdout) if d], f"{directory} renders nothing"


def test_every_deploy_directory_is_rendered_and_every_component_used() -> None:
    """The tests above cover each kustomization of deploy/; a Component is proven by the
    kustomizations that include it, so each must be included by one."""
    deploy = {d.removeprefix("deploy/") for d in BUILDABLE if d.startswith("deploy/")}
    assert deploy == set(KUSTOMIZATIONS), "add the new kustomization to KUSTOMIZATIONS"
    included = {
        str((ROOT / d / c).resolve().relative_to(ROOT))
        for d, k in KUSTOMIZATION_FILES.items()
        for c in k.get("components", [])
    }
    assert set(COMPONENTS) <= included, f"components no kustomization includes: {sorted(set(COMPONENTS) - included)}"


@pytest.mark.parametrize(("directory", "includer"), [("prometheus", "monitoring"), ("grafana", "monitoring"), ("loadgen", "loadgen")])
def test_shared_sources_are_generated_beside_them_and_included(directory: str, includer: str) -> None:
    """The ConfigMaps of the files compose mounts come from the kustomization next to those files,
    which deploy/ includes as a resource, rather than from `../../` file paths."""
    included = KUSTOMIZATION_FILES[f"deploy/{includer}"]
    assert f"../../{directory}" in included.get("resources", []), f"deploy/{includer} does not include {directory}/"
    for generator in included.get("configMapGenerator", []):
        for source in generator.get("files", []):
            assert "../" not in source, f"deploy/{includer} reads {source} from outside its directory"


def test_yamllint_sources() -> None:
    yamllint = require_tool("yamllint")
    beside_sources = [str(ROOT / d / "kustomization.yaml") for d in KUSTOMIZATION_FILES if not d.startswith("deploy/")]
    proc = _run([yamllint, "--strict", "-c", str(DEPLOY / ".yamllint.yaml"), str(DEPLOY), *beside_sources])
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_yamllint_rendered(name: str, tmp_path: Path) -> None:
    """The rendered stream is clean YAML (no duplicate keys, no syntax quirks) for any consumer."""
    yamllint = require_tool("yamllint")
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(_render_text(name))
    config = "{extends: default, rules: {line-length: disable, document-start: disable, indentation: {indent-sequences: whatever}}}"
    proc = _run([yamllint, "--strict", "-d", config, str(rendered)])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_overlays_have_the_right_autoscaling() -> None:
    for name in HPA_OVERLAYS:
        assert len(of_kind(render(name), "HorizontalPodAutoscaler")) == 1, f"{name} has no HPA"
    for name in [*SINGLE_OVERLAYS, "base"]:
        docs = render(name)
        assert of_kind(docs, "HorizontalPodAutoscaler") == [], f"{name} has an HPA"
    for name in SINGLE_OVERLAYS:
        assert find(render(name), "Deployment", "workload")["spec"].get("replicas") == 1, f"{name} is not 1 replica"


def _assert_clean(check: Callable[[Docs], list[str]], name: str) -> None:
    problems = check(render(name))
    assert problems == [], f"deploy/{name}:\n" + "\n".join(problems)


@pytest.mark.parametrize("name", HPA_OVERLAYS)
def test_hpa_targets_existing_deployment(name: str) -> None:
    _assert_clean(check_hpa_targets_existing_deployment, name)


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_every_namespaced_object_is_in_the_workload_namespace(name: str) -> None:
    _assert_clean(check_namespaced_objects_in_workload_namespace, name)


@pytest.mark.parametrize("name", HPA_OVERLAYS)
def test_hpa_target_sets_cpu_requests(name: str) -> None:
    _assert_clean(check_hpa_targets_set_cpu_requests, name)


@pytest.mark.parametrize("name", HPA_OVERLAYS)
def test_hpa_policy(name: str) -> None:
    _assert_clean(check_hpa_policy, name)


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_probes_use_exposed_ports(name: str) -> None:
    _assert_clean(check_probes_use_exposed_ports, name)


@pytest.mark.parametrize("name", WITH_WORKLOAD)
def test_workload_probes(name: str) -> None:
    _assert_clean(check_workload_probes, name)


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_services_select_pods(name: str) -> None:
    _assert_clean(check_services_select_pods, name)


@pytest.mark.parametrize("name", WITH_WORKLOAD)
def test_workload_service_app_port_only(name: str) -> None:
    _assert_clean(check_workload_service_app_port_only, name)


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_images_pinned(name: str) -> None:
    _assert_clean(check_images_pinned, name)


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_security_context_hardened(name: str) -> None:
    _assert_clean(check_security_context_hardened, name)


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_roles_read_only(name: str) -> None:
    _assert_clean(check_roles_read_only, name)


def test_loadgen_role_grants_only_watch_of_deployments_and_hpas() -> None:
    _assert_clean(check_loadgen_rbac, "loadgen")


@pytest.mark.parametrize("name", WITH_WORKLOAD)
def test_drain_fits_termination_grace(name: str) -> None:
    _assert_clean(check_drain_fits_grace, name)


@pytest.mark.parametrize("name", WITH_WORKLOAD)
def test_readiness_flips_before_drain_ends(name: str) -> None:
    _assert_clean(check_readiness_flips_before_drain_ends, name)


@pytest.mark.parametrize("name", WORKLOAD_OVERLAYS)
def test_workload_connections_have_a_bounded_lifetime(name: str) -> None:
    _assert_clean(check_connection_lifetime, name)


@pytest.mark.parametrize("name", WITH_WORKLOAD)
def test_rollout_keeps_capacity(name: str) -> None:
    _assert_clean(check_rollout_keeps_capacity, name)


@pytest.mark.parametrize("name", WITH_WORKLOAD)
def test_workload_resources(name: str) -> None:
    _assert_clean(check_workload_resources, name)


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_no_needless_api_tokens(name: str) -> None:
    _assert_clean(check_no_needless_tokens, name)


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_recommended_labels(name: str) -> None:
    _assert_clean(check_recommended_labels, name)


@pytest.mark.parametrize("name", WITH_WORKLOAD)
def test_deployment_label(name: str) -> None:
    _assert_clean(lambda docs: check_deployment_label(docs, EXPECTED_DEPLOYMENT_LABEL[name]), name)


def test_overlays_keep_one_selector() -> None:
    """Switching single <-> hpa is an in-place rollout only if the immutable selector is identical."""
    selectors = {name: find(render(name), "Deployment", "workload")["spec"]["selector"] for name in WITH_WORKLOAD}
    assert len({repr(s) for s in selectors.values()}) == 1, selectors


@pytest.mark.parametrize("name", MINIKUBE_OVERLAYS)
def test_minikube_overlays(name: str) -> None:
    _assert_clean(check_minikube, name)


def test_prometheus_discovery() -> None:
    _assert_clean(check_prometheus_discovery, "monitoring")


def test_remote_write_to_compose_is_off_by_default() -> None:
    assert "remote_write" not in prometheus_config(render("monitoring"))


def test_remote_write_to_compose_only_adds_remote_write() -> None:
    """The component's config is deploy/monitoring's plus one remote_write block, so the two cannot
    drift; everything else rendered is the same but the regenerated ConfigMap's name."""
    plain, remote = render("monitoring"), render(REMOTE_WRITE)
    config = prometheus_config(remote)
    blocks = config.pop("remote_write")
    assert config == prometheus_config(plain), "edit deploy/monitoring/prometheus.yml and the component's copy together"
    (block,) = blocks
    assert block["url"].startswith("http") and block["url"].endswith("/api/v1/write"), block

    # Besides the config, the component adds exactly the password it pushes with and the way out
    # to the compose Prometheus: a Secret volume where basic_auth reads it, and egress to 9090.
    remote = copy.deepcopy(remote)
    deployment = find(remote, "Deployment", "prometheus")
    pod = deployment["spec"]["template"]["spec"]
    (secret_volume,) = [v for v in pod["volumes"] if "secret" in v]
    pod["volumes"].remove(secret_volume)
    assert secret_volume["secret"]["secretName"] == "prometheus-remote-write"
    mounts = pod["containers"][0]["volumeMounts"]
    (mount,) = [m for m in mounts if m["name"] == secret_volume["name"]]
    mounts.remove(mount)
    assert mount["readOnly"] is True
    assert block["basic_auth"] == {"username": "scalebench", "password_file": f"{mount['mountPath']}/password"}
    egress = find(remote, "NetworkPolicy", "prometheus")["spec"]["egress"]
    assert egress[-1] == {"ports": [{"port": 9090, "protocol": "TCP"}]}, egress[-1]
    egress.pop()

    def without_config(docs: Docs) -> list[str]:
        text = yaml.safe_dump_all([d for d in docs if not d["metadata"]["name"].startswith("prometheus-config")])
        return re.sub(r"prometheus-config-[a-z0-9]+", "prometheus-config", text)

    assert without_config(remote) == without_config(plain)
    names = {v.get("configMap", {}).get("name") for v in deployment["spec"]["template"]["spec"]["volumes"]}
    names |= {
        s.get("configMap", {}).get("name")
        for v in deployment["spec"]["template"]["spec"]["volumes"]
        for s in v.get("projected", {}).get("sources", [])
    }
    (cm,) = [c for c in of_kind(remote, "ConfigMap") if c["metadata"]["name"].startswith("prometheus-config")]
    assert cm["metadata"]["name"] in names, "the Prometheus pod mounts the remote-write config"


@pytest.mark.parametrize(
    ("series", "written"),
    [
        ({"__name__": "http_server_request_duration_seconds_count", "job": "workload", "deployment": "k8s-hpa"}, True),
        ({"__name__": "up", "job": "workload", "deployment": "k8s-single"}, True),
        # recorded in-cluster: the compose Prometheus records its own from the raw series
        ({"__name__": "deployment:http_server_request_errors:ratio_rate30s", "job": "workload", "deployment": "k8s-hpa"}, False),
        # the loadgen remote-writes its own series; twice would double every client panel
        ({"__name__": "loadgen_requests_total", "job": "loadgen", "deployment": "k8s-hpa"}, False),
        ({"__name__": "prometheus_tsdb_head_series", "job": "prometheus"}, False),
    ],
)
def test_remote_write_sends_the_workload_series_with_their_deployment(series: dict, written: bool) -> None:
    (block,) = prometheus_config(render(REMOTE_WRITE))["remote_write"]
    kept = relabel(series, block.get("write_relabel_configs", []))
    assert (kept is not None) == written, (series, kept)
    if written:
        assert kept["deployment"] == series["deployment"], "the dashboards compare on `deployment`"


@pytest.mark.parametrize("overlay", WORKLOAD_OVERLAYS)
def test_prometheus_relabelling_scrapes_the_right_pods_with_their_deployment(overlay: str) -> None:
    """Running the scrape configs' relabelling over the rendered pods: the workload job keeps the
    workload's metrics port (not 8080, not Pending pods) labelled deployment=<overlay's label>; the
    loadgen job keeps the loadgen's 9464 only; nothing else in the namespace is scraped."""
    kept = scrape_targets(render("monitoring"), [*render(overlay), *render("loadgen")])
    expected = EXPECTED_DEPLOYMENT_LABEL[overlay]
    assert [(t["port"], t["phase"], t.get("deployment"), t["pod"]) for t in kept["workload"]] == [
        ("9000", "Running", expected, "workload-abc12")
    ], kept["workload"]
    assert [(t["port"], t["phase"], t["pod"]) for t in kept["loadgen"]] == [("9464", "Running", "loadgen-abc12")], kept
    assert "deployment" not in kept["loadgen"][0], "the loadgen's own `deployment` label must not be overwritten"


def test_relabel_model() -> None:
    """The small relabelling model used above behaves like Prometheus on the cases it relies on."""
    configs = [
        {"source_labels": ["a"], "regex": "x|y", "action": "keep"},
        {"source_labels": ["b"], "regex": "(.+)", "target_label": "c"},
        {"source_labels": ["d"], "regex": "drop-me", "action": "drop"},
    ]
    assert relabel({"a": "x", "b": "v"}, configs) == {"a": "x", "b": "v", "c": "v"}
    assert relabel({"a": "xx", "b": "v"}, configs) is None  # regexes are anchored
    assert relabel({"a": "y", "b": ""}, configs) == {"a": "y", "b": ""}  # (.+) does not match "": no c
    assert relabel({"a": "y", "d": "drop-me"}, configs) is None


def test_grafana_provisioning() -> None:
    _assert_clean(check_grafana_provisioning, "monitoring")


def test_loadgen_job() -> None:
    _assert_clean(check_loadgen_job, "loadgen")


def test_loadgen_reads_a_configmap_every_overlay_creates() -> None:
    for name in WITH_WORKLOAD:
        assert find(render(name), "ConfigMap", "scalebench-deployment") is not None, name


@pytest.mark.parametrize(
    ("generated", "sources"),
    [
        ("prometheus-rules", "prometheus/rules/*.yml"),
        ("grafana-dashboards", "grafana/dashboards/*.json"),
        ("grafana-provisioning", "grafana/provisioning/*/*.yml"),
        ("loadgen-scenarios", "loadgen/scenarios/* deploy/loadgen/scenarios/*"),
    ],
)
def test_generated_configmaps_hold_every_source_file_verbatim(generated: str, sources: str) -> None:
    """No copies, no forgotten file: each ConfigMap carries exactly the repository's files."""
    docs = render("loadgen" if generated == "loadgen-scenarios" else "monitoring")
    cm = next(c for c in of_kind(docs, "ConfigMap") if re.fullmatch(rf"{generated}(-[a-z0-9]+)?", c["metadata"]["name"]))
    paths = [p for pattern in sources.split() for p in sorted(ROOT.glob(pattern))]
    files = {p.name: p.read_text() for p in paths}
    assert files, f"no files match {sources}"
    assert len(files) == len(paths), f"two files share a name, one would hide the other: {paths}"
    missing = sorted(set(files) - set(cm["data"]))
    assert not missing, f"add {missing} to the configMapGenerator `{generated}` in the kustomization beside them"
    assert cm["data"] == files
    size = sum(len(v.encode()) for v in cm["data"].values())
    assert size < 1_000_000, f"ConfigMap {generated} is {size} bytes: over the API's 1 MiB limit"


def test_cluster_scenario_offers_the_compose_load() -> None:
    """The Job's default scenario is the compose run (docker-ramp) split over its parallel clients:
    same request mix, same phases, and parallelism x rate = the compose rate, so docker, k8s-single
    and k8s-hpa are measured under the same offered load."""
    docs = render("loadgen")
    job = find(docs, "Job", "loadgen")
    clients = job["spec"]["parallelism"]
    run_cm = next(c for c in of_kind(docs, "ConfigMap") if c["metadata"]["name"].startswith("loadgen-run"))
    scenarios = next(c for c in of_kind(docs, "ConfigMap") if c["metadata"]["name"].startswith("loadgen-scenarios"))
    cluster = yaml.safe_load(scenarios["data"][run_cm["data"]["scenario"]])
    compose = yaml.safe_load((ROOT / "loadgen" / "scenarios" / "docker-ramp.yaml").read_text())
    assert cluster["requests"] == compose["requests"]
    assert {k: v for k, v in cluster["load"].items() if k != "phases"} == {
        k: v for k, v in compose["load"].items() if k != "phases"
    }
    assert len(cluster["load"]["phases"]) == len(compose["load"]["phases"])
    for mine, theirs in zip(cluster["load"]["phases"], compose["load"]["phases"], strict=True):
        assert set(mine) == set(theirs) and mine["duration"] == theirs["duration"], (mine, theirs)
        assert mine.get("name") == theirs.get("name"), "reports and compare match phases by name"
        for key in ("rate", "ramp_to"):
            if key in theirs:
                assert abs(clients * mine[key] - theirs[key]) < 0.01 * theirs[key], (key, mine, theirs)


def test_prometheus_config_checks_with_promtool(tmp_path: Path) -> None:
    """The in-cluster config and its rule files, laid out as the pod sees them, pass promtool."""
    promtool = prometheus_tool("promtool")
    docs = render("monitoring")
    spec = _pod_spec(docs, "Deployment", "prometheus")
    container = spec["containers"][0]
    config_dir = _mount_path(container, "config")
    config_file = next(a.split("=", 1)[1] for a in container["args"] if a.startswith("--config.file="))
    assert config_file.startswith(config_dir + "/"), f"{config_file} is not in the mounted {config_dir}"
    materialize_volume(docs, spec, "config", tmp_path)
    local_config = tmp_path / config_file[len(config_dir) + 1 :]
    # The pinned release carries the Kubernetes discovery plugin (Debian's 2.x did not), so the
    # discovery blocks are checked as shipped.
    config = yaml.safe_load(local_config.read_text())
    for job in config["scrape_configs"]:
        # The pod's ServiceAccount token and CA (the cadvisor job) exist only in the pod.
        for block, key in (("authorization", "credentials_file"), ("tls_config", "ca_file")):
            if str(job.get(block, {}).get(key, "")).startswith("/var/run/secrets/"):
                stand_in = tmp_path / f"{job['job_name']}-{key}"
                stand_in.write_text("stand-in\n")
                job[block][key] = str(stand_in)
    local_config.write_text(yaml.safe_dump(config))
    proc = _run([promtool, "check", "config", str(local_config)])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rules_found = re.search(r"SUCCESS: (\d+) rule files? found", proc.stdout + proc.stderr)
    assert rules_found and int(rules_found.group(1)) == len(prometheus_config(docs)["rule_files"]), proc.stdout
    # Every rule file shipped in the ConfigMap is loaded by the config (none sits there unused).
    rules_cm = next(c for c in of_kind(docs, "ConfigMap") if c["metadata"]["name"].startswith("prometheus-rules"))
    assert sorted(Path(r).name for r in prometheus_config(docs)["rule_files"]) == sorted(rules_cm["data"])


# --------------------------------------------------------------------------- mutation proofs
def _set(path: list, value) -> Callable[[Docs], None]:
    """A mutation that sets doc[path...] = value in the first document matching path[0] (kind, name)."""
    (kind, name), *keys = path

    def mutate(docs: Docs) -> None:
        node = find(docs, kind, name)
        assert node is not None, f"{kind}/{name} not rendered"
        for key in keys[:-1]:
            node = node[key]
        if value is _DELETE:
            del node[keys[-1]]
        else:
            node[keys[-1]] = value

    return mutate


_DELETE = object()
WL = ("Deployment", "workload")
WL_C = [WL, "spec", "template", "spec", "containers", 0]
LG_C = [("Job", "loadgen"), "spec", "template", "spec", "containers", 0]


def _set_env(name: str, value: str) -> Callable[[Docs], None]:
    def mutate(docs: Docs) -> None:
        c = find(docs, *WL)["spec"]["template"]["spec"]["containers"][0]
        c["env"] = [e for e in c["env"] if e["name"] != name] + [{"name": name, "value": value}]

    return mutate


def _prom_config(edit: Callable[[dict], None]) -> Callable[[Docs], None]:
    def mutate(docs: Docs) -> None:
        cm = next(c for c in of_kind(docs, "ConfigMap") if c["metadata"]["name"].startswith("prometheus-config"))
        config = yaml.safe_load(cm["data"]["prometheus.yml"])
        edit(config)
        cm["data"]["prometheus.yml"] = yaml.safe_dump(config)

    return mutate


def _drop_deployment_relabel(config: dict) -> None:
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "workload")
    job["relabel_configs"] = [r for r in job["relabel_configs"] if r.get("target_label") != "deployment"]


def _append(path: list, value) -> Callable[[Docs], None]:
    (kind, name), *keys = path

    def mutate(docs: Docs) -> None:
        node = find(docs, kind, name)
        for key in keys:
            node = node[key]
        node.append(value)

    return mutate


def _deployment_label(expected: str) -> Callable[[Docs], list[str]]:
    return lambda docs: check_deployment_label(docs, expected)


MUTATIONS = [
    ("hpa-target-renamed", "overlays/hpa", check_hpa_targets_existing_deployment,
     _set([("HorizontalPodAutoscaler", "workload"), "spec", "scaleTargetRef", "name"], "worklaod")),
    ("hpa-target-wrong-kind", "overlays/hpa", check_hpa_targets_existing_deployment,
     _set([("HorizontalPodAutoscaler", "workload"), "spec", "scaleTargetRef", "kind"], "StatefulSet")),
    ("hpa-namespace-lost", "overlays/hpa", check_namespaced_objects_in_workload_namespace,
     _set([("HorizontalPodAutoscaler", "workload"), "metadata", "namespace"], _DELETE)),
    ("no-cpu-request", "overlays/hpa", check_hpa_targets_set_cpu_requests,
     _set([*WL_C, "resources", "requests", "cpu"], _DELETE)),
    ("hpa-pins-replicas", "overlays/hpa", check_hpa_policy, _set([WL, "spec", "replicas"], 3)),
    ("hpa-slow-scale-down", "overlays/hpa", check_hpa_policy,
     _set([("HorizontalPodAutoscaler", "workload"), "spec", "behavior", "scaleDown", "stabilizationWindowSeconds"], 300)),
    ("hpa-target-80", "overlays/hpa", check_hpa_policy,
     _set([("HorizontalPodAutoscaler", "workload"), "spec", "metrics", 0, "resource", "target", "averageUtilization"], 80)),
    ("readiness-unexposed-name", "overlays/single", check_probes_use_exposed_ports,
     _set([*WL_C, "readinessProbe", "httpGet", "port"], "admin")),
    ("liveness-unexposed-number", "overlays/single", check_probes_use_exposed_ports,
     _set([*WL_C, "livenessProbe", "httpGet", "port"], 8081)),
    ("readiness-on-metrics-port", "overlays/single", check_workload_probes,
     _set([*WL_C, "readinessProbe", "httpGet", "port"], "metrics")),
    ("readiness-on-healthz", "overlays/single", check_workload_probes,
     _set([*WL_C, "readinessProbe", "httpGet", "path"], "/healthz")),
    ("service-selector-typo", "overlays/single", check_services_select_pods,
     _set([("Service", "workload"), "spec", "selector", "app.kubernetes.io/name"], "workloads")),
    ("service-target-port-typo", "monitoring", check_services_select_pods,
     _set([("Service", "grafana"), "spec", "ports", 0, "targetPort"], "web")),
    ("service-exposes-metrics", "overlays/single", check_workload_service_app_port_only,
     _append([("Service", "workload"), "spec", "ports"], {"name": "metrics", "port": 9000, "targetPort": "metrics"})),
    ("image-latest", "overlays/single", check_images_pinned, _set([*WL_C, "image"], "scalebench/workload:latest")),
    ("image-untagged", "loadgen", check_images_pinned, _set([*LG_C, "image"], "scalebench/loadgen")),
    ("image-untagged-registry-port", "monitoring", check_images_pinned,
     _set([("Deployment", "grafana"), "spec", "template", "spec", "containers", 0, "image"], "localhost:5000/grafana")),
    ("writable-root", "overlays/single", check_security_context_hardened,
     _set([*WL_C, "securityContext", "readOnlyRootFilesystem"], False)),
    ("privilege-escalation", "loadgen", check_security_context_hardened,
     _set([*LG_C, "securityContext", "allowPrivilegeEscalation"], True)),
    ("capabilities-kept", "overlays/single", check_security_context_hardened,
     _set([*WL_C, "securityContext", "capabilities"], {"drop": ["NET_RAW"]})),
    ("root-allowed", "overlays/single", check_security_context_hardened,
     _set([*WL_C, "securityContext", "runAsNonRoot"], False)),
    ("seccomp-unconfined", "monitoring", check_security_context_hardened,
     _set([("Deployment", "prometheus"), "spec", "template", "spec", "containers", 0, "securityContext",
           "seccompProfile"], {"type": "Unconfined"})),
    ("role-can-create", "loadgen", check_roles_read_only,
     _append([("Role", "loadgen-watch"), "rules", 0, "verbs"], "create")),
    ("prometheus-can-delete", "monitoring", check_roles_read_only,
     _append([("ClusterRole", "scalebench-prometheus"), "rules", 0, "verbs"], "delete")),
    ("loadgen-can-patch", "loadgen", check_loadgen_rbac,
     _append([("Role", "loadgen-watch"), "rules", 1, "verbs"], "patch")),
    ("loadgen-reads-secrets", "loadgen", check_loadgen_rbac,
     _append([("Role", "loadgen-watch"), "rules"], {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch"]})),
    ("loadgen-unbound", "loadgen", check_loadgen_rbac,
     _set([("RoleBinding", "loadgen-watch"), "subjects", 0, "name"], "default")),
    ("grace-too-short", "overlays/single", check_drain_fits_grace,
     _set([WL, "spec", "template", "spec", "terminationGracePeriodSeconds"], 30)),
    ("grace-default", "overlays/hpa", check_drain_fits_grace,
     _set([WL, "spec", "template", "spec", "terminationGracePeriodSeconds"], _DELETE)),
    ("shutdown-too-long", "overlays/single", check_drain_fits_grace, _set_env("WORKLOAD_SHUTDOWN_TIMEOUT", "1m")),
    ("request-outlives-shutdown", "overlays/hpa", check_drain_fits_grace, _set_env("WORKLOAD_REQUEST_TIMEOUT", "25s")),
    ("request-timeout-default", "overlays/single", check_drain_fits_grace,
     lambda docs: find(docs, *WL)["spec"]["template"]["spec"]["containers"][0].__setitem__(
         "env", [e for e in find(docs, *WL)["spec"]["template"]["spec"]["containers"][0]["env"]
                 if e["name"] != "WORKLOAD_REQUEST_TIMEOUT"])),
    ("readiness-too-slow", "overlays/single", check_readiness_flips_before_drain_ends,
     _set([*WL_C, "readinessProbe", "periodSeconds"], 10)),
    ("drain-too-short", "overlays/hpa", check_readiness_flips_before_drain_ends, _set_env("WORKLOAD_DRAIN_DELAY", "1s")),
    ("no-readiness", "overlays/single", check_readiness_flips_before_drain_ends,
     _set([*WL_C, "readinessProbe"], _DELETE)),
    ("connection-age-unset", "overlays/minikube-single", check_connection_lifetime,
     lambda docs: find(docs, *WL)["spec"]["template"]["spec"]["containers"][0].__setitem__(
         "env", [e for e in find(docs, *WL)["spec"]["template"]["spec"]["containers"][0]["env"]
                 if e["name"] != "WORKLOAD_MAX_CONNECTION_AGE"])),
    ("connection-age-unparsable", "overlays/single", check_connection_lifetime,
     _set_env("WORKLOAD_MAX_CONNECTION_AGE", "15")),
    ("connection-age-too-short", "overlays/single", check_connection_lifetime,
     _set_env("WORKLOAD_MAX_CONNECTION_AGE", "500ms")),
    ("connection-age-outlives-scale-up", "overlays/minikube-hpa", check_connection_lifetime,
     _set_env("WORKLOAD_MAX_CONNECTION_AGE", "45s")),
    ("max-unavailable-1", "overlays/single", check_rollout_keeps_capacity,
     _set([WL, "spec", "strategy", "rollingUpdate", "maxUnavailable"], 1)),
    ("default-strategy", "overlays/hpa", check_rollout_keeps_capacity, _set([WL, "spec", "strategy"], _DELETE)),
    ("recreate", "overlays/single", check_rollout_keeps_capacity, _set([WL, "spec", "strategy"], {"type": "Recreate"})),
    ("no-memory-limit", "overlays/single", check_workload_resources,
     _set([*WL_C, "resources", "limits", "memory"], _DELETE)),
    ("workload-token", "overlays/single", check_no_needless_tokens,
     _set([WL, "spec", "template", "spec", "automountServiceAccountToken"], True)),
    ("sa-automounts", "loadgen", check_no_needless_tokens,
     _set([("ServiceAccount", "loadgen"), "automountServiceAccountToken"], True)),
    ("pod-template-unlabelled", "overlays/single", check_recommended_labels,
     _set([WL, "spec", "template", "metadata", "labels", "app.kubernetes.io/part-of"], _DELETE)),
    ("service-unlabelled", "monitoring", check_recommended_labels,
     _set([("Service", "grafana"), "metadata", "labels", "app.kubernetes.io/part-of"], _DELETE)),
    ("deployment-label-mismatch", "overlays/hpa", _deployment_label("k8s-hpa"),
     _set([("ConfigMap", "scalebench-deployment"), "data", "deployment"], "k8s-single")),
    ("deployment-label-missing", "overlays/single", _deployment_label("k8s-single"),
     _set([WL, "spec", "template", "metadata", "labels", DEPLOYMENT_LABEL_KEY], _DELETE)),
    ("minikube-always-pull", "overlays/minikube-hpa", check_minikube, _set([*WL_C, "imagePullPolicy"], "Always")),
    ("minikube-clusterip", "overlays/minikube-single", check_minikube,
     _set([("Service", "workload"), "spec", "type"], "ClusterIP")),
    ("no-deployment-relabel", "monitoring", check_prometheus_discovery, _prom_config(_drop_deployment_relabel)),
    ("sd-role-typo", "monitoring", check_prometheus_discovery,
     _prom_config(lambda c: c["scrape_configs"][0]["kubernetes_sd_configs"][0].__setitem__("role", "pods"))),
    ("sd-namespace-typo", "monitoring", check_prometheus_discovery,
     _prom_config(lambda c: c["scrape_configs"][0]["kubernetes_sd_configs"][0].__setitem__("namespace", {"names": ["x"]}))),
    ("loadgen-labels-overridden", "monitoring", check_prometheus_discovery,
     _prom_config(lambda c: next(j for j in c["scrape_configs"] if j["job_name"] == "loadgen").pop("honor_labels"))),
    ("prometheus-cannot-list-pods", "monitoring", check_prometheus_discovery,
     _set([("ClusterRole", "scalebench-prometheus"), "rules", 0, "resources"], ["services"])),
    ("dashboards-mounted-elsewhere", "monitoring", check_grafana_provisioning,
     _set([("Deployment", "grafana"), "spec", "template", "spec", "containers", 0, "volumeMounts", 2, "mountPath"],
          "/etc/grafana/dashboards")),
    ("home-dashboard-missing", "monitoring", check_grafana_provisioning,
     lambda docs: find(docs, "Deployment", "grafana")["spec"]["template"]["spec"]["containers"][0]["env"].insert(
         0, {"name": "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH", "value": "/var/lib/grafana/dashboards/compare.json"})),
    ("datasource-service-renamed", "monitoring", check_grafana_provisioning,
     _set([("Service", "prometheus"), "metadata", "name"], "prom")),
    ("loadgen-two-clients", "loadgen", check_loadgen_job, _set([("Job", "loadgen"), "spec", "parallelism"], 2)),
    ("loadgen-report-to-file", "loadgen", check_loadgen_job,
     lambda docs: find(docs, "Job", "loadgen")["spec"]["template"]["spec"]["containers"][0]["args"].__setitem__(
         slice(-1, None), ["/tmp/report.json"])),
    ("loadgen-wrong-target", "loadgen", check_loadgen_job,
     lambda docs: _replace_arg(docs, "--target", "http://127.0.0.1:8080")),
    ("loadgen-metrics-port-mismatch", "loadgen", check_loadgen_job,
     lambda docs: _replace_arg(docs, "--metrics-addr", "0.0.0.0:9100")),
    ("loadgen-run-per-pod", "loadgen", check_loadgen_job,
     _set([*LG_C, "env", 1, "valueFrom", "fieldRef", "fieldPath"], "metadata.name")),
    ("loadgen-undefined-var", "loadgen", check_loadgen_job,
     lambda docs: _replace_arg(docs, "--namespace", "$(NAMESPACE)")),
    ("pod-not-isolated", "overlays/single", check_every_pod_isolated,
     lambda docs: docs.remove(find(docs, "NetworkPolicy", "workload"))),
    ("policy-selects-namespace", "loadgen", check_every_pod_isolated,
     _set([("NetworkPolicy", "loadgen"), "spec", "podSelector"], {})),
    ("prometheus-open-to-all", "monitoring", check_prometheus_ingress_only_from_grafana_or_loadgen,
     _set([("NetworkPolicy", "prometheus"), "spec", "ingress", 0, "from"], _DELETE)),
    ("prometheus-open-to-workload", "monitoring", check_prometheus_ingress_only_from_grafana_or_loadgen,
     _append([("NetworkPolicy", "prometheus"), "spec", "ingress", 0, "from"],
             {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "workload"}}})),
    ("prometheus-open-to-other-namespaces", "monitoring", check_prometheus_ingress_only_from_grafana_or_loadgen,
     _set([("NetworkPolicy", "prometheus"), "spec", "ingress", 0, "from", 0, "namespaceSelector"], {})),
    ("prometheus-policy-gone", "monitoring", check_prometheus_ingress_only_from_grafana_or_loadgen,
     lambda docs: docs.remove(find(docs, "NetworkPolicy", "prometheus"))),
    ("grafana-literal-password", "monitoring", check_grafana_admin_password_from_secret,
     _append([("Deployment", "grafana"), "spec", "template", "spec", "containers", 0, "env"],
             {"name": "GF_SECURITY_ADMIN_PASSWORD", "value": "admin"})),
    ("grafana-password-file-elsewhere", "monitoring", check_grafana_admin_password_from_secret,
     lambda docs: next(e for e in find(docs, "Deployment", "grafana")["spec"]["template"]["spec"]["containers"][0]["env"]
                       if e["name"] == "GF_SECURITY_ADMIN_PASSWORD__FILE").__setitem__("value", "/tmp/admin-password")),
    ("grafana-secret-optional", "monitoring", check_grafana_admin_password_from_secret,
     lambda docs: next(v for v in find(docs, "Deployment", "grafana")["spec"]["template"]["spec"]["volumes"]
                       if "secret" in v)["secret"].__setitem__("optional", True)),
    ("grafana-secret-in-repository", "monitoring", check_grafana_admin_password_from_secret,
     lambda docs: docs.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "grafana-admin"},
                               "stringData": {"admin-password": "admin"}})),
]  # fmt: skip


def _replace_arg(docs: Docs, flag: str, value: str) -> None:
    args = find(docs, "Job", "loadgen")["spec"]["template"]["spec"]["containers"][0]["args"]
    args[args.index(flag) + 1] = value


@pytest.mark.parametrize(("name", "check", "mutate"), [m[1:] for m in MUTATIONS], ids=[m[0] for m in MUTATIONS])
def test_check_catches_mutation(name: str, check: Callable[[Docs], list[str]], mutate: Callable[[Docs], None]) -> None:
    docs = render(name)
    assert check(docs) == [], "the unmutated manifest must pass first"
    broken = copy.deepcopy(docs)
    mutate(broken)
    assert broken != docs, "the mutation changed nothing"
    assert check(broken), f"{check.__name__} did not notice the mutation"


def test_every_check_has_a_mutation() -> None:
    checks = {name for name, fn in globals().items() if name.startswith("check_") and callable(fn)}
    covered = {m[2].__name__ for m in MUTATIONS} | {"check_deployment_label"}
    assert checks - covered == set(), f"checks without a mutation proof: {checks - covered}"


@pytest.mark.parametrize(
    ("text", "seconds"), [("10s", 10.0), ("1m 30s", 90.0), ("500ms", 0.5), ("2h", 7200.0), ("1m30s", 90.0)]
)
def test_humantime_parse(text: str, seconds: float) -> None:
    assert humantime_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "10", "ten seconds", "5 parsecs"])
def test_humantime_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        humantime_seconds(text)


def test_loadgen_job_uses_real_loadgen_flags(binaries: dict[str, Path]) -> None:
    """Every flag and LOADGEN_* variable the Job passes is one `loadgen run` accepts."""
    proc = _run([str(binaries["loadgen"]), "run", "--help"])
    assert proc.returncode == 0, proc.stderr
    help_text = proc.stdout
    container = find(render("loadgen"), "Job", "loadgen")["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][0] == "run", "the Job runs `loadgen run SCENARIO`"
    flags = [a.split("=", 1)[0] for a in container["args"] if a.startswith("--")]
    assert flags, "no flags found in the Job's args"
    for flag in flags:
        assert re.search(rf"{re.escape(flag)}[ ,=<\n]", help_text), f"`loadgen run` has no {flag}:\n{help_text}"
    for var in (e["name"] for e in container["env"] if e["name"].startswith("LOADGEN_")):
        assert f"env: {var}" in help_text, f"`loadgen run` reads no {var}"


def _expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion of container args (undefined references stay as they are)."""
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m.group(1), m.group(0)), value)


@pytest.fixture(scope="module")
def job_run_log(binaries: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[str]]:
    """The loadgen Job's own command line, expanded as the kubelet would, run for real on 127.0.0.1.

    The target and metrics address are moved to free loopback ports and the load is cut to two
    seconds; everything else (scenario from the generated ConfigMap, labels, --watch without a
    cluster, --out -) is the manifest's. stdout and stderr go to one stream, like a container log.
    Returns (log text, args).
    """
    tmp_path = tmp_path_factory.mktemp("job-run")
    docs = render("loadgen")
    pod_spec = _pod_spec(docs, "Job", "loadgen")
    container = pod_spec["containers"][0]
    scenarios_dir = tmp_path / "scenarios"
    materialize_volume(docs, pod_spec, "scenarios", scenarios_dir)
    mount = _mount_path(container, "scenarios")
    scenario_env = next(e for e in container["env"] if e["name"] == "SCALEBENCH_SCENARIO")
    run_cm = find(docs, "ConfigMap", scenario_env["valueFrom"]["configMapKeyRef"]["name"])
    env = {
        "POD_NAMESPACE": "scalebench",
        "SCALEBENCH_DEPLOYMENT": "k8s-hpa",
        "SCALEBENCH_SCENARIO": run_cm["data"]["scenario"],
        "LOADGEN_RUN_ID": "job-uid-1234",
        # What run-loadgen.sh's start barrier puts in the run ConfigMap: a moment just ahead.
        "LOADGEN_START_AT": str(int(time.time()) + 3),
    }
    assert {e["name"] for e in container["env"]} == set(env), "update this fixture's env for the Job's new variables"
    app_port, metrics_port, loadgen_metrics = free_port(), free_port(), free_port()
    args = [_expand(a, env) for a in container["args"]]
    args[args.index("--target") + 1] = f"http://127.0.0.1:{app_port}"
    args[args.index("--metrics-addr") + 1] = f"127.0.0.1:{loadgen_metrics}"
    args = [a.replace(mount, str(scenarios_dir)) for a in args]
    args += ["--duration", "2s", "--rate", "20", "--metrics-linger", "0s"]

    quiet_env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "KUBECONFIG": str(tmp_path / "no-kubeconfig")}
    workload = subprocess.Popen(
        [str(binaries["workload"])],
        env={**quiet_env, "WORKLOAD_ADDR": f"127.0.0.1:{app_port}", "WORKLOAD_METRICS_ADDR": f"127.0.0.1:{metrics_port}"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{app_port}/healthz", timeout=1) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline and workload.poll() is None, "workload did not come up"
            time.sleep(0.1)
        log = tmp_path / "pod.log"
        with log.open("w") as out:
            proc = subprocess.run(
                [str(binaries["loadgen"]), *args],
                env={**quiet_env, **env},
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=60,
            )
    finally:
        workload.terminate()
        workload.wait(timeout=30)
    text = log.read_text()
    assert proc.returncode == 0, f"loadgen {' '.join(args)} exited {proc.returncode}:\n{text[-3000:]}"
    return text, args


def test_loadgen_job_command_runs_and_its_report_survives_the_log(job_run_log: tuple[str, list[str]]) -> None:
    """run-loadgen.sh's extract_report recovers a complete report, labelled as the overlay says."""
    text, _ = job_run_log
    extracted = _extract(text)
    assert extracted.returncode == 0, f"no report in the log:\n{text[-3000:]}"
    report = json.loads(extracted.stdout)
    assert report["labels"]["deployment"] == "k8s-hpa"
    assert report["run"] == "job-uid-1234"
    assert report["summary"]["requests"] > 0 and report["summary"]["failures"] == 0, report["summary"]
    # No cluster here: the watch is reported as a warning and the run went on.
    assert report["replicas"]["target"] == "deployment/workload" and report["replicas"]["warnings"]


def _http_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code
    except OSError:
        return None


def test_workload_honours_the_deployment_shutdown_contract(binaries: dict[str, Path]) -> None:
    """The real workload, started with the Deployment's env (addresses moved to loopback ports),
    answers its probes on the ports they name; on SIGTERM readiness turns 503 well before the
    kubelet's deadline (periodSeconds * failureThreshold) while requests are still served during
    the drain, and the process exits 0 inside terminationGracePeriodSeconds."""
    deployment = find(render("overlays/hpa"), *WL)
    spec = deployment["spec"]["template"]["spec"]
    c = workload_container(deployment)
    help_text = _run([str(binaries["workload"]), "--help"]).stdout
    for var in c["env"]:
        assert f"env: {var['name']}" in help_text, f"workload reads no {var['name']}"
    ports = {p["name"]: free_port() for p in c["ports"]}
    env = {e["name"]: e["value"] for e in c["env"]}
    env["WORKLOAD_ADDR"] = f"127.0.0.1:{ports['http']}"
    env["WORKLOAD_METRICS_ADDR"] = f"127.0.0.1:{ports['metrics']}"
    drain = humantime_seconds(env["WORKLOAD_DRAIN_DELAY"])
    readiness = c["readinessProbe"]
    flip_deadline = readiness["periodSeconds"] * readiness["failureThreshold"]
    grace = spec["terminationGracePeriodSeconds"]

    def probe_url(kind: str) -> str:
        get = c[kind]["httpGet"]
        return f"http://127.0.0.1:{ports[get['port']]}{get['path']}"

    proc = subprocess.Popen(
        [str(binaries["workload"])],
        env={"PATH": "/usr/bin:/bin", **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while _http_status(probe_url("readinessProbe")) != 200:
            assert time.monotonic() < deadline and proc.poll() is None, "workload never became ready"
            time.sleep(0.1)
        assert _http_status(probe_url("livenessProbe")) == 200
        assert _http_status(f"http://127.0.0.1:{ports['metrics']}/metrics") == 200
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        while _http_status(probe_url("readinessProbe")) != 503:
            assert time.monotonic() - signalled < flip_deadline, "readiness did not flip in time"
            time.sleep(0.05)
        flipped = time.monotonic() - signalled
        assert _http_status(f"http://127.0.0.1:{ports['http']}/ping") == 200, "stopped serving during the drain"
        assert _http_status(probe_url("livenessProbe")) == 200, "liveness failed during the drain: kubelet would kill"
        code = proc.wait(timeout=grace)
        exited = time.monotonic() - signalled
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    figure("deployment shutdown contract", readiness_503_after_s=flipped, flip_limit_s=float(flip_deadline),
           exit_code=code, exited_after_s=exited, drain_s=float(drain), grace_s=float(grace))
    assert code == 0
    assert drain - 1 <= exited < grace, f"exited after {exited:.1f}s: drain {drain:g}s, grace {grace}s"


FAKE_KUBECTL = """#!{python}
# kubectl for the script tests: `kustomize` is the real one; cluster verbs answer like a cluster
# whose loadgen Job completed, and every call is recorded.
import os, sys
calls = os.environ["FAKE_CALLS"]
argv = sys.argv[1:]
with open(os.path.join(calls, "calls.log"), "a") as f:
    f.write(" ".join(argv) + "\\n")
if argv[0] == "kustomize" or ("create" in argv and "--dry-run=client" in argv):
    os.execv({real!r}, [{real!r}, *argv])
words = [a for a in argv if not a.startswith("-")]
if "get" in argv and "secret" in argv and os.environ.get("FAKE_NO_SECRETS"):
    sys.exit('Error from server (NotFound): secrets "' + argv[argv.index("secret") + 1] + '" not found')
if "apply" in argv:
    n = len([p for p in os.listdir(calls) if p.startswith("applied")])
    with open(os.path.join(calls, f"applied-{{n}}.yaml"), "w") as f:
        f.write(sys.stdin.read())
    print("applied")
elif "configmap" in argv and "scalebench-deployment" in argv:
    print("k8s-hpa", end="")
elif "get" in argv and "job" in argv and "jsonpath={{.metadata.uid}}" in argv:
    print("0f1e2d3c-uid", end="")
elif "get" in argv and "job" in argv:
    print("SuccessCriteriaMet Complete ", end="")
elif "get" in argv and "pods" in argv:
    print("loadgen-0-aaaaa 0\\nloadgen-1-bbbbb 1\\nloadgen-2-ccccc 2")
elif "logs" in argv:
    sys.stdout.write(open(os.environ["FAKE_LOG"]).read())
elif any(w in argv for w in ("delete", "rollout", "get", "create")):
    print("ok")
else:
    sys.exit(f"fake kubectl: unexpected {{argv}}")
"""


def _fake_path(tmp_path: Path, binaries: dict[str, Path] | None = None) -> tuple[dict[str, str], Path]:
    real = require_tool("kubectl")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "kubectl"
    fake.write_text(FAKE_KUBECTL.format(python=sys.executable, real=real))
    fake.chmod(0o755)
    calls = tmp_path / "calls"
    calls.mkdir()
    path = [str(bin_dir)]
    if binaries:
        path.append(str(binaries["loadgen"].parent))
    # No compose secrets unless a test makes some: a developer's .secrets/ must not leak in.
    env = {"PATH": ":".join([*path, "/usr/bin", "/bin"]), "FAKE_CALLS": str(calls), "HOME": str(tmp_path),
           "SCALEBENCH_SECRETS_DIR": str(tmp_path / "no-secrets")}
    return env, calls


def _applied(calls: Path) -> list[list[dict]]:
    """The documents of every `kubectl apply`, in the order they were applied."""
    files = sorted(calls.glob("applied-*.yaml"), key=lambda p: int(p.stem.split("-")[1]))
    return [[d for d in yaml.safe_load_all(f.read_text()) if d] for f in files]


def test_run_loadgen_script_collects_and_merges_reports(
    job_run_log: tuple[str, list[str]], binaries: dict[str, Path], tmp_path: Path
) -> None:
    """run-loadgen.sh against a recorded cluster: it replaces the Job, applies the scenario it was
    given, waits, pulls the three reports out of the pod logs and merges them with the real loadgen."""
    env, calls = _fake_path(tmp_path, binaries)
    log = tmp_path / "pod.log"
    log.write_text(job_run_log[0])
    out_dir = tmp_path / "reports"
    started = int(time.time())
    proc = _run(
        ["bash", str(DEPLOY / "scripts" / "run-loadgen.sh"), "--scenario", "crud.yaml", "--timeout", "30",
         "--out-dir", str(out_dir)],
        env={**env, "FAKE_LOG": str(log)},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    verbs = [line.split() for line in (calls / "calls.log").read_text().splitlines()]
    order = [next(w for w in v if w in ("get", "delete", "kustomize", "apply", "logs")) for v in verbs]
    # kustomize | apply is a pipeline: those two run side by side and log in either order.
    assert order[:2] == ["get", "delete"] and sorted(order[2:4]) == ["apply", "kustomize"], verbs
    assert order[4:] == ["get", "get", "get", "logs", "logs", "logs"], verbs
    assert "batch.kubernetes.io/controller-uid=0f1e2d3c-uid" in verbs[6], "pods of another run could be collected"
    assert "--server-side" in next(v for v in verbs if "apply" in v)
    applied = [d for d in yaml.safe_load_all((calls / "applied-0.yaml").read_text()) if d]
    assert find(applied, "Job", "loadgen") is not None
    run_cm = next(c for c in of_kind(applied, "ConfigMap") if c["metadata"]["name"].startswith("loadgen-run"))
    assert run_cm["data"]["scenario"] == "crud.yaml"
    # The start barrier: every client waits for the same moment, the default 30 s after the apply.
    start_at = int(run_cm["data"]["start_at"])
    assert started + 30 <= start_at <= time.time() + 30, (started, start_at)
    job = find(applied, "Job", "loadgen")
    env = {e["name"]: e for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    ref = env["LOADGEN_START_AT"]["valueFrom"]["configMapKeyRef"]
    assert ref["name"] == run_cm["metadata"]["name"] and ref["key"] == "start_at" and ref["optional"] is True
    (run_dir,) = list(out_dir.iterdir())
    assert run_dir.name.startswith("k8s-hpa-"), run_dir.name
    for i in range(3):
        assert json.loads((run_dir / f"client-{i}.json").read_text())["run"] == "job-uid-1234"
        assert (run_dir / f"client-{i}.log").read_text() == job_run_log[0]
    merged = json.loads((run_dir / "merged.json").read_text())
    single = json.loads((run_dir / "client-0.json").read_text())
    assert merged["workers"] == 3
    assert merged["summary"]["requests"] == 3 * single["summary"]["requests"]


def _run_loadgen_pushing_to(
    url: str, job_run_log: tuple[str, list[str]], binaries: dict[str, Path], tmp_path: Path, password: str | None = None
) -> Path:
    """run-loadgen.sh --remote-write URL against the recorded cluster; with PASSWORD, the compose
    stack's password file (SCALEBENCH_SECRETS_DIR) holds it. Returns the fake kubectl's call dir."""
    env, calls = _fake_path(tmp_path, binaries)
    if password is not None:
        Path(env["SCALEBENCH_SECRETS_DIR"]).mkdir()
        (Path(env["SCALEBENCH_SECRETS_DIR"]) / "prometheus-password").write_text(password)
    log = tmp_path / "pod.log"
    log.write_text(job_run_log[0])
    proc = _run(
        ["bash", str(DEPLOY / "scripts" / "run-loadgen.sh"), "--remote-write", url, "--timeout", "30",
         "--out-dir", str(tmp_path / "reports")],
        env={**env, "FAKE_LOG": str(log)},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return calls


def test_run_loadgen_script_can_push_the_clients_metrics(
    job_run_log: tuple[str, list[str]], binaries: dict[str, Path], tmp_path: Path
) -> None:
    """--remote-write URL reaches every client as LOADGEN_REMOTE_WRITE (loadgen's env twin of
    --remote-write), so cluster runs can land in the compose Prometheus beside the docker runs."""
    url = "http://host.minikube.internal:9090/api/v1/write"
    calls = _run_loadgen_pushing_to(url, job_run_log, binaries, tmp_path)
    applied = [d for d in yaml.safe_load_all((calls / "applied-0.yaml").read_text()) if d]
    container = find(applied, "Job", "loadgen")["spec"]["template"]["spec"]["containers"][0]
    env_vars = {e["name"]: e.get("value") for e in container["env"]}
    assert env_vars["LOADGEN_REMOTE_WRITE"] == url, env_vars
    assert "POD_NAMESPACE" in env_vars, "the patch must add to the env, not replace it"
    help_text = _run([str(binaries["loadgen"]), "run", "--help"]).stdout
    assert "env: LOADGEN_REMOTE_WRITE" in help_text


@pytest.mark.parametrize("exists", [False, True], ids=["missing", "present"])
def test_apply_monitoring_creates_the_grafana_secret_only_when_missing(exists: bool, tmp_path: Path) -> None:
    """apply.sh monitoring makes Secret grafana-admin with a random password when there is none
    (before Grafana's rollout, which needs it), and never replaces one that exists."""
    import base64

    env, calls = _fake_path(tmp_path)
    if not exists:
        env["FAKE_NO_SECRETS"] = "1"
    proc = _run(["bash", str(DEPLOY / "scripts" / "apply.sh"), "monitoring"], env=env)
    assert proc.returncode == 0, proc.stderr
    secrets = [d for docs in _applied(calls) for d in docs if d.get("kind") == "Secret"]
    log = (calls / "calls.log").read_text()
    assert "get secret grafana-admin" in log, log
    assert "get secret grafana-admin -o jsonpath" in proc.stderr, "the script says where the password is"
    if exists:
        assert secrets == [], "an existing password was replaced"
        return
    (secret,) = secrets
    assert secret["metadata"]["name"] == "grafana-admin" and secret["metadata"]["namespace"] == "scalebench"
    password = base64.b64decode(secret["data"]["admin-password"]).decode()
    assert re.fullmatch(r"[0-9a-f]{48}", password), "not 192 random bits"
    assert password not in log and password not in proc.stderr, "the password appeared on a command line or log"
    applies = [i for i, docs in enumerate(_applied(calls)) if any(d.get("kind") == "Secret" for d in docs)]
    rollout = [i for i, docs in enumerate(_applied(calls)) if find(docs, "Deployment", "grafana")]
    assert applies[0] < rollout[0], "the Secret must exist before Grafana starts"
    (tmp_path / "again").mkdir()
    second = _fake_path(tmp_path / "again")
    again = _run(["bash", str(DEPLOY / "scripts" / "apply.sh"), "monitoring"], env={**second[0], "FAKE_NO_SECRETS": "1"})
    other = [d for docs in _applied(second[1]) for d in docs if d.get("kind") == "Secret"]
    assert again.returncode == 0 and base64.b64decode(other[0]["data"]["admin-password"]).decode() != password


def test_run_loadgen_script_pushes_with_basic_auth(
    job_run_log: tuple[str, list[str]], binaries: dict[str, Path], tmp_path: Path
) -> None:
    """--remote-write with a password file (default: the compose stack's .secrets/prometheus-password):
    the password goes into Secret loadgen-remote-write, mounted into every client, which pushes as
    user scalebench with --remote-write-user/--remote-write-password-file."""
    import base64

    url = "http://host.minikube.internal:9090/api/v1/write"
    calls = _run_loadgen_pushing_to(url, job_run_log, binaries, tmp_path, password="0123abcd" * 6)
    applied = _applied(calls)
    (secret,) = [d for docs in applied for d in docs if d.get("kind") == "Secret"]
    assert secret["metadata"]["name"] == "loadgen-remote-write"
    assert base64.b64decode(secret["data"]["password"]).decode() == "0123abcd" * 6
    assert "0123abcd" * 6 not in (calls / "calls.log").read_text()
    job = next(find(docs, "Job", "loadgen") for docs in applied if find(docs, "Job", "loadgen"))
    spec = job["spec"]["template"]["spec"]
    c = spec["containers"][0]
    path = _arg_after(c["args"], "--remote-write-password-file")
    assert _arg_after(c["args"], "--remote-write-user") == "scalebench", c["args"]
    mount = next(m for m in c["volumeMounts"] if path and path.startswith(m["mountPath"] + "/"))
    volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
    assert volume["secret"]["secretName"] == "loadgen-remote-write" and path.endswith("/password")
    assert volume["secret"]["defaultMode"] & 0o004, "the clients run as 65532 without fsGroup: must be world-readable"
    assert {e["name"]: e.get("value") for e in c["env"]}["LOADGEN_REMOTE_WRITE"] == url
    validator = require_tool("kubernetes-validate")
    rendered = tmp_path / "job.yaml"
    rendered.write_text(yaml.safe_dump(job))
    check = _run([validator, "--strict", "--quiet", "--kubernetes-version", K8S_VERSIONS[-1], str(rendered)])
    assert check.returncode == 0, check.stdout + check.stderr


def test_run_loadgen_script_without_a_start_delay_lets_each_client_start_at_once(
    job_run_log: tuple[str, list[str]], binaries: dict[str, Path], tmp_path: Path
) -> None:
    """--start-delay 0: no start_at key, so the Job's optional LOADGEN_START_AT stays unset."""
    env, calls = _fake_path(tmp_path, binaries)
    log = tmp_path / "pod.log"
    log.write_text(job_run_log[0])
    proc = _run(
        ["bash", str(DEPLOY / "scripts" / "run-loadgen.sh"), "--start-delay", "0", "--timeout", "30",
         "--out-dir", str(tmp_path / "reports")],
        env={**env, "FAKE_LOG": str(log)},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (applied,) = _applied(calls)
    run_cm = next(c for c in of_kind(applied, "ConfigMap") if c["metadata"]["name"].startswith("loadgen-run"))
    assert "start_at" not in run_cm["data"] and run_cm["data"]["scenario"] == "k8s-ramp.yaml"


def test_run_loadgen_script_fails_when_a_report_is_missing(tmp_path: Path) -> None:
    env, _ = _fake_path(tmp_path)
    log = tmp_path / "pod.log"
    log.write_text("connect refused\n")
    proc = _run(
        ["bash", str(DEPLOY / "scripts" / "run-loadgen.sh"), "--timeout", "30", "--out-dir", str(tmp_path / "r")],
        env={**env, "FAKE_LOG": str(log)},
    )
    assert proc.returncode != 0
    assert "no JSON report in loadgen-0-aaaaa's log" in proc.stderr, proc.stderr


@pytest.mark.parametrize(("overlay", "deletes_hpa"), [("single", True), ("minikube-hpa", False)])
def test_apply_script(overlay: str, deletes_hpa: bool, tmp_path: Path) -> None:
    """apply.sh applies the rendered overlay server-side, removes a leftover HPA only for a
    single-replica overlay, and waits for the workload's rollout."""
    env, calls = _fake_path(tmp_path)
    proc = _run(["bash", str(DEPLOY / "scripts" / "apply.sh"), overlay], env=env)
    assert proc.returncode == 0, proc.stderr
    log = (calls / "calls.log").read_text()
    assert ("delete horizontalpodautoscaler workload" in log) == deletes_hpa, log
    assert "rollout status deployment/workload" in log, log
    applied = sorted(calls.glob("applied-*.yaml"))
    workload = [d for d in yaml.safe_load_all(applied[-1].read_text()) if d]
    assert workload == render(f"overlays/{overlay}")


# ---------------------------------------------------------------------------- network policies
POD_KUSTOMIZATIONS = [*WORKLOAD_OVERLAYS, "base", "monitoring", "loadgen"]


@pytest.mark.parametrize("name", POD_KUSTOMIZATIONS)
def test_every_pod_is_selected_by_a_network_policy(name: str) -> None:
    _assert_clean(check_every_pod_isolated, name)


def test_prometheus_ingress_only_from_grafana_or_loadgen() -> None:
    _assert_clean(check_prometheus_ingress_only_from_grafana_or_loadgen, "monitoring")


def test_grafana_admin_password_comes_from_a_secret() -> None:
    _assert_clean(check_grafana_admin_password_from_secret, "monitoring")


OUTSIDE = Endpoint("outside (node, host, NodePort client)", None)
API_SERVER = Endpoint("API server", None)
KUBE_DNS = Endpoint("kube-dns", {"k8s-app": "kube-dns"}, "kube-system", {"dns": 53, "dns-tcp": 53})
STRANGER = Endpoint("a pod of another app", {"app.kubernetes.io/name": "other"})


@pytest.mark.parametrize("overlay", WORKLOAD_OVERLAYS)
def test_network_policies_admit_exactly_the_stack_paths(overlay: str) -> None:
    """Over the rendered policies of monitoring + the overlay + the loadgen Job: the paths the stack
    needs are open (scrapes, queries, load, DNS, discovery, the NodePort on Minikube) and the
    rest is closed: nothing but Grafana queries Prometheus, Grafana reaches nothing but
    Prometheus (no datasource can forge requests elsewhere), metrics ports take Prometheus only."""
    docs = [*render("monitoring"), *render(overlay), *render("loadgen")]
    pods = {e.name.split("/")[1]: e for e in pod_endpoints(docs)}
    prometheus, grafana, workload, loadgen = (pods[n] for n in ("prometheus", "grafana", "workload", "loadgen"))
    minikube = overlay in MINIKUBE_OVERLAYS
    paths = [
        (grafana, prometheus, 9090, True),
        (prometheus, workload, 9000, True),
        (prometheus, loadgen, 9464, True),
        (loadgen, workload, 8080, True),
        (prometheus, KUBE_DNS, 53, True),
        (grafana, KUBE_DNS, 53, True),
        (prometheus, API_SERVER, 443, True),
        (prometheus, API_SERVER, 8443, True),
        (OUTSIDE, workload, 8080, minikube),
        (workload, prometheus, 9090, False),
        (loadgen, prometheus, 9090, False),
        (STRANGER, prometheus, 9090, False),
        (OUTSIDE, prometheus, 9090, False),
        (loadgen, workload, 9000, False),
        (STRANGER, workload, 9000, False),
        (OUTSIDE, workload, 9000, False),
        (STRANGER, workload, 8080, minikube),
        (grafana, workload, 8080, False),
        (grafana, loadgen, 9464, False),
        (grafana, API_SERVER, 443, False),
        (grafana, OUTSIDE, 80, False),
        (workload, grafana, 3000, False),
        (OUTSIDE, grafana, 3000, False),
        (workload, loadgen, 9464, False),
        (OUTSIDE, loadgen, 9464, False),
    ]
    wrong = [f"{src} -> {dst}:{port}: {'denied' if want else 'allowed'}, want {'allowed' if want else 'denied'}"
             for src, dst, port, want in paths if may_connect(docs, src, dst, port) != want]
    assert wrong == [], "\n".join(wrong)


def test_network_policy_model() -> None:
    """The model above on the cases it relies on: isolation only where a policy selects, empty
    peers admit all, podSelector alone stays in its namespace, named ports, both directions."""
    pod = Endpoint("p", {"app": "a"}, "ns", {"web": 80})
    peer = Endpoint("q", {"app": "b"}, "ns")
    far = Endpoint("r", {"app": "b"}, "other")

    def policy(spec: dict) -> dict:
        return {"kind": "NetworkPolicy", "metadata": {"name": "x", "namespace": "ns"}, "spec": spec}

    assert may_connect([], peer, pod, 80)
    deny = policy({"podSelector": {"matchLabels": {"app": "a"}}, "policyTypes": ["Ingress"]})
    assert not may_connect([deny], peer, pod, 80)
    assert may_connect([deny], pod, peer, 80), "an Ingress policy does not restrict egress"
    by_pod = policy({"podSelector": {"matchLabels": {"app": "a"}},
                     "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "b"}}}], "ports": [{"port": "web"}]}]})
    assert may_connect([by_pod], peer, pod, 80)
    assert not may_connect([by_pod], peer, pod, 81)
    assert not may_connect([by_pod], far, pod, 80), "a bare podSelector admits its own namespace only"
    assert not may_connect([by_pod], OUTSIDE, pod, 80)
    anyone = policy({"podSelector": {"matchLabels": {"app": "a"}}, "ingress": [{"ports": [{"port": 80}]}]})
    assert may_connect([anyone], OUTSIDE, pod, 80) and may_connect([anyone], far, pod, 80)
    no_egress = policy({"podSelector": {"matchLabels": {"app": "b"}}, "policyTypes": ["Egress"], "egress": []})
    assert not may_connect([no_egress], peer, pod, 80)
    assert selects({"matchExpressions": [{"key": "app", "operator": "In", "values": ["a", "c"]}]}, {"app": "a"})
    assert not selects({"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}, {"app": "a"})


# ------------------------------------------------------------------------------------ scripts
SCRIPTS = sorted(p.name for p in (DEPLOY / "scripts").glob("*.sh") if p.name != "lib.sh")


def test_scripts_are_shellcheck_clean() -> None:
    shellcheck = require_tool("shellcheck")
    proc = _run([shellcheck, "-x", *sorted(str(p) for p in (DEPLOY / "scripts").glob("*.sh"))], cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_scripts_are_complete() -> None:
    assert SCRIPTS == ["apply.sh", "build-load.sh", "local-cluster.sh", "minikube-up.sh", "run-loadgen.sh", "teardown.sh", "tls-secret.sh"]
    for name in SCRIPTS:
        text = (DEPLOY / "scripts" / name).read_text()
        assert text.startswith("#!/usr/bin/env bash\n"), name
        assert "set -euo pipefail" in text, name


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_help(script: str) -> None:
    proc = _run(["bash", str(DEPLOY / "scripts" / script), "--help"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"Usage: deploy/scripts/{script}"), proc.stdout


@pytest.mark.parametrize(
    ("script", "args", "message"),
    [
        ("apply.sh", [], "OVERLAY is required"),
        ("apply.sh", ["production"], "unknown OVERLAY 'production'"),
        ("apply.sh", ["single", "hpa"], "one OVERLAY only"),
        ("apply.sh", ["--force", "single"], "unknown option: --force"),
        ("run-loadgen.sh", ["--timeout", "ten"], "--timeout is a number of seconds"),
        ("run-loadgen.sh", ["--start-delay", "soon"], "--start-delay is a number of seconds"),
        ("run-loadgen.sh", ["--start-delay", "7200"], "--start-delay is a number of seconds up to 3600"),
        ("run-loadgen.sh", ["--scenario", "../../etc/passwd"], "--scenario is a file name"),
        ("run-loadgen.sh", ["--remote-write", "prom:9090"], "--remote-write is an http:// or https:// URL"),
        ("run-loadgen.sh", ["--remote-write-password-file", "/etc/hostname"], "--remote-write-password-file needs --remote-write"),
        ("run-loadgen.sh", ["--remote-write", "http://p:9090/api/v1/write", "--remote-write-password-file", "/nonexistent"],
         "no password in '/nonexistent'"),
        ("run-loadgen.sh", ["--scenario", "no-such-scenario.yaml"], "no scenario no-such-scenario.yaml"),
        ("minikube-up.sh", ["--cpus"], "--cpus needs a value"),
        ("build-load.sh", ["--push"], "unknown argument: --push"),
        ("teardown.sh", ["--all"], "unknown argument: --all"),
    ],
)
def test_script_rejects_bad_arguments(script: str, args: list[str], message: str) -> None:
    """Bad input stops a script before it touches a cluster, with a message saying why."""
    proc = _run(["bash", str(DEPLOY / "scripts" / script), *args], env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr


def test_apply_script_gives_the_remote_writing_prometheus_the_compose_password(tmp_path: Path) -> None:
    """monitoring-remote-write: the compose stack's password becomes Secret prometheus-remote-write
    before the Prometheus that reads it is applied; without `make secrets` it stops, saying so."""
    env, calls = _fake_path(tmp_path)
    proc = _run(["bash", str(DEPLOY / "scripts" / "apply.sh"), "monitoring-remote-write"], env=env)
    assert proc.returncode != 0 and "run 'make secrets'" in proc.stderr, proc.stderr
    assert not list(calls.glob("applied-*.yaml")), "nothing is applied without the password"

    secrets = Path(env["SCALEBENCH_SECRETS_DIR"])
    secrets.mkdir()
    (secrets / "prometheus-password").write_text("0123abcd" * 6)
    proc = _run(["bash", str(DEPLOY / "scripts" / "apply.sh"), "monitoring-remote-write"], env=env)
    assert proc.returncode == 0, proc.stderr
    applied = _applied(calls)
    (secret,) = [d for docs in applied for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == "prometheus-remote-write"]
    assert base64.b64decode(secret["data"]["password"]).decode() == "0123abcd" * 6
    first_prometheus = next(i for i, docs in enumerate(applied) if find(docs, "Deployment", "prometheus"))
    first_secret = next(i for i, docs in enumerate(applied) if secret in docs)
    assert first_secret < first_prometheus


def test_apply_script_knows_every_overlay() -> None:
    text = (DEPLOY / "scripts" / "apply.sh").read_text()
    listed = re.search(r"^OVERLAYS=\(([^)]*)\)", text, re.M).group(1).split()
    on_disk = sorted(p.name for p in (DEPLOY / "overlays").iterdir() if (p / "kustomization.yaml").exists())
    assert sorted(listed) == sorted([*on_disk, "monitoring"])


def test_scripts_version_matches_manifests() -> None:
    """build-load.sh loads the very tags the manifests run (a mismatch means ErrImagePull)."""
    version = re.search(r"^SCALEBENCH_VERSION=(\S+)$", (DEPLOY / "scripts" / "lib.sh").read_text(), re.M).group(1)
    for name in KUSTOMIZATIONS:
        for owner, template in pod_templates(render(name)):
            for c in containers(template["spec"]):
                if image_repo(c["image"]).startswith("scalebench/"):
                    assert c["image"].endswith(f":{version}"), f"{name} {owner} runs {c['image']}, scripts load {version}"


def _extract(log: str) -> subprocess.CompletedProcess:
    script = f'source "{DEPLOY / "scripts" / "lib.sh"}" && extract_report'
    return subprocess.run(["bash", "-c", script], input=log, capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize(
    "log",
    [
        'starting {x}\n{"level":"info"}\n{\n  "schema_version": 1,\n  "run": "r",\n  "summary": {\n    "p99": 2\n  }\n}\nsummary {done}\n',
        '{\nnot json\n{"schema_version": 1, "run": "r", "summary": {"p99": 2}}\nsummary: p99 2ms }\n',
    ],
    ids=["pretty", "compact"],
)
def test_report_extraction_from_interleaved_logs(log: str) -> None:
    proc = _extract(log)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["schema_version"] == 1 and report["summary"]["p99"] == 2


@pytest.mark.parametrize("log", ["", "no report\n", '{\n  "schema_version": 1,\n  "run": "cut short"\n'])
def test_report_extraction_fails_without_a_complete_report(log: str) -> None:
    assert _extract(log).returncode != 0
