"""The stack's secrets and access control, proven without containers (docs/security.md).

- scripts/compose-secrets.sh makes random passwords once and keeps them, a web config without
  users for 127.0.0.1 and with a bcrypt basic-auth user for any other PROMETHEUS_BIND, and
  Grafana's datasources with the Prometheus credentials; promtool accepts both web configs.
- docker-compose.yml, as compose resolves it, holds no literal or default password and keeps
  Prometheus' lifecycle API off.
- The real Prometheus of the pinned release, started on 127.0.0.1 with compose's own flags and
  the generated web config, refuses a remote write without the password or with a wrong one,
  stores the one with it, and refuses /-/quit; with the loopback web config it takes writes
  without a password.
Run alone: `python3 -m pytest -v tests/system/test_security.py`.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import struct
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, prometheus_tool, require_tool
from procs import start_prometheus

SECRETS_SCRIPT = ROOT / "scripts" / "compose-secrets.sh"
COMPOSE_FILE = ROOT / "docker-compose.yml"
USER = "scalebench"


def _make_secrets(secrets: Path, bind: str = "127.0.0.1") -> subprocess.CompletedProcess:
    env = {"PATH": os.environ["PATH"], "HOME": str(secrets.parent), "SCALEBENCH_SECRETS_DIR": str(secrets),
           "PROMETHEUS_BIND": bind}
    return subprocess.run(["bash", str(SECRETS_SCRIPT)], env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def secrets(tmp_path: Path) -> Path:
    out = tmp_path / "secrets"
    for bind in ("127.0.0.1", "0.0.0.0"):
        made = _make_secrets(out, bind)
        assert made.returncode == 0, made.stderr
    return out


# ------------------------------------------------------------------------------ the generator
def test_secrets_are_random_kept_and_private(secrets: Path, tmp_path: Path) -> None:
    assert secrets.stat().st_mode & 0o777 == 0o700, "other users of the machine could read them"
    passwords = {name: (secrets / name).read_text() for name in ("grafana-admin-password", "prometheus-password")}
    for name, value in passwords.items():
        assert re.fullmatch(r"[0-9a-f]{48}", value), f"{name} is not 192 random bits"
    assert len(set(passwords.values())) == 2
    again = _make_secrets(secrets, "10.0.0.1")
    assert again.returncode == 0, again.stderr
    assert {name: (secrets / name).read_text() for name in passwords} == passwords, "a run replaced a password"
    other = tmp_path / "other"
    assert _make_secrets(other).returncode == 0
    assert (other / "grafana-admin-password").read_text() != passwords["grafana-admin-password"]


def test_web_config_has_users_only_beyond_loopback(secrets: Path) -> None:
    promtool = prometheus_tool("promtool")
    loopback = yaml.safe_load((secrets / "prometheus-web-127.0.0.1.yml").read_text())
    exposed = yaml.safe_load((secrets / "prometheus-web-0.0.0.0.yml").read_text())
    assert not loopback, loopback
    (user, digest), = exposed["basic_auth_users"].items()
    assert user == USER and re.fullmatch(r"\$2[aby]\$\d\d\$.{53}", digest), exposed
    assert (secrets / "prometheus-password").read_text() not in (secrets / "prometheus-web-0.0.0.0.yml").read_text()
    for name in ("prometheus-web-127.0.0.1.yml", "prometheus-web-0.0.0.0.yml"):
        check = subprocess.run([promtool, "check", "web-config", str(secrets / name)], capture_output=True, text=True, timeout=60)
        assert check.returncode == 0, check.stdout + check.stderr


def test_secrets_script_rejects_a_bind_that_is_no_address(tmp_path: Path) -> None:
    made = _make_secrets(tmp_path / "s", "0.0.0.0/../../x")
    assert made.returncode == 2 and "is not an address" in made.stderr
    assert not (tmp_path / "s").exists()


def test_grafana_datasources_add_only_the_prometheus_credentials(secrets: Path) -> None:
    original = yaml.safe_load((ROOT / "grafana" / "provisioning" / "datasources" / "datasources.yml").read_text())
    generated = yaml.safe_load((secrets / "grafana-datasources.yml").read_text())
    prom = next(d for d in generated["datasources"] if d["uid"] == "prometheus")
    assert (prom.pop("basicAuth"), prom.pop("basicAuthUser")) == (True, USER)
    assert prom.pop("secureJsonData") == {"basicAuthPassword": "$__file{/run/secrets/prometheus_password}"}
    assert generated == original
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    assert "prometheus_password" in compose["services"]["grafana"]["secrets"], "Grafana has no password file"


# -------------------------------------------------------------------------------- compose file
def _compose_config(secrets: Path, bind: str) -> str:
    compose = shutil.which("docker-compose")
    if compose:
        cmd = [compose]
    elif shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        cmd = ["docker", "compose"]
    else:
        cmd = [require_tool("docker-compose")]
    env = {**os.environ, "SCALEBENCH_SECRETS_DIR": str(secrets), "PROMETHEUS_BIND": bind}
    env.pop("GRAFANA_ADMIN_PASSWORD", None)
    proc = subprocess.run([*cmd, "-f", str(COMPOSE_FILE), "--profile", "tracing", "config"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.parametrize("bind", ["127.0.0.1", "0.0.0.0"])
def test_compose_config_holds_no_password(secrets: Path, bind: str) -> None:
    """What compose resolves (environment, commands, healthchecks) names password files only: no
    literal, no `${VAR:-admin}` default, none of the generated values."""
    text = _compose_config(secrets, bind)
    config = yaml.safe_load(text)
    for value in ((secrets / "grafana-admin-password").read_text(), (secrets / "prometheus-password").read_text()):
        assert value not in text
    assert not re.search(r":-\s*admin\b", COMPOSE_FILE.read_text()), "a default password in docker-compose.yml"
    grafana_env = config["services"]["grafana"]["environment"]
    assert "GF_SECURITY_ADMIN_PASSWORD" not in grafana_env, grafana_env
    assert grafana_env["GF_SECURITY_ADMIN_PASSWORD__FILE"] == "/run/secrets/grafana_admin_password"
    for name, svc in config["services"].items():
        for key, value in (svc.get("environment") or {}).items():
            if re.search(r"PASSWORD|SECRET|TOKEN", key) and not key.endswith("__FILE"):
                pytest.fail(f"{name}: {key} is set in the environment")
    assert config["secrets"]["grafana_admin_password"]["file"] == str(secrets / "grafana-admin-password")
    assert config["secrets"]["prometheus_web_config"]["file"] == str(secrets / f"prometheus-web-{bind}.yml")
    prometheus = config["services"]["prometheus"]
    assert "--web.enable-lifecycle" not in prometheus["command"]
    assert "--web.config.file=/run/secrets/prometheus_web_config" in prometheus["command"]
    port = prometheus["ports"][0]  # "IP:HOST:CONTAINER" (1.29) or {host_ip: ...} (v2)
    assert (port["host_ip"] if isinstance(port, dict) else port.split(":")[0]) == bind, port


# ------------------------------------------------------------------ the real Prometheus binary
def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def write_request(name: str, value: float, timestamp_ms: int) -> bytes:
    """A remote-write body: a prompb.WriteRequest with one sample, snappy block-compressed (one
    literal, which every snappy decoder accepts)."""
    label = _field(1, b"__name__") + _field(2, name.encode())
    sample = bytes([0x09]) + struct.pack("<d", value) + bytes([0x10]) + _varint(timestamp_ms)
    proto = _field(1, _field(1, label) + _field(2, sample))
    n = len(proto) - 1
    assert n < 65536
    tag = bytes([n << 2]) if n < 60 else bytes([60 << 2, n]) if n < 256 else bytes([61 << 2]) + n.to_bytes(2, "little")
    return _varint(len(proto)) + tag + proto


def _status(url: str, data: bytes | None = None, auth: tuple[str, str] | None = None, method: str | None = None) -> int:
    headers = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
               "X-Prometheus-Remote-Write-Version": "0.1.0"} if data is not None else {}
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310 (127.0.0.1 only)
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code


def _start_prometheus(tmp_path: Path, web_config: Path, auth: tuple[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    """The pinned Prometheus release with docker-compose.yml's own flags (paths moved to TMP_PATH),
    on a free 127.0.0.1 port."""
    binary = prometheus_tool("prometheus")
    flags = yaml.safe_load(COMPOSE_FILE.read_text())["services"]["prometheus"]["command"]
    moved = {"--config.file": str(ROOT / "prometheus" / "prometheus.yml"), "--storage.tsdb.path": str(tmp_path / "data"),
             "--web.config.file": str(web_config)}
    args = [f"{f.split('=', 1)[0]}={moved[f.split('=', 1)[0]]}" if f.split("=", 1)[0] in moved else f for f in flags]
    return start_prometheus(binary, *args, log=tmp_path / "prometheus.log", auth=auth)


def _series(base: str, name: str, auth: tuple[str, str] | None) -> list:
    query = urllib.parse.urlencode({"query": name})
    request = urllib.request.Request(f"{base}/api/v1/query?{query}")
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode())
    with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310 (127.0.0.1 only)
        return json.loads(resp.read())["data"]["result"]


def test_prometheus_beyond_loopback_takes_remote_writes_only_with_the_password(secrets: Path, tmp_path: Path) -> None:
    password = (secrets / "prometheus-password").read_text()
    proc, base = _start_prometheus(tmp_path, secrets / "prometheus-web-0.0.0.0.yml", (USER, password))
    try:
        now = int(time.time() * 1000)
        assert _status(f"{base}/api/v1/write", write_request("forged_without_auth", 1, now)) == 401
        assert _status(f"{base}/api/v1/write", write_request("forged_wrong_password", 1, now), (USER, "x" * 48)) == 401
        assert _status(f"{base}/api/v1/write", write_request("forged_other_user", 1, now), ("admin", password)) == 401
        assert _status(f"{base}/api/v1/write", write_request("pushed_with_auth", 42, now), (USER, password)) == 204
        assert _status(f"{base}/api/v1/query?query=up") == 401, "reads need the password too"
        assert _status(f"{base}/-/quit", b"", (USER, password), method="POST") == 403, "lifecycle API is on"
        (stored,) = _series(base, "pushed_with_auth", (USER, password))
        assert float(stored["value"][1]) == 42
        for name in ("forged_without_auth", "forged_wrong_password", "forged_other_user"):
            assert _series(base, name, (USER, password)) == [], name
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_prometheus_on_loopback_takes_writes_without_a_password(secrets: Path, tmp_path: Path) -> None:
    """127.0.0.1 only (the default): bench/compare.sh and Tempo push without credentials."""
    proc, base = _start_prometheus(tmp_path, secrets / "prometheus-web-127.0.0.1.yml")
    try:
        assert _status(f"{base}/api/v1/write", write_request("pushed_on_loopback", 7, int(time.time() * 1000))) == 204
        (stored,) = _series(base, "pushed_on_loopback", None)
        assert float(stored["value"][1]) == 7
    finally:
        proc.terminate()
        proc.wait(timeout=30)
