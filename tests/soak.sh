#!/bin/bash
# tests/soak.sh - `make soak`: mixed reads and writes over 100 tenants at 64 connections
# with wrk for SOAK_SECONDS (default 300) against a fresh tenantd and embedded PostgreSQL.
# Passes when there are no errors (socket errors, non-2xx), every project the database
# holds was answered 201 by the server (and wrk saw all but the last in-flight ones), and
# RSS stays flat. Prints RSS samples, throughput, latency and the counts.
#
#   SOAK_SECONDS=30 tests/soak.sh        a short run
#   TENANTD_BIN=build-sec/tenantd ...    another binary (default build/tenantd)
#   SOAK_TENANTS / SOAK_CONNECTIONS      100 / 64
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${TENANTD_BIN:-$root/build/tenantd}
secs=${SOAK_SECONDS:-300}
ntenants=${SOAK_TENANTS:-100}
conns=${SOAK_CONNECTIONS:-64}
admin=soak-admin-token-0123456789abcdef0123456789
secret=soak-jwt-secret-0123456789abcdef0123456789
pgbin=/usr/lib/postgresql/15/bin

command -v wrk >/dev/null || { echo "soak: wrk is not installed (make deps)" >&2; exit 2; }
[ -x "$bin" ] || { echo "soak: no $bin (make build)" >&2; exit 2; }

dir=$(mktemp -d /tmp/tdsoak.XXXXXX)
chmod 755 "$dir"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url=http://127.0.0.1:$port
pid=
cleanup() {
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid"
		wait "$pid" 2>/dev/null || true
	fi
	[ -n "${SOAK_KEEP:-}" ] || rm -rf "$dir"
}
trap cleanup EXIT

# The access log (stdout) goes through a counter of the server's own 201s to POST /projects.
TENANTD_DATA_DIR=$dir TENANTD_LISTEN=127.0.0.1:$port TENANTD_ADMIN_TOKEN=$admin \
	TENANTD_JWT_SECRET=$secret TENANTD_LOG_LEVEL=info \
	"$bin" serve 2>"$dir/tenantd.err" \
	> >(grep -c '"method":"POST","route":"/projects","status":201' >"$dir/server201") &
pid=$!
for _ in $(seq 1 900); do
	curl -sf "$url/health" >/dev/null 2>&1 && break
	kill -0 "$pid" 2>/dev/null || { echo "soak: tenantd exited" >&2; cat "$dir/tenantd.err" >&2; exit 1; }
	sleep 0.1
done

psql_in() { # psql_in DB SQL
	"$pgbin/psql" -X -q -At -h "$dir/pg" -p 5432 -U postgres -d "$1" -c "$2"
}

