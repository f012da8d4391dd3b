#!/usr/bin/env bash
# bench/migrate.sh - provisioning and migration at scale (`make bench-migrate`; not a test).
#
# 1. Provisioning history: a fresh tenantd per migrations directory, one with the repo's
#    tenant files (1) and one with 49 trivial files added (50); HISTORY_N schema and pool
#    tenants each, one at a time: p50/p99 of POST /admin/tenants must not grow with history.
# 2. Scale: a fresh tenantd; N schema + N pool tenants provisioned through POST
#    /admin/tenants, PARALLEL at a time (per-tenant latency p50/p99 per isolation); then a
#    migration adding a column and an index is dropped into a copy of migrations/ and
#    `tenantd migrate --jobs JOBS` runs: targets/second and total time.
# Environment: TENANTD_BIN (build/tenantd), BENCH_TENANTS (1000), BENCH_HISTORY_N (100),
# BENCH_PARALLEL (2), BENCH_JOBS (4), BENCH_KEEP=1 keeps the temporary directory.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
bin=${TENANTD_BIN:-$here/build/tenantd}
n=${BENCH_TENANTS:-1000}
hist_n=${BENCH_HISTORY_N:-100}
par=${BENCH_PARALLEL:-2}
jobs=${BENCH_JOBS:-4}
token=bench-admin-token-0123456789abcdef0123456
secret=bench-jwt-secret-0123456789abcdef01234567
work=$(mktemp -d /tmp/tdbench-mig.XXXXXX)
chmod 755 "$work"
server_pid=
started=()

die() { echo "bench/migrate.sh: $*" >&2; exit 1; }
[ -x "$bin" ] || die "no tenantd binary at $bin (make build, or set TENANTD_BIN)"
command -v curl >/dev/null || die "curl is required"

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

