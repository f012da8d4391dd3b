#!/usr/bin/env python3
"""pipeline_ab.py - the event loops' PostgreSQL pipelines on and off in one run.

One tenantd data dir seeded as bench.py seeds it (BENCH_TENANTS, first count only), then
BENCH_RUNS rounds of: restart tenantd with TENANTD_PIPELINE=0, wrk on GET /projects,
GET /projects/{id} and POST /projects for BENCH_SECONDS each; the same with
TENANTD_PIPELINE=1, so that both see the same data and the same load on the machine (it is
shared, and wall-clock figures swing: compare the two settings within one run only). Each
run also reports the CPU time tenantd and PostgreSQL (postmaster and its children) spent
per request, from /proc: a figure other load on the machine disturbs far less than req/s.
System calls per request: bench/syscalls.py with TENANTD_PIPELINE=0 and then 1.
Run: BENCH_BIN=build/tenantd BENCH_TENANTS=10 BENCH_SECONDS=5 BENCH_RUNS=1 python3
bench/pipeline_ab.py (the bench's other BENCH_* settings apply). Prints a table, writes
bench/results/pipeline-<timestamp>.json.
"""
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

CFG = bench.CFG
ON = int(os.environ.get("BENCH_PIPELINE_ON", "1"))  # TENANTD_PIPELINE of the "on" runs
# "NAME=value,..." set only for the "on" runs (e.g. TENANTD_HTTP_THREADS=2)
ON_ENV = dict(x.split("=", 1) for x in os.environ.get("BENCH_ON_ENV", "").split(",") if x)


def restart(ph, pipeline):
    if ph.proc and ph.proc.poll() is None:
        ph.proc.send_signal(signal.SIGTERM)
        ph.proc.wait(timeout=60)
    os.environ["TENANTD_PIPELINE"] = str(pipeline)
    for k, v in ON_ENV.items():
        if pipeline:
            os.environ[k] = v
        else:
            os.environ.pop(k, None)
    ph.start()
    for ep in CFG["endpoints"]:  # warm: connections, prepared statements, caches
        bench.run_wrk(ph, ep, CFG["conns"], 1, label="warm-up")


TICK = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid):
    """utime + stime of pid and its threads (0 when it is gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return 0


def pg_pids(ph):
    """The embedded cluster's postmaster and its children (backends included)."""
    try:
        with open(os.path.join(ph.sock, "postmaster.pid")) as f:
            master = int(f.readline())
    except (OSError, ValueError):
        return []
    pids = [master]
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == master:
                        pids.append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    return pids


def cpu_now(ph):
    """CPU seconds so far of tenantd and of PostgreSQL (backends come and go: those that
    exit during a run are not counted; the pipelines' and pools' backends stay)."""
    pg = {p: cpu_ticks(p) for p in pg_pids(ph)}
    return cpu_ticks(ph.proc.pid) / TICK, pg


def measured(ph, ep, label):
    """One wrk run with the CPU each side spent per request (robust to a busy machine,
    where req/s is not)."""
    t0, pg0 = cpu_now(ph)
    r = bench.run_wrk(ph, ep, CFG["conns"], CFG["seconds"], label=label)
    t1, pg1 = cpu_now(ph)
    reqs = max(r["requests"], 1)
    pg = sum(v - pg0.get(p, 0) for p, v in pg1.items() if p in pg0) / TICK
    r["tenantd_cpu_us"] = round((t1 - t0) * 1e6 / reqs, 1)
    r["pg_cpu_us"] = round(pg * 1e6 / reqs, 1)
    return r


def main():
    first = os.environ.get("BENCH_TENANTS", "10").split(",")[0]
    n = int(first.split(":")[0])
    share = float(first.split(":")[1]) if ":" in first else 0.5
    ph = bench.Phase(n, share)
    result = {"pipeline_on": ON, "on_env": ON_ENV, "tenants": n, "seconds": CFG["seconds"], "conns": CFG["conns"],
              "machine": bench.machine(), "http": {"0": {}, "1": {}}}
    try:
        ph.start()
        ph.seed()
        ph.check_http()
        for run in range(CFG["runs"]):
            for pipeline in (0, ON):
                restart(ph, pipeline)
                for ep in CFG["endpoints"]:
                    r = measured(ph, ep, "pipeline=%d %s" % (pipeline, ep))
                    result["http"]["1" if pipeline else "0"].setdefault(ep, []).append(
                        {k: r[k] for k in ("rps", "p50_ms", "p99_ms", "errors", "tenantd_cpu_us",
                                            "pg_cpu_us")})
                    bench.log("run %d pipeline=%d %s: %.0f req/s p99 %.1f ms, %d errors, CPU "
                              "per request: tenantd %.0f us, PostgreSQL %.0f us"
                              % (run + 1, pipeline, ep, r["rps"], r["p99_ms"], r["errors"],
                                 r["tenantd_cpu_us"], r["pg_cpu_us"]))
    finally:
        ph.stop()
    print("\n%-22s %12s %12s %7s" % ("", "PIPELINE=0", "PIPELINE=%d" % ON, "ratio"))
    for key, what in (("rps", "req/s"), ("tenantd_cpu_us", "tenantd CPU us/req"),
                      ("pg_cpu_us", "PostgreSQL CPU us/req")):
        print("-- %s (median)" % what)
        for ep in CFG["endpoints"]:
            med = []
            for p in ("0", "1"):
                v = sorted(x[key] for x in result["http"][p].get(ep, []))
                med.append(v[len(v) // 2] if v else 0)
            print("%-22s %12.1f %12.1f %7.2f" % (bench.ENDPOINTS[ep], med[0], med[1],
                                                 med[1] / med[0] if med[0] else 0))
    os.makedirs(CFG["results"], exist_ok=True)
    path = os.path.join(CFG["results"], "pipeline-%s.json" % time.strftime("%Y%m%d-%H%M%S"))
    with open(path, "w") as f:
        json.dump(result, f, indent=1)
    print("wrote", path)


if __name__ == "__main__":
    main()
