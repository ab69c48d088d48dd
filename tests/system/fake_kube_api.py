"""A Kubernetes API server on 127.0.0.1 that replays the recorded responses of the replica watcher.

It serves the same files as loadgen/tests/watch_recorded.rs (loadgen/tests/fixtures/k8s): the
Deployment and HPA lists, then their watch streams, each event released at a chosen offset from
the server's start (or from a cue the test gives, see `announce`), and a kubeconfig that points
the real kube client at it. The dashboards proof uses it so that the panels fed by `loadgen --watch`
are evaluated on real series, not skipped; the scale-out proof (test_scale_out.py) cues the
scale-out at the moment it switches the Service's endpoints, so the watcher's timeline and the
kernel's balancing tell of the same event.
"""

from __future__ import annotations

import http.server
import socket
import threading
import time
import urllib.parse
from pathlib import Path

from conftest import ROOT

FIXTURES = ROOT / "loadgen" / "tests" / "fixtures" / "k8s"
NAMESPACE = "scalebench"

# Event offsets (seconds after start) for the two watch streams: a scale-out 1 -> 3 -> 5 while the
# HPA's CPU utilization rises and falls, compressed into a short run.
DEPLOYMENT_EVENTS = [1.0, 1.5, 2.5, 3.5, 6.0, 7.0, 8.0, 9.0]
HPA_EVENTS = [0.8, 2.0, 3.0, 3.3, 5.5, 10.0]

# The first step of that scale-out alone, 1 -> 3, as offsets from the cue, which the scale-out
# proof gives when it switches the Service's endpoints: the HPA asks for 3 (CPU 175 %), the
# Deployment's spec, pods and readiness follow within 0.15 s (the endpoints controller publishes
# pods as they become ready, so readiness and the endpoint change are one moment; the minutes a
# real cluster spends between the HPA's decision and ready pods are compressed away), then the
# HPA's CPU figures fall as the load spreads.
SCALE_TO_3_DEPLOYMENT_EVENTS = [0.0, 0.05, 0.1, 0.15]
SCALE_TO_3_HPA_EVENTS = [0.0, 1.0, 2.0, 3.0]


def _watch_stream(name: str, offsets: list[float]) -> list[tuple[float, bytes]]:
    """The first len(offsets) events of a recorded stream, each with its release offset."""
    lines = [line for line in (FIXTURES / name).read_text().splitlines() if line.strip()]
    assert 0 < len(offsets) <= len(lines), f"{name}: {len(lines)} events, {len(offsets)} offsets"
    return [(offset, (line + "\n").encode()) for offset, line in zip(offsets, lines)]


class FakeKubeApi:
    """Lists answer at once; the first watch of each resource replays its events on schedule and
    then stays open (as the API server does until its timeout); later watches just stay open.

    By default the schedule counts from `start()`. With `on_cue=True` it counts from `announce()`
    instead, so a test can make the recorded scale-out happen when its own world changes. A
    `listener` (a bound, listening socket) serves from elsewhere than the host's 127.0.0.1, for
    instance from inside a network namespace."""

    def __init__(
        self,
        deployment_events: list[float] = DEPLOYMENT_EVENTS,
        hpa_events: list[float] = HPA_EVENTS,
        *,
        on_cue: bool = False,
        listener: socket.socket | None = None,
    ) -> None:
        self.routes = {
            f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments": (
                "deployment-list.json", _watch_stream("deployment-watch.jsonl", deployment_events)),
            f"/apis/autoscaling/v2/namespaces/{NAMESPACE}/horizontalpodautoscalers": (
                "hpa-list.json", _watch_stream("hpa-watch.jsonl", hpa_events)),
        }
        self.started = time.monotonic()
        self.requests: list[str] = []
        self.released: list[tuple[float, str]] = []  # (wall-clock time, resource path) per event
        self._watched: set[str] = set()
        self._stopping = threading.Event()
        self._cue = threading.Event()
        self._cue_at = 0.0
        if not on_cue:
            self._cue.set()
        self._on_cue = on_cue
        self._lock = threading.Lock()
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # the body ends when the connection closes

            def do_GET(self):  # noqa: N802 (http.server's naming)
                api.serve(self)

            def log_message(self, *args):
                pass

        if listener is None:
            self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        else:
            self.server = http.server.ThreadingHTTPServer(
                listener.getsockname(), Handler, bind_and_activate=False)
            self.server.socket.close()
            self.server.socket = listener
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> "FakeKubeApi":
        self.started = time.monotonic()
        if not self._on_cue:
            self._cue_at = self.started
        self.thread.start()
        return self

    def announce(self) -> None:
        """The cue: the scripted watch events are released at their offsets from now."""
        self._cue_at = time.monotonic()
        self._cue.set()

    def stop(self) -> None:
        self._stopping.set()
        self.server.shutdown()
        self.server.server_close()

    def write_kubeconfig(self, path: Path) -> Path:
        path.write_text(
            "apiVersion: v1\nkind: Config\n"
            f"clusters:\n- name: recorded\n  cluster:\n    server: {self.url}\n"
            "users:\n- name: loadgen\n  user:\n    token: recorded-fixture-token\n"
            f"contexts:\n- name: recorded\n  context:\n    cluster: recorded\n    user: loadgen\n"
            f"    namespace: {NAMESPACE}\n"
            "current-context: recorded\n"
        )
        return path

    def serve(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        url = urllib.parse.urlsplit(handler.path)
        query = urllib.parse.parse_qs(url.query)
        with self._lock:
            self.requests.append(handler.path)
        route = self.routes.get(url.path)
        if route is None:
            body = (b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
                    b'"reason":"NotFound","code":404}')
            self._head(handler, 404)
            handler.wfile.write(body)
            return
        list_file, events = route
        if query.get("watch", [""])[0] not in ("true", "1"):
            self._head(handler, 200)
            handler.wfile.write((FIXTURES / list_file).read_bytes())
            return
        with self._lock:
            first = url.path not in self._watched
            self._watched.add(url.path)
        self._head(handler, 200)
        try:
            if first:
                while not self._cue.wait(0.05):
                    if self._stopping.is_set():
                        return
                for offset, line in events:
                    if self._stopping.wait(max(0.0, self._cue_at + offset - time.monotonic())):
                        return
                    handler.wfile.write(line)
                    handler.wfile.flush()
                    with self._lock:
                        self.released.append((time.time(), url.path))
            self._stopping.wait(300)
        except (BrokenPipeError, ConnectionResetError):
            return

    @staticmethod
    def _head(handler: http.server.BaseHTTPRequestHandler, code: int) -> None:
        handler.send_response(code)
        handler.send_header("Content-Type", "application/json")
        handler.end_headers()
