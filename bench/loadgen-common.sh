# shellcheck shell=bash disable=SC2034  # sourced: its variables are used by the scripts sourcing it
# Shared setup of the loadgen benchmarks (sourced, not run, with ROOT set): builds loadgen and its
# bench_target example (plus EXTRA_EXAMPLES) in release unless SKIP_BUILD=1, starts bench_target
# on a free port (URL, SERVER_PID, cleaned up on exit with WORK), and defines json/ratio helpers.
command -v python3 >/dev/null || { echo "python3 is needed to read the JSON reports" >&2; exit 1; }

echo "== building (release)"
[[ "${SKIP_BUILD:-0}" == 1 ]] || (cd "$ROOT" && cargo build --release -q -p loadgen --bin loadgen --example bench_target ${EXTRA_EXAMPLES[@]+"${EXTRA_EXAMPLES[@]}"})
TARGET_DIR="$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
LOADGEN="$TARGET_DIR/release/loadgen"
SERVER="$TARGET_DIR/release/examples/bench_target"

WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
  if [[ -n "$SERVER_PID" ]]; then kill "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')"
# With two or more CPUs the server gets CPU 0 and each generator CPU 1, so neither steals the
# other's time slices and the generators are compared on the same core (unpinned, the scheduler
# sometimes puts the generator beside the server, and rounds differ by half).
PIN_SERVER=() PIN_GEN=()
if command -v taskset >/dev/null && (($(nproc) >= 2)); then
  PIN_SERVER=(taskset -c 0) PIN_GEN=(taskset -c 1)
fi
"${PIN_SERVER[@]}" "$SERVER" "127.0.0.1:$PORT" 1 2>"$WORK/server.log" &
SERVER_PID=$!
URL="http://127.0.0.1:$PORT/ping"
for _ in $(seq 1 50); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then break; fi
  sleep 0.1
done

json() { python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print($2)" "$1"; }
ratio() { python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print(f'{a/b:.3f}' if b else 'n/a')" "$1" "$2"; }
