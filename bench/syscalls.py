#!/usr/bin/env python3
"""syscalls.py - system calls per request of tenantd, by kind (`strace -c -f`).

Starts tenantd with bench.py's embedded cluster and seed (SYSCALL_TENANTS tenants, half
schema), warms it up, then for GET /projects, GET /projects/{id} and POST /projects attaches
`strace -c -f` to every thread of tenantd, sends SYSCALL_REQS requests over SYSCALL_CONNS
keep-alive connections (random tenants), detaches and divides. An idle window of the same
length is traced first and subtracted, so that the background threads (job workers, the
listener, the table watcher) are not charged to requests. Counts, not times: strace slows
every call, so wall-clock figures under it mean nothing.

    SYSCALL_BIN=build/tenantd python3 bench/syscalls.py
    SYSCALL_BIN=/tmp/before/build/tenantd SYSCALL_JSON=/tmp/before.json python3 bench/syscalls.py
"""
import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

BIN = os.path.abspath(os.environ.get("SYSCALL_BIN", os.path.join(bench.ROOT, "build", "tenantd")))
TENANTS = int(os.environ.get("SYSCALL_TENANTS", "10"))
REQS = int(os.environ.get("SYSCALL_REQS", "2000"))
CONNS = int(os.environ.get("SYSCALL_CONNS", "8"))
OUT = os.environ.get("SYSCALL_JSON", "")


def one_request(conn, ph, ep, rnd):
    n = rnd.randint(1, ph.n)
    k = bench.tenant_k(n)
    headers = {"Authorization": "Bearer " + ph.token_of[n]}
    if ep == "list":
        conn.request("GET", "/projects", headers=headers)
    elif ep == "get":
        conn.request("GET", "/projects/" + bench.project_id(k, rnd.randint(1, 50)),
                     headers=headers)
    else:
        headers["Content-Type"] = "application/json"
        conn.request("POST", "/projects", body=b'{"name":"syscall project"}', headers=headers)
    r = conn.getresponse()
    r.read()
    return r.status


def load(ph, ep, total):
    """total requests of ep over CONNS keep-alive connections; returns the non-2xx count."""
    bad = [0]
    lock = threading.Lock()

    def client(i, count):
        rnd = random.Random(1000 + i)
        conn = http.client.HTTPConnection("127.0.0.1", ph.port, timeout=30)
        errs = 0
        for _ in range(count):
            if one_request(conn, ph, ep, rnd) not in (200, 201):
                errs += 1
        conn.close()
        with lock:
            bad[0] += errs
    per = [total // CONNS + (1 if i < total % CONNS else 0) for i in range(CONNS)]
    th = [threading.Thread(target=client, args=(i, c)) for i, c in enumerate(per)]
    for t in th:
        t.start()
    for t in th:
        t.join()
    return bad[0]


def traced(pid, work):
    """Run work() while `strace -c -f` follows every thread of pid; {syscall: calls}."""
    out = tempfile.mktemp(prefix="strace-", suffix=".txt")
    cmd = ["strace", "-c", "-f", "-qq", "-o", out]
    for tid in os.listdir("/proc/%d/task" % pid):
        cmd += ["-p", tid]
    st = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # attached to every thread before the first request
    t0 = time.monotonic()
    work()
    wall = time.monotonic() - t0
    st.send_signal(signal.SIGINT)
    st.wait(timeout=30)
    counts = {}
    with open(out) as f:
        for line in f:
            p = line.split()
            if len(p) >= 5 and p[-1] != "total" and p[3].isdigit() and p[0][0].isdigit():
                counts[p[-1]] = counts.get(p[-1], 0) + int(p[3])
    os.unlink(out)
    return counts, wall


def measure(ph):
    res = {}
    for ep in ("list", "get", "post"):
        load(ph, ep, 300)  # warm: statements prepared, caches filled
        busy, wall = traced(ph.proc.pid, lambda: res.setdefault(
            ep + "_errors", load(ph, ep, REQS)))
        idle, _ = traced(ph.proc.pid, lambda: time.sleep(wall))
        net = {k: (busy.get(k, 0) - idle.get(k, 0)) / REQS for k in set(busy) | set(idle)}
        # kinds under 0.05 a request are mostly periodic background work (a file read every
        # few seconds) landing in one window or the other; they stay in the total
        res[ep] = {k: round(v, 2) for k, v in sorted(net.items(), key=lambda x: -x[1])
                   if abs(v) >= 0.05}
        res[ep + "_total"] = round(sum(net.values()), 2)
        res[ep + "_idle_calls"] = sum(idle.values())
        bench.log("%s: %.2f system calls per request (%d requests, %d idle calls subtracted)"
                  % (bench.ENDPOINTS[ep], res[ep + "_total"], REQS, res[ep + "_idle_calls"]))
    return res


def report(res):
    print()
    print("system calls per request of tenantd (strace -c -f, %d requests per endpoint over %d "
          "keep-alive connections, idle background subtracted; kinds of 0.05 and more a "
          "request listed, the total counts all)" % (REQS, CONNS))
    for ep in ("list", "get", "post"):
        print("%-20s total %6.2f  %s" % (bench.ENDPOINTS[ep], res[ep + "_total"], ", ".join(
            "%s %.2f" % kv for kv in res[ep].items())))


def main():
    if not shutil.which("strace"):
        bench.fail("strace not found (make deps installs it)")
    bench.CFG["bin"] = BIN
    ph = bench.Phase(TENANTS)
    try:
        ph.start()
        ph.seed()
        ph.check_http()
        res = measure(ph)
        res.update({"binary": BIN, "requests": REQS, "connections": CONNS,
                    "tenants": TENANTS, "loadavg": bench.loadavg()})
        report(res)
        if OUT:
            with open(OUT, "w") as f:
                json.dump(res, f, indent=1)
    finally:
        ph.stop()


if __name__ == "__main__":
    try:
        main()
    except RuntimeError as e:
        print("syscalls: " + str(e), file=sys.stderr)
        sys.exit(1)
