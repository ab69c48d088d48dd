"""Reliability under load, faults and bad input (issue 7, items 1, 2, 3 and 5), measured.

Each test starts the real `workload` and `loadgen` binaries on 127.0.0.1, drives them through one
bad moment (a SIGTERM mid-run, fresh connections at the instant the listener closes, five times
the capacity, a kill -9 and restart, a corpus of bad input) and prints its figures as `FIGURE name: key=value ...` lines (run pytest with -s to see
them). Every wait is bounded; a hang is a failure with the reason, never a stuck CI job.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import figure
from procs import free_port
from procs import Workload, kill_quietly, start_loadgen
from reliability_support import (
    Poller,
    RssSampler,
    get,
    histogram_quantile,
    percentile,
    rss_kib,
    samples,
)

THRESHOLD_FAILED = 99  # loadgen's exit code when a threshold fails (loadgen/src/exit.rs)
USAGE = 2  # loadgen's exit code for bad flags or input files
PANIC = "panicked at"


def _workload(binaries, tmp_path: Path, name: str = "workload", port: int | None = None, **env):
    port = port or free_port()
    return Workload(
        binaries["workload"],
        tmp_path,
        port=port,
        metrics_port=free_port(),
        env={k.upper(): str(v) for k, v in env.items()},
        name=name,
    )


def _offset_s(report: dict, wall: float) -> float:
    """Seconds from the run's start (as loadgen recorded it) to a wall-clock instant."""
    return wall - report["started_at_unix_ms"] / 1000.0


def _no_panic(*texts: str) -> None:
    for text in texts:
        assert PANIC not in text, text


# --- 1. drain under load ----------------------------------------------------------------------

DRAIN_DELAY_S = 1.0
SHUTDOWN_TIMEOUT_S = 5.0


