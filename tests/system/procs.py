"""The processes the system tests start: the workload, the loadgen and Prometheus, on free ports
of 127.0.0.1, their output in log files (never a pipe that could fill), one way to wait until
one is ready, and one way to stop it.

Every wait has a deadline and fails with the process's log when the process exits first or the
deadline passes, so a test that would hang fails with the reason instead. Processes are stopped
by the handle the test holds, never by name.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TypeVar

T = TypeVar("T")


def free_port() -> int:
    """A port that was free a moment ago on 127.0.0.1 (bind port 0, read it, release it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def log_tail(path: Path | None, tail: int = 4000) -> str:
    """The end of a process's log file ("" if there is none yet)."""
    if path is None:
        return ""
    try:
        return path.read_text(errors="replace")[-tail:]
    except OSError:
        return ""


def spawn(
    cmd: list[str],
    log: Path | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Starts `cmd` with stdout and stderr appended to `log` (or discarded) and no stdin; `env`
    replaces the environment when given."""
    if log is None:
        return subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, env=env, cwd=cwd
        )
    with open(log, "ab") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=cwd)


def wait_until(
    what: str,
    check: Callable[[], T | None],
    within: float,
    proc: subprocess.Popen | None = None,
    log: Path | None = None,
    interval: float = 0.05,
) -> T:
    """Calls `check` until it returns something other than None (returned), for at most `within`
    seconds. Fails with `log`'s tail when `proc` exits first or time runs out."""
    deadline = time.monotonic() + within
    while True:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{proc.args[0]} exited with {proc.returncode} before {what}:\n{log_tail(log)}")
        found = check()
        if found is not None:
            return found
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {within}s:\n{log_tail(log)}")
        time.sleep(interval)


def http_body(url: str, timeout: float = 2.0, auth: tuple[str, str] | None = None) -> str | None:
    """The body of a 200 answer to GET `url` (with basic `auth` if given), or None (any other
    status, or no answer)."""
    request = urllib.request.Request(url)
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310 (127.0.0.1 only)
            return resp.read().decode(errors="replace") if resp.status == 200 else None
    except (urllib.error.URLError, OSError):
        return None


def wait_until_ready(
    url: str,
    within: float,
    proc: subprocess.Popen | None = None,
    log: Path | None = None,
    contains: str = "",
    auth: tuple[str, str] | None = None,
) -> str:
    """Waits until GET `url` answers 200 with a body containing `contains`; returns the body."""

    def ready() -> str | None:
        body = http_body(url, auth=auth)
        return body if body is not None and contains in body else None

    what = f"{url} answered 200" + (f" with {contains!r}" if contains else "")
    return wait_until(what, ready, within, proc, log)


def terminate(proc: subprocess.Popen | None, grace: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if the process lingers past `grace`: only this process, by its pid."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def kill_quietly(proc: subprocess.Popen | None) -> None:
    """SIGKILL without waiting long: for teardown after a failure."""
    if proc is not None and proc.poll() is None:
        proc.kill()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


# --- the workload -------------------------------------------------------------------------------


def start_workload(
    binary: Path, *extra: str, launcher: list[str] | None = None, log: Path | None = None, within: float = 20
) -> tuple[subprocess.Popen[bytes], str]:
    """A workload on 127.0.0.1 (free ports), once it answers /readyz; `launcher` prefixes the
    command (e.g. `taskset -c 1`). Returns the process and its base URL."""
    port, metrics_port = free_port(), free_port()
    cmd = [
        *(launcher or []),
        str(binary),
        "--addr",
        f"127.0.0.1:{port}",
        "--metrics-addr",
        f"127.0.0.1:{metrics_port}",
        "--drain-delay",
        "0s",
        "--log-format",
        "text",
        *extra,
    ]
    proc = spawn(cmd, log)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(f"{base}/readyz", within, proc, log)
    except AssertionError:
        kill_quietly(proc)
        raise
    return proc, base


def _get_status(port: int, path: str) -> int | None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1.0)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    except OSError:
        return None
    finally:
        conn.close()


class Workload:
    """A `workload` process on 127.0.0.1 configured by environment, with its log in a file."""

    def __init__(
        self,
        binary: Path,
        workdir: Path,
        port: int,
        metrics_port: int,
        env: dict[str, str] | None = None,
        name: str = "workload",
    ):
        self.binary, self.port, self.metrics_port = binary, port, metrics_port
        self.env = dict(env or {})
        self.log_path = workdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, ready_within: float = 15.0) -> Workload:
        env = {
            **os.environ,
            "WORKLOAD_ADDR": f"127.0.0.1:{self.port}",
            "WORKLOAD_METRICS_ADDR": f"127.0.0.1:{self.metrics_port}",
            "WORKLOAD_LOG_FORMAT": "json",
            "WORKLOAD_LOG": "warn",
            "WORKLOAD_HOSTNAME": "reliability-test",
            **self.env,
        }
        env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
        self.proc = spawn([str(self.binary)], self.log_path, env)
        self.wait_ready(ready_within)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, within: float) -> float:
        """Seconds until /readyz answered 200; fails with the log if it never does."""
        start = time.monotonic()
        wait_until(
            f"workload on port {self.port} ready",
            lambda: True if _get_status(self.port, "/readyz") == 200 else None,
            within,
            self.proc,
            self.log_path,
            interval=0.02,
        )
        return time.monotonic() - start

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def metrics(self) -> str:
        conn = http.client.HTTPConnection("127.0.0.1", self.metrics_port, timeout=5)
        try:
            conn.request("GET", "/metrics")
            return conn.getresponse().read().decode()
        finally:
            conn.close()

    def log(self, tail: int = 4000) -> str:
        return log_tail(self.log_path, tail)

    def stop(self) -> None:
        """Ends the process (SIGKILL if a polite SIGTERM does not do it)."""
        terminate(self.proc)


