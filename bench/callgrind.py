#!/usr/bin/env python3
"""Instructions per request of tenantd itself, repeatable on a loaded machine.

Runs `tenantd serve` under valgrind --tool=callgrind with bench.py's embedded cluster and
seed, sends PROF_REQS requests per endpoint (GET /projects, GET /projects/{id}, POST
/projects) on one keep-alive connection, and dumps one profile per endpoint
(callgrind.out.<pid>.1 list, .2 get, .3 post in PROF_OUT). Requests alternate between pool
tenant 1 and schema tenant N, or with PROF_WALK=1 walk every tenant in turn.

    PROF_BIN=build/tenantd PROF_OUT=/tmp/prof PROF_TENANTS=10 python3 bench/callgrind.py
    callgrind_annotate /tmp/prof/callgrind.out.*.1

For each endpoint it also prints what the in-memory caches did per request (GET /metrics,
tenantd_cache_*: tenant lookups that read the catalog, full token verifications, remembered user checks
looked up and not found (the transaction then checks), usage counters read from the catalog,
evictions).
PROF_SCHEMA_SHARE (default 0.5) is the share of schema tenants; 0 seeds pool tenants only.
PROF_VALGRIND=0 runs tenantd natively (no profile: cache counts, and RSS after the walk);
PROF_ENDPOINTS picks endpoints (default list,get,post); PROF_CONNS (default 1) splits the
requests over that many keep-alive connections at once (several event loops). With
PROF_WALK=1 the warm-up walks every tenant once (GET /projects) before the measured
requests go on walking:

    PROF_VALGRIND=0 PROF_TENANTS=100000 PROF_SCHEMA_SHARE=0 PROF_WALK=1 \
        PROF_REQS=100000 PROF_ENDPOINTS=list python3 bench/callgrind.py
"""
import http.client
import json
import os
import re
import stat
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

N = int(os.environ.get("PROF_TENANTS", "10"))
REQS = int(os.environ.get("PROF_REQS", "2000"))
WALK = int(os.environ.get("PROF_WALK", "0"))
OUT = os.path.abspath(os.environ.get("PROF_OUT", "/tmp/tenantd-callgrind"))
BIN = os.path.abspath(os.environ.get("PROF_BIN", os.path.join(bench.ROOT, "build", "tenantd")))
SHARE = float(os.environ.get("PROF_SCHEMA_SHARE", "0.5"))
VALGRIND = int(os.environ.get("PROF_VALGRIND", "1"))
ENDPOINTS = [e for e in os.environ.get("PROF_ENDPOINTS", "list,get,post").split(",") if e]
CONNS = int(os.environ.get("PROF_CONNS", "1"))
CACHES = ("tenant", "token", "user_check", "usage")


def cache_counts(ph):
    """{(metric, cache): value} of the tenantd_cache_* lines of GET /metrics."""
    st, body = ph.http("GET", "/metrics", bench.ADMIN_TOKEN)
    if st != 200:
        bench.fail("GET /metrics: %d" % st)
    out = {}
    for line in body.splitlines():
        m = re.match(r'^tenantd_cache_(\w+)\{cache="(\w+)"\} (\d+)$', line)
        if m:
            out[(m.group(1), m.group(2))] = int(m.group(3))
    return out


def report_caches(ep, before, after, n):
    def d(metric, cache):
        return (after.get((metric, cache), 0) - before.get((metric, cache), 0)) / n
    print("%s per request: catalog tenant reads %.4f, full token verifications %.4f, user check "
          "lookups missed %.4f, usage reads %.4f; evictions tenant %.4f, token %.4f, "
          "user_check %.4f"
          % (ep, d("misses_total", "tenant"), d("misses_total", "token"),
             d("misses_total", "user_check"), d("misses_total", "usage"),
             d("evictions_total", "tenant"), d("evictions_total", "token"),
             d("evictions_total", "user_check")))
    print("%s held: %s" % (ep, ", ".join(
        "%s %d entries / %.1f MiB" % (c, after.get(("entries", c), 0),
                                       after.get(("bytes", c), 0) / 1048576.0) for c in CACHES)))


def wrapper():
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "tenantd-callgrind.sh")
    with open(path, "w") as f:
        f.write("#!/bin/sh\nexec valgrind --tool=callgrind --callgrind-out-file=%s/callgrind.out.%%p"
                " %s \"$@\"\n" % (OUT, BIN))
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def main():
    os.environ["TENANTD_BACKUP"] = "0"
    bench.CFG["bin"] = wrapper() if VALGRIND else BIN
    ph = bench.Phase(N, SHARE)
    try:
        ph.start()
        ph.seed()
        ph.check_http()
        def req(conn, method, path, tok, body=None):
            h = {"Authorization": "Bearer " + tok}
            if body is not None:
                h["Content-Type"] = "application/json"
            conn.request(method, path, body=body, headers=h)
            r = conn.getresponse()
            r.read()
            if r.status not in (200, 201):
                bench.fail("%s %s: %d" % (method, path, r.status))

        def run_part(ep, count, part):
            conn = http.client.HTTPConnection("127.0.0.1", ph.port, timeout=120)
            for i in range(part, count, CONNS):
                n = 1 + i % N if WALK else (1, N)[i % 2]
                k, tok = bench.tenant_k(n), ph.token_of[n]
                if ep == "list":
                    req(conn, "GET", "/projects", tok)
                elif ep == "get":
                    req(conn, "GET", "/projects/" + bench.project_id(k, 1 + i % 50), tok)
                else:
                    req(conn, "POST", "/projects", tok, json.dumps({"name": "bench project"}))
            conn.close()

        def run(ep, count):
            errors = []

            def part(c):
                try:
                    run_part(ep, count, c)
                except Exception as e:  # noqa: BLE001 (reported below, in this thread)
                    errors.append(str(e))
            threads = [threading.Thread(target=part, args=(c,)) for c in range(CONNS)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            if errors:
                bench.fail(errors[0])

        if WALK:
            run("list", N)  # every tenant once: caches, prepared statements
        for ep in ENDPOINTS:
            run(ep, 100)
        pid = str(ph.proc.pid)
        for ep in ENDPOINTS:
            before = cache_counts(ph)
            if VALGRIND:
                subprocess.run(["callgrind_control", "-z", pid], capture_output=True, check=True)
            t0 = time.monotonic()
            run(ep, REQS)
            if VALGRIND:
                subprocess.run(["callgrind_control", "-d", ep, pid], capture_output=True,
                               check=True)
            bench.log("%s: %d requests in %.1f s" % (ep, REQS, time.monotonic() - t0))
            report_caches(ep, before, cache_counts(ph), REQS)
        mem = ph.memory()
        print("tenantd RSS %.1f MiB, peak %.1f MiB (%s)"
              % (mem.get("VmRSS", 0) / 1024.0, mem.get("VmHWM", 0) / 1024.0,
                 "under valgrind" if VALGRIND else "native"))
        for part, ep in enumerate(ENDPOINTS, 1):
            if not VALGRIND:
                break
            path = os.path.join(OUT, "callgrind.out.%s.%d" % (pid, part))
            with open(path) as f:
                total = next(int(l.split()[1]) for l in f if l.startswith("totals:"))
            print("%s: %d instructions per request (%s)" % (ep, total // REQS, path))
    finally:
        ph.stop()


if __name__ == "__main__":
    main()
