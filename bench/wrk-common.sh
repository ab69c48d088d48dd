# shellcheck shell=bash disable=SC2034  # sourced: its variables are used by the scripts sourcing it
# Shared setup of the wrk benchmarks of the workload (sourced, not run): checks the tools, builds
# the release binary unless SKIP_BUILD=1, and on a machine with >= 2 CPUs pins the server to CPU 0
# and wrk to CPU 1 (PIN_SERVER, PIN_WRK), so they do not steal each other's time slices; the
# server then runs one worker thread (its "quota" is one CPU).
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
command -v curl >/dev/null || { echo "curl is not installed" >&2; exit 1; }
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  cargo build --release --quiet -p workload
fi

PIN_SERVER=() PIN_WRK=()
if command -v taskset >/dev/null && (( $(nproc) >= 2 )); then
  PIN_SERVER=(taskset -c 0) PIN_WRK=(taskset -c 1)
fi

# shellcheck source=bench/procs-common.sh
source bench/procs-common.sh
