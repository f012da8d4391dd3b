#!/bin/sh
# run.sh - `make bench`: build tenantd into build-bench (RelWithDebInfo) unless BENCH_BIN
# names a binary, then run bench.py (python3, standard library only). See bench/README.md.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
for tool in pgbench wrk psql python3; do
    command -v "$tool" >/dev/null 2>&1 || { echo "bench: $tool not found (run: make deps)" >&2; exit 1; }
done
if [ -z "${BENCH_BIN:-}" ]; then
    cmake -S "$root" -B "$root/build-bench" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build "$root/build-bench" --target tenantd -j "$(nproc)" >/dev/null
    BENCH_BIN="$root/build-bench/tenantd"
    export BENCH_BIN
fi
exec python3 "$here/bench.py" "$@"
