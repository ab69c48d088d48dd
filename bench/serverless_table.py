"""The seed's serverless table and DIR/serverless.json from the reports of bench/serverless.sh.

Per step of the rate steps and per deployment: mean and p99 response time (from the intended
send time: open loop, no coordinated omission), success rate, and the most ready replicas the
watcher saw during the step (1 for the container). Then the cold starts: each from zero, one
request, as the watcher recorded it (time to the first response, requests held, failed), with
their median and p99.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path


def max_ready(report: dict, start: float, end: float) -> int | None:
    """The most ready replicas in force during [start, end): the last sample before the step
    and every sample inside it."""
    samples = (report.get("replicas") or {}).get("samples") or []
    if not samples:
        return None
    in_force = [s for s in samples if s["t_s"] <= start]
    chosen = in_force[-1:] + [s for s in samples if start < s["t_s"] < end]
    ready = [s["ready"] for s in chosen if s.get("ready") is not None]
    return max(ready) if ready else None


def steps(out: Path, deployments: list[str]) -> list[dict]:
    reports = {d: json.loads((out / f"{d}.json").read_text()) for d in deployments}
    first = reports[deployments[0]]
    rows = []
    for i, phase in enumerate(first["phases"]):
        step = {"name": phase["name"], "rate": phase["target_to"], "duration_s": round(phase["duration_s"], 3), "rows": []}
        for d, report in reports.items():
            p = report["phases"][i]
            replicas = max_ready(report, p["start_s"], p["start_s"] + p["duration_s"])
            step["rows"].append({
                "deployment": d,
                "mean_ms": round(p["latency_ms"]["mean"], 2),
                "p99_ms": round(p["latency_ms"]["p99"], 2),
                "success_rate": round(p["success_rate"], 3),
                "max_replicas": replicas if replicas is not None else (1 if d == "docker" else None),
            })
        rows.append(step)
    return rows


def cold_starts(out: Path) -> list[dict]:
    found = []
    files = sorted((out / "cold-starts").glob("*.json"), key=lambda p: int(p.stem))
    for path in files:
        report = json.loads(path.read_text())
        events = (report.get("replicas") or {}).get("cold_starts") or []
        if not events:
            raise SystemExit(f"{path}: the watcher recorded no cold start (was the revision at zero?)")
        e = events[0]
        found.append({"to_first_response_s": e["to_first_response_s"], "held": e["held"], "failed": e["failed"]})
    return found


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile: a value that occurred, as the seed's tables report."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def render(document: dict) -> str:
    lines = []
    header = f"{'step':<10} {'rate':>6} {'deployment':<12} {'mean':>10} {'p99':>10} {'success':>9} {'replicas':>9}"
    lines += [header, "-" * len(header)]
    for step in document["steps"]:
        for i, r in enumerate(step["rows"]):
            name = step["name"] if i == 0 else ""
            rate = f"{step['rate']:g}/s" if i == 0 else ""
            replicas = "-" if r["max_replicas"] is None else str(r["max_replicas"])
            lines.append(f"{name:<10} {rate:>6} {r['deployment']:<12} {r['mean_ms']:>8.2f}ms {r['p99_ms']:>8.2f}ms "
                         f"{r['success_rate']:>8.2f}% {replicas:>9}")
    starts = document["cold_starts"]
    if starts:
        answered = [c["to_first_response_s"] for c in starts if c["to_first_response_s"] is not None]
        lines.append("")
        lines.append(f"cold starts (from zero, one request): {len(starts)}, "
                     f"{sum(c['failed'] for c in starts)} failed requests, {len(starts) - len(answered)} never answered")
        if answered:
            lines.append(f"  to first response: median {percentile(answered, 50):.2f} s, p99 {percentile(answered, 99):.2f} s, "
                         f"min {min(answered):.2f} s, max {max(answered):.2f} s")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("deployments", nargs="+")
    args = parser.parse_args(argv)
    document = {"steps": steps(args.out, args.deployments), "cold_starts": cold_starts(args.out)}
    (args.out / "serverless.json").write_text(json.dumps(document, indent=2) + "\n")
    print(render(document))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
