"""Container proof of issue 14's compose parts, on the real Docker engine with the real files:

- your own service: `compose.own-service.yml` runs an image that is not the workload (busybox
  httpd built on the seeded base image, tests/system/own-service/) under the same limits; the
  loadgen run against it succeeds and every client-side dashboard panel has data;
- the preparatory step: a bad setting makes `workload-init` (`workload check-config`) fail, the
  workload never starts, and the reason is in the step's log;
- restarts, measured: the workload is killed with SIGKILL from outside the container (no clean
  shutdown; the engine sees a crash, so `restart: unless-stopped` applies) while a loadgen run
  goes on; the time until it is healthy again and the requests that failed meanwhile are
  recorded as figures (they justify the Kubernetes probe timings in deploy/base/deployment.yaml).

Images: the `images` fixture of test_containers.py (seeded stand-ins, both Dockerfile targets).
Every stack is its own compose project on 127.0.0.1 ports, always torn down.
Run alone: `python3 -m pytest -v -s tests/system/test_own_service.py`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
import urllib.parse
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, figure
from procs import free_port
from dashboard_queries import metric_names, panel_targets, provisioned_scrape_interval, substitute
from containers_support import (  # noqa: F401 (images is a fixture)
    COMPOSE_FILE,
    SECRETS_SCRIPT,
    compose_cmd,
    http_json,
    images,
    run,
    wait,
)

OWN_OVERRIDE = ROOT / "compose.own-service.yml"
TARGET_DIR = Path(__file__).parent / "own-service"
TARGET_IMAGE = "scalebench-test/own-target:local"
TARGET_PORT = 8000
RUN_S = 30
LINGER_S = 15
# Panels that legitimately stay empty here: errors only on a run with errors; the spread over
# backends needs the target to name itself in an `x-served-by` response header, as the workload
# does (docs/own-service.md); the cost of a scale-out needs a scale-out, seen by `--watch`, which
# a single container never has (test_dashboards.py proves that panel on a watched run).
ONLY_WITH_ERRORS = {"Errors by kind"}
NEEDS_SERVED_BY = {"Requests per backend"}
NEEDS_SCALE_OUT = {"Cost of the last scale-out"}


class Stack:
    """One compose project: `compose(...)` runs a compose command against it."""

    def __init__(self, files: list[Path], env: dict[str, str], project: str):
        self.base = compose_cmd() + ["-p", project] + [a for f in files for a in ("-f", str(f))]
        self.env = env
        self.project = project
        self.ports = {k: int(v) for k, v in env.items() if k in ("WORKLOAD_PORT", "PROMETHEUS_PORT")}

    def compose(self, *args: str, timeout: float = 300, check: bool = False):
        return run(self.base + list(args), timeout=timeout, check=check, env=self.env, cwd=ROOT)

    def container(self, service: str) -> str | None:
        out = run(["docker", "ps", "-a", "-q",
                    "--filter", f"label=com.docker.compose.project={self.project}",
                    "--filter", f"label=com.docker.compose.service={service}"], timeout=30).stdout.split()
        return out[0] if out else None

    def state(self, service: str) -> dict:
        cid = self.container(service)
        assert cid, f"no container for {service}"
        return json.loads(run(["docker", "inspect", "-f", "{{json .State}}", cid], timeout=30).stdout)

    def prometheus_auth(self) -> tuple[str, str]:
        return ("scalebench", (Path(self.env["SCALEBENCH_SECRETS_DIR"]) / "prometheus-password").read_text().strip())

    def wait_exited(self, service: str, timeout: float) -> dict:
        return wait(f"{service} to exit", lambda: (s := self.state(service))["Status"] == "exited" and s,
                     timeout=timeout, interval=1)


@contextlib.contextmanager
def stack(tmp_path: Path, images: dict, name: str, extra_files: list[Path], override: dict, env: dict[str, str]):
    project = f"sb{name}{os.getpid()}"
    secrets = tmp_path / "secrets"
    full_env = dict(os.environ, SCALEBENCH_SECRETS_DIR=str(secrets), PROMETHEUS_BIND="127.0.0.1",
                    WORKLOAD_PORT=str(free_port()), PROMETHEUS_PORT=str(free_port()), **env)
    made = run(["bash", str(SECRETS_SCRIPT)], timeout=120, check=False, env=full_env)
    assert made.returncode == 0, made.stderr
    override = {"services": {"prometheus": {"image": images["seeded"]["PROMETHEUS_IMAGE"]}, **override}}
    override_file = tmp_path / "override.yml"
    override_file.write_text(yaml.safe_dump(override))
    s = Stack([COMPOSE_FILE, *extra_files, override_file], full_env, project)
    try:
        yield s
    finally:
        logs = s.compose("logs", "--no-color", "--tail", "30", timeout=60)
        print(f"\n--- {project} logs (tail) ---\n{logs.stdout[-5000:]}")
        down = s.compose("down", "-v", "--remove-orphans", "-t", "5", timeout=180)
        if down.returncode != 0:
            print(f"compose down failed: {down.stderr}")


def _short_run(command: list[str], *flags: str) -> list[str]:
    return [*command, *flags, "--duration", f"{RUN_S}s", "--metrics-linger", f"{LINGER_S}s", "--out", "-"]


def _loadgen_report(s: Stack) -> tuple[int, dict, str]:
    state = s.wait_exited("loadgen", timeout=RUN_S + LINGER_S + 120)
    logs = run(["docker", "logs", s.container("loadgen")], timeout=60, check=False)
    assert logs.stdout.strip(), f"loadgen printed no report (exit {state['ExitCode']}):\n{logs.stderr[-3000:]}"
    return state["ExitCode"], json.loads(logs.stdout), logs.stderr


# ------------------------------------------------------------------------------ own service
@pytest.fixture(scope="module")
def own_service(images, tmp_path_factory):
    build = run(["docker", "build", "-t", TARGET_IMAGE,
                  "--build-arg", f"BUSYBOX_IMAGE={images['seeded']['PROMETHEUS_IMAGE']}",
                  "--build-arg", f"BASE_IMAGE={images['seeded']['RUNTIME_IMAGE']}", str(TARGET_DIR)],
                 timeout=600, check=False)
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    own_cmd = yaml.safe_load(OWN_OVERRIDE.read_text())["services"]["loadgen"]["command"]
    override = {
        # The shipped override's build plus the seeded stand-ins for the Dockerfile's base images.
        # (and the Cargo profile the `images` fixture built with, so the builder stage is reused).
        "workload": {"build": {"args": {**{a: images["seeded"][a] for a in ("RUST_IMAGE", "RUNTIME_IMAGE")},
                                        **({"CARGO_PROFILE": images["cargo_profile"]} if "cargo_profile" in images else {}),
                                        "REVISION": "test"}}},
        "loadgen": {"command": _short_run(own_cmd, "--rate", "20")},
    }
    env = {"TARGET_IMAGE": TARGET_IMAGE, "TARGET_PORT": str(TARGET_PORT), "TARGET_HEALTH_PATH": "/healthz",
           "TARGET_LOAD_PATH": "/index.html"}
    with stack(tmp_path_factory.mktemp("own"), images, "own", [OWN_OVERRIDE], override, env) as s:
        t0 = time.monotonic()
        built = s.compose("build", "workload", timeout=1800)
        assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
        figure("own-service image build", build_s=round(time.monotonic() - t0, 1))
        up = s.compose("up", "-d", "--no-build", "workload", "prometheus", "loadgen")
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        t_start = time.time()
        code, report, stderr = _loadgen_report(s)
        yield {"stack": s, "exit": code, "report": report, "stderr": stderr, "start": t_start, "end": time.time()}


def test_own_service_runs_in_place_of_the_workload_under_the_same_limit(own_service):
    s = own_service["stack"]
    cid = s.container("workload")
    info = json.loads(run(["docker", "inspect", cid], timeout=30).stdout)[0]
    assert info["Config"]["Image"] == "scalebench/own-service:local"
    assert info["Config"]["Entrypoint"][:2] == ["/opt/busybox/busybox", "httpd"], info["Config"]["Entrypoint"]
    assert info["HostConfig"]["NanoCpus"] == 1_000_000_000 and info["HostConfig"]["Memory"] > 0
    assert info["State"]["Health"]["Status"] == "healthy", info["State"]["Health"]
    # The shipped healthcheck: the probe binary on the target's own port and health path.
    assert info["Config"]["Healthcheck"]["Test"][1:] == [
        "/usr/local/bin/scalebench-probe", "healthcheck", "--addr", f"127.0.0.1:{TARGET_PORT}", "--path", "/healthz"]
    with _urlopen(f"http://127.0.0.1:{s.ports['WORKLOAD_PORT']}/index.html") as resp:
        assert b"not the workload" in resp.read()


def _urlopen(url: str):
    import urllib.request

    return urllib.request.urlopen(url, timeout=10)  # noqa: S310 (127.0.0.1 only)


def test_loadgen_run_against_the_own_service_succeeds(own_service):
    assert own_service["exit"] == 0, own_service["stderr"][-3000:]
    summary = own_service["report"]["summary"]
    figure("own-service loadgen run", requests=summary["requests"], success_ratio=summary["successes"] / summary["requests"])
    assert summary["requests"] >= RUN_S * 20 * 0.8, summary
    assert summary["successes"] / summary["requests"] >= 0.99, summary


def client_side_targets():
    return [t for t in panel_targets()
            if (names := metric_names(t.expr)) and all(n.startswith("loadgen_") or ":loadgen_" in n for n in names)]


def test_client_side_panels_have_data_for_a_target_without_workload_metrics(own_service):
    s = own_service["stack"]
    auth = s.prometheus_auth()
    base = f"http://127.0.0.1:{s.ports['PROMETHEUS_PORT']}/api/v1"
    # The target really exports none of the workload's metrics.
    up = http_json(f"{base}/query?" + urllib.parse.urlencode({"query": 'up{job="workload"}'}), auth=auth)["data"]["result"]
    assert up and all(r["value"][1] == "0" for r in up), up
    run = own_service["report"]["run"]
    start, end = own_service["start"], own_service["end"]
    scrape = provisioned_scrape_interval()
    empty, checked = [], 0
    for t in client_side_targets():
        if t.panel in ONLY_WITH_ERRORS | NEEDS_SERVED_BY | NEEDS_SCALE_OUT:
            continue
        expr = substitute(t.expr, {"deployment": "docker", "run": run}, interval_s=5, scrape_s=scrape, range_s=end - start)
        if t.instant:
            q = {"query": expr, "time": end}
            url = f"{base}/query?"
        else:
            q = {"query": expr, "start": start, "end": end, "step": 5}
            url = f"{base}/query_range?"
        body = http_json(url + urllib.parse.urlencode(q), auth=auth)
        assert body["status"] == "success", (t.panel, expr, body)
        checked += 1
        if not body["data"]["result"]:
            empty.append(f"{t.dashboard} / {t.panel}: {expr}")
    assert checked >= 15, checked
    assert empty == [], "client-side panels without data:\n" + "\n".join(empty)


# ------------------------------------------------------------------------- preparatory step
def test_a_bad_setting_stops_the_stack_before_the_workload_serves(images, tmp_path):
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "tempo:4318"}  # not a URL: check-config refuses it
    with stack(tmp_path, images, "init", [], {}, env) as s:
        up = s.compose("up", "-d", "--no-build", "workload")
        assert up.returncode != 0, f"compose up succeeded with a bad setting:\n{up.stdout}{up.stderr}"
        assert "workload-init" in up.stderr, up.stderr
        init = s.state("workload-init")
        assert (init["Status"], init["ExitCode"]) == ("exited", 1), init
        log = run(["docker", "logs", s.container("workload-init")], timeout=30).stderr
        assert 'workload check-config: OTEL_EXPORTER_OTLP_ENDPOINT "tempo:4318" is not an http://' in log, log
        workload = s.container("workload")
        if workload is not None:  # created maybe, never started
            state = s.state("workload")
            assert state["Status"] == "created" and state["StartedAt"].startswith("0001-"), state


def test_good_settings_pass_the_step_and_the_workload_serves(images, tmp_path):
    with stack(tmp_path, images, "initok", [], {}, {}) as s:
        up = s.compose("up", "-d", "--no-build", "workload")
        assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-2000:]
        init = s.state("workload-init")
        assert (init["Status"], init["ExitCode"]) == ("exited", 0), init
        assert "workload check-config: ok" in run(["docker", "logs", s.container("workload-init")], timeout=30).stderr
        wait("the workload to turn healthy", lambda: s.state("workload")["Health"]["Status"] == "healthy", timeout=90)


# ---------------------------------------------------------------------------------- restarts
def test_a_crashed_workload_is_restarted_and_healthy_again_measured(images, tmp_path):
    rate = 20
    real_cmd = yaml.safe_load(COMPOSE_FILE.read_text())["services"]["loadgen"]["command"]
    override = {"loadgen": {"command": _short_run(real_cmd, "--rate", str(rate), "--timeout", "2s")}}
    with stack(tmp_path, images, "crash", [], override, {}) as s:
        up = s.compose("up", "-d", "--no-build", "workload", "prometheus", "loadgen")
        assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-2000:]
        wait("the loadgen to be running", lambda: s.state("loadgen")["Status"] == "running", timeout=60)
        time.sleep(8)  # load flowing
        before = s.state("workload")
        assert before["Health"]["Status"] == "healthy" and before["Pid"] > 0, before
        restarts = json.loads(run(["docker", "inspect", "-f", "{{json .RestartCount}}", s.container("workload")], timeout=30).stdout)
        # SIGKILL from the host's PID namespace: the process dies without a clean shutdown and the
        # engine records a crash (exit 137), not a `docker stop`/`docker kill`, which would
        # switch the restart policy off.
        t_kill = time.monotonic()
        os.kill(before["Pid"], signal.SIGKILL)
        serving_at = healthy_at = None
        deadline = t_kill + 90
        while time.monotonic() < deadline and healthy_at is None:
            if serving_at is None:
                with contextlib.suppress(OSError):
                    with _urlopen(f"http://127.0.0.1:{s.ports['WORKLOAD_PORT']}/healthz") as resp:
                        if resp.status == 200:
                            serving_at = time.monotonic()
            state = s.state("workload")
            if state.get("Pid") not in (0, before["Pid"]) and state["Health"]["Status"] == "healthy":
                healthy_at = time.monotonic()
            time.sleep(0.1)
        assert healthy_at is not None, f"not healthy again within 90 s: {s.state('workload')}"
        after = json.loads(run(["docker", "inspect", "-f", "{{json .RestartCount}}", s.container("workload")], timeout=30).stdout)
        assert after == restarts + 1, (restarts, after)
        code, report, stderr = _loadgen_report(s)
        summary = report["summary"]
        failed = summary["requests"] - summary["successes"]
        figure("workload crash restart (compose, SIGKILL)",
               serving_again_s=round(serving_at - t_kill, 2) if serving_at else "never",
               healthy_again_s=round(healthy_at - t_kill, 2), failed_requests=failed,
               requests=summary["requests"], rate=rate)
        # Requests sent while nothing listened fail, and only those: at most the arrivals of the
        # time to healthy again (plus the timeout of those in flight at the kill), never most.
        assert 1 <= failed <= rate * (healthy_at - t_kill + 3), (failed, summary)
        assert summary["requests"] >= RUN_S * rate * 0.8, summary


# ------------------------------------------------------------------- no engine needed
def _config(files: list[Path], env: dict[str, str], tmp_path: Path):
    secrets = tmp_path / "secrets"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TARGET_", "LOADGEN_", "WORKLOAD_"))}
    full = dict(clean, SCALEBENCH_SECRETS_DIR=str(secrets), **env)
    made = run(["bash", str(SECRETS_SCRIPT)], timeout=120, check=False, env=full)
    assert made.returncode == 0, made.stderr
    args = [a for f in files for a in ("-f", str(f))]
    return run(compose_cmd() + args + ["config"], timeout=60, check=False, env=full, cwd=ROOT)


def test_override_needs_only_environment_variables(tmp_path):
    env = {"TARGET_IMAGE": "ghcr.io/example/api:1.0", "TARGET_PORT": "9898", "TARGET_HEALTH_PATH": "/health"}
    result = _config([COMPOSE_FILE, OWN_OVERRIDE], env, tmp_path)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    workload, loadgen = services["workload"], services["loadgen"]
    assert workload["build"]["target"] == "own-service"
    assert workload["build"]["args"]["TARGET_IMAGE"] == "ghcr.io/example/api:1.0"
    assert workload["cpus"] == yaml.safe_load(_config([COMPOSE_FILE], {}, tmp_path).stdout)["services"]["workload"]["cpus"]
    assert "http://workload:9898" in loadgen["command"], loadgen["command"]
    assert workload["healthcheck"]["test"][-3:] == ["127.0.0.1:9898", "--path", "/health"]
    # docker-compose 1.29 prints "127.0.0.1:8080:9898/tcp", Compose v2 a mapping with `target`.
    targets = [int(p["target"]) if isinstance(p, dict) else int(str(p).split(":")[-1].split("/")[0])
               for p in workload["ports"]]
    assert targets == [9898], workload["ports"]
    assert "scenarios/own-service.yaml" in loadgen["command"] and loadgen["environment"]["TARGET_LOAD_PATH"] == "/"


def test_override_without_target_image_says_what_to_set(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TARGET_IMAGE"}
    secrets = tmp_path / "secrets"
    env["SCALEBENCH_SECRETS_DIR"] = str(secrets)
    run(["bash", str(SECRETS_SCRIPT)], timeout=120, check=True, env=env)
    result = run(compose_cmd() + ["-f", str(COMPOSE_FILE), "-f", str(OWN_OVERRIDE), "config"], timeout=60,
                  check=False, env=env, cwd=ROOT)
    assert result.returncode != 0 and "TARGET_IMAGE" in result.stderr, result.stderr


def test_make_up_keeps_the_bundled_workload(tmp_path):
    result = _config([COMPOSE_FILE], {}, tmp_path)
    assert result.returncode == 0, result.stderr
    workload = yaml.safe_load(result.stdout)["services"]["workload"]
    assert workload["image"] == "scalebench/workload:0.1.0" and workload["build"]["target"] == "workload"
    assert workload["healthcheck"]["test"][-1] == "healthcheck"