def test_drain_under_load_loses_nothing(binaries, tmp_path):
    """SIGTERM in the middle of an open-loop run of 200 ms requests: readiness goes 503 at once,
    the listener keeps serving through the drain delay, closes, every request it accepted completes
    with a 200, later ones are refused (never 5xx; a reset only for a handshake the kernel completed as the
    listener closed), and the process exits 0 in time."""
    rate, duration_s, signal_at_s = 100, 6.0, 2.5
    wl = _workload(
        binaries,
        tmp_path,
        workload_drain_delay=f"{int(DRAIN_DELAY_S * 1000)}ms",
        workload_shutdown_timeout=f"{int(SHUTDOWN_TIMEOUT_S)}s",
    ).start()
    lg = None
    try:
        lg = start_loadgen(
            binaries["loadgen"],
            tmp_path,
            "drain",
            [
                "--target",
                f"http://127.0.0.1:{wl.port}/work/io?ms=200",
                "--rate",
                str(rate),
                "--duration",
                f"{duration_s}s",
                "--timeout",
                "5s",
            ],
        )
        time.sleep(signal_at_s)
        assert lg.proc.poll() is None, f"loadgen ended early:\n{lg.stderr()}"
        readyz = Poller(wl.port, "/readyz", interval=0.05, limit=20, timeout=2)
        signalled_wall, signalled = time.time(), time.monotonic()
        wl.signal(signal.SIGTERM)
        # Signal delivery is asynchronous: probe back to back until readiness flips.
        flip = []
        while time.monotonic() - signalled < 2.0:
            flip.append(get(wl.port, "/readyz", timeout=1.0))
            if flip[-1].status != 200:
                break
        flipped_s = flip[-1].started - signalled + flip[-1].elapsed
        readyz.start()
        exit_code = wl.wait(timeout=DRAIN_DELAY_S + SHUTDOWN_TIMEOUT_S + 10)
        drain_s = time.monotonic() - signalled
        probes = readyz.stop()
        lg_code = lg.wait(timeout=duration_s + 30)
    finally:
        kill_quietly(lg.proc if lg else None)
        wl.stop()

    report = lg.report()
    summary = report["summary"]
    _no_panic(lg.stderr(), wl.log(100_000))
    refused = summary["errors"].get("connect_refused", 0)
    other_errors = {k: v for k, v in summary["errors"].items() if k != "connect_refused"}
    non_200 = {k: v for k, v in summary["status_codes"].items() if k != "200"}
    lost = summary["requests"] - summary["successes"] - refused
    close_offset = _offset_s(report, signalled_wall) + DRAIN_DELAY_S
    first_refused = next(
        (p.started - signalled for p in probes if p.error == "connect_refused"), None
    )
    ready_503 = sum(1 for p in probes if p.status == 503)
    figure(
        "drain",
        planned=int(rate * duration_s),
        requests=summary["requests"],
        accepted=summary["successes"],
        refused=refused,
        lost=lost,
        other_errors=json.dumps(other_errors, separators=(",", ":")),
        non_200=json.dumps(non_200, separators=(",", ":")),
        dropped=summary["dropped"],
        exit_code=exit_code,
        drain_s=drain_s,
        grace_s=DRAIN_DELAY_S + SHUTDOWN_TIMEOUT_S,
        readyz_flip_ms=flipped_s * 1e3,
        readyz_200_after_signal=len(flip) - 1,
        readyz_503=ready_503,
        listener_closed_after_s=first_refused,
        close_offset_s=close_offset,
        loadgen_exit=lg_code,
    )

    # The process: exit 0, within the configured grace.
    assert exit_code == 0, wl.log()
    assert drain_s <= DRAIN_DELAY_S + SHUTDOWN_TIMEOUT_S, drain_s
    # Readiness: 503 from the signal on (within the time it takes to deliver it), then nothing
    # listens; never 200 again, never back to 503.
    assert flip[-1].status == 503, flip[-1]
    assert flipped_s < 0.1, flipped_s
    assert probes, "no /readyz probe ran"
    kinds = ["503" if p.status == 503 else p.error or str(p.status) for p in probes]
    odd = [(round(p.started - signalled, 3), k) for p, k in zip(probes, kinds)]
    assert all(k in ("503", "connect_refused") for k in kinds), [o for o in odd if o[1] != "503"]
    assert kinds[0] == "503", kinds
    if "connect_refused" in kinds:
        assert "503" not in kinds[kinds.index("connect_refused") :], kinds
    # The listener stayed open through the drain delay (probes got 503, not refused).
    assert first_refused is None or first_refused >= DRAIN_DELAY_S - 0.1, first_refused
    # loadgen: every request was either served 200 or refused at connect; nothing timed out or
    # answered 5xx; the signal really fell inside the run. One exception, the kernel's and not the
    # workload's: a connection whose handshake completed in the listen backlog in the instant the
    # listener closed is reset, on any server (a CI run saw 1 of 600). So at most one reset, and
    # no failure of any kind before the listener closed.
    assert non_200 == {}, summary["status_codes"]
    assert set(other_errors) <= {"reset"} and other_errors.get("reset", 0) <= 1, (summary["errors"], lg.stderr())
    assert lost == other_errors.get("reset", 0), summary
    width = report["timeseries_resolution_s"]
    failed_before_close = [p for p in report["timeseries"] if p["failures"] and p["t_s"] + width <= close_offset - 0.05]
    assert failed_before_close == [], (close_offset, failed_before_close)
    assert summary["dropped"] == 0, summary
    assert summary["successes"] >= 0.9 * rate * min(close_offset, duration_s), summary
    assert refused > 0, "the listener closed during the run, yet nothing was refused"
    # Refusals only once the listener had closed (the time series is by completion second).
    width = report.get("timeseries_resolution_s", 1.0)
    early = [
        p for p in report["timeseries"] if p["failures"] and p["t_s"] + width < close_offset - 0.25
    ]
    assert early == [], (close_offset, early)
    assert lg_code in (0, THRESHOLD_FAILED), lg.stderr()


