"""Container proof: the real Dockerfile and the real docker-compose.yml on a real Docker engine.

What it does, in order (one compose project per test session, always torn down):
  1. seeds stand-ins for the base images with .ci/seed-images.sh under scalebench-seed/ names (no
     registry is reachable in CI; idempotent and fast when they exist). Where no engine answers
     in CI it starts dockerd, and the session's finalizer stops that daemon, and no other,
  2. builds both targets of the Dockerfile under the tags compose uses, with the stand-ins passed
     as its RUST_IMAGE / RUNTIME_IMAGE build arguments, timing each build,
  3. makes the stack's secrets with scripts/compose-secrets.sh in a temporary directory and brings
     up workload + prometheus + loadgen from docker-compose.yml, with an override used only here:
     the Prometheus stand-in's name, a shorter load run, and the web config compose uses beyond
     loopback (basic auth), while the port stays on 127.0.0.1 (mounts, limits, flags are the
     real ones),
  4. asserts: the workload turns healthy, the loadgen run succeeds >= 99 %, Prometheus holds series
     of both jobs with deployment="docker", /info reports the CPU limit, the container runs as a
     non-root user on a read-only root filesystem, the workload image is <= 30 MB, Prometheus
     refuses requests without the password and its healthcheck passes with it.
Grafana and Tempo are not started (they cannot run here); the dashboards test covers Grafana's
provisioning. Load only goes to 127.0.0.1 and the compose network this test created.

Figures (build times, image sizes) are printed and written to reports/containers.json.
Run alone: `python3 -m pytest -v -s tests/system/test_containers.py`.
"""

from __future__ import annotations

import base64
import json
import math
import os
import shutil
import time
import urllib.error
import urllib.parse
from datetime import datetime
import urllib.request
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, figure, require_tool
from containers_support import (  # noqa: F401 (images is a fixture)
    COMPOSE_FILE,
    DOCKERFILE,
    SECRETS_SCRIPT,
    compose_cmd,
    http_json,
    images,
    run,
    wait,
)
from procs import free_port

PROMETHEUS_USER = "scalebench"
REPORT = ROOT / "reports" / "containers.json"
IMAGE_LIMIT_BYTES = 30_000_000  # 30 MB (decimal, as `docker images` prints it)
RUN_DURATION_S = 20
METRICS_LINGER_S = 15
# Fractional on purpose: a quota of 1.5 cores is only reported right if it is read from the
# cgroup (rounding to whole cores, or counting host cores, gives a different number).
CPU_LIMIT = 1.5 if (os.cpu_count() or 1) >= 2 else 0.5




