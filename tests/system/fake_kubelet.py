"""A kubelet's cAdvisor endpoint on 127.0.0.1, replaying a recorded exposition with its CPU
counters advancing, for the dashboards proof of the container CPU panels (any image).

fixtures/cadvisor.prom is /metrics/cadvisor as a kubelet with containerd on cgroup v2 emits it,
trimmed to one node: the root cgroup, the workload pod (its pod cgroup, the pause sandbox, the
`workload` container with a 250m request and a 1-core limit), Prometheus' pod in the same
namespace (no limit), CoreDNS in kube-system, and families the shipped job must drop. As the kubelet
does, stats carry the time they were taken (explicit timestamps) and the spec gauges carry none.

Each scrape rewrites the stats' timestamps to now and advances every
`container_cpu_usage_seconds_total` by its container's rate in `CPU_CORES` since the server
started, so a rate() over the scrapes reads exactly those cores. It answers only on the path the
shipped `cadvisor` job asks the API server's node proxy for, so a broken path rewrite leaves the
target down and the panels empty.
"""

from __future__ import annotations

import http.server
import re
import threading
import time
from pathlib import Path

EXPOSITION = Path(__file__).resolve().parent / "fixtures" / "cadvisor.prom"
NODE = "minikube"
PATH = f"/api/v1/nodes/{NODE}/proxy/metrics/cadvisor"
NAMESPACE = "scalebench"
WORKLOAD_POD = "workload-6c9f7d8b5-x2k4q"
# CPU cores each container burns, by (namespace, pod, container); others stay flat.
CPU_CORES = {
    (NAMESPACE, WORKLOAD_POD, "workload"): 0.2,
    (NAMESPACE, "prometheus-7b8d6f5c4-p9m2w", "prometheus"): 0.05,
}
# What the recording shows for the workload container: 256 shares (250m), quota 100000 / period
# 100000 (1 core).
WORKLOAD_REQUEST_CORES = 256 / 1024
WORKLOAD_LIMIT_CORES = 1.0

_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)\{(?P<labels>[^}]*)\} (?P<value>\S+)(?: (?P<ts>\d+))?$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def _advanced(line: str, elapsed: float, now_ms: int) -> str:
    match = _SAMPLE.match(line)
    if match is None or match.group("ts") is None:
        return line  # comments and spec gauges: as recorded
    labels = dict(_LABEL.findall(match.group("labels")))
    value = float(match.group("value"))
    if match.group("name") == "container_cpu_usage_seconds_total":
        value += CPU_CORES.get((labels.get("namespace"), labels.get("pod"), labels.get("container")), 0.0) * elapsed
    return f"{match.group('name')}{{{match.group('labels')}}} {value!r} {now_ms}"


class FakeKubelet:
    def __init__(self) -> None:
        self.recorded = EXPOSITION.read_text().splitlines()
        self.started = time.time()
        self.paths: list[str] = []
        self.first_scrape: float | None = None  # unix time of the first answered scrape
        kubelet = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                kubelet.paths.append(self.path)
                if self.path != PATH:
                    self.send_error(404)
                    return
                now = time.time()
                kubelet.first_scrape = kubelet.first_scrape or now
                body = "\n".join(_advanced(line, now - kubelet.started, int(now * 1000)) for line in kubelet.recorded)
                data = (body + "\n").encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> None:
        self.started = time.time()
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def exposition(self) -> str:
        return "\n".join(self.recorded)