def test_connections_opened_as_the_listener_closes_are_served_or_refused(binaries, tmp_path):
    """The instant the listener closes is the riskiest of a drain: a client that connected a
    moment before has sent its request, and the server must answer it rather than reset the
    connection. Four clients open fresh connections back to back around that instant; each must
    get its 503 (readiness, served) or a refused connect, never a hang. One exception, the
    kernel's and not the workload's (as in the drain test): a handshake the kernel completed in
    the listen backlog in the instant the listener closed is reset, on any server; CI has seen
    one in some 12,000 connections, twice. So at most one reset."""
    drain_delay = 0.5
    counts: dict[str, int] = {}
    for round_no in range(3):
        wl = _workload(
            binaries,
            tmp_path,
            name=f"close{round_no}",
            workload_drain_delay=f"{int(drain_delay * 1000)}ms",
            workload_shutdown_timeout="5s",
        ).start()
        results: list = []
        try:
            signalled = time.monotonic()
            wl.signal(signal.SIGTERM)

            def hammer() -> None:
                while time.monotonic() - signalled < drain_delay - 0.05:
                    time.sleep(0.005)
                while time.monotonic() - signalled < drain_delay + 0.2:
                    results.append(get(wl.port, "/readyz", timeout=3))

            threads = [threading.Thread(target=hammer, daemon=True) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=10)
            exit_code = wl.wait(timeout=10)
        finally:
            wl.stop()
        assert exit_code == 0, wl.log()
        for p in results:
            kind = str(p.status) if p.status else p.error
            counts[kind] = counts.get(kind, 0) + 1
    figure(
        "listener_close",
        connections=sum(counts.values()),
        **{f"outcome_{k}": v for k, v in sorted(counts.items())},
    )
    assert counts.get("503", 0) > 0 and counts.get("connect_refused", 0) > 0, counts
    assert set(counts) <= {"503", "connect_refused", "reset"} and counts.get("reset", 0) <= 1, counts


# --- 2. overload ------------------------------------------------------------------------------

CPU_PATH = "/work/cpu?ms=10"
MAX_IN_FLIGHT = 32


def _closed_loop(binaries, tmp_path, name, port, users=4, seconds=3):
    lg = start_loadgen(
        binaries["loadgen"],
        tmp_path,
        name,
        [
            "--target",
            f"http://127.0.0.1:{port}{CPU_PATH}",
            "--concurrency",
            str(users),
            "--duration",
            f"{seconds}s",
            "--timeout",
            "5s",
        ],
    )
    code = lg.wait(timeout=seconds + 30)
    return code, lg.report()


