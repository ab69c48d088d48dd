"""The seed's table and DIR/experiment.json from the merged reports of bench/experiment.sh.

One row per deployment: elapsed time of the whole run, requests and successes, throughput,
p50 and p99 latency, the highest ready replica count the watcher saw (1 for the container), and
the speedup: docker's elapsed time over this run's.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def row(out: Path, deployment: str) -> dict:
    merged = out / deployment / "merged.json"
    report = json.loads(merged.read_text())
    summary = report["summary"]
    replicas = report.get("replicas") or {}
    max_replicas = (replicas.get("summary") or {}).get("max_replicas")
    return {
        "deployment": deployment,
        "elapsed_s": round(summary["duration_s"], 3),
        "requests": summary["requests"],
        "ok": summary["successes"],
        "throughput_rps": round(summary["rps"], 1),
        "p50_ms": round(summary["latency_ms"]["p50"], 2),
        "p99_ms": round(summary["latency_ms"]["p99"], 2),
        "max_replicas": max_replicas if max_replicas is not None else 1,
        "speedup": None,
        "report": str(merged),
    }


def table(runs: list[dict]) -> str:
    header = f"{'deployment':<12} {'elapsed':>10} {'requests':>10} {'ok':>10} {'req/s':>9} {'p50':>9} {'p99':>9} {'replicas':>9} {'speedup':>8}"
    lines = [header, "-" * len(header)]
    for r in runs:
        speedup = f"{r['speedup']:.2f}x" if r["speedup"] is not None else "-"
        lines.append(
            f"{r['deployment']:<12} {r['elapsed_s']:>9.1f}s {r['requests']:>10} {r['ok']:>10} {r['throughput_rps']:>9.1f} "
            f"{r['p50_ms']:>7.2f}ms {r['p99_ms']:>7.2f}ms {r['max_replicas']:>9} {speedup:>8}"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--requests-per-client", type=int, required=True)
    parser.add_argument("--cpu", type=float, required=True)
    parser.add_argument("deployments", nargs="+")
    args = parser.parse_args(argv)
    runs = [row(args.out, d) for d in args.deployments]
    baseline = next((r for r in runs if r["deployment"] == "docker"), None)
    for r in runs:
        if baseline and r["elapsed_s"] > 0:
            r["speedup"] = round(baseline["elapsed_s"] / r["elapsed_s"], 3)
    document = {"clients": args.clients, "requests_per_client": args.requests_per_client,
                "cpu_per_replica": args.cpu, "runs": runs}
    (args.out / "experiment.json").write_text(json.dumps(document, indent=2) + "\n")
    print(f"{args.clients} clients x {args.requests_per_client} requests, {args.cpu:g} CPU per container/replica")
    print(table(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