@pytest.fixture(scope="module")
def stack(images, tmp_path_factory):
    """workload + prometheus + loadgen from the real compose file; torn down even on failure."""
    compose = compose_cmd()
    project = f"sbtest{os.getpid()}"
    ports = {"WORKLOAD_PORT": free_port(), "PROMETHEUS_PORT": free_port()}
    secrets = tmp_path_factory.mktemp("secrets") / "s"
    env = dict(os.environ, WORKLOAD_CPUS=str(CPU_LIMIT), SCALEBENCH_SECRETS_DIR=str(secrets),
               PROMETHEUS_BIND="127.0.0.1", **{k: str(v) for k, v in ports.items()})
    for bind in ("127.0.0.1", "0.0.0.0"):  # 0.0.0.0 only to make the web config used beyond loopback
        made = run(["bash", str(SECRETS_SCRIPT)], timeout=120, check=False, env={**env, "PROMETHEUS_BIND": bind})
        assert made.returncode == 0, made.stderr
    auth_web_config = secrets / "prometheus-web-0.0.0.0.yml"
    assert "basic_auth_users" in auth_web_config.read_text()
    # The override: the Prometheus stand-in under its own name, a shorter run (the real command
    # is kept and load flags appended: a flat rate in place of the scenario's phases), and Prometheus with
    # the password it asks for beyond loopback, on 127.0.0.1 still.
    real_cmd = yaml.safe_load(COMPOSE_FILE.read_text())["services"]["loadgen"]["command"]
    override = tmp_path_factory.mktemp("compose") / "override.yml"
    override.write_text(yaml.safe_dump({
        "services": {
            "prometheus": {"image": images["seeded"]["PROMETHEUS_IMAGE"]},
            "loadgen": {"command": real_cmd + [
                # A flat rate for a short run in place of the scenario's phases.
                "--rate", "40",
                "--duration", f"{RUN_DURATION_S}s",
                "--metrics-linger", f"{METRICS_LINGER_S}s",
                "--out", "-",
            ]},
        },
        "secrets": {"prometheus_web_config": {"file": str(auth_web_config)}},
    }))  # fmt: skip
    base = compose + ["-p", project, "-f", str(COMPOSE_FILE), "-f", str(override)]

    def container(service: str) -> str:
        out = run(["docker", "ps", "-a", "-q",
                    "--filter", f"label=com.docker.compose.project={project}",
                    "--filter", f"label=com.docker.compose.service={service}"], timeout=30).stdout.split()
        assert out, f"no container for service {service}"
        return out[0]

    facts = dict(images, project=project, **ports)
    facts["prometheus_auth"] = (PROMETHEUS_USER, (secrets / "prometheus-password").read_text().strip())
    try:
        t0 = time.monotonic()
        # depends_on: loadgen starts only once the workload's healthcheck passes.
        up = run(base + ["up", "-d", "--no-build", "workload", "prometheus", "loadgen"],
                  timeout=300, check=False, env=env, cwd=ROOT)
        assert up.returncode == 0, f"compose up failed:\n{up.stdout[-3000:]}\n{up.stderr[-3000:]}"
        facts["up_s"] = round(time.monotonic() - t0, 1)
        facts["workload_cid"] = container("workload")
        facts["loadgen_cid"] = container("loadgen")
        facts["prometheus_cid"] = container("prometheus")
        facts["health"] = wait(
            "the workload container to turn healthy",
            lambda: (s := run(["docker", "inspect", "-f", "{{.State.Health.Status}}",
                                facts["workload_cid"]], timeout=30).stdout.strip()) == "healthy" and s,
            timeout=90,
        )
        state = wait(
            "the loadgen run to finish",
            lambda: (s := json.loads(run(["docker", "inspect", "-f", "{{json .State}}",
                                           facts["loadgen_cid"]], timeout=30).stdout))["Status"] == "exited" and s,
            timeout=RUN_DURATION_S + METRICS_LINGER_S + 120,
            interval=2,
        )
        facts["loadgen_exit_code"] = state["ExitCode"]
        # stdout of the container alone: the JSON report (`--out -`); the summary went to stderr.
        logs = run(["docker", "logs", facts["loadgen_cid"]], timeout=60, check=False)
        facts["loadgen_stdout"] = logs.stdout
        facts["loadgen_stderr"] = logs.stderr
        facts["run_total_s"] = round(time.monotonic() - t0, 1)
        yield facts
    finally:
        ps = run(base + ["ps"], timeout=60, check=False, env=env, cwd=ROOT)
        logs = run(base + ["logs", "--no-color", "--tail", "40"], timeout=60, check=False, env=env, cwd=ROOT)
        print(f"\n--- compose ps ---\n{ps.stdout}{ps.stderr}\n--- compose logs (tail) ---\n{logs.stdout[-6000:]}")
        down = run(base + ["down", "-v", "--remove-orphans", "-t", "5"], timeout=180, check=False, env=env, cwd=ROOT)
        if down.returncode != 0:
            print(f"compose down failed: {down.stderr}")
        summary = {k: v for k, v in facts.items() if not k.startswith(("loadgen_std", "prometheus_auth"))}
        REPORT.parent.mkdir(exist_ok=True)
        REPORT.write_text(json.dumps(summary, indent=2) + "\n")
        figure("containers", **{k: v for k, v in summary.items()
                                if k.endswith(("_s", "_bytes")) or k == "health"})


def _prom_series(stack: dict, selector: str) -> list[dict]:
    now = time.time()
    query = urllib.parse.urlencode({"match[]": selector, "start": now - 900, "end": now})
    body = http_json(f"http://127.0.0.1:{stack['PROMETHEUS_PORT']}/api/v1/series?{query}", auth=stack["prometheus_auth"])
    assert body["status"] == "success", body
    return body["data"]


def _prom_query(stack: dict, expr: str) -> list[dict]:
    body = http_json(f"http://127.0.0.1:{stack['PROMETHEUS_PORT']}/api/v1/query?{urllib.parse.urlencode({'query': expr})}",
                      auth=stack["prometheus_auth"])
    assert body["status"] == "success", body
    return body["data"]["result"]


def test_workload_turns_healthy(stack):
    assert stack["health"] == "healthy"
    info = http_json(f"http://127.0.0.1:{stack['WORKLOAD_PORT']}/healthz")
    assert info is not None


def test_prometheus_turns_healthy_before_the_load_starts(stack):
    """The loadgen waits for Prometheus's healthcheck (its /-/ready), so the run's first seconds
    are scraped too."""
    health = run(["docker", "inspect", "-f", "{{.State.Health.Status}}", stack["prometheus_cid"]], timeout=30)
    assert health.stdout.strip() == "healthy", health.stdout + health.stderr

    def started_at(name: str) -> float:
        # RFC 3339 with up to nanoseconds (trailing zeros trimmed): whole seconds + fraction.
        text = run(["docker", "inspect", "-f", "{{.State.StartedAt}}", stack[f"{name}_cid"]], timeout=30).stdout.strip()
        whole, _, frac = text.rstrip("Z").partition(".")
        return datetime.fromisoformat(whole + "+00:00").timestamp() + float(f"0.{frac or 0}")

    assert started_at("prometheus") < started_at("loadgen")


