"""The preparatory step on Kubernetes: the base Deployment's `check-config` initContainer.

It must check what the server will run with, so it has the server's image, settings, resources
and securityContext; an overlay that adds a setting to the server must not make the two disagree
on a value they share. Rendered with the real `kubectl kustomize` (helpers in test_manifests.py).
"""

from __future__ import annotations

import copy

import pytest

from manifests_support import WITH_WORKLOAD, Docs, render, workload_container, workload_deployments

INIT_NAME = "check-config"


def check_init_container_checks_the_server_settings(docs: Docs, *, exact_env: bool) -> list[str]:
    problems = []
    for d in workload_deployments(docs):
        name = d["metadata"]["name"]
        spec = d["spec"]["template"]["spec"]
        inits = [c for c in spec.get("initContainers", []) if c["name"] == INIT_NAME]
        if not inits:
            problems.append(f"{name}: no initContainer {INIT_NAME!r}")
            continue
        init, server = inits[0], workload_container(d)
        if init.get("args") != ["check-config"] or init.get("command"):
            problems.append(f"{name}: the init step runs {init.get('command')} {init.get('args')}, want args [check-config]")
        for field in ("image", "imagePullPolicy", "resources", "securityContext"):
            if init.get(field) != server.get(field):
                problems.append(f"{name}: init {field} {init.get(field)!r} differs from the server's {server.get(field)!r}")
        init_env = {e["name"]: e.get("value") for e in init.get("env", [])}
        server_env = {e["name"]: e.get("value") for e in server.get("env", [])}
        if exact_env and init_env != server_env:
            problems.append(f"{name}: init env {init_env} is not the server's {server_env}")
        for key, value in init_env.items():
            if server_env.get(key) != value:
                problems.append(f"{name}: init sets {key}={value!r}, the server {server_env.get(key)!r}")
        for key in ("WORKLOAD_ADDR", "WORKLOAD_METRICS_ADDR", "WORKLOAD_REQUEST_TIMEOUT"):
            if key in server_env and key not in init_env:
                problems.append(f"{name}: init does not check {key}")
    return problems


def test_base_init_container_has_the_server_image_env_and_security_context() -> None:
    assert check_init_container_checks_the_server_settings(render("base"), exact_env=True) == []


@pytest.mark.parametrize("name", WITH_WORKLOAD)
def test_overlays_keep_the_init_container_in_agreement(name: str) -> None:
    assert check_init_container_checks_the_server_settings(render(name), exact_env=False) == []


def _init(docs: Docs) -> dict:
    return workload_deployments(docs)[0]["spec"]["template"]["spec"]["initContainers"][0]


@pytest.mark.parametrize(
    "mutate",
    [
        lambda docs: workload_deployments(docs)[0]["spec"]["template"]["spec"].pop("initContainers"),
        lambda docs: _init(docs).update(image="scalebench/workload:0.0.9"),
        lambda docs: _init(docs)["env"][0].update(value="0.0.0.0:80"),
        lambda docs: _init(docs)["securityContext"].update(readOnlyRootFilesystem=False),
        lambda docs: _init(docs).update(args=["serve"]),
        lambda docs: _init(docs)["env"].pop(),
    ],
    ids=["missing", "other-image", "other-env-value", "softer-security", "not-check-config", "env-missing"],
)
def test_the_check_notices_a_broken_init_container(mutate) -> None:
    docs = render("base")
    broken = copy.deepcopy(docs)
    mutate(broken)
    assert check_init_container_checks_the_server_settings(broken, exact_env=True)
