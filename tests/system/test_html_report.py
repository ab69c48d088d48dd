"""The HTML report, rendered by a real browser.

A real loadgen run against the real workload (with injected faults so the error chart has data)
writes a JSON report; a replica timeline as the watcher records it is added (there is no cluster
here); `loadgen report RUN.json --html OUT.html` renders it. Headless Chromium, with every network
request refused, screenshots the page, and the PNG (decoded with the standard library) must show each
chart's series colour spread across the chart's width, in page order. A second run turns the two
reports into a comparison page checked the same way.
"""

from __future__ import annotations

import json
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from conftest import require_tool
from procs import start_workload

# Series colours, as in loadgen/src/report/html/colors.rs.
THROUGHPUT = "#1f77b4"
ERRORS = "#d62728"
P50 = "#2ca02c"
P99 = "#9467bd"
DISTRIBUTION = "#17becf"
PERCENTILES = "#6b6ecf"
READY = "#8c564b"
DESIRED = "#e377c2"
CPU = "#393b79"
PER_REPLICA = "#637939"
# The busiest backend of the throughput-per-backend chart (`colors::BACKENDS[0]`).
BACKEND_1 = "#aec7e8"
RUN_COLORS = ["#1f77b4", "#d62728"]

WIDTH = 1200


# --- PNG decoding (stdlib only) --------------------------------------------------------------


def decode_png(path: Path) -> tuple[int, int, list[bytearray]]:
    """Width, height and rows of RGB bytes of an 8-bit RGB or RGBA, non-interlaced PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, [], None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        chunk = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat.append(chunk)
        pos += 12 + length
    assert header is not None
    width, height, depth, color_type, _, _, interlace = header
    assert depth == 8 and color_type in (2, 6) and interlace == 0, header
    bpp = 3 if color_type == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = width * bpp
    rows: list[bytearray] = []
    prev = bytearray(stride)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 0xFF
            elif f == 2:
                line[i] = (line[i] + b) & 0xFF
            elif f == 3:
                line[i] = (line[i] + ((a + b) >> 1)) & 0xFF
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 0xFF
        rows.append(line if bpp == 3 else bytearray(v for i, v in enumerate(line) if i % 4 != 3))
        prev = line
    return width, height, rows


def pixels_by_color(rows: list[bytearray], colors: dict[str, str], tol: int = 6) -> dict[str, list[tuple[int, int]]]:
    """(x, y) of every pixel within `tol` of each named colour on every channel, in one pass."""
    lut: dict[tuple[int, int, int], str] = {}
    for name, color in colors.items():
        r0, g0, b0 = (int(color[i : i + 2], 16) for i in (1, 3, 5))
        for r in range(r0 - tol, r0 + tol + 1):
            for g in range(g0 - tol, g0 + tol + 1):
                for b in range(b0 - tol, b0 + tol + 1):
                    lut.setdefault((r, g, b), name)
    found: dict[str, list[tuple[int, int]]] = {name: [] for name in colors}
    for y, row in enumerate(rows):
        for x, rgb in enumerate(zip(row[0::3], row[1::3], row[2::3])):
            name = lut.get(rgb)
            if name is not None:
                found[name].append((x, y))
    return found


def median(values: list[int]) -> float:
    values = sorted(values)
    return values[len(values) // 2]


# --- running the real binaries ---------------------------------------------------------------


def loadgen_run(binary: Path, url: str, out: Path, rate: int, deployment: str, *extra: str) -> dict:
    subprocess.run(
        [
            str(binary),
            "--target",
            url,
            "--rate",
            str(rate),
            "--duration",
            "6s",
            "--quiet",
            "--deployment",
            deployment,
            "--out",
            str(out),
            *extra,
        ],
        check=False,  # thresholds are not set; a non-zero exit here would be a real failure below
        timeout=60,
        capture_output=True,
    )
    assert out.exists(), f"loadgen wrote no report at {out}"
    return json.loads(out.read_text())


def recorded_timeline() -> dict:
    """A scale-out 1 -> 3 -> 5 within the 6 s run, in the watcher's `replicas` JSON shape."""

    def s(t, desired, ready, cpu):
        return {
            "t_s": t,
            "desired": desired,
            "current": desired,
            "ready": ready,
            "hpa_desired": desired,
            "cpu_utilization_percent": cpu,
        }

    return {
        "target": "deployment/workload",
        "namespace": "scalebench",
        "hpa": "workload",
        "interval_s": 0.5,
        "samples": [s(0.0, 1, 1, 12), s(1.5, 3, 1, 175), s(2.5, 3, 3, 150), s(3.5, 5, 3, 120), s(4.5, 5, 5, 71)],
        "warnings": [],
        "summary": {
            "initial_replicas": 1,
            "max_replicas": 5,
            "final_replicas": 5,
            "initial_desired_replicas": 1,
            "max_desired_replicas": 5,
            "time_to_first_scale_up_s": 1.5,
            "time_to_first_ready_scale_up_s": 2.5,
            "time_to_max_replicas_s": 4.5,
            "max_cpu_utilization_percent": 175,
        },
    }


