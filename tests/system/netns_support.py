"""A Kubernetes Service on the real kernel, in a network namespace the test makes (issue 11).

kube-proxy (iptables mode) balances a ClusterIP Service per *connection*: a nat-table chain
`KUBE-SVC-*` picks one `KUBE-SEP-*` endpoint chain with `-m statistic --mode random`, whose DNAT
rewrites the first packet's destination; conntrack then keeps every later packet of that
connection on the same endpoint. When endpoints change, kube-proxy rewrites the chains atomically
with `iptables-restore --noflush`; connections already open keep their endpoint. This module
builds exactly that, so a test can watch what a load generator's keep-alive connections do.

Layout inside the namespace (nothing outside it is touched):
- `lo` carries the pod addresses (10.244.0.11, .12, ...) and the client's own (10.0.0.1);
- the Service CIDR 10.96.0.0/16 is routed over `lo` from 10.0.0.1, and the ClusterIP is on no
  interface at all, as with kube-proxy: only the DNAT makes it answer;
- the rules hang off `OUTPUT` (locally generated traffic; the client is in the namespace too) and
  `PREROUTING`, as kube-proxy hooks both.

The test process itself stays in the host's namespace. To reach the namespace it runs a short
function in a thread that has joined the namespace (`setns(2)` applies to the calling thread only;
a socket keeps the namespace it was made in), see `NetNamespace.call`.
"""

from __future__ import annotations

import base64
import ctypes
import hashlib
import http.client
import os
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TypeVar

from procs import log_tail, spawn, terminate, wait_until

T = TypeVar("T")

CLONE_NEWNET = 0x40000000
COMMAND_TIMEOUT_S = 20.0

_libc = ctypes.CDLL(None, use_errno=True)


class NetNamespace:
    """A named network namespace (`ip netns add`), made by and for one test, deleted by `delete`."""

    def __init__(self, name: str):
        self.name = name
        self.path = Path("/run/netns") / name
        self.created = False

    def create(self) -> NetNamespace:
        run(["ip", "netns", "add", self.name])
        self.created = True
        self.ip("link", "set", "lo", "up")
        return self

    def delete(self) -> None:
        """Deletes the namespace (its addresses, routes, rules and conntrack table go with it)."""
        if self.created:
            subprocess.run(["ip", "netns", "del", self.name], capture_output=True, timeout=COMMAND_TIMEOUT_S)
            self.created = False

    def ip(self, *args: str) -> str:
        return run(["ip", "-n", self.name, *args])

    def command(self, argv: list[str]) -> list[str]:
        """`argv` run inside the namespace (`ip netns exec` execs it: the pid is the program's)."""
        return ["ip", "netns", "exec", self.name, *argv]

    def call(self, fn: Callable[[], T], timeout: float = COMMAND_TIMEOUT_S) -> T:
        """`fn()` run in a thread that joined this namespace; its sockets live in the namespace."""
        result: dict[str, Any] = {}

        def body() -> None:
            try:
                fd = os.open(self.path, os.O_RDONLY)
                try:
                    if _libc.setns(fd, CLONE_NEWNET) != 0:
                        err = ctypes.get_errno()
                        raise OSError(err, f"setns({self.path}): {os.strerror(err)}")
                finally:
                    os.close(fd)
                result["value"] = fn()
            except BaseException as exc:  # handed to the caller's thread
                result["error"] = exc

        thread = threading.Thread(target=body, name=f"in-{self.name}", daemon=True)
        thread.start()
        thread.join(timeout)
        if thread.is_alive():
            raise TimeoutError(f"call inside {self.name} did not return within {timeout}s")
        if "error" in result:
            raise result["error"]
        return result["value"]

    def listen(self, host: str = "127.0.0.1", port: int = 0) -> socket.socket:
        """A listening TCP socket inside the namespace (for a server run by the test process)."""

        def make() -> socket.socket:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(64)
            return sock

        return self.call(make)

    def http_get(self, host: str, port: int, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
        """(status, body) of one GET on a fresh connection from inside the namespace."""

        def fetch() -> tuple[int, bytes]:
            conn = http.client.HTTPConnection(host, port, timeout=timeout)
            try:
                conn.request("GET", path)
                resp = conn.getresponse()
                return resp.status, resp.read()
            finally:
                conn.close()

        return self.call(fetch, timeout=timeout + 5)


def run(argv: list[str], stdin: str | None = None) -> str:
    """Runs a short command; fails with its stderr, never hangs."""
    proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.strip()}")
    return proc.stdout


# --- kube-proxy's rules -----------------------------------------------------------------------


def _chain_suffix(*parts: str) -> str:
    """kube-proxy's chain names: base32 of the SHA-256 of the port name (and endpoint), 16 chars."""
    digest = hashlib.sha256("".join(parts).encode()).digest()
    return base64.b32encode(digest).decode()[:16]


