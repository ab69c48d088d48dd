"""Shared fixtures for the system tests: real binaries, real tools, 127.0.0.1 only.

A tool that is missing on a developer's machine skips its tests with the reason;
under CI (CI=true) the same absence fails, so a green CI never hides a skipped proof.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

# The processes the tests start are started, waited for and stopped by procs.py; these two are
# re-exported for test modules that still import them from here.
from procs import free_port, start_workload  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
TARGET_DIR = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


# Measured figures of this session, repeated at the end of the run: pytest captures the output
# of passing tests, and CI's log is where the team reads them.
FIGURES: list[str] = []


def figure(name: str, **values: Any) -> None:
    """Records one line of measured figures (`FIGURE name: k=v ...`), shown in the run's summary."""
    parts = []
    for key, value in values.items():
        if isinstance(value, float):
            value = f"{value:.4g}" if abs(value) < 1e6 else f"{value:.0f}"
        parts.append(f"{key}={value}")
    line = f"FIGURE {name}: " + " ".join(parts)
    FIGURES.append(line)
    print(line, flush=True)


def pytest_terminal_summary(terminalreporter) -> None:
    if FIGURES:
        terminalreporter.section("measured figures")
        for line in FIGURES:
            terminalreporter.write_line(line)


def require_tool(name: str) -> str:
    """Path of an executable, or skip (locally) / fail (in CI) when it is absent."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (see .ci/run for how CI installs it)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


BUILD_PROMETHEUS = ROOT / "scripts" / "build-prometheus.sh"


@functools.cache
def built_prometheus_dir() -> Path:
    """The directory of the Prometheus release tools/prometheus/go.mod pins (3.x, what compose and
    the cluster run), built from its Go module by scripts/build-prometheus.sh once (cached under
    .ci/cache across runs). No Go toolchain skips locally and fails in CI, like a missing tool."""
    if shutil.which("go") is None:
        message = "go is not installed: scripts/build-prometheus.sh builds Prometheus 3 with it"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    out = subprocess.run(["bash", str(BUILD_PROMETHEUS)], cwd=ROOT, capture_output=True, text=True, timeout=3600)
    assert out.returncode == 0, f"scripts/build-prometheus.sh failed:\n{out.stderr[-4000:]}"
    return Path(out.stdout.strip().splitlines()[-1])


def prometheus_release() -> str:
    """The pinned release, e.g. `3.16.0` (scripts/build-prometheus.sh --version reads go.mod)."""
    out = subprocess.run(["bash", str(BUILD_PROMETHEUS), "--version"], cwd=ROOT, capture_output=True, text=True,
                         timeout=60, check=True)
    return out.stdout.strip()


def prometheus_tool(name: str) -> str:
    """`prometheus` or `promtool` of the pinned Prometheus 3 release: every proof of the
    dashboards, rules, alerts and remote write runs against what users run. Debian's 2.x
    (require_tool) backs only the proofs on the oldest release the README still promises."""
    assert name in ("prometheus", "promtool"), name
    return str(built_prometheus_dir() / name)


@pytest.fixture(scope="session")
def binaries() -> dict[str, Path]:
    """The workspace's debug binaries, built once per session."""
    subprocess.run(
        ["cargo", "build", "--quiet", "--bins"], cwd=ROOT, check=True, timeout=1800
    )
    found = {name: TARGET_DIR / "debug" / name for name in ("workload", "loadgen")}
    for name, path in found.items():
        assert path.exists(), f"{name} binary missing at {path}"
    return found


SEED_SCRIPT = ROOT / ".ci" / "seed-images.sh"


def docker_answers() -> bool:
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="session")
def docker_engine():
    """A Docker engine that answers. CI machines start with none: there .ci/seed-images.sh starts
    one (and seeds the stand-in images), and the session stops that daemon at its end, by the
    pid the script recorded, and no other. Elsewhere, no engine skips the tests that need one."""
    require_tool("docker")
    if docker_answers():
        yield
        return
    if not IN_CI:
        pytest.skip("no Docker engine answers (start dockerd, or run .ci/seed-images.sh as root)")
    try:
        subprocess.run(["bash", str(SEED_SCRIPT)], cwd=ROOT, check=True, timeout=1200, stdout=subprocess.DEVNULL)
        assert docker_answers(), "dockerd did not come up"
        yield
    finally:
        subprocess.run(["bash", str(SEED_SCRIPT), "--stop-dockerd"], cwd=ROOT, timeout=120, check=False)


def seeded_images() -> dict[str, str]:
    """Which scalebench-seed/ stand-in replaces which upstream image (.ci/seed-images.sh --print)."""
    out = subprocess.run(["bash", str(SEED_SCRIPT), "--print"], cwd=ROOT, capture_output=True, text=True,
                         timeout=60, check=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
