"""HTTPS in compose (compose.tls.yml, docs/tls-deploy.md), proven without starting a stack.

- `make tls-compose-cert` makes, with deploy/scripts/tls-secret.sh, a server certificate for the
  service name the loadgen connects to, readable by the containers' user.
- `docker-compose config` merges the override into docker-compose.yml: the server, its
  healthcheck and workload-init see the same TLS files, the loadgen trusts that certificate.
- The real binaries run with the settings the merged file gives each container (paths moved from
  /run/tls to a temporary directory, addresses to 127.0.0.1): check-config passes with the
  script's certificate and stops with the file and the reason for a missing one or a key that
  does not match; the server serves HTTPS; the container's healthcheck passes over TLS; the
  loadgen's command succeeds on every request, HTTP/1.1 and HTTP/2.

What only the container run can show: the bind mount's ownership and modes as user 65532 sees
them, Docker's healthcheck scheduling and `service_completed_successfully` ordering.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.parse
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, require_tool
from procs import free_port, spawn, terminate, wait_until

OVERRIDE = ROOT / "compose.tls.yml"
MOUNT = "/run/tls"


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kwargs)


def _make_cert(secrets: Path) -> Path:
    proc = _run(["make", "-s", "tls-compose-cert", f"SCALEBENCH_SECRETS_DIR={secrets}"], cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return secrets / "tls-compose"


def _script_cert(out_dir: Path, host: str) -> Path:
    proc = _run(["bash", str(ROOT / "deploy" / "scripts" / "tls-secret.sh"), "--host", host,
                 "--out-dir", str(out_dir), "--print"])  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return out_dir


def _x509(cert: Path, *args: str) -> str:
    proc = _run([require_tool("openssl"), "x509", "-in", str(cert), "-noout", *args])
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture(scope="module")
def merged(tmp_path_factory) -> dict:
    """docker-compose.yml + compose.tls.yml as Compose merges them (no daemon needed): Compose v2
    where present, else docker-compose 1.29, as the Makefile picks."""
    v2 = shutil.which("docker") and _run(["docker", "compose", "version"]).returncode == 0
    compose = ["docker", "compose"] if v2 else [require_tool("docker-compose")]
    secrets = tmp_path_factory.mktemp("secrets")
    env = {**os.environ, "SCALEBENCH_SECRETS_DIR": str(secrets), "LOADGEN_SCENARIO": "tls-smoke.yaml"}
    proc = _run([*compose, "-f", str(ROOT / "docker-compose.yml"), "-f", str(OVERRIDE), "config"], cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stderr
    config = yaml.safe_load(proc.stdout)
    config["_secrets"] = secrets
    return config


def _tls_mount(service: dict) -> tuple[str, str]:
    """(host directory, container directory) of the service's TLS files."""
    mounts = [v if isinstance(v, str) else f"{v['source']}:{v['target']}" for v in service.get("volumes", [])]
    (mount,) = [m for m in mounts if m.split(":")[1] == MOUNT]
    source, target = mount.split(":")[:2]
    return source, target


