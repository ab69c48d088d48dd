"""The checking library of the Kubernetes manifests: every kustomization under deploy/ rendered
with the real `kubectl kustomize` (kustomize's default load restrictor, like deploy/scripts/lib.sh
and `kubectl apply -k`), the invariants a cluster would only reveal at run time as check functions
(each returns the problems it finds; empty = the invariant holds), a small model of Prometheus
discovery and of NetworkPolicy semantics, and the loadgen Job's own command run for real
(`job_run_log`, a fixture the manifest and the deploy-script tests share).

The tests are in test_manifests.py (the manifests), test_manifests_*.py (overlays of their own)
and test_deploy_scripts.py (deploy/scripts).
"""

from __future__ import annotations

import functools
import re
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, require_tool
from procs import free_port, spawn, wait_until_ready

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
# The workload as a Knative Configuration that scales to zero (docs/local-cluster.md).
KNATIVE = "overlays/knative"
KUSTOMIZATIONS = ["base", *WORKLOAD_OVERLAYS, *VARIANT_OVERLAYS, KNATIVE, "monitoring", REMOTE_WRITE, "loadgen"]
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
def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kwargs)


@functools.lru_cache(maxsize=None)
def render_text(name: str) -> str:
    kubectl = require_tool("kubectl")
    proc = run([kubectl, "kustomize", str(DEPLOY / name)])
    assert proc.returncode == 0, f"kubectl kustomize deploy/{name} failed:\n{proc.stderr}"
    return proc.stdout


def render(name: str) -> Docs:
    """The rendered documents of deploy/NAME (a fresh copy: mutations stay local)."""
    docs = [d for d in yaml.safe_load_all(render_text(name)) if d]
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


def rules_bound_to(docs: Docs, service_account: str) -> list[dict]:
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
    """The loadgen may get/list/watch Deployments, HPAs and Knative PodAutoscalers, in its namespace, and nothing else."""
    problems = []
    rules = rules_bound_to(docs, "loadgen")
    if not rules:
        problems.append("no Role is bound to ServiceAccount loadgen")
    allowed = {
        ("apps", "deployments"),
        ("autoscaling", "horizontalpodautoscalers"),
        ("autoscaling.internal.knative.dev", "podautoscalers"),
    }
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
def pod_spec_of(docs: Docs, kind: str, name: str) -> dict:
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


def mount_path(container: dict, volume: str) -> str | None:
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
    rules = rules_bound_to(docs, sa or "")
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
    spec = pod_spec_of(docs, "Deployment", "grafana")
    grafana = spec["containers"][0]
    prov = next(c for c in of_kind(docs, "ConfigMap") if c["metadata"]["name"].startswith("grafana-provisioning"))
    providers = yaml.safe_load(prov["data"]["dashboards.yml"])["providers"]
    dashboards_at = mount_path(grafana, "dashboards")
    for p in providers:
        if p["options"]["path"] != dashboards_at:
            problems.append(f"provider {p['name']} reads {p['options']['path']}, dashboards are mounted at {dashboards_at}")
    home = env_value(grafana, "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    dashboards_cm = find(docs, "ConfigMap", next(v for v in spec["volumes"] if v["name"] == "dashboards")["configMap"]["name"])
    if home is not None and (
        str(Path(home).parent) != dashboards_at or dashboards_cm is None or Path(home).name not in dashboards_cm["data"]
    ):
        problems.append(f"home dashboard {home} is not one of the mounted dashboards")
    if mount_path(grafana, "provisioning") != "/etc/grafana/provisioning":
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


def arg_after(args: list[str], flag: str) -> str | None:
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
    target = arg_after(args, "--target") or ""
    if not re.fullmatch(r"http://workload(\.\$\(POD_NAMESPACE\)\.svc(\.cluster\.local)?)?:8080/?", target):
        problems.append(f"--target {target!r} is not the workload Service's DNS name and port")
    metrics_addr = arg_after(args, "--metrics-addr") or ""
    metrics_port = next((p for p in c.get("ports", []) if p.get("name") == "metrics"), None)
    if metrics_addr != "0.0.0.0:9464" or metrics_port is None or metrics_port["containerPort"] != 9464:
        problems.append(f"--metrics-addr {metrics_addr!r} and port `metrics` {metrics_port} disagree (want 9464)")
    if arg_after(args, "--out") != "-":
        problems.append("the report is not written to stdout (`--out -`), so it cannot be fetched from logs")
    if arg_after(args, "--watch") != "deployment/workload":
        problems.append(f"--watch is {arg_after(args, '--watch')!r}, want deployment/workload")
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
    spec = pod_spec_of(docs, "Deployment", "grafana")
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


# ------------------------------------------------------------------ the loadgen Job, for real
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
    pod_spec = pod_spec_of(docs, "Job", "loadgen")
    container = pod_spec["containers"][0]
    scenarios_dir = tmp_path / "scenarios"
    materialize_volume(docs, pod_spec, "scenarios", scenarios_dir)
    mount = mount_path(container, "scenarios")
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
    # A short run: the default scenario is phased (a flag cannot shorten its phases), so the
    # clients run another file of the same ConfigMap, as `run-loadgen.sh --scenario` makes them.
    scenario = run_cm["data"]["scenario"]
    args = [a.replace(f"/{scenario}", "/k8s-scale-out.yaml") for a in args]
    args += ["--duration", "2s", "--metrics-linger", "0s"]

    quiet_env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "KUBECONFIG": str(tmp_path / "no-kubeconfig")}
    workload = spawn(
        [str(binaries["workload"])],
        env={**quiet_env, "WORKLOAD_ADDR": f"127.0.0.1:{app_port}", "WORKLOAD_METRICS_ADDR": f"127.0.0.1:{metrics_port}"},
    )
    try:
        wait_until_ready(f"http://127.0.0.1:{app_port}/healthz", 20, workload)
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


def extract_report(log: str) -> subprocess.CompletedProcess:
    script = f'source "{DEPLOY / "scripts" / "lib.sh"}" && extract_report'
    return subprocess.run(["bash", "-c", script], input=log, capture_output=True, text=True, timeout=30)