def test_overload_sheds_fast_and_recovers(binaries, tmp_path):
    """Five times the measured capacity of a CPU-bound endpoint for 10 s (max in flight 32, one
    CPU worker): the workload stays up with bounded memory, sheds the excess with fast 503 +
    Retry-After (every one counted in http_server_rejected_requests_total), keeps the latency of
    what it accepts bounded by its in-flight limit, and serves at full capacity right after."""
    # One CPU worker: the CPU-bound capacity is one core, the other is left to the runtime (which
    # sheds), loadgen and the probes, so their timings measure the workload, not a starved box.
    wl = _workload(
        binaries,
        tmp_path,
        workload_max_in_flight=MAX_IN_FLIGHT,
        workload_cpu_workers=1,
        workload_request_timeout="10s",
    ).start()
    lg = None
    try:
        code, cap = _closed_loop(binaries, tmp_path, "capacity", wl.port)
        assert code == 0, cap["summary"]
        capacity = cap["summary"]["rps"]
        assert cap["summary"]["successes"] == cap["summary"]["requests"] > 0, cap["summary"]
        rss_before = rss_kib(wl.pid)
        rate = max(5 * capacity, 50.0)
        rss = RssSampler(wl.pid, interval=0.2, limit=60)
        shed_probe = Poller(wl.port, CPU_PATH, interval=0.05, limit=30, timeout=5)
        health = Poller(wl.port, "/healthz", interval=0.25, limit=30, timeout=5)
        rss.start()
        lg = start_loadgen(
            binaries["loadgen"],
            tmp_path,
            "overload",
            [
                "--target",
                f"http://127.0.0.1:{wl.port}{CPU_PATH}",
                "--rate",
                f"{rate:.0f}",
                "--duration",
                "10s",
                "--timeout",
                "5s",
            ],
        )
        shed_probe.start()
        health.start()
        overload_code = lg.wait(timeout=60)
        ended = time.monotonic()
        probes = shed_probe.stop()
        healths = health.stop()
        rss_samples = rss.stop()
        alive_after = wl.alive()
        # Back to normal at once: the first probe after the overload, then a closed-loop run.
        first_ok = None
        recovery_503 = 0  # still shed while the last of the overload drains: counted like the rest
        while time.monotonic() - ended < 10:
            status = get(wl.port, CPU_PATH).status
            if status == 200:
                first_ok = time.monotonic() - ended
                break
            recovery_503 += status == 503
            time.sleep(0.01)
        rec_code, rec = _closed_loop(binaries, tmp_path, "recovery", wl.port)
        metrics = wl.metrics()
    finally:
        kill_quietly(lg.proc if lg else None)
        wl.stop()

    over = lg.report()["summary"]
    _no_panic(lg.stderr(), wl.log(100_000))
    shed = [p for p in probes if p.status == 503]
    accepted = [p for p in probes if p.status == 200]
    shed_p99_ms = percentile([p.elapsed for p in shed], 99) * 1e3 if shed else float("nan")
    acc_p99_ms = percentile([p.elapsed for p in accepted], 99) * 1e3 if accepted else float("nan")
    acc_p50_ms = percentile([p.elapsed for p in accepted], 50) * 1e3 if accepted else float("nan")
    srv_shed_p99, srv_shed_n = histogram_quantile(
        metrics, "http_server_request_duration_seconds", 0.99, route="/work/cpu", status="503"
    )
    srv_acc_p99, _ = histogram_quantile(
        metrics, "http_server_request_duration_seconds", 0.99, route="/work/cpu", status="200"
    )
    rejected = {
        labels.get("reason"): value
        for labels, value in samples(metrics, "http_server_rejected_requests_total")
    }
    peak_rss = max(v for _, v in rss_samples)
    half = len(rss_samples) // 2
    growth_2nd_half = max(v for _, v in rss_samples[half:]) - max(v for _, v in rss_samples[:half])
    seen_503 = over["status_codes"].get("503", 0) + len(shed) + recovery_503 + sum(
        int(v) for k, v in rec["summary"]["status_codes"].items() if k == "503"
    )
    figure(
        "overload",
        capacity_rps=capacity,
        offered_rps=rate,
        achieved_rps=over["rps"],
        requests=over["requests"],
        ok=over["status_codes"].get("200", 0),
        shed=over["status_codes"].get("503", 0),
        errors=json.dumps(over["errors"], separators=(",", ":")),
        dropped=over["dropped"],
        shed_p99_ms=shed_p99_ms,
        shed_probes=len(shed),
        accepted_p50_ms=acc_p50_ms,
        accepted_p99_ms=acc_p99_ms,
        accepted_probes=len(accepted),
        server_shed_p99_le_s=srv_shed_p99,
        server_accepted_p99_le_s=srv_acc_p99,
        loadgen_service_p99_ms=(over.get("service_time_ms") or {}).get("p99"),
        rss_before_mib=rss_before / 1024,
        rss_peak_mib=peak_rss / 1024,
        rss_growth_2nd_half_mib=growth_2nd_half / 1024,
        recovery_first_ok_s=first_ok,
        recovery_rps=rec["summary"]["rps"],
        recovery_success_pct=rec["summary"]["success_rate"],
        healthz_ok=f"{sum(1 for h in healths if h.status == 200)}/{len(healths)}",
    )

    # Stayed up, answered its liveness probe throughout.
    assert alive_after, wl.log()
    assert healths and all(h.status == 200 for h in healths), [h.status or h.error for h in healths]
    assert overload_code in (0, THRESHOLD_FAILED), lg.stderr()
    # The overload was real and was shed, not queued: 503s, and only 200 or 503.
    assert over["status_codes"].get("503", 0) > over["requests"] * 0.3, over
    assert set(over["status_codes"]) <= {"200", "503"}, over["status_codes"]
    assert over["errors"] == {}, (over["errors"], lg.stderr())
    assert over["dropped"] == 0, over
    # Shed by the in-flight limit or the CPU queue's cap (overload) or by the CPU queue's delay
    # budget (queue_delay): every 503 is counted under one of the two.
    assert rejected.get("overload", 0) + rejected.get("queue_delay", 0) == seen_503, (
        rejected,
        seen_503,
    )
    assert rejected.get("timeout", 0) == 0, rejected
    # Shed answers: 503 with Retry-After, in the shared error shape, fast.
    assert shed, "the probe never saw a shed request"
    for p in shed:
        assert p.headers.get("retry-after", "").isdigit(), p.headers
        body = json.loads(p.body)
        assert body["status"] == 503 and body["error"] == "overloaded", body
    # Fast: within 25 ms inside the server, and, seen from a client, faster than the typical
    # accepted request (a shed request never waits in the queue).
    assert srv_shed_p99 <= 0.025, srv_shed_p99
    assert accepted, "the probe never got through"
    assert shed_p99_ms < acc_p50_ms, (shed_p99_ms, acc_p50_ms)
    # Accepted requests: latency bounded by the in-flight limit (32 x 10 ms of queue on one CPU
    # worker, plus CPU contention on a 2-core box), far below the 10 s request timeout.
    assert acc_p99_ms < 2500, acc_p99_ms
    assert srv_acc_p99 <= 2.5, srv_acc_p99
    # Memory bounded: no more than 64 MiB above the warm process, and flat in the second half.
    assert peak_rss - rss_before < 64 * 1024, (rss_before, peak_rss)
    assert growth_2nd_half < 8 * 1024, growth_2nd_half
    # Normal service right after.
    assert first_ok is not None and first_ok < 1.0, first_ok
    assert rec_code == 0, rec["summary"]
    assert rec["summary"]["success_rate"] == 100.0, rec["summary"]
    assert rec["summary"]["rps"] >= 0.7 * capacity, (rec["summary"]["rps"], capacity)


