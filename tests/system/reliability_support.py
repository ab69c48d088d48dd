"""Helpers for the reliability tests (issue 7): a workload process under test, small HTTP probes,
samplers that run beside a load run, and the `FIGURE` lines the tests print.

Everything talks to 127.0.0.1 only, and every wait has a deadline: a test that would hang fails
with the reason instead.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import re
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conftest import figure  # noqa: F401 (re-exported for the reliability tests)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    assert values, "percentile of no values"
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


# --- HTTP probes ------------------------------------------------------------------------------


@dataclass
class Probe:
    """One request's outcome: a status, or the transport error's kind."""

    started: float
    elapsed: float
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    error: str | None = None


def classify_error(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connect_refused"
    if isinstance(exc, (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected)):
        return "reset"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timeout"
    return f"other:{type(exc).__name__}"


def get(port: int, path: str, timeout: float = 5.0, method: str = "GET") -> Probe:
    """One request on a fresh connection (so a closed listener shows as connect_refused)."""
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path)
        resp = conn.getresponse()
        body = resp.read()
        return Probe(
            started=started,
            elapsed=time.monotonic() - started,
            status=resp.status,
            headers={k.lower(): v for k, v in resp.getheaders()},
            body=body,
        )
    except (OSError, http.client.HTTPException) as exc:
        return Probe(started=started, elapsed=time.monotonic() - started, error=classify_error(exc))
    finally:
        conn.close()


class Poller(threading.Thread):
    """Requests `path` every `interval` seconds until stopped (or `limit` seconds pass), keeping
    every outcome. Used for /readyz during a drain and as a latency probe during overload."""

    def __init__(self, port: int, path: str, interval: float, limit: float, timeout: float = 5.0):
        super().__init__(daemon=True)
        self.port, self.path, self.interval, self.limit, self.timeout = (
            port,
            path,
            interval,
            limit,
            timeout,
        )
        self.results: list[Probe] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + self.limit
        next_at = time.monotonic()
        while not self._stop_event.is_set() and time.monotonic() < deadline:
            self.results.append(get(self.port, self.path, timeout=self.timeout))
            next_at += self.interval
            delay = next_at - time.monotonic()
            if delay > 0:
                self._stop_event.wait(delay)
            else:
                next_at = time.monotonic()

    def stop(self) -> list[Probe]:
        self._stop_event.set()
        self.join(timeout=self.timeout + 5)
        return self.results


def rss_kib(pid: int) -> int | None:
    """Resident set size of a live process from /proc (None once it is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(r"^VmRSS:\s+(\d+)\s+kB", text, re.M)
    return int(match.group(1)) if match else None


class RssSampler(threading.Thread):
    """Samples a process's RSS every `interval` seconds: (monotonic time, KiB)."""

    def __init__(self, pid: int, interval: float = 0.2, limit: float = 120.0):
        super().__init__(daemon=True)
        self.pid, self.interval, self.limit = pid, interval, limit
        self.samples: list[tuple[float, int]] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + self.limit
        while not self._stop_event.is_set() and time.monotonic() < deadline:
            value = rss_kib(self.pid)
            if value is not None:
                self.samples.append((time.monotonic(), value))
            self._stop_event.wait(self.interval)

    def stop(self) -> list[tuple[float, int]]:
        self._stop_event.set()
        self.join(timeout=5)
        return self.samples


# --- the workload under test ------------------------------------------------------------------


class Workload:
    """A `workload` process on 127.0.0.1 with its log in a file (never a pipe that could fill)."""

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
        self._log = None

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
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [str(self.binary)], env=env, stdout=self._log, stderr=subprocess.STDOUT
        )
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
        while time.monotonic() - start < within:
            if not self.alive():
                raise AssertionError(f"workload exited early:\n{self.log()}")
            if get(self.port, "/readyz", timeout=1.0).status == 200:
                return time.monotonic() - start
            time.sleep(0.02)
        raise AssertionError(f"workload not ready within {within}s:\n{self.log()}")

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
        """Ends the process (SIGKILL if a polite SIGTERM does not do it) and closes the log."""
        terminate(self.proc)
        if self._log is not None:
            self._log.close()
            self._log = None


# --- loadgen ----------------------------------------------------------------------------------


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
            raise AssertionError(
                f"loadgen did not finish within {timeout}s; stderr:\n{self.stderr()}"
            ) from None

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")[-6000:]

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")[-6000:]

    def report(self) -> dict[str, Any]:
        assert self.out.exists(), (
            f"loadgen wrote no report at {self.out}; stderr:\n{self.stderr()}"
        )
        return json.loads(self.out.read_text())


def start_loadgen(binary: Path, workdir: Path, name: str, args: list[str]) -> LoadgenRun:
    """Starts loadgen with `--out NAME.json --quiet` added; output goes to files."""
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


def log_tail(path: Path, tail: int = 4000) -> str:
    """The end of a process's log file ("" if there is none yet)."""
    try:
        return path.read_text(errors="replace")[-tail:]
    except OSError:
        return ""


def terminate(proc: subprocess.Popen[bytes] | None, grace: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if the process lingers past `grace`: only this process, by its pid."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def kill_quietly(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.kill()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


# --- Prometheus text --------------------------------------------------------------------------

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """(labels, value) of every sample of the metric `name` in an exposition."""
    found = []
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match and match.group(1) == name:
            labels = dict(_LABEL.findall(match.group(2) or ""))
            found.append((labels, float(match.group(3))))
    return found


def histogram_quantile(text: str, name: str, q: float, **match: str) -> tuple[float, float]:
    """(upper bound of the bucket holding quantile q, total count) of a histogram's series whose
    labels include `match`, summed over the other labels. Like PromQL's, but without
    interpolation: the answer is a bound, which is what an assertion needs."""
    buckets: dict[float, float] = {}
    for labels, value in samples(text, f"{name}_bucket"):
        if all(labels.get(k) == v for k, v in match.items()):
            le = float("inf") if labels["le"] == "+Inf" else float(labels["le"])
            buckets[le] = buckets.get(le, 0.0) + value
    if not buckets:
        return (float("nan"), 0.0)
    total = buckets[max(buckets)]
    if total == 0:
        return (float("nan"), 0.0)
    for le in sorted(buckets):
        if buckets[le] >= q * total:
            return (le, total)
    return (float("inf"), total)
