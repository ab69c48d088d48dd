#!/usr/bin/env bash
# Admission by queueing delay (issue 12, finding 2), measured with wrk on 127.0.0.1.
#
# One release instance, pinned to CPU 0 with one runtime worker and one CPU worker (one core's
# capacity), serves POST /api/v1/hello with n drawn like the classic tutorial (1.25e12 to 2.5e12,
# a fresh n per request). wrk (pinned to CPU 1) runs closed loops of 4 connections (the
# reference: enough to keep one core busy), 20 (the classic Locust file's users, without their
# think time) and 32 (8 times the reference). Rounds alternate the connection counts so machine
# noise hits all alike. Per count, the median over rounds of:
#   - goodput: 200 answers per second (counted by the server's own duration histogram), and its
#     ratio to the 4-connection goodput (target: >= 0.9 at 32 connections);
#   - the share of 503 answers (target: 0 at 20 and 32 connections);
#   - wrk's p99 latency against the queue delay budget (target: p99 <= budget).
# A sustained overload (open loop at 5 times capacity) is tests/system/test_reliability.py's job.
#
# Env: DURATION (wrk seconds per run, default 5), ROUNDS (default 3), BUDGET (--queue-delay-budget,
#      default: the workload's default, a tenth of the 30 s request timeout), SKIP_BUILD=1 to reuse
#      target/release/workload.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-3}
BIN=${CARGO_TARGET_DIR:-target}/release/workload
COUNTS=(4 20 32)

# shellcheck source=bench/wrk-common.sh
source bench/wrk-common.sh

TMP=$(mktemp -d)
PID=
cleanup() {
  if [[ -n $PID ]]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  rm -rf "$TMP"
}
trap cleanup EXIT

cat >"$TMP/hello.lua" <<'LUA'
-- A fresh n per request, uniform in the classic tutorial's range [1.25e12, 2.5e12).
math.randomseed(os.time())
request = function()
  local n = 1250000000000 + math.floor(math.random() * 1250000000000)
  return wrk.format("POST", "/api/v1/hello", { ["Content-Type"] = "application/json" },
    string.format('{"n": %.0f}', n))
end
LUA

PORT=$(free_port) MPORT=$(free_port)
budget_args=()
[[ -n "${BUDGET:-}" ]] && budget_args=(--queue-delay-budget "$BUDGET")
"${PIN_SERVER[@]}" "$BIN" --addr "127.0.0.1:$PORT" --metrics-addr "127.0.0.1:$MPORT" \
  --worker-threads 1 --cpu-workers 1 --max-in-flight 100000 --drain-delay 0s --log-format json \
  "${budget_args[@]}" >"$TMP/workload.log" 2>&1 &
PID=$!
for _ in $(seq 1 2000); do
  curl -sf -o /dev/null "http://127.0.0.1:$PORT/readyz" && break
done
curl -sf -o /dev/null "http://127.0.0.1:$PORT/readyz" || { echo "workload never became ready" >&2; cat "$TMP/workload.log" >&2; exit 1; }
BUDGET_MS=$(curl -sf "http://127.0.0.1:$PORT/info" | python3 -c 'import json,sys; print(json.load(sys.stdin)["queue_delay_budget_ms"])')

# Server-side answers of /api/v1/hello with a given status, from the duration histogram.
answers() {
  curl -sf "http://127.0.0.1:$MPORT/metrics" | awk -v s="$1" '
    /^http_server_request_duration_seconds_count\{/ && /route="\/api\/v1\/hello"/ && index($0, "status=\"" s "\"") { n += $2 }
    END { printf "%d\n", n }'
}

# One wrk run at $1 connections -> "goodput share503 p99_ms"
run() {
  local c=$1 ok0 shed0 ok1 shed1 out p99
  ok0=$(answers 200) shed0=$(answers 503)
  out=$("${PIN_WRK[@]}" wrk -t1 -c"$c" -d"${DURATION}s" --latency -s "$TMP/hello.lua" "http://127.0.0.1:$PORT")
  ok1=$(answers 200) shed1=$(answers 503)
  p99=$(awk '$1 == "99%" { v = $2; if (v ~ /us$/) { sub(/us$/, "", v); v /= 1000 } else if (v ~ /ms$/) { sub(/ms$/, "", v) } else if (v ~ /s$/) { sub(/s$/, "", v); v *= 1000 } print v }' <<<"$out")
  awk -v ok="$((ok1 - ok0))" -v shed="$((shed1 - shed0))" -v d="$DURATION" -v p99="$p99" \
    'BEGIN { t = ok + shed; printf "%.1f %.4f %s\n", ok / d, (t ? shed / t : 0), p99 }'
}

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

declare -A GOOD SHARE P99
"${PIN_WRK[@]}" wrk -t1 -c4 -d1s -s "$TMP/hello.lua" "http://127.0.0.1:$PORT" >/dev/null # warm-up
for round in $(seq 1 "$ROUNDS"); do
  for c in "${COUNTS[@]}"; do
    read -r g s p <<<"$(run "$c")"
    GOOD[$c]+="$g " SHARE[$c]+="$s " P99[$c]+="$p "
    printf 'round %d  c=%-3d %9.1f ok/s  503 share %.4f  p99 %8.2f ms\n' "$round" "$c" "$g" "$s" "$p" >&2
  done
done

ref=$(median <<<"${GOOD[4]}")
echo
echo "admission by queueing delay: POST /api/v1/hello, classic n, one CPU worker (server pinned: ${PIN_SERVER[*]:-no}), wrk -t1 -d${DURATION}s, $ROUNDS rounds, median"
echo "queue delay budget: ${BUDGET_MS} ms"
printf '%-12s %10s %12s %10s %12s %10s\n' connections "ok/s" "/ok/s at 4" "503 share" "p99 ms" "p99/budget"
for c in "${COUNTS[@]}"; do
  g=$(median <<<"${GOOD[$c]}") s=$(median <<<"${SHARE[$c]}") p=$(median <<<"${P99[$c]}")
  awk -v c="$c" -v g="$g" -v ref="$ref" -v s="$s" -v p="$p" -v b="$BUDGET_MS" \
    'BEGIN { printf "%-12d %10.1f %12.3f %10.4f %12.2f %10.4f\n", c, g, g / ref, s, p, p / b }'
done
echo "(targets: goodput ratio >= 0.9 at 32 connections, 503 share 0 at 20 and 32, p99/budget <= 1)"