echo "soak: creating $ntenants tenants (pool, schema and database isolation)"
make_tenant() { # make_tenant I -> "slug isolation id token"
	local i=$1 iso slug
	case $((i % 10)) in 0 | 1 | 2 | 3 | 4) iso=pool ;; 5 | 6 | 7) iso=schema ;; *) iso=database ;; esac
	slug=$(printf 'soak-%03d' "$i")
	local t
	t=$(curl -sf -X POST "$url/admin/tenants" -H "Authorization: Bearer $admin" \
		-H 'Content-Type: application/json' \
		-d "{\"slug\":\"$slug\",\"name\":\"$slug\",\"plan\":\"enterprise\",\"isolation\":\"$iso\",\"owner\":{\"email\":\"o@$slug.test\",\"password\":\"owner-password-1\",\"name\":\"O\"}}")
	local id tok
	id=$(printf '%s' "$t" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
	tok=$(curl -sf -X POST "$url/t/$slug/auth/login" -H 'Content-Type: application/json' \
		-d "{\"email\":\"o@$slug.test\",\"password\":\"owner-password-1\"}" |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
	echo "$slug $iso $id $tok"
}
export -f make_tenant
export url admin
seq 0 $((ntenants - 1)) | xargs -P 4 -I{} bash -c 'make_tenant {}' >"$dir/tenants"
[ "$(wc -l <"$dir/tenants")" -eq "$ntenants" ] || { echo "soak: tenant setup failed" >&2; exit 1; }

cat >"$dir/soak.lua" <<'EOF'
-- 70% list projects, 10% GET /me, 20% create a project; tenants picked at random.
local threads = {}
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end
function init(args)
  tenants = {}
  for line in io.lines(args[1]) do
    local slug, iso, id, tok = line:match("(%S+) (%S+) (%S+) (%S+)")
    table.insert(tenants, {slug = slug, auth = "Bearer " .. tok})
  end
  math.randomseed(os.time() + id * 7919)
  statuses = {}
  n = 0
end
function request()
  local t = tenants[math.random(#tenants)]
  local r = math.random(100)
  n = n + 1
  if r <= 70 then
    return wrk.format("GET", "/t/" .. t.slug .. "/projects?limit=20", {Authorization = t.auth})
  elseif r <= 80 then
    return wrk.format("GET", "/t/" .. t.slug .. "/me", {Authorization = t.auth})
  end
  return wrk.format("POST", "/t/" .. t.slug .. "/projects",
                    {Authorization = t.auth, ["Content-Type"] = "application/json"},
                    '{"name":"soak-' .. id .. '-' .. n .. '","description":"soak"}')
end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
function done(summary, latency, requests)
  local agg = {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("statuses")) do agg[k] = (agg[k] or 0) + v end
  end
  local other = 0
  for k, v in pairs(agg) do
    io.write(string.format("status %d: %d\n", k, v))
    if k ~= 200 and k ~= 201 then other = other + v end
  end
  local e = summary.errors
  io.write(string.format("requests %d in %.1f s: %.0f req/s\n", summary.requests,
                         summary.duration / 1e6, summary.requests / (summary.duration / 1e6)))
  io.write(string.format("latency p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
                         latency:percentile(50) / 1000, latency:percentile(99) / 1000,
                         latency.max / 1000))
  io.write(string.format("socket errors: connect %d read %d write %d timeout %d\n",
                         e.connect, e.read, e.write, e.timeout))
  io.write(string.format("created %d\nnon2xx %d\nsockerr %d\n", agg[201] or 0, other,
                         e.connect + e.read + e.write + e.timeout))
end
EOF

rss() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }
echo "soak: ${secs}s of mixed load, $conns connections, 2 threads"
rss0=$(rss)
(
	while sleep 10; do echo "$(date +%s) $(rss)"; done
) >"$dir/rss" &
sampler=$!
wrk -t2 -c"$conns" -d"${secs}s" --timeout 10s --latency -s "$dir/soak.lua" "$url" \
	-- "$dir/tenants" >"$dir/wrk.out" 2>&1 || true
kill "$sampler" 2>/dev/null || true
rss1=$(rss)
cat "$dir/wrk.out"

# rows the database holds for the run, per storage
rows=0
while read -r slug iso id _; do
	hex=${id//-/}
	case $iso in
	pool) n=$(psql_in tenantd "SELECT count(*) FROM pool.projects WHERE tenant_id = '$id' AND name LIKE 'soak-%'") ;;
	schema) n=$(psql_in tenantd "SELECT count(*) FROM t_$hex.projects WHERE name LIKE 'soak-%'") ;;
	database) n=$(psql_in "td_$hex" "SELECT count(*) FROM t_$hex.projects WHERE name LIKE 'soak-%'") ;;
	esac
	rows=$((rows + n))
done <"$dir/tenants"

kill -TERM "$pid"
wait "$pid" || { echo "soak: tenantd did not exit 0 on SIGTERM" >&2; }
pid=
for _ in $(seq 1 50); do [ -s "$dir/server201" ] && break; sleep 0.1; done
server201=$(cat "$dir/server201" 2>/dev/null || echo 0)
created=$(sed -n 's/^created //p' "$dir/wrk.out")
non2xx=$(sed -n 's/^non2xx //p' "$dir/wrk.out")
sockerr=$(sed -n 's/^sockerr //p' "$dir/wrk.out")
rssmax=$(awk -v m="$rss1" '$2 > m {m = $2} END {print m}' "$dir/rss")
rss10=$(awk 'NR == 1 {print $2}' "$dir/rss")

echo
echo "soak summary ($secs s, $ntenants tenants, $conns connections)"
echo "  RSS: before load ${rss0} KiB, after 10 s ${rss10:-?} KiB, end ${rss1} KiB, max ${rssmax} KiB"
echo "  projects created: wrk saw ${created:-?} x 201, server answered ${server201} x 201, database holds ${rows}"
echo "  errors: non-2xx ${non2xx:-?}, socket ${sockerr:-?}"
grep -c ' error: ' "$dir/tenantd.err" | sed 's/^/  server error lines: /' || true

fail=0
[ "${non2xx:-1}" -eq 0 ] || { echo "FAIL: non-2xx answers"; fail=1; }
[ "${sockerr:-1}" -eq 0 ] || { echo "FAIL: socket errors"; fail=1; }
[ "$rows" -eq "$server201" ] || { echo "FAIL: database rows ($rows) != server 201s ($server201)"; fail=1; }
# wrk stops with up to one request in flight per connection: those 201s it never read
[ "$rows" -ge "${created:-0}" ] && [ $((rows - ${created:-0})) -le "$conns" ] ||
	{ echo "FAIL: database rows ($rows) vs 201s seen by wrk (${created:-?})"; fail=1; }
# flat: the end within 25% (+16 MiB) of the 10 s mark, once caches and pools are warm
base=${rss10:-$rss0}
[ "$rss1" -le $((base * 5 / 4 + 16384)) ] || { echo "FAIL: RSS grew from $base to $rss1 KiB"; fail=1; }
[ $fail -eq 0 ] && echo "soak: PASS" || echo "soak: FAIL"
exit $fail
