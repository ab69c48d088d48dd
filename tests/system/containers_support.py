"""What the container tests share (test_containers.py, test_own_service.py): the compose file,
a command runner, the compose command of this machine, JSON over HTTP, a bounded wait, and the
`images` fixture that seeds the base images and builds the Dockerfile's targets."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
import urllib.request

import pytest
import yaml

import procs
from conftest import ROOT, SEED_SCRIPT, require_tool

COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
SECRETS_SCRIPT = ROOT / "scripts" / "compose-secrets.sh"


def run(cmd: list[str], timeout: float, check: bool = True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=check, **kw)


def compose_cmd() -> list[str]:
    """Compose v2 (`docker compose`) where present, else docker-compose 1.29 (as the Makefile)."""
    try:
        if run(["docker", "compose", "version"], timeout=20, check=False).returncode == 0:
            return ["docker", "compose"]
    except (OSError, subprocess.TimeoutExpired):
        pass
    return [require_tool("docker-compose")]


def http_json(url: str, timeout: float = 10, auth: tuple[str, str] | None = None) -> dict:
    request = urllib.request.Request(url)
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode())
    with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310 (127.0.0.1 only)
        return json.loads(resp.read())


def wait(what: str, predicate, timeout: float, interval: float = 1.0):
    """procs.wait_until over a read of a container's state, which fails while the container is
    being created or restarted: a falsy value or an error is "not yet", and the last error is
    named if time runs out."""
    last_error: list[Exception] = []

    def check():
        try:
            return predicate() or None
        except Exception as e:  # noqa: BLE001 (kept for the failure message)
            last_error[:] = [e]
            return None

    try:
        return procs.wait_until(what, check, within=timeout, interval=interval)
    except AssertionError as e:
        raise AssertionError(f"{e}; last error: {last_error[0] if last_error else None}") from None


def image_size(tag: str) -> int:
    return int(run(["docker", "image", "inspect", "-f", "{{.Size}}", tag], timeout=30).stdout.strip())


def compose_images() -> dict[str, dict]:
    """Service -> {image, target} as docker-compose.yml declares them."""
    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    return {
        name: {"image": svc["image"], "target": svc["build"]["target"]}
        for name, svc in services.items()
        if "build" in svc
    }


def seed_mapping(stdout: str) -> dict[str, str]:
    """RUST_IMAGE / RUNTIME_IMAGE / PROMETHEUS_IMAGE -> stand-in, as seed-images.sh prints them."""
    mapping = dict(line.split("=", 1) for line in stdout.splitlines() if "=" in line)
    assert set(mapping) == {"RUST_IMAGE", "RUNTIME_IMAGE", "PROMETHEUS_IMAGE"}, stdout
    assert all(v.startswith("scalebench-seed/") for v in mapping.values()), mapping
    return mapping


@pytest.fixture(scope="module")
def images(docker_engine) -> dict:
    """Seeded base images, then both Dockerfile targets built under the tags compose uses."""
    facts: dict = {}
    t0 = time.monotonic()
    seed = run(["bash", str(SEED_SCRIPT)], timeout=1200, check=False, cwd=ROOT)
    assert seed.returncode == 0, f"seed-images.sh failed:\n{seed.stderr[-3000:]}"
    facts["seed_s"] = round(time.monotonic() - t0, 1)
    facts["seeded"] = seed_mapping(seed.stdout)
    wanted = compose_images()
    # workload-init (the preparatory step) runs the workload's image: built once, as `workload`.
    assert set(wanted) == {"workload", "workload-init", "loadgen"}, wanted
    assert wanted.pop("workload-init") == wanted["workload"], "workload-init must run the workload's image"
    # The default (release) is what users get; CI may pick a quicker Cargo profile here.
    # The stand-ins replace the Dockerfile's base images through its build arguments only.
    extra = [f"--build-arg={arg}={facts['seeded'][arg]}" for arg in ("RUST_IMAGE", "RUNTIME_IMAGE")]
    if os.environ.get("SCALEBENCH_IMAGE_PROFILE"):
        extra += ["--build-arg", f"CARGO_PROFILE={os.environ['SCALEBENCH_IMAGE_PROFILE']}"]
        facts["cargo_profile"] = os.environ["SCALEBENCH_IMAGE_PROFILE"]
    # loadgen first: it pays for the shared builder stage; workload then reuses every layer.
    for service in ("loadgen", "workload"):
        spec = wanted[service]
        t0 = time.monotonic()
        build = run(
            ["docker", "build", "--target", spec["target"], "-t", spec["image"],
             "--build-arg", "REVISION=test", *extra, "-f", str(DOCKERFILE), str(ROOT)],
            timeout=2400, check=False,
        )
        assert build.returncode == 0, f"docker build --target {spec['target']} failed:\n{build.stdout[-4000:]}\n{build.stderr[-4000:]}"
        facts[f"build_{service}_s"] = round(time.monotonic() - t0, 1)
        facts[f"size_{service}_bytes"] = image_size(spec["image"])
        facts[f"image_{service}"] = spec["image"]
    return facts
