#!/usr/bin/env python3
"""Read replicas under a mixed load: the replica's share of tenant reads and its lag.

Starts build/tenantd with TENANTD_REPLICA=1 TENANTD_READ_REPLICAS=reads in a temporary
data dir, creates TENANTS enterprise pool tenants, then runs one client thread per tenant
for SECONDS: one POST /projects, then READS GETs of the list, again and again. Every read
checks that the tenant's newest project is the one it just wrote (read-your-writes).
/metrics is sampled every 100 ms for tenantd_replica_lag_bytes.

    python3 bench/replica.py [SECONDS] [TENANTS] [READS]
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

TOKEN = "bench-admin-token-0123456789abcdef0123456"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def call(base, method, path, token=None, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method)
    if data:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status, r.read()


def metrics(base):
    _, body = call(base, "GET", "/metrics", TOKEN)
    out = {}
    for line in body.decode().splitlines():
        if line.startswith("tenantd_replica_"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 15
    tenants = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    reads = int(sys.argv[3]) if len(sys.argv) > 3 else 9
    tmp = tempfile.mkdtemp(prefix="td-replica-bench-")
    os.chmod(tmp, 0o755)
    port = 18000 + os.getpid() % 1000
    base = "http://127.0.0.1:%d" % port
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENANTD_")}
    env.update(TENANTD_DATA_DIR=tmp + "/var", TENANTD_LISTEN="127.0.0.1:%d" % port,
               TENANTD_ADMIN_TOKEN=TOKEN, TENANTD_REPLICA="1", TENANTD_READ_REPLICAS="reads",
               TENANTD_BACKUP="0", TENANTD_LOG_LEVEL="warn",
               TENANTD_MIGRATIONS_DIR=ROOT + "/migrations")
    log = open(tmp + "/tenantd.log", "w")
    proc = subprocess.Popen([ROOT + "/build/tenantd", "serve"], env=env, stdout=log, stderr=log)
    try:
        for _ in range(600):
            try:
                call(base, "GET", "/health")
                break
            except Exception:
                time.sleep(0.1)
        users = []
        for i in range(tenants):
            slug = "bench-%d" % i
            owner = {"email": "o%d@bench.example" % i, "password": "correct-horse-1", "name": "O"}
            call(base, "POST", "/admin/tenants", TOKEN, {"slug": slug, "name": slug,
                 "plan": "enterprise", "isolation": "pool", "owner": owner})
            _, b = call(base, "POST", "/t/%s/auth/login" % slug, None,
                        {"email": owner["email"], "password": owner["password"]})
            users.append((slug, json.loads(b)["token"]))
        time.sleep(0.5)
        m0 = metrics(base)
        stop = time.monotonic() + seconds
        counts = {"writes": 0, "reads": 0, "stale": 0, "errors": 0}
        lock = threading.Lock()

        def client(slug, token):
            n = 0
            while time.monotonic() < stop:
                n += 1
                name = "p-%d" % n
                try:
                    call(base, "POST", "/t/%s/projects" % slug, token, {"name": name})
                    w, r, s = 1, 0, 0
                    for _ in range(reads):
                        _, b = call(base, "GET", "/t/%s/projects?limit=1" % slug, token)
                        r += 1
                        s += json.loads(b)["data"][0]["name"] != name
                    with lock:
                        counts["writes"] += w
                        counts["reads"] += r
                        counts["stale"] += s
                except Exception:
                    with lock:
                        counts["errors"] += 1

        lags = []
        threads = [threading.Thread(target=client, args=u) for u in users]
        for t in threads:
            t.start()
        while time.monotonic() < stop:
            lags.append(metrics(base).get('tenantd_replica_lag_bytes{server="main"}', -1))
            time.sleep(0.1)
        for t in threads:
            t.join()
        m1 = metrics(base)
        rk = 'tenantd_replica_reads_total{server="main",target="replica"}'
        pk = 'tenantd_replica_reads_total{server="main",target="primary"}'
        rep, prim = m1[rk] - m0[rk], m1[pk] - m0[pk]
        lags.sort()
        print("%d tenants, %.0f s, 1 write + %d reads per round" % (tenants, seconds, reads))
        print("writes %d, reads %d (%.0f req/s), stale reads %d, errors %d" % (
            counts["writes"], counts["reads"], (counts["writes"] + counts["reads"]) / seconds,
            counts["stale"], counts["errors"]))
        print("reads on the replica %.0f, on the primary %.0f: replica share %.1f%%" % (
            rep, prim, 100.0 * rep / max(1, rep + prim)))
        print("replica lag bytes (100 ms samples): median %.0f, p99 %.0f, max %.0f" % (
            statistics.median(lags), lags[int(len(lags) * 0.99) - 1], lags[-1]))
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
