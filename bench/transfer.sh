#!/usr/bin/env bash
# bench/transfer.sh - export, import and move of one big tenant (`make bench-transfer`; not a
# test). A fresh tenantd with its embedded cluster; one schema tenant whose projects table
# gets BENCH_ROWS rows of about 1 kB (SQL straight into its storage); then, one at a time:
#   export   GET /admin/tenants/{id}/export into a file
#   import   POST /admin/tenants/import of that file, as a new pool tenant (the original
#            joins it in the pool tables later: tenant tables are keyed by (tenant_id, id))
#   move     POST /admin/tenants/{id}/move schema -> database, then database -> pool
# For each: wall time, size, rows checked in SQL, and tenantd's peak RSS during it (VmHWM,
# reset before each step through /proc/PID/clear_refs) next to its RSS before.
# Environment: TENANTD_BIN (build/tenantd), BENCH_ROWS (100000), BENCH_KEEP=1 keeps the
# temporary directory.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
bin=${TENANTD_BIN:-$here/build/tenantd}
rows=${BENCH_ROWS:-100000}
token=bench-admin-token-0123456789abcdef0123456
secret=bench-jwt-secret-0123456789abcdef01234567
work=$(mktemp -d /tmp/tdbench-xfer.XXXXXX)
chmod 755 "$work"
pid=

die() { echo "bench/transfer.sh: $*" >&2; exit 1; }
[ -x "$bin" ] || die "no tenantd binary at $bin (make build, or set TENANTD_BIN)"
for tool in curl psql python3; do command -v $tool >/dev/null || die "$tool is required"; done

cleanup() {
    if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; fi
    if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
TENANTD_DATA_DIR=$work/data TENANTD_LISTEN=127.0.0.1:$port TENANTD_ADMIN_TOKEN=$token \
    TENANTD_JWT_SECRET=$secret TENANTD_LOG_LEVEL=warn "$bin" serve >"$work/tenantd.log" 2>&1 &
pid=$!
for _ in $(seq 1 300); do
    curl -sf -o /dev/null "http://127.0.0.1:$port/health" && break
    kill -0 "$pid" 2>/dev/null || { cat "$work/tenantd.log" >&2; die "tenantd did not start"; }
    sleep 0.2
done
api="http://127.0.0.1:$port"
auth="Authorization: Bearer $token"
sql() { psql -qAtX -h "$work/data/pg" -p 5432 -U postgres -d "${2:-tenantd}" -c "$1"; }
kib() { awk -v k="$1" '$1 == k":" {print $2}' "/proc/$pid/status"; }

id=$(curl -sf -X POST -H "$auth" -H 'Content-Type: application/json' \
    -d '{"slug":"big","name":"Big","isolation":"schema"}' "$api/admin/tenants" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
schema=t_${id//-/}
echo "seeding $rows projects of about 1 kB into tenant big ($schema)..."
sql "INSERT INTO $schema.projects (tenant_id, name, description, created_at)
     SELECT '$id', 'project ' || g, repeat(md5(g::text), 30),
            '2026-01-01'::timestamptz + g * interval '1 millisecond'
     FROM generate_series(1, $rows) g" >/dev/null
sql "VACUUM ANALYZE $schema.projects" >/dev/null

results=$work/results
: >"$results"
# step NAME ROWS_SQL DB CMD...: time CMD, peak RSS while it ran, rows afterwards
step() {
    local name=$1 count_sql=$2 db=$3
    shift 3
    echo 5 >"/proc/$pid/clear_refs"
    local before t0 t1 peak n
    before=$(kib VmRSS)
    t0=$(date +%s.%N)
    "$@"
    t1=$(date +%s.%N)
    peak=$(kib VmHWM)
    n=$(sql "$count_sql" "$db")
    echo "$name $(python3 -c "print(f'{$t1 - $t0:.2f}')") $before $peak $n" >>"$results"
}

step export "SELECT $rows" tenantd \
    curl -sf -H "$auth" -o "$work/big.ndjson" "$api/admin/tenants/big/export"
size=$(stat -c %s "$work/big.ndjson")
lines=$(wc -l <"$work/big.ndjson")
[ "$lines" -gt "$rows" ] || die "the export has $lines lines"

import() {
    curl -sf -H "$auth" -H 'Content-Type: application/x-ndjson' --data-binary "@$work/big.ndjson" \
        -o "$work/import.json" "$api/admin/tenants/import?slug=big-copy&isolation=pool"
}
step import "SELECT $rows" tenantd import
copy=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$work/import.json")
n=$(sql "SELECT count(*) FROM pool.projects WHERE tenant_id = '$copy'")
[ "$n" = "$rows" ] || die "the import holds $n projects"

move() {
    curl -sf -X POST -H "$auth" -H 'Content-Type: application/json' -d "{\"isolation\":\"$1\"}" \
        -o /dev/null "$api/admin/tenants/big/move"
}
step "move-schema-to-database" "SELECT count(*) FROM $schema.projects" "td_${id//-/}" \
    move database
step "move-database-to-pool" "SELECT count(*) FROM pool.projects WHERE tenant_id = '$id'" \
    tenantd move pool

echo
echo "tenant: $rows projects of about 1 kB (its other tables empty); export $((size / 1048576)) MiB, $lines lines"
printf '%-26s %9s %14s %14s %10s\n' step seconds "RSS before" "peak RSS" rows
while read -r name secs before peak n; do
    printf '%-26s %9s %11s MiB %11s MiB %10s\n' "$name" "$secs" "$((before / 1024))" \
        "$((peak / 1024))" "$n"
done <"$results"