def screenshot(chromium: str, html: Path, png: Path, height: int, tmp: Path) -> None:
    profile = tmp / "chromium-profile"
    profile.mkdir(exist_ok=True)
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            # Any network request would fail: the page must not need one.
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--proxy-server=127.0.0.1:9",
            f"--user-data-dir={profile}",
            f"--screenshot={png}",
            f"--window-size={WIDTH},{height}",
            html.as_uri(),
        ],
        check=True,
        timeout=120,
        capture_output=True,
    )
    assert png.exists() and png.stat().st_size > 10_000, "no (or an empty) screenshot"


def assert_line_drawn(px: list[tuple[int, int]], name: str, min_span: int = 400, min_pixels: int = 60) -> None:
    """Enough pixels of the series colour, spread across the time axis (not just a legend swatch)."""
    assert len(px) >= min_pixels, f"{name}: only {len(px)} pixels"
    xs = [x for x, _ in px]
    assert max(xs) - min(xs) >= min_span, f"{name} spans {max(xs) - min(xs)} px: not a line across time"


@pytest.fixture(scope="module")
def reports(binaries, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("html-report")
    loadgen = binaries["loadgen"]
    proc, base = start_workload(binaries["workload"], "--fault-error-ratio", "0.1")
    try:
        run_a = loadgen_run(loadgen, f"{base}/ping", tmp / "a.json", 150, "docker", "--html", str(tmp / "a-run.html"))
        run_b = loadgen_run(loadgen, f"{base}/ping", tmp / "b.json", 300, "k8s-hpa")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert run_a["summary"]["failures"] > 0, "fault injection should have produced errors"
    run_b["replicas"] = recorded_timeline()
    (tmp / "b.json").write_text(json.dumps(run_b))
    return tmp


def test_run_report_draws_every_chart(binaries, reports):
    chromium = require_tool("chromium")
    html, png = reports / "run.html", reports / "run.png"
    subprocess.run(
        [str(binaries["loadgen"]), "report", str(reports / "b.json"), "--html", str(html)],
        check=True,
        timeout=60,
        capture_output=True,
    )
    text = html.read_text()
    assert "<script" not in text and "src=" not in text
    screenshot(chromium, html, png, 4400, reports)
    width, height, rows = decode_png(png)
    assert width == WIDTH

    lines = {
        "throughput": THROUGHPUT,
        "throughput per backend": BACKEND_1,
        "errors": ERRORS,
        "latency p50": P50,
        "latency p99": P99,
        "latency by percentile": PERCENTILES,
        "ready replicas": READY,
        "desired replicas": DESIRED,
        "HPA CPU": CPU,
        "throughput per replica": PER_REPLICA,
    }
    found = pixels_by_color(rows, {**lines, "distribution": DISTRIBUTION})
    for name in lines:
        assert_line_drawn(found[name], name)
    assert len(found["distribution"]) >= 300, f"latency distribution bars: {len(found['distribution'])} pixels"

    # Charts appear in page order: throughput, throughput per backend, errors, latency, distribution, percentiles, replicas,
    # CPU, per replica.
    ys = {name: median([y for _, y in px]) for name, px in found.items()}
    assert ys["throughput"] < ys["throughput per backend"] < ys["errors"] < ys["latency p50"] < ys["distribution"]
    assert ys["latency p99"] < ys["distribution"] < ys["latency by percentile"] < ys["ready replicas"]
    assert ys["ready replicas"] < ys["HPA CPU"] < ys["throughput per replica"]


def test_comparison_page_overlays_runs(binaries, reports):
    chromium = require_tool("chromium")
    html, png = reports / "cmp.html", reports / "cmp.png"
    subprocess.run(
        [
            str(binaries["loadgen"]),
            "report",
            str(reports / "a.json"),
            str(reports / "b.json"),
            "--html",
            str(html),
        ],
        check=True,
        timeout=60,
        capture_output=True,
    )
    text = html.read_text()
    assert "docker" in text and "k8s-hpa" in text
    screenshot(chromium, html, png, 3000, reports)
    _, _, rows = decode_png(png)
    found = pixels_by_color(rows, {"a": RUN_COLORS[0], "b": RUN_COLORS[1]})
    for name, px in found.items():
        assert_line_drawn(px, f"run {name}")
    # Only run b was watched: its colour also draws the ready-replicas chart, below every chart
    # the two runs share except the percentile chart, so b reaches rows a never does.
    rows_a = {y for _, y in found["a"]}
    rows_b = {y for _, y in found["b"]}
    assert len(rows_b - rows_a) > 100, "replica chart of the watched run"


def test_html_flag_on_a_run_draws_the_run(binaries, reports):
    """`--html` on the run itself writes the same single-run page as `loadgen report` would."""
    chromium = require_tool("chromium")
    html, png = reports / "a-run.html", reports / "a-run.png"
    assert html.exists(), "the run's --html page was not written"
    text = html.read_text()
    assert text.lstrip().lower().startswith("<!doctype html")
    assert "<script" not in text and "src=" not in text
    screenshot(chromium, html, png, 3000, reports)
    _, _, rows = decode_png(png)
    found = pixels_by_color(rows, {"throughput": THROUGHPUT, "errors": ERRORS, "latency p99": P99})
    for name, px in found.items():
        assert_line_drawn(px, name)
