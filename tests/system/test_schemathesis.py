"""Bad input to the workload (issue 7, item 4): schemathesis against the workload's own
`/openapi.json`, a fixed number of examples per operation with a fixed seed.

Judged twice: by schemathesis's `not_a_server_error` check, and by a post-pass over the HAR file
it records (every request and response it made): no 5xx anywhere except `/status/{code}` echoing
the code it was asked for, and every error response (>= 400) a JSON body in the shared shape
`{"status": <the status>, "error": "<kind>", "message": "<text>"}`. A few hand-made hostile
requests schemathesis does not produce (oversized and malformed bodies, odd methods and paths)
are checked the same way. The process must still be alive and healthy at the end.
"""

from __future__ import annotations

import collections
import http.client
import json
import re
import subprocess
from pathlib import Path
from urllib.parse import unquote, urlsplit

from conftest import figure, require_tool
from procs import Workload, free_port
from reliability_support import get

EXAMPLES = 100  # per operation and phase (schemathesis --max-examples)
SEED = 20261123
RUN_LIMIT_S = 300
BODY_LIMIT = 4096


def _schemathesis(tool: str, port: int, workdir: Path, name: str, extra: list[str]):
    """One bounded schemathesis run; returns (exit code, output, HAR entries)."""
    report_dir = workdir / name
    cmd = [
        tool,
        "run",
        f"http://127.0.0.1:{port}/openapi.json",
        "--max-examples",
        str(EXAMPLES),
        "--seed",
        str(SEED),
        "--workers",
        "1",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--request-timeout",
        "10",
        "--generation-database",
        "none",
        "--report",
        "har",
        "--report-dir",
        str(report_dir),
        "--no-color",
        *extra,
    ]
    done = subprocess.run(
        cmd, cwd=workdir, capture_output=True, text=True, timeout=RUN_LIMIT_S
    )
    output = done.stdout + done.stderr
    hars = sorted(report_dir.glob("*.json"))
    assert hars, f"schemathesis wrote no HAR file:\n{output[-4000:]}"
    entries = json.loads(hars[-1].read_text())["log"]["entries"]
    return done.returncode, output, entries


def _generated(output: str) -> int:
    match = re.search(r"(\d+) generated", output)
    return int(match.group(1)) if match else 0


def _shape_problem(status: int, content_type: str, text: str | None) -> str | None:
    """Why an error response is not in the shared shape (None when it is)."""
    if not content_type.startswith("application/json"):
        return f"content-type {content_type!r}"
    try:
        body = json.loads(text or "")
    except ValueError:
        return "body is not JSON"
    if not isinstance(body, dict) or set(body) != {"status", "error", "message"}:
        return f"keys {sorted(body) if isinstance(body, dict) else type(body).__name__}"
    if body["status"] != status:
        return f"body status {body['status']} != {status}"
    if not (isinstance(body["error"], str) and re.fullmatch(r"[a-z][a-z0-9_]*", body["error"])):
        return f"error kind {body['error']!r}"
    if not (isinstance(body["message"], str) and body["message"]):
        return "empty message"
    return None


def _echo_expected(url: str) -> int | None:
    """For /status/{code}: the status the endpoint should answer (None for other paths)."""
    path = unquote(urlsplit(url).path)
    if not path.startswith("/status/"):
        return None
    raw = path[len("/status/") :]
    if re.fullmatch(r"\d{1,5}", raw) and 200 <= int(raw) <= 599:
        return int(raw)
    return 400 if "/" not in raw and raw else 404


def _judge(entries: list[dict]) -> tuple[list[str], collections.Counter]:
    problems, statuses = [], collections.Counter()
    for entry in entries:
        request, response = entry["request"], entry["response"]
        status = response["status"]
        statuses[status] += 1
        where = f"{request['method']} {request['url'][:160]} -> {status}"
        expected = _echo_expected(request["url"]) if request["method"] == "GET" else None
        if status == 0:
            problems.append(f"{where}: no response")
            continue
        if status >= 500 and expected != status:
            problems.append(f"{where}: server error")
        if expected is not None and status != expected:
            problems.append(f"{where}: /status echo expected {expected}")
        if status >= 400:
            headers = {h["name"].lower(): h["value"] for h in response["headers"]}
            why = _shape_problem(
                status, headers.get("content-type", ""), response["content"].get("text")
            )
            if why:
                problems.append(f"{where}: not the shared error shape ({why})")
    return problems, statuses


def _raw(port: int, method: str, path: str, body: bytes = b"", headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        if body or method in ("POST", "PUT"):
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body or None)
        resp = conn.getresponse()
        return resp.status, resp.getheader("content-type") or "", resp.read().decode(errors="replace")
    finally:
        conn.close()