def _arg_after(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


# ------------------------------------------------------------------------------ the files
def test_make_tls_compose_cert_makes_a_server_certificate_for_the_service_the_loadgen_reaches(tmp_path: Path):
    cert_dir = _make_cert(tmp_path)
    crt, key = cert_dir / "tls.crt", cert_dir / "tls.key"
    # The containers run as 65532: the mounted directory and both files must be readable by it.
    assert cert_dir.stat().st_mode & 0o005 == 0o005
    assert crt.stat().st_mode & 0o004 and key.stat().st_mode & 0o004
    loadgen = yaml.safe_load(OVERRIDE.read_text())["services"]["loadgen"]
    host = urllib.parse.urlsplit(_arg_after(loadgen["command"], "--target")).hostname
    assert host == "workload"
    text = _x509(crt, "-ext", "subjectAltName,basicConstraints,extendedKeyUsage")
    assert f"DNS:{host}" in text
    # webpki-based clients refuse a CA:TRUE certificate from a server (CaUsedAsEndEntity) unless
    # they trust that very certificate, as the loadgen does: CA:FALSE suits every client.
    assert "CA:FALSE" in text and "TLS Web Server Authentication" in text


def test_an_old_ca_certificate_is_replaced_and_a_good_one_kept(tmp_path: Path):
    out = tmp_path / "tls"
    out.mkdir()
    subprocess.run([require_tool("openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=workload", "-addext", "basicConstraints=critical,CA:TRUE",
                    "-keyout", str(out / "tls.key"), "-out", str(out / "tls.crt")],
                   capture_output=True, check=True, timeout=60)  # fmt: skip
    _script_cert(out, "workload")
    assert "CA:FALSE" in _x509(out / "tls.crt", "-ext", "basicConstraints")
    before = (out / "tls.crt").read_bytes()
    _script_cert(out, "workload")
    assert (out / "tls.crt").read_bytes() == before


# ------------------------------------------------------------------------------ the merged file
def test_the_server_its_healthcheck_and_its_init_step_see_the_same_tls_files(merged: dict):
    workload, init = merged["services"]["workload"], merged["services"]["workload-init"]
    source, target = _tls_mount(workload)
    assert _tls_mount(init) == (source, target)
    assert source == str(merged["_secrets"] / "tls-compose")
    for name in ("WORKLOAD_TLS_CERT", "WORKLOAD_TLS_KEY"):
        assert workload["environment"][name] == init["environment"][name]
        assert workload["environment"][name].startswith(target + "/"), workload["environment"][name]
    # The override adds to the shared settings, it does not replace them.
    assert workload["environment"] == init["environment"]
    assert workload["environment"]["WORKLOAD_LOG_FORMAT"] == "json"
    # The healthcheck is the workload's own, reading the same environment.
    assert workload["healthcheck"]["test"] == ["CMD", "/usr/local/bin/workload", "healthcheck"]
    assert merged["services"]["workload"]["depends_on"]["workload-init"]["condition"] == "service_completed_successfully"


def test_the_loadgen_trusts_exactly_the_mounted_certificate_and_keeps_its_scenarios(merged: dict):
    loadgen = merged["services"]["loadgen"]
    source, target = _tls_mount(loadgen)
    assert (source, target) == _tls_mount(merged["services"]["workload"])
    command = loadgen["command"]
    assert _arg_after(command, "--cacert") == merged["services"]["workload"]["environment"]["WORKLOAD_TLS_CERT"]
    assert _arg_after(command, "--target").startswith("https://workload:")
    mounts = [v if isinstance(v, str) else f"{v['source']}:{v['target']}" for v in loadgen["volumes"]]
    assert any(m.split(":")[1] == "/usr/share/scalebench/scenarios" for m in mounts), mounts
    assert "--insecure" not in command


# ------------------------------------------------------------------------------ the real binaries
def _container_env(service: dict, cert_dir: Path, **overrides: str) -> dict[str, str]:
    """The service's environment with /run/tls moved to `cert_dir`, plus `overrides`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORKLOAD_", "OTEL_", "LOADGEN_"))}
    for name, value in service["environment"].items():
        env[name] = str(value).replace(MOUNT, str(cert_dir)) if value is not None else ""
    env.update(overrides)
    return env


def _check_config(binaries, merged: dict, cert_dir: Path) -> subprocess.CompletedProcess:
    init = merged["services"]["workload-init"]
    env = _container_env(init, cert_dir, WORKLOAD_ADDR="127.0.0.1:0", WORKLOAD_METRICS_ADDR="127.0.0.1:0")
    return _run([str(binaries["workload"]), *init["command"]], env=env)


def test_check_config_passes_with_the_scripts_certificate(binaries, merged: dict, tmp_path: Path):
    cert_dir = _script_cert(tmp_path / "tls", "localhost")
    proc = _check_config(binaries, merged, cert_dir)
    assert proc.returncode == 0, proc.stderr
    assert "workload check-config: ok" in proc.stderr


@pytest.mark.parametrize("broken", ["missing", "mismatched"])
def test_check_config_stops_the_stack_naming_the_file_and_why(binaries, merged: dict, tmp_path: Path, broken: str):
    cert_dir = _script_cert(tmp_path / "tls", "localhost")
    if broken == "missing":  # `make tls-compose-cert` was never run: the mounted directory is empty
        for f in cert_dir.iterdir():
            f.unlink()
        want = f"cannot read the TLS certificate {cert_dir}/tls.crt"
    else:  # a key from another certificate
        other = _script_cert(tmp_path / "other", "localhost")
        shutil.copy(other / "tls.key", cert_dir / "tls.key")
        want = "are not usable together"
    proc = _check_config(binaries, merged, cert_dir)
    assert proc.returncode == 1, proc.stderr
    line = next((l for l in proc.stderr.splitlines() if "WORKLOAD_TLS_CERT" in l), "")
    assert line.startswith("workload check-config: ") and want in line, proc.stderr


@pytest.fixture
def tls_server(binaries, merged: dict, tmp_path: Path):
    """The real workload with the merged file's settings and the script's certificate (for
    localhost, where the test reaches it)."""
    cert_dir = _script_cert(tmp_path / "tls", "localhost")
    port, metrics = free_port(), free_port()
    env = _container_env(merged["services"]["workload"], cert_dir, WORKLOAD_ADDR=f"127.0.0.1:{port}",
                         WORKLOAD_METRICS_ADDR=f"127.0.0.1:{metrics}", WORKLOAD_LOG_FORMAT="text")  # fmt: skip
    log = tmp_path / "workload.log"
    proc = spawn([str(binaries["workload"])], log, env)
    try:
        # Ready: the shipped healthcheck (over TLS) passes.
        def healthy() -> subprocess.CompletedProcess | None:
            check = _run([str(binaries["workload"]), "healthcheck"], env=env)
            return check if check.returncode == 0 else None

        check = wait_until("the workload's healthcheck passed", healthy, 30, proc, log, interval=0.2)
        yield {"port": port, "env": env, "cert_dir": cert_dir, "healthcheck": check}
    finally:
        terminate(proc, grace=30)


def test_the_containers_healthcheck_passes_over_tls(binaries, tls_server):
    check = tls_server["healthcheck"]
    assert check.returncode == 0, check.stderr
    # What the shipped healthcheck did before it spoke TLS: a plain request, answered by an alert.
    plain = {k: v for k, v in tls_server["env"].items() if not k.startswith("WORKLOAD_TLS_")}
    refused = _run([str(binaries["workload"]), "healthcheck"], env=plain)
    assert refused.returncode == 1 and "no valid HTTP answer" in refused.stderr, refused.stderr


@pytest.mark.parametrize("http2", [False, True], ids=["http1", "http2"])
def test_the_loadgens_command_succeeds_on_every_request(binaries, merged: dict, tls_server, tmp_path: Path, http2: bool):
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    (scenarios / "tls-smoke.yaml").write_text(yaml.safe_dump({
        "name": "tls-smoke",
        "load": {"rate": 20, "duration": "2s"},
        "requests": [{"name": "ping", "path": "/ping"}, {"name": "hello", "method": "POST", "path": "/api/v1/hello", "json": {}}],
    }))  # fmt: skip
    args = []
    for arg in merged["services"]["loadgen"]["command"]:
        arg = arg.replace(MOUNT, str(tls_server["cert_dir"]))
        arg = arg.replace("https://workload:8080", f"https://localhost:{tls_server['port']}")
        args.append(arg.replace("0.0.0.0:9464", f"127.0.0.1:{free_port()}"))
    assert args[1] == "scenarios/tls-smoke.yaml" and f"https://localhost:{tls_server['port']}" in args
    report = tmp_path / "report.json"
    extra = ["--http2"] if http2 else []
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOADGEN_")}
    proc = _run([str(binaries["loadgen"]), *args, *extra, "--metrics-linger", "0s", "--out", str(report), "--quiet"],
                cwd=tmp_path, env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(report.read_text())["summary"]
    assert summary["requests"] >= 30 and summary["failures"] == 0, summary