# --- the loadgen --------------------------------------------------------------------------------


@dataclass
class LoadgenRun:
    proc: subprocess.Popen[bytes]
    out: Path
    stdout_path: Path
    stderr_path: Path
    started: float

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
            raise AssertionError(f"loadgen did not finish within {timeout}s; stderr:\n{self.stderr()}") from None

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")[-6000:]

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")[-6000:]

    def report(self) -> dict[str, Any]:
        assert self.out.exists(), f"loadgen wrote no report at {self.out}; stderr:\n{self.stderr()}"
        return json.loads(self.out.read_text())


def start_loadgen(binary: Path, workdir: Path, name: str, args: list[str]) -> LoadgenRun:
    """Starts loadgen with `--out NAME.json --quiet` added; stdout and stderr go to files."""
    out = workdir / f"{name}.json"
    stdout_path = workdir / f"{name}.stdout"
    stderr_path = workdir / f"{name}.stderr"
    env = {**os.environ, "NO_COLOR": "1"}
    with open(stdout_path, "wb") as so, open(stderr_path, "wb") as se:
        proc = subprocess.Popen(
            [str(binary), *args, "--out", str(out), "--quiet"],
            stdout=so,
            stderr=se,
            stdin=subprocess.DEVNULL,
            env=env,
        )
    return LoadgenRun(proc, out, stdout_path, stderr_path, time.monotonic())


# --- Prometheus ---------------------------------------------------------------------------------


def start_prometheus(
    binary: str,
    *args: str,
    log: Path,
    port: int | None = None,
    auth: tuple[str, str] | None = None,
    within: float = 60,
) -> tuple[subprocess.Popen[bytes], str]:
    """A Prometheus on 127.0.0.1 (a free port unless `port` is given), once it is ready (its TSDB
    open, writes taken: /-/ready answers 200, with basic `auth` when its web config asks for it);
    `args` are its flags besides the listen address. Returns the process and its base URL."""
    port = port or free_port()
    proc = spawn([binary, *args, f"--web.listen-address=127.0.0.1:{port}"], log)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(f"{base}/-/ready", within, proc, log, auth=auth)
    except AssertionError:
        kill_quietly(proc)
        raise
    return proc, base