# --- 3. the target dies -----------------------------------------------------------------------


def test_target_dies_and_comes_back(binaries, tmp_path):
    """kill -9 the workload two seconds into an 8 s open-loop run, start it again on the same
    port 2.5 s later. Two loadgen runs watch the same outage: both keep running, classify the
    failures as connect_refused / reset, reconnect, write their reports; the one whose threshold
    tolerates the outage exits 0, the strict one exits 99 naming its threshold."""
    port = free_port()
    duration_s, kill_at_s, down_s, rate = 8.0, 2.0, 2.5, 50
    wl = _workload(binaries, tmp_path, name="first", port=port).start()
    wl2 = None
    runs = {}
    try:
        common = [
            "--target",
            f"http://127.0.0.1:{port}/work/io?ms=50",
            "--rate",
            str(rate),
            "--duration",
            f"{duration_s}s",
            "--timeout",
            "2s",
        ]
        runs["lenient"] = start_loadgen(
            binaries["loadgen"], tmp_path, "dies-lenient", [*common, "--threshold", "success_rate>50%"]
        )
        runs["strict"] = start_loadgen(
            binaries["loadgen"],
            tmp_path,
            "dies-strict",
            [*common, "--threshold", "success_rate>99.9%"],
        )
        time.sleep(kill_at_s)
        killed_wall = time.time()
        wl.proc.kill()
        wl.wait(timeout=5)
        time.sleep(down_s)
        assert all(r.proc.poll() is None for r in runs.values()), "loadgen stopped with the target"
        wl2 = _workload(binaries, tmp_path, name="second", port=port)
        wl2.start()
        back_wall = time.time()
        codes = {name: r.wait(timeout=duration_s + 30) for name, r in runs.items()}
    finally:
        for r in runs.values():
            kill_quietly(r.proc)
        wl.stop()
        if wl2 is not None:
            wl2.stop()

    for name, run in runs.items():
        report = run.report()
        s = report["summary"]
        _no_panic(run.stderr(), run.stdout())
        back_offset = _offset_s(report, back_wall)
        width = report.get("timeseries_resolution_s", 1.0)
        failing = [p["t_s"] for p in report["timeseries"] if p["failures"]]
        last_failure_end = max(failing) + width if failing else 0.0
        after = [p for p in report["timeseries"] if p["t_s"] >= back_offset + 1.0]
        figure(
            f"target_dies_{name}",
            requests=s["requests"],
            successes=s["successes"],
            success_pct=s["success_rate"],
            errors=json.dumps(s["errors"], separators=(",", ":")),
            non_200=json.dumps({k: v for k, v in s["status_codes"].items() if k != "200"}),
            duration_s=s["duration_s"],
            killed_at_s=_offset_s(report, killed_wall),
            back_at_s=back_offset,
            recovery_s=max(0.0, last_failure_end - back_offset),
            exit_code=codes[name],
        )
        # Kept running to the end of its plan and wrote the report.
        assert s["duration_s"] >= duration_s - 0.5, s
        assert s["requests"] + s["dropped"] >= rate * duration_s * 0.95, s
        # Failures classified, and only as the outage explains them.
        assert set(s["errors"]) <= {"connect_refused", "reset"}, s["errors"]
        assert s["errors"].get("connect_refused", 0) >= rate * down_s * 0.5, s["errors"]
        assert set(s["status_codes"]) <= {"200"}, s["status_codes"]
        assert s["failures"] == sum(s["errors"].values()), s
        # Recovered: from a second after the restart on, every request succeeded.
        assert after, report["timeseries"]
        assert all(p["failures"] == 0 and p["requests"] > 0 for p in after), after
        outcome = report["thresholds"][0]
        assert outcome["passed"] == (name == "lenient"), outcome
    assert codes["lenient"] == 0, runs["lenient"].stderr()
    assert codes["strict"] == THRESHOLD_FAILED, runs["strict"].stderr()
    strict_output = runs["strict"].stderr() + runs["strict"].stdout()
    assert "success_rate" in strict_output, strict_output