JSON = {"Content-Type": "application/json"}
HOSTILE = [
    # (method, path, body, headers, expected status)
    ("POST", "/tasks", b"x" * (BODY_LIMIT * 4), JSON, 413),
    ("POST", "/api/v1/hello", b'{"n": ' + b"9" * (BODY_LIMIT * 2) + b"}", JSON, 413),
    ("POST", "/tasks", b'{"title": "a"', JSON, 400),
    ("POST", "/tasks", b'{"title": 5}', JSON, 422),
    ("POST", "/tasks", b'{"title": "a"}', {"Content-Type": "text/plain"}, 415),
    ("POST", "/tasks", b"\xff\xfe\x00garbage", JSON, 400),
    ("POST", "/api/v1/hello", b'{"n": 1}', JSON, 422),
    ("POST", "/api/v1/hello", b'{"n": -7}', JSON, 422),
    ("POST", "/api/v1/hello", b'{"n": 1e400}', JSON, None),
    ("POST", "/api/v1/hello", b"[]", JSON, 422),
    ("GET", "/tasks/not-a-number", b"", {}, None),
    ("GET", "/tasks?limit=-1", b"", {}, 400),
    ("GET", "/tasks?limit=abc&offset=%ff", b"", {}, 400),
    ("GET", "/work/cpu?ms=99999999999999999999999", b"", {}, 400),
    ("GET", "/work/io?ms=1000000", b"", {}, 422),
    ("DELETE", "/ping", b"", {}, 405),
    ("BREW", "/ping", b"", {}, 405),
    ("GET", "/" + "a" * 4000, b"", {}, 404),
    ("GET", "/%2e%2e/%2e%2e/etc/passwd", b"", {}, 404),
    ("GET", "/status/599", b"", {}, 599),
    ("GET", "/status/600", b"", {}, 400),
]


def test_schemathesis_finds_no_server_error(binaries, tmp_path):
    tool = require_tool("schemathesis")
    wl = Workload(
        binaries["workload"],
        tmp_path,
        port=free_port(),
        metrics_port=free_port(),
        env={
            # Generated `ms` values must not turn the run into minutes of real work.
            "WORKLOAD_MAX_WORK_MS": "20",
            "WORKLOAD_MAX_BODY_BYTES": str(BODY_LIMIT),
            "WORKLOAD_REQUEST_TIMEOUT": "5s",
        },
    ).start()
    try:
        # Every operation but the status echo, whose 5xx answers are its purpose.
        code_main, out_main, main = _schemathesis(
            tool,
            wl.port,
            tmp_path,
            "main",
            ["--checks", "not_a_server_error", "--exclude-path", "/status/{code}"],
        )
        # The echo alone: judged by the post-pass (a 5xx only when that code was asked for).
        code_echo, out_echo, echo = _schemathesis(
            tool,
            wl.port,
            tmp_path,
            "echo",
            ["--checks", "content_type_conformance", "--include-path", "/status/{code}"],
        )
        hostile = [(m, p, _raw(wl.port, m, p, b, h), want) for m, p, b, h, want in HOSTILE]
        alive = wl.alive()
        healthy = get(wl.port, "/healthz").status
        log = wl.log(1_000_000)
    finally:
        wl.stop()

    problems, statuses = _judge(main + echo)
    for method, path, (status, ctype, text), want in hostile:
        where = f"{method} {path[:60]} -> {status}"
        if want is not None and status != want:
            problems.append(f"{where}: expected {want}")
        if status >= 500 and status != want:
            problems.append(f"{where}: server error")
        if status >= 400:
            why = _shape_problem(status, ctype, text)
            if why:
                problems.append(f"{where}: not the shared error shape ({why})")
    figure(
        "schemathesis",
        examples_generated=_generated(out_main) + _generated(out_echo),
        requests_recorded=len(main) + len(echo),
        hostile_requests=len(hostile),
        server_errors=sum(v for k, v in statuses.items() if k >= 500),
        statuses=json.dumps(dict(sorted(statuses.items())), separators=(",", ":")),
        problems=len(problems),
        exit_codes=f"{code_main},{code_echo}",
    )
    assert alive and healthy == 200, log[-4000:]
    assert "panicked" not in log, log[-4000:]
    assert len(main) >= 300 and len(echo) >= 50, (len(main), len(echo))
    assert not problems, "\n".join(problems[:40])
    assert code_main == 0, out_main[-6000:]
    assert code_echo == 0, out_echo[-6000:]

