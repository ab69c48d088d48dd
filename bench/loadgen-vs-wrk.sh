#!/usr/bin/env bash
# loadgen against wrk (and oha where installed) on the same target, in one run on 127.0.0.1.
#
# A benchmark, not a test: it prints ratios against peers measured in the same run, on the same
# machine, with the same connections and threads; absolute numbers depend on the machine.
#   1. maximum throughput, closed loop: loadgen -c C --threads T  vs  wrk -c C -t T (and oha)
#   2. open loop: achieved / target rate at 1,000 and 10,000 requests per second
#   3. memory: peak RSS of a 100,000-request run and of a 2,000,000-request run
#
# Usage: bench/loadgen-vs-wrk.sh [-c CONNECTIONS] [-t THREADS] [-d SECONDS] [-r ROUNDS] [--skip-memory]
# The target is loadgen's bench_target example (axum, keep-alive, GET /ping), pinned to its own
# thread so both generators face the same server.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONNS=50
THREADS=1
SECS=10
ROUNDS=3
MEMORY=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    -c) CONNS="$2"; shift 2 ;;
    -t) THREADS="$2"; shift 2 ;;
    -d) SECS="$2"; shift 2 ;;
    -r) ROUNDS="$2"; shift 2 ;;
    --skip-memory) MEMORY=0; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
# shellcheck source=bench/loadgen-common.sh
source "$ROOT/bench/loadgen-common.sh"

METRICS_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')"

echo "== warm-up"
wrk -t "$THREADS" -c "$CONNS" -d 2s "$URL" >/dev/null
"$LOADGEN" --target "$URL" -c "$CONNS" --threads "$THREADS" -d 2s -q

echo "== 1. maximum throughput: $CONNS connections, $THREADS thread(s), ${SECS}s each, best of $ROUNDS (alternating; pinned: ${PIN_GEN[*]:-no})"
best_wrk=0; best_lg=0; best_oha=0
# CPU per request (user + system time of each generator process, from bash's `time`): unlike
# throughput, it does not depend on how fast the shared server happened to be in that round.
TIMEFORMAT='%U %S'
cpu_wrk=0; req_wrk=0; cpu_lg=0; req_lg=0
for round in $(seq 1 "$ROUNDS"); do
  { time "${PIN_GEN[@]}" wrk -t "$THREADS" -c "$CONNS" -d "${SECS}s" "$URL" >"$WORK/wrk.out" ; } 2>"$WORK/wrk.time"
  w="$(awk '/Requests\/sec/ {print $2}' "$WORK/wrk.out")"
  wn="$(awk '/requests in/ {print $1}' "$WORK/wrk.out")"
  wc="$(awk '{print $1 + $2}' "$WORK/wrk.time")"
  # Every recording on, as in a real run: HDR histograms, per-endpoint and per-backend counts
  # (bench_target names itself in x-served-by) and the Prometheus endpoint.
  { time "${PIN_GEN[@]}" "$LOADGEN" --target "$URL" -c "$CONNS" --threads "$THREADS" -d "${SECS}s" -q \
      --metrics-addr "127.0.0.1:$METRICS_PORT" --out "$WORK/max.json" ; } 2>"$WORK/lg.time"
  l="$(json "$WORK/max.json" 'r["summary"]["rps"]')"
  ln="$(json "$WORK/max.json" 'r["summary"]["requests"]')"
  lc="$(awk '{print $1 + $2}' "$WORK/lg.time")"
  printf '   round %s: wrk %10.0f req/s (%.2f us CPU/req)   loadgen %10.0f req/s (%.2f us CPU/req)\n' \
    "$round" "$w" "$(python3 -c "print($wc/$wn*1e6)")" "$l" "$(python3 -c "print($lc/$ln*1e6)")"
  best_wrk="$(python3 -c "print(max($best_wrk,$w))")"
  best_lg="$(python3 -c "print(max($best_lg,$l))")"
  cpu_wrk="$(python3 -c "print($cpu_wrk+$wc)")"; req_wrk="$(python3 -c "print($req_wrk+$wn)")"
  cpu_lg="$(python3 -c "print($cpu_lg+$lc)")"; req_lg="$(python3 -c "print($req_lg+$ln)")"
  if command -v oha >/dev/null; then
    o="$("${PIN_GEN[@]}" oha -z "${SECS}s" -c "$CONNS" --no-tui --json "$URL" | python3 -c 'import json,sys; print(json.load(sys.stdin)["summary"]["requestsPerSec"])')"
    printf '            oha %10.0f req/s\n' "$o"
    best_oha="$(python3 -c "print(max($best_oha,$o))")"
  fi
done
echo "   CPU per request, wrk / loadgen = $(python3 -c "print(f'{($cpu_wrk/$req_wrk)/($cpu_lg/$req_lg):.3f}')")   (>= 1.0: loadgen needs no more CPU per request than wrk)"
echo "   loadgen / wrk = $(ratio "$best_lg" "$best_wrk")   (target: >= 1.0)"
if command -v oha >/dev/null; then
  echo "   loadgen / oha = $(ratio "$best_lg" "$best_oha")"
else
  echo "   oha: not installed, skipped"
fi

echo "== 2. open loop: achieved / target rate (${SECS}s each, --max-in-flight $CONNS)"
for rate in 1000 10000; do
  "$LOADGEN" --target "$URL" --rate "$rate" -d "${SECS}s" --threads "$THREADS" --max-in-flight "$CONNS" -q --out "$WORK/open.json" || true
  sent="$(json "$WORK/open.json" 'r["summary"]["requests"]')"
  planned="$(json "$WORK/open.json" 'r["plan"]["requests"]')"
  # Achieved rate over the planned window (the report's rps also counts the tail of the last responses).
  achieved="$(python3 -c "print($sent/$SECS)")"
  late="$(json "$WORK/open.json" 'r["summary"]["late"]')"
  dropped="$(json "$WORK/open.json" 'r["summary"]["dropped"]')"
  lag="$(json "$WORK/open.json" 'r["generator"]["schedule_lag_ms"]["p99"]')"
  p99="$(json "$WORK/open.json" 'r["summary"]["latency_ms"]["p99"]')"
  printf '   %6s/s: sent %s of %s planned, achieved %.1f/s, ratio %s, late %s, dropped %s, schedule lag p99 %s ms, p99 %s ms\n' \
    "$rate" "$sent" "$planned" "$achieved" "$(ratio "$achieved" "$rate")" "$late" "$dropped" "$lag" "$p99"
done

if [[ "$MEMORY" == 1 ]]; then
  echo "== 3. memory: peak RSS by request count (closed loop, $CONNS connections)"
  for n in 100000 2000000; do
    "$LOADGEN" --target "$URL" -c "$CONNS" --threads "$THREADS" -n "$n" -q --out "$WORK/mem-$n.json"
    printf '   %8s requests: peak RSS %s MiB\n' "$n" "$(json "$WORK/mem-$n.json" 'r["generator"]["peak_rss_mb"]')"
  done
  echo "   2M / 100k RSS = $(ratio "$(json "$WORK/mem-2000000.json" 'r["generator"]["peak_rss_mb"]')" "$(json "$WORK/mem-100000.json" 'r["generator"]["peak_rss_mb"]')")   (target: about 1.0)"
fi
