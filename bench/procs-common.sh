# shellcheck shell=bash disable=SC2034  # sourced: its variables are used by the scripts sourcing it
# Process helpers of the benchmarks (sourced, not run): free ports on 127.0.0.1, and a scratch
# directory plus a list of started processes that are stopped and removed however the script ends.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Sets TMP (a fresh directory) and PIDS (append what you start); both go on exit.
track_processes() {
  TMP=$(mktemp -d)
  PIDS=()
  trap stop_processes EXIT
}

stop_processes() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$TMP"
}
