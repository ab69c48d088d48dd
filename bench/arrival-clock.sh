#!/usr/bin/env bash
# loadgen's open-loop arrival clock against the bare kernel clock, in one run on 127.0.0.1.
#
# A benchmark, not a test: every figure is printed beside its reference measured in the same run.
#   - reference: how late a bare clock_nanosleep (1 us timer slack) wakes at the same rate
#     (loadgen's bare_clock example, pinned to the generator's core)
#   - loadgen open loop at 50, 1,000 and 20,000/s against GET /ping:
#       schedule lag p99 minus the bare clock's p99 (what the generator adds to the kernel),
#       corrected p50 minus service p50 (what the generator's own timing adds to each latency),
#       achieved / target rate, and the generator's CPU per request and percent of a core
#       (at 50/s: the cost of an idle clock, which must not burn a core).
#
# Usage: bench/arrival-clock.sh [-d SECONDS] [-c MAX_IN_FLIGHT]
# Pinned like bench/loadgen-vs-wrk.sh: server on CPU 0, generator and reference on CPU 1.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECS=10
CONNS=64
while [[ $# -gt 0 ]]; do
  case "$1" in
    -d) SECS="$2"; shift 2 ;;
    -c) CONNS="$2"; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
EXTRA_EXAMPLES=(--example bare_clock)
# shellcheck source=bench/loadgen-common.sh
source "$ROOT/bench/loadgen-common.sh"
BARE="$TARGET_DIR/release/examples/bare_clock"

calc() { python3 -c "print($1)"; }

echo "== load average: $(cut -d' ' -f1-3 /proc/loadavg) (pinned: ${PIN_GEN[*]:-no}, ${SECS}s per rate)"
"$LOADGEN" --target "$URL" -c 8 -d 1s -q
TIMEFORMAT='%U %S'
for rate in 50 1000 20000; do
  # The reference first, then loadgen at the same rate on the same core.
  read -r bare50 bare99 _ < <("${PIN_GEN[@]}" "$BARE" "$rate" "$(calc "min($SECS, 3)")")
  { time "${PIN_GEN[@]}" "$LOADGEN" --target "$URL" --rate "$rate" -d "${SECS}s" --threads 1 \
      --max-in-flight "$CONNS" -q --out "$WORK/open.json" ; } 2>"$WORK/lg.time" || true
  cpu="$(awk '{print $1 + $2}' "$WORK/lg.time")"
  sent="$(json "$WORK/open.json" 'r["summary"]["requests"]')"
  lag_mean="$(json "$WORK/open.json" 'r["generator"]["schedule_lag_ms"]["mean"]')"
  lag99="$(json "$WORK/open.json" 'r["generator"]["schedule_lag_ms"]["p99"]')"
  p50="$(json "$WORK/open.json" 'r["summary"]["latency_ms"]["p50"]')"
  s50="$(json "$WORK/open.json" 'r["summary"]["service_time_ms"]["p50"]')"
  late="$(json "$WORK/open.json" 'r["summary"]["late"]')"
  dropped="$(json "$WORK/open.json" 'r["summary"]["dropped"]')"
  printf '   %6s/s: bare clock late p50 %s us p99 %s us | loadgen schedule lag mean %.3f ms p99 %.3f ms (p99 - bare p99 = %+.3f ms)\n' \
    "$rate" "$bare50" "$bare99" "$lag_mean" "$lag99" "$(calc "$lag99 - $bare99/1000")"
  printf '            corrected p50 - service p50 = %+.3f ms (%s - %s) | achieved/target %.4f | late %s dropped %s | CPU %.1f us/req, %.1f%% of a core\n' \
    "$(calc "$p50 - $s50")" "$p50" "$s50" "$(calc "$sent / $SECS / $rate")" "$late" "$dropped" \
    "$(calc "$cpu / max($sent, 1) * 1e6")" "$(calc "$cpu / $SECS * 100")"
done
echo "   goals on an idle core: lag p99 <= 0.25 ms at 1,000/s and <= 0.5 ms at 20,000/s, achieved within 1%,"
echo "   corrected p50 - service p50 <= 0.1 ms at 1,000/s. Closed-loop CPU per request: bench/loadgen-vs-wrk.sh -c 64."