# --- 5. bad input to loadgen ------------------------------------------------------------------

# (name, argv after `loadgen`, files to write {name: text}, regex the message must match)
T = "http://127.0.0.1:9/ping"  # a valid target nothing listens on: parse errors come first
BAD_FLAGS: list[tuple[str, list[str], str]] = [
    ("unknown flag", ["--target", T, "--bogus"], r"--bogus"),
    ("rate not a number", ["--target", T, "--rate", "abc"], r"rate"),
    ("rate zero", ["--target", T, "--rate", "0"], r"rate"),
    ("rate negative", ["--target", T, "--rate=-5"], r"rate"),
    ("rate infinite", ["--target", T, "--rate", "inf"], r"rate"),
    ("rate NaN", ["--target", T, "--rate", "NaN"], r"rate"),
    ("rate unit", ["--target", T, "--rate", "5/fortnight"], r"unit|rate"),
    ("ramp without rate", ["--target", T, "--ramp-to", "10", "-d", "1s"], r"rate"),
    ("duration words", ["--target", T, "--duration", "soon"], r"duration"),
    ("duration negative", ["--target", T, "--duration=-1s"], r"duration"),
    ("duration huge", ["--target", T, "--duration", "99999999999999999999s"], r"duration"),
    ("concurrency zero", ["--target", T, "-c", "0"], r"concurrency|count|0"),
    ("concurrency huge", ["--target", T, "-c", "10000000000"], r"concurrency|large"),
    ("requests words", ["--target", T, "-n", "lots"], r"requests|count"),
    ("requests overflow", ["--target", T, "-n", "99999999999999999999M"], r"requests|count"),
    ("timeout words", ["--target", T, "--timeout", "forever"], r"timeout|duration"),
    ("no scheme", ["--target", "127.0.0.1:8080"], r"scheme|URL|url"),
    ("ftp scheme", ["--target", "ftp://127.0.0.1/x"], r"scheme|http"),
    ("empty host", ["--target", "http://"], r"host|URL|url"),
    ("not a URL", ["--target", "not a url at all"], r"URL|url"),
    ("credentials", ["--target", "http://u:p@127.0.0.1:9/"], r"credential"),
    ("header no colon", ["--target", T, "-H", "NoColon"], r"header"),
    ("header bad name", ["--target", T, "-H", "bad name: x"], r"header"),
    ("header bad value", ["--target", T, "-H", "X-A: a\x01b"], r"header"),
    ("label no equals", ["--target", T, "--label", "novalue"], r"label"),
    ("label bad name", ["--target", T, "--label", "1x=2"], r"label"),
    ("label reserved", ["--target", T, "--label", "__name__=x"], r"label"),
    ("threshold metric", ["--target", T, "--threshold", "p98<1ms"], r"p98"),
    ("threshold operator", ["--target", T, "--threshold", "p99=1ms"], r"threshold"),
    ("threshold empty", ["--target", T, "--threshold", ""], r"threshold"),
    ("threshold unit", ["--target", T, "--threshold", "p99<1parsec"], r"unit|threshold"),
    ("threshold rate", ["--target", T, "--threshold", "success_rate>120%"], r"threshold|percent"),
    ("threshold value", ["--target", T, "--threshold", "rps>fast"], r"number|threshold"),
    ("threshold nan", ["--target", T, "--threshold", "p99<NaN"], r"threshold"),
    ("metrics addr", ["--target", T, "--metrics-addr", "nowhere"], r"metrics-addr|address"),
    ("method", ["--target", T, "--method", "BAD METHOD"], r"method"),
    ("no target", ["-n", "1"], r"target"),
    ("merge without out", ["merge", "a.json"], r"--out"),
]

