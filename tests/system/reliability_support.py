"""Helpers for the reliability tests (issue 7): small HTTP probes, samplers that run beside a load
run, and Prometheus text parsing. The processes under test are started by `procs`.

Everything talks to 127.0.0.1 only, and every wait has a deadline: a test that would hang fails
with the reason instead.
"""

from __future__ import annotations

import http.client
import math
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path



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
