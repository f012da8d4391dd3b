-- wrk.lua - tenantd over HTTP, rotating tenants and their tokens (run by bench.py).
--
-- Environment:
--   BENCH_TOKENS  file of "k token" lines, one per tenant (k = 100000000000 + n, see seed.sql)
--   BENCH_MODE    list (GET /projects), get (GET /projects/{id}), post (POST /projects)
--   BENCH_ONLY    1-based line of BENCH_TOKENS: every request is that tenant's (0: all)
--   BENCH_SEQ     1: walk the tenants in order (warm-up), else pick one at random
-- The tenant is named by the token's tid claim alone. done() prints one line
-- "BENCHJSON {...}" with the counts and the latency percentiles (microseconds).
local mode = os.getenv("BENCH_MODE") or "list"
local file = os.getenv("BENCH_TOKENS")
local only = tonumber(os.getenv("BENCH_ONLY") or "0") or 0
local seq = os.getenv("BENCH_SEQ") == "1"

local nthreads = 0
function setup(thread)
    thread:set("thread_no", nthreads)
    nthreads = nthreads + 1
end

local tenants = {}
local next_i = 0

function init(args)
    for line in io.lines(file) do
        local k, tok = line:match("^(%d+) (%S+)$")
        if k then
            tenants[#tenants + 1] = {k = k, auth = "Bearer " .. tok}
        end
    end
    local no = thread_no or 0
    math.randomseed(os.time() * 1000 + no * 7919)
    -- in sequential mode each thread starts at its own place in the list
    next_i = math.random(#tenants) - 1
end

local post_body = '{"name":"bench project"}'

function request()
    local t
    if only > 0 then
        t = tenants[only]
    elseif seq then
        t = tenants[next_i + 1]
        next_i = (next_i + 1) % #tenants
    else
        t = tenants[math.random(#tenants)]
    end
    local headers = {["Authorization"] = t.auth}
    if mode == "get" then
        local path = string.format("/projects/%08d-0000-4000-9000-%s", 10000000 + math.random(50), t.k)
        return wrk.format("GET", path, headers)
    elseif mode == "post" then
        headers["Content-Type"] = "application/json"
        return wrk.format("POST", "/projects", headers, post_body)
    end
    return wrk.format("GET", "/projects", headers)
end

function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        'BENCHJSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
        '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
        '"p50_us":%d,"p90_us":%d,"p99_us":%d,"mean_us":%.1f,"max_us":%d}\n',
        summary.requests, summary.duration, summary.bytes,
        e.connect, e.read, e.write, e.status, e.timeout,
        latency:percentile(50), latency:percentile(90), latency:percentile(99),
        latency.mean, latency.max))
end