BAD_FILES: list[tuple[str, list[str], dict[str, str], str]] = [
    ("scenario missing", ["run", "{dir}/nope.yaml", "--target", T], {}, r"nope\.yaml"),
    ("scenario is a dir", ["run", "{dir}", "--target", T], {}, r"scenario|directory|read"),
    (
        "yaml syntax",
        ["run", "{dir}/s.yaml", "--target", T],
        {"s.yaml": "requests:\n  - path: /ping\n    method: [GET\n"},
        r"s\.yaml:\d+:\d+",
    ),
    (
        "yaml unknown key",
        ["run", "{dir}/s.yaml", "--target", T],
        {"s.yaml": "requests:\n  - path: /ping\n    methd: GET\n"},
        r"s\.yaml:\d+:\d+.*methd",
    ),
    (
        "yaml wrong type",
        ["run", "{dir}/s.yaml", "--target", T],
        {"s.yaml": "load:\n  rate: fast\nrequests:\n  - path: /ping\n"},
        r"s\.yaml:\d+:\d+",
    ),
    (
        "yaml bad duration",
        ["run", "{dir}/s.yaml", "--target", T],
        {"s.yaml": "load:\n  duration: soon\n  rate: 5\nrequests:\n  - path: /ping\n"},
        r"s\.yaml:\d+:\d+.*duration",
    ),
    (
        "yaml mixed phases",
        ["run", "{dir}/s.yaml", "--target", T],
        {
            "s.yaml": "load:\n  phases:\n    - {duration: 1s, rate: 5}\n"
            "    - {duration: 1s, users: 5}\nrequests:\n  - path: /ping\n"
        },
        r"s\.yaml.*(rate|users)",
    ),
    (
        "yaml bad template",
        ["run", "{dir}/s.yaml", "--target", T],
        {"s.yaml": "requests:\n  - path: '/tasks/{{nosuchfn 1 2'\n"},
        r"s\.yaml:\d+:\d+",
    ),
    (
        "yaml bad threshold",
        ["run", "{dir}/s.yaml", "--target", T],
        {"s.yaml": "requests:\n  - path: /ping\nthresholds: ['p98<1ms']\n"},
        r"s\.yaml.*p98",
    ),
    (
        "yaml no requests",
        ["run", "{dir}/s.yaml", "--target", T],
        {"s.yaml": "name: empty\n"},
        r"s\.yaml.*request",
    ),
    ("yaml empty file", ["run", "{dir}/s.yaml", "--target", T], {"s.yaml": ""}, r"s\.yaml"),
    (
        "yaml binary garbage",
        ["run", "{dir}/s.yaml", "--target", T],
        {"s.yaml": "\x00\x01\x02\xff\xfe garbage: [\n"},
        r"s\.yaml",
    ),
    (
        "toml syntax",
        ["run", "{dir}/s.toml", "--target", T],
        {"s.toml": "[[requests]]\npath = \"/ping\n"},
        r"s\.toml:\d+:\d+",
    ),
    (
        "toml unknown key",
        ["run", "{dir}/s.toml", "--target", T],
        {"s.toml": "[[requests]]\npath = \"/ping\"\nbogus = 1\n"},
        r"s\.toml:\d+:\d+.*bogus",
    ),
    (
        "scenario extension",
        ["run", "{dir}/s.txt", "--target", T],
        {"s.txt": "requests: []\n"},
        r"s\.txt|yaml|toml",
    ),
    ("compare missing", ["compare", "{dir}/a.json"], {}, r"a\.json"),
    (
        "compare not a report",
        ["compare", "{dir}/a.json"],
        {"a.json": '{"hello": "world"}'},
        r"a\.json",
    ),
    (
        "compare not json",
        ["compare", "{dir}/a.json"],
        {"a.json": "this is not json"},
        r"a\.json",
    ),
    (
        "merge future schema",
        ["merge", "{dir}/a.json", "--out", "{dir}/m.json"],
        {"a.json": '{"schema_version": 999}'},
        r"a\.json.*(schema|version)",
    ),
]


