#!/usr/bin/env python3
"""Instructions per request of tenantd itself, repeatable on a loaded machine.

Runs `tenantd serve` under valgrind --tool=callgrind with bench.py's embedded cluster and
seed, sends PROF_REQS requests per endpoint (GET /projects, GET /projects/{id}, POST
/projects) on one keep-alive connection, and dumps one profile per endpoint
(callgrind.out.<pid>.1 list, .2 get, .3 post in PROF_OUT). Requests alternate between pool
tenant 1 and schema tenant N, or with PROF_WALK=1 walk every tenant in turn.

    PROF_BIN=build/tenantd PROF_OUT=/tmp/prof PROF_TENANTS=10 python3 bench/callgrind.py
    callgrind_annotate /tmp/prof/callgrind.out.*.1
"""
import http.client
import json
import os
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

N = int(os.environ.get("PROF_TENANTS", "10"))
REQS = int(os.environ.get("PROF_REQS", "2000"))
WALK = int(os.environ.get("PROF_WALK", "0"))
OUT = os.path.abspath(os.environ.get("PROF_OUT", "/tmp/tenantd-callgrind"))
BIN = os.path.abspath(os.environ.get("PROF_BIN", os.path.join(bench.ROOT, "build", "tenantd")))


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
    bench.CFG["bin"] = wrapper()
    ph = bench.Phase(N)
    try:
        ph.start()
        ph.seed()
        ph.check_http()
        conn = http.client.HTTPConnection("127.0.0.1", ph.port, timeout=120)

        def req(method, path, tok, body=None):
            h = {"Authorization": "Bearer " + tok}
            if body is not None:
                h["Content-Type"] = "application/json"
            conn.request(method, path, body=body, headers=h)
            r = conn.getresponse()
            r.read()
            if r.status not in (200, 201):
                bench.fail("%s %s: %d" % (method, path, r.status))

        def run(ep, count):
            for i in range(count):
                n = 1 + i % N if WALK else (1, N)[i % 2]
                k, tok = bench.tenant_k(n), ph.token_of[n]
                if ep == "list":
                    req("GET", "/projects", tok)
                elif ep == "get":
                    req("GET", "/projects/" + bench.project_id(k, 1 + i % 50), tok)
                else:
                    req("POST", "/projects", tok, json.dumps({"name": "bench project"}))

        for ep in ("list", "get", "post"):
            run(ep, N if WALK else 100)  # warm: caches, prepared statements
        pid = str(ph.proc.pid)
        for ep in ("list", "get", "post"):
            subprocess.run(["callgrind_control", "-z", pid], capture_output=True, check=True)
            t0 = time.monotonic()
            run(ep, REQS)
            subprocess.run(["callgrind_control", "-d", ep, pid], capture_output=True, check=True)
            bench.log("%s: %d requests in %.1f s" % (ep, REQS, time.monotonic() - t0))
        for part, ep in enumerate(("list", "get", "post"), 1):
            path = os.path.join(OUT, "callgrind.out.%s.%d" % (pid, part))
            with open(path) as f:
                total = next(int(l.split()[1]) for l in f if l.startswith("totals:"))
            print("%s: %d instructions per request (%s)" % (ep, total // REQS, path))
    finally:
        ph.stop()


if __name__ == "__main__":
    main()
