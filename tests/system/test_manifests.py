"""The Kubernetes manifests, proven without a cluster (the checks are in manifests_support.py).

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

import copy
import json
import re
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

import pytest
import yaml

from conftest import ROOT, figure, prometheus_tool, require_tool
from procs import free_port, spawn, wait_until_ready
from manifests_support import (  # noqa: F401 (job_run_log is a fixture)
    DEPLOY,
    WORKLOAD_OVERLAYS,
    HPA_OVERLAYS,
    SINGLE_OVERLAYS,
    MINIKUBE_OVERLAYS,
    REMOTE_WRITE,
    KUSTOMIZATIONS,
    WITH_WORKLOAD,
    EXPECTED_DEPLOYMENT_LABEL,
    DEPLOYMENT_LABEL_KEY,
    K8S_VERSIONS,
    Docs,
    run,
    render_text,
    render,
    of_kind,
    find,
    workload_container,
    humantime_seconds,
    check_hpa_targets_existing_deployment,
    check_namespaced_objects_in_workload_namespace,
    check_hpa_targets_set_cpu_requests,
    check_hpa_policy,
    check_probes_use_exposed_ports,
    check_workload_probes,
    check_services_select_pods,
    check_workload_service_app_port_only,
    check_images_pinned,
    check_security_context_hardened,
    check_roles_read_only,
    check_loadgen_rbac,
    check_drain_fits_grace,
    check_readiness_flips_before_drain_ends,
    check_connection_lifetime,
    check_rollout_keeps_capacity,
    check_workload_resources,
    check_no_needless_tokens,
    check_recommended_labels,
    check_deployment_label,
    check_minikube,
    pod_spec_of,
    materialize_volume,
    mount_path,
    prometheus_config,
    check_prometheus_discovery,
    relabel,
    scrape_targets,
    check_grafana_provisioning,
    check_loadgen_job,
    Endpoint,
    selects,
    pod_endpoints,
    may_connect,
    check_every_pod_isolated,
    check_prometheus_ingress_only_from_grafana_or_loadgen,
    check_grafana_admin_password_from_secret,
    job_run_log,
    extract_report,
)


# ------------------------------------------------------------------------------------- tests
@pytest.mark.parametrize("name", KUSTOMIZATIONS)
@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_renders_and_validates_strictly(name: str, version: str, tmp_path: Path) -> None:
    validator = require_tool("kubernetes-validate")
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(render_text(name))
    proc = run([validator, "--strict", "--quiet", "--kubernetes-version", version, str(rendered)])
    assert proc.returncode == 0, f"deploy/{name} fails strict validation for {version}:\n{proc.stdout}{proc.stderr}"


def test_strict_validation_rejects_unknown_fields(tmp_path: Path) -> None:
    """The validator is strict enough to catch a misspelt field (kustomize would render it happily)."""
    validator = require_tool("kubernetes-validate")
    docs = render("overlays/single")
    deployment = find(docs, "Deployment", "workload")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {"periodSeconds": 1}
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump_all(docs))
    proc = run([validator, "--strict", "--quiet", "--kubernetes-version", K8S_VERSIONS[-1], str(broken)])
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
    proc = run([kubectl, "kustomize", "--load-restrictor", "LoadRestrictionsRootOnly", str(ROOT / directory)])
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
    proc = run([yamllint, "--strict", "-c", str(DEPLOY / ".yamllint.yaml"), str(DEPLOY), *beside_sources])
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_yamllint_rendered(name: str, tmp_path: Path) -> None:
    """The rendered stream is clean YAML (no duplicate keys, no syntax quirks) for any consumer."""
    yamllint = require_tool("yamllint")
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(render_text(name))
    config = "{extends: default, rules: {line-length: disable, document-start: disable, indentation: {indent-sequences: whatever}}}"
    proc = run([yamllint, "--strict", "-d", config, str(rendered)])
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
    spec = pod_spec_of(docs, "Deployment", "prometheus")
    container = spec["containers"][0]
    config_dir = mount_path(container, "config")
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
    proc = run([promtool, "check", "config", str(local_config)])
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


def _report_to_file(docs: Docs) -> None:
    args = find(docs, "Job", "loadgen")["spec"]["template"]["spec"]["containers"][0]["args"]
    args[args.index("--out") + 1] = "/tmp/report.json"


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
    ("loadgen-report-to-file", "loadgen", check_loadgen_job, _report_to_file),
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
    proc = run([str(binaries["loadgen"]), "run", "--help"])
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


def test_loadgen_job_command_runs_and_its_report_survives_the_log(job_run_log: tuple[str, list[str]]) -> None:
    """run-loadgen.sh's extract_report recovers a complete report, labelled as the overlay says."""
    text, _ = job_run_log
    extracted = extract_report(text)
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
    help_text = run([str(binaries["workload"]), "--help"]).stdout
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

    proc = spawn([str(binaries["workload"])], env={"PATH": "/usr/bin:/bin", **env})
    try:
        wait_until_ready(probe_url("readinessProbe"), 20, proc)
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