stop_server() {
    if [ -n "$server_pid" ]; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=
    fi
}
cleanup() {
    for pid in "${started[@]}"; do
        kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    done
    if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# start_server DATA_DIR MIGRATIONS_DIR: sets $port, $server_pid
start_server() {
    mkdir -p "$1" && chmod 755 "$1"
    port=$(free_port)
    TENANTD_DATA_DIR=$1 TENANTD_MIGRATIONS_DIR=$2 TENANTD_LISTEN=127.0.0.1:$port \
        TENANTD_ADMIN_TOKEN=$token TENANTD_JWT_SECRET=$secret TENANTD_LOG_LEVEL=warn \
        "$bin" serve >"$1/tenantd.log" 2>&1 &
    server_pid=$!
    started+=("$server_pid")
    for _ in $(seq 1 300); do
        curl -sf -o /dev/null "http://127.0.0.1:$port/health" && return 0
        kill -0 "$server_pid" 2>/dev/null || { cat "$1/tenantd.log" >&2; die "tenantd did not start"; }
        sleep 0.2
    done
    die "tenantd did not answer /health"
}

# create PREFIX ISOLATION COUNT PARALLEL > file of "status seconds" lines
create() {
    seq 1 "$3" | xargs -P "$4" -I{} curl -s -o /dev/null -w '%{http_code} %{time_total}\n' \
        -X POST -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
        -d "{\"slug\":\"$1-{}\",\"name\":\"Bench {}\",\"isolation\":\"$2\"}" \
        "http://127.0.0.1:$port/admin/tenants"
}

# stats LABEL FILE: p50/p99 in ms, failures
stats() {
    python3 - "$1" "$2" <<'PY'
import sys
label, path = sys.argv[1], sys.argv[2]
rows = [l.split() for l in open(path) if l.strip()]
ok = sorted(float(t) * 1000 for s, t in rows if s == "201")
bad = len(rows) - len(ok)
if not ok:
    print(f"  {label:<28} no tenant created ({bad} failures)"); sys.exit(0)
pct = lambda p: ok[min(len(ok) - 1, int(round(p / 100 * (len(ok) - 1))))]
print(f"  {label:<28} n={len(ok):<5} p50 {pct(50):7.1f} ms   p99 {pct(99):7.1f} ms"
      + (f"   ({bad} failed)" if bad else ""))
PY
}

echo "tenantd migration benchmark ($(nproc) cores, $("$bin" version | head -1))"

# ---- 1. provisioning with 1 and with 50 tenant migration files ------------------------
# Both servers run at once and requests alternate between them, so that both see the same
# machine (other load on a shared machine would otherwise decide the comparison).
echo
echo "provisioning time vs. migration history ($hist_n tenants each, one at a time, alternating)"
cp -r "$here/migrations" "$work/migs1"
cp -r "$here/migrations" "$work/migs50"
for i in $(seq 2 50); do
    printf -- "-- history %d: a trivial change\nCOMMENT ON TABLE projects IS 'revision %d';\n" \
        "$i" "$i" >"$work/migs50/tenant/$(printf %04d "$((i + 100))")_history_$i.sql"
done
start_server "$work/hist1" "$work/migs1"
port1=$port pid1=$server_pid
start_server "$work/hist50" "$work/migs50"
port50=$port pid50=$server_pid
for iso in schema pool; do
    for i in $(seq 1 "$hist_n"); do
        port=$port1 create "h1-$iso-$i" "$iso" 1 1 | sed 's/^/1 /'
        port=$port50 create "h50-$iso-$i" "$iso" 1 1 | sed 's/^/50 /'
    done >"$work/hist-$iso.txt"
done
for h in 1 50; do
    for iso in schema pool; do
        grep "^$h " "$work/hist-$iso.txt" | cut -d' ' -f2- >"$work/hist$h-$iso.txt"
        stats "$h file(s): $iso" "$work/hist$h-$iso.txt"
    done
done
server_pid=$pid50 stop_server
server_pid=$pid1 stop_server

# ---- 2. N schema + N pool tenants, then one migration across all of them ---------------
echo
echo "provisioning $n schema + $n pool tenants ($par in parallel)"
cp -r "$here/migrations" "$work/migs"
start_server "$work/data" "$work/migs"
t0=$(date +%s.%N)
create s schema "$n" "$par" >"$work/schema.txt"
t1=$(date +%s.%N)
create p pool "$n" "$par" >"$work/pool.txt"
t2=$(date +%s.%N)
stats "schema" "$work/schema.txt"
stats "pool" "$work/pool.txt"
python3 -c "import sys; a,b,c,n=map(float,sys.argv[1:]); print(f'  throughput: schema {n/(b-a):.0f}/s, pool {n/(c-b):.0f}/s')" "$t0" "$t1" "$t2" "$n"

last=$(ls "$work/migs/tenant" | sort | tail -1)
next=$(printf %04d "$((10#${last%%_*} + 1))")
cat >"$work/migs/tenant/${next}_bench_priority.sql" <<'SQL'
-- bench: one column and one index on every tenant's projects
ALTER TABLE projects ADD COLUMN priority integer NOT NULL DEFAULT 0;
CREATE INDEX projects_priority_idx ON projects (tenant_id, priority);
SQL
echo
echo "tenantd migrate --jobs $jobs (adds ${next}_bench_priority: a column and an index)"
t0=$(date +%s.%N)
set +e
summary=$(TENANTD_DATA_DIR=$work/data TENANTD_MIGRATIONS_DIR=$work/migs \
    TENANTD_ADMIN_TOKEN=$token TENANTD_JWT_SECRET=$secret TENANTD_LOG_LEVEL=warn \
    "$bin" migrate --jobs "$jobs" 2>"$work/migrate.err")
rc=$?
set -e
t1=$(date +%s.%N)
[ -n "$summary" ] || { cat "$work/migrate.err" >&2; die "tenantd migrate printed no summary"; }
python3 - "$summary" "$t0" "$t1" "$rc" <<'PY'
import json, sys
s = json.loads(sys.argv[1]); t0, t1 = float(sys.argv[2]), float(sys.argv[3])
print(f"  exit {sys.argv[4]}: {s['targets']} targets, {s['migrated']} migrated, "
      f"{s['failed']} failed")
print(f"  migration phase {s['seconds']:.2f} s = {s['targets_per_second']:.0f} targets/s; "
      f"whole command {t1 - t0:.2f} s (start-up and pool included)")
for f in s["failures"][:5]:
    print(f"  failed: {f['tenant']}: {f['error']}")
PY
curl -s -H "Authorization: Bearer $token" "http://127.0.0.1:$port/admin/migrations" |
    python3 -c 'import json,sys; m=json.load(sys.stdin); print("  GET /admin/migrations: expected", m["expected_version"], "by version", m["tenants_by_version"], "pending", m["pending"], "failed", len(m["failed"]))'