def test_prometheus_refuses_requests_without_the_password(stack):
    """With the web config compose uses beyond loopback, an unauthenticated query and an
    unauthenticated remote write get 401, a wrong password too; the healthcheck (which reads the
    password file) passed, or the loadgen would not have started."""
    base = f"http://127.0.0.1:{stack['PROMETHEUS_PORT']}"
    for request in (urllib.request.Request(f"{base}/api/v1/query?query=up"),
                    urllib.request.Request(f"{base}/api/v1/write", data=b"\x00", method="POST",
                                           headers={"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy"})):
        for auth in (None, (PROMETHEUS_USER, "wrong")):
            if auth:
                request.add_header("Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode())
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(request, timeout=10)  # noqa: S310 (127.0.0.1 only)
            assert err.value.code == 401, (request.full_url, auth, err.value.code)
    assert _prom_query(stack, "up") is not None


def test_loadgen_run_succeeds(stack):
    assert stack["loadgen_exit_code"] == 0, (
        f"loadgen exited {stack['loadgen_exit_code']}:\n{stack['loadgen_stderr'][-3000:]}")
    report = json.loads(stack["loadgen_stdout"])
    summary = report["summary"]
    assert summary["requests"] > 100, summary
    ratio = summary["successes"] / summary["requests"]
    figure("compose loadgen run", requests=summary["requests"], success_ratio=ratio, rps=float(summary["rps"]))
    assert ratio >= 0.99, summary
    assert report["labels"].get("deployment") == "docker", report["labels"]


def test_prometheus_holds_both_jobs_with_deployment_docker(stack):
    workload = _prom_series(stack, '{__name__=~"http_server_request_duration_seconds_bucket",job="workload",deployment="docker"}')
    assert workload, "no workload request-duration series with deployment=docker"
    assert {s.get("route") for s in workload} - {"unmatched"}, workload[:5]
    loadgen = _prom_series(stack, '{__name__="loadgen_requests_total",job="loadgen",deployment="docker"}')
    assert loadgen, "no loadgen_requests_total series with deployment=docker"
    up = _prom_series(stack, 'up{job=~"workload|loadgen"}')
    assert {s["job"] for s in up} == {"workload", "loadgen"}, up


def test_workload_sees_its_cpu_limit(stack):
    hc = json.loads(run(["docker", "inspect", "-f", "{{json .HostConfig}}", stack["workload_cid"]], timeout=30).stdout)
    assert hc["NanoCpus"] == int(CPU_LIMIT * 1e9), hc["NanoCpus"]
    assert hc["Memory"] > 0, "compose's mem_limit not applied"
    info = http_json(f"http://127.0.0.1:{stack['WORKLOAD_PORT']}/info")
    print(f"/info: {info}")
    assert math.isclose(info["cpu_quota_cores"], CPU_LIMIT, rel_tol=0.01), info
    assert str(info["cpu_quota_source"]).lower().startswith("cgroup"), info
    gauge = _prom_query(stack, 'max_over_time(workload_cpu_quota_cores{job="workload"}[10m])')
    assert gauge and math.isclose(float(gauge[0]["value"][1]), CPU_LIMIT, rel_tol=0.01), gauge


def test_runs_as_non_root_on_read_only_root_fs(stack):
    for service in ("workload", "loadgen"):
        cid = stack[f"{service}_cid"]
        info = json.loads(run(["docker", "inspect", cid], timeout=30).stdout)[0]
        assert info["HostConfig"]["ReadonlyRootfs"] is True, service
        user = info["Config"]["User"]
        assert user and user.split(":")[0] not in ("", "0", "root"), (service, user)
    # The running process itself: uid from the engine's view of the container's processes.
    top = run(["docker", "top", stack["workload_cid"], "-o", "pid,uid,comm"], timeout=30).stdout.splitlines()
    uids = {line.split()[1] for line in top[1:] if line.strip()}
    assert uids and "0" not in uids, top
    # And the root filesystem really refuses writes.
    probe = run(["docker", "cp", str(COMPOSE_FILE), f"{stack['workload_cid']}:/tmp/probe"], timeout=30, check=False)
    assert probe.returncode != 0 and "read-only" in probe.stderr, probe.stderr


def test_workload_image_is_small(images):
    size = images["size_workload_bytes"]
    print(f"image sizes: workload {size / 1e6:.1f} MB, loadgen {images['size_loadgen_bytes'] / 1e6:.1f} MB; "
          f"builds: loadgen {images['build_loadgen_s']} s (includes the shared builder stage), "
          f"workload {images['build_workload_s']} s")
    assert size <= IMAGE_LIMIT_BYTES, f"workload image is {size / 1e6:.1f} MB, over 30 MB"


def test_image_metadata(images):
    cfg = json.loads(run(["docker", "image", "inspect", "-f", "{{json .Config}}", images["image_workload"]], timeout=30).stdout)
    assert cfg["Healthcheck"]["Test"][-1] == "healthcheck", cfg["Healthcheck"]
    assert {"8080/tcp", "9000/tcp"} <= set(cfg["ExposedPorts"]), cfg["ExposedPorts"]
    labels = cfg["Labels"]
    for key in ("org.opencontainers.image.title", "org.opencontainers.image.version",
                "org.opencontainers.image.licenses", "org.opencontainers.image.source"):
        assert labels.get(key), key


def test_hadolint_reports_nothing():
    hadolint = require_tool("hadolint")
    result = run([hadolint, str(DOCKERFILE)], timeout=60, check=False)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_compose_file_is_valid_for_both_compose_versions():
    """docker-compose 1.29 and, where installed, Compose v2 accept the file (no daemon needed)."""
    checked = []
    if shutil.which("docker-compose"):
        result = run(["docker-compose", "-f", str(COMPOSE_FILE), "--profile", "tracing", "config", "-q"], timeout=60, check=False, cwd=ROOT)
        assert result.returncode == 0, result.stderr
        checked.append("docker-compose")
    if shutil.which("docker") and run(["docker", "compose", "version"], timeout=20, check=False).returncode == 0:
        result = run(["docker", "compose", "-f", str(COMPOSE_FILE), "--profile", "tracing", "config", "-q"], timeout=60, check=False, cwd=ROOT)
        assert result.returncode == 0, result.stderr
        checked.append("docker compose")
    if not checked:
        require_tool("docker-compose")
    top = yaml.safe_load(COMPOSE_FILE.read_text())
    # 1.29 reads a top-level `name` as an error and `version` selects an older schema.
    assert "name" not in top and "version" not in top, sorted(top)


def test_compose_stop_grace_covers_the_workload_drain(binaries):
    """docker stop's SIGKILL comes after stop_grace_period: the workload's default drain delay and
    shutdown timeout (from its --help) and its bounded clean-up (service/src/shutdown.rs) fit inside."""
    import re

    svc = yaml.safe_load(COMPOSE_FILE.read_text())["services"]["workload"]
    grace = float(svc["stop_grace_period"].rstrip("s"))
    env = svc.get("environment", {})
    assert "WORKLOAD_DRAIN_DELAY" not in env and "WORKLOAD_SHUTDOWN_TIMEOUT" not in env, "read them here"
    help_text = run([str(binaries["workload"]), "--help"], timeout=30).stdout

    def default_s(var: str) -> float:
        m = re.search(rf"env: {var}=\]\s*\[default: (\d+)s\]", help_text)
        assert m, f"no default in seconds for {var} in workload --help"
        return float(m.group(1))

    shutdown = (ROOT / "service" / "src" / "shutdown.rs").read_text()
    m = re.search(r"pub const SHUTDOWN_OVERHEAD: Duration = Duration::from_secs\((\d+)\);", shutdown)
    assert m, "SHUTDOWN_OVERHEAD is no longer a literal in seconds"
    total = default_s("WORKLOAD_DRAIN_DELAY") + default_s("WORKLOAD_SHUTDOWN_TIMEOUT") + float(m.group(1))
    assert total < grace, f"drain + shutdown + clean-up = {total:g}s, stop_grace_period {grace:g}s"


def test_compose_mounts_and_defaults_exist():
    """Every bind mount's source exists, and the paths the mounted configs name line up."""
    top = yaml.safe_load(COMPOSE_FILE.read_text())
    mounts = {}
    for name, svc in top["services"].items():
        for volume in svc.get("volumes", []):
            source, target = volume.split(":")[:2]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name}: {source} does not exist"
                mounts[target] = ROOT / source
    env = top["services"]["grafana"]["environment"]
    home = env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    host_dir = mounts[str(Path(home).parent)]
    assert (host_dir / Path(home).name).is_file(), f"home dashboard {home} is not in {host_dir}"
    assert json.loads((host_dir / Path(home).name).read_text())["uid"] == "scalebench-compare"
    provider = yaml.safe_load((mounts["/etc/grafana/provisioning"] / "dashboards" / "dashboards.yml").read_text())
    assert provider["providers"][0]["options"]["path"] in mounts, "Grafana's dashboard path is not mounted"
    scenario = next(a for a in top["services"]["loadgen"]["command"] if a.startswith("scenarios/"))
    default = scenario.split(":-", 1)[1].rstrip("}") if ":-" in scenario else scenario.split("/", 1)[1]
    assert (ROOT / "loadgen" / "scenarios" / default).is_file(), default