@dataclass
class ClusterIpService:
    """The nat-table chains kube-proxy writes for one ClusterIP Service port, and its endpoints."""

    namespace: NetNamespace
    cluster_ip: str
    port: int
    target_port: int
    port_name: str = "scalebench/workload:http"
    endpoints: list[str] = field(default_factory=list)
    switched_at: list[float] = field(default_factory=list)

    @property
    def svc_chain(self) -> str:
        return "KUBE-SVC-" + _chain_suffix(self.port_name, "tcp")

    def sep_chain(self, endpoint_ip: str) -> str:
        return "KUBE-SEP-" + _chain_suffix(self.port_name, "tcp", f"{endpoint_ip}:{self.target_port}")

    def install(self, endpoints: list[str]) -> None:
        """The first sync: the hooks from PREROUTING and OUTPUT into KUBE-SERVICES, then the chains."""
        hooks = (
            "*nat\n:KUBE-SERVICES - [0:0]\n"
            '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES\n'
            '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES\n'
            "COMMIT\n"
        )
        run(self.namespace.command(["iptables-restore"]), stdin=hooks)
        self.set_endpoints(endpoints)

    def restore_input(self, endpoints: list[str]) -> str:
        """What kube-proxy feeds `iptables-restore --noflush` for this Service: every chain it
        owns declared (which flushes it), rebuilt from scratch, stale endpoint chains deleted."""
        n = len(endpoints)
        stale = [ip for ip in self.endpoints if ip not in endpoints]
        lines = ["*nat", ":KUBE-SERVICES - [0:0]", f":{self.svc_chain} - [0:0]"]
        lines += [f":{self.sep_chain(ip)} - [0:0]" for ip in [*endpoints, *stale]]
        lines.append(
            f'-A KUBE-SERVICES -m comment --comment "{self.port_name} cluster IP" '
            f"-d {self.cluster_ip}/32 -p tcp -m tcp --dport {self.port} -j {self.svc_chain}"
        )
        for i, ip in enumerate(endpoints):
            # kube-proxy's computeProbability: 1/(n-i) for all but the last, which takes the rest.
            statistic = (
                f"-m statistic --mode random --probability {1.0 / (n - i):0.10f} " if i < n - 1 else ""
            )
            lines.append(
                f'-A {self.svc_chain} -m comment --comment "{self.port_name} -> {ip}:{self.target_port}" '
                f"{statistic}-j {self.sep_chain(ip)}"
            )
        for ip in endpoints:
            lines.append(
                f'-A {self.sep_chain(ip)} -m comment --comment "{self.port_name}" '
                f"-p tcp -m tcp -j DNAT --to-destination {ip}:{self.target_port}"
            )
        lines += [f"-X {self.sep_chain(ip)}" for ip in stale]
        lines.append("COMMIT")
        return "\n".join(lines) + "\n"

    def set_endpoints(self, endpoints: list[str]) -> float:
        """Switches the endpoints in one transaction; returns the wall-clock time it took effect."""
        assert endpoints, "a Service without endpoints REJECTs in kube-proxy; not modelled here"
        run(self.namespace.command(["iptables-restore", "--noflush"]), stdin=self.restore_input(endpoints))
        at = time.time()
        self.endpoints = list(endpoints)
        self.switched_at.append(at)
        return at

    def rules(self) -> str:
        return run(self.namespace.command(["iptables", "-t", "nat", "-S"]))

    def jump_counts(self) -> dict[str, int]:
        """Packets that took each endpoint jump of KUBE-SVC (one per new connection: only a
        connection's first packet traverses the nat table)."""
        out = run(self.namespace.command(["iptables", "-t", "nat", "-L", self.svc_chain, "-v", "-n", "-x"]))
        counts = {}
        for line in out.splitlines()[2:]:
            fields = line.split()
            if len(fields) >= 3 and fields[2].startswith("KUBE-SEP-"):
                counts[fields[2]] = int(fields[0])
        return counts


# --- processes in the namespace ---------------------------------------------------------------


@dataclass
class Replica:
    """One `workload` process: a pod of the Deployment, on its own pod address."""

    namespace: NetNamespace
    binary: Path
    name: str
    ip: str
    log_path: Path
    port: int = 8080
    metrics_port: int = 9000
    extra_args: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Replica:
        argv = [
            str(self.binary),
            "--addr", f"{self.ip}:{self.port}",
            "--metrics-addr", f"{self.ip}:{self.metrics_port}",
            "--hostname", self.name,
            "--log-format", "text",
            "--log-filter", "warn",
            "--drain-delay", "0s",
            "--shutdown-timeout", "2s",
            *self.extra_args,
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "WORKLOAD_"))}
        self.proc = spawn(self.namespace.command(argv), self.log_path, env)
        return self

    def wait_ready(self, within: float = 30.0) -> None:
        def ready() -> bool | None:
            try:
                return self.namespace.http_get(self.ip, self.port, "/readyz", timeout=1.0)[0] == 200 or None
            except OSError:
                return None

        wait_until(f"{self.name} ready", ready, within, self.proc, self.log_path)

    def metrics(self) -> str:
        status, body = self.namespace.http_get(self.ip, self.metrics_port, "/metrics", timeout=5.0)
        assert status == 200, f"{self.name} /metrics answered {status}"
        return body.decode()

    def log(self, tail: int = 4000) -> str:
        return log_tail(self.log_path, tail)

    def stop(self) -> None:
        terminate(self.proc)