def _run_bad(binary: Path, argv: list[str]) -> tuple[int | None, str, str, float]:
    started = time.monotonic()
    try:
        done = subprocess.run(
            [str(binary), *argv],
            capture_output=True,
            timeout=20,
            stdin=subprocess.DEVNULL,
            env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1"},
        )
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode(errors="replace")
        err = (exc.stderr or b"").decode(errors="replace")
        return None, out, err, time.monotonic() - started
    return (
        done.returncode,
        done.stdout.decode(errors="replace"),
        done.stderr.decode(errors="replace"),
        time.monotonic() - started,
    )


def test_loadgen_rejects_bad_input_clearly(binaries, tmp_path):
    """A corpus of bad flags, URLs, thresholds, scenario files and reports: each is refused at
    once with exit code 2 and a message on stderr that names the problem (file:line:column for
    scenario syntax), never a panic, a hang, or a run that starts anyway."""
    cases = [(name, argv, {}, pattern) for name, argv, pattern in BAD_FLAGS] + BAD_FILES
    jobs = []
    for i, (name, argv, files, pattern) in enumerate(cases):
        case_dir = tmp_path / f"case{i}"
        case_dir.mkdir()
        for fname, text in files.items():
            (case_dir / fname).write_bytes(text.encode("utf-8", errors="surrogateescape"))
        jobs.append((name, [a.replace("{dir}", str(case_dir)) for a in argv], pattern))

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda j: (j, _run_bad(binaries["loadgen"], j[1])), jobs))

    problems = []
    slowest = 0.0
    for (name, argv, pattern), (code, out, err, took) in results:
        slowest = max(slowest, took)
        first_line = err.strip().splitlines()[0] if err.strip() else ""
        why = []
        if code is None:
            why.append("hung (killed after 20 s)")
        elif code != USAGE:
            why.append(f"exit code {code}, expected {USAGE}")
        if PANIC in err or PANIC in out:
            why.append("panicked")
        if not err.strip():
            why.append("nothing on stderr")
        elif not re.search(pattern, err, re.I | re.S):
            why.append(f"stderr does not match /{pattern}/")
        if why:
            problems.append(f"{name}: {'; '.join(why)}\n    argv={argv}\n    stderr={err[-600:]!r}")
        print(f"BADINPUT {name!r}: exit={code} {took * 1e3:.0f}ms :: {first_line[:150]}")
    figure(
        "loadgen_bad_input",
        cases=len(results),
        rejected_cleanly=len(results) - len(problems),
        problems=len(problems),
        slowest_s=slowest,
    )
    assert not problems, "\n".join(problems)
