#!/usr/bin/env python3
"""pipeline_ab.py - the event loops' PostgreSQL pipelines on and off in one run.

One tenantd data dir seeded as bench.py seeds it (BENCH_TENANTS, first count only), then
BENCH_RUNS rounds of: restart tenantd with TENANTD_PIPELINE=0, wrk on GET /projects,
GET /projects/{id} and POST /projects for BENCH_SECONDS each; the same with
TENANTD_PIPELINE=1, so that both see the same data and the same load on the machine (it is
shared, and wall-clock figures swing: compare the two settings within one run only).
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
                    r = bench.run_wrk(ph, ep, CFG["conns"], CFG["seconds"],
                                      label="pipeline=%d %s" % (pipeline, ep))
                    result["http"]["1" if pipeline else "0"].setdefault(ep, []).append(
                        {k: r[k] for k in ("rps", "p50_ms", "p99_ms", "errors")})
                    bench.log("run %d pipeline=%d %s: %.0f req/s p99 %.1f ms, %d errors"
                              % (run + 1, pipeline, ep, r["rps"], r["p99_ms"], r["errors"]))
    finally:
        ph.stop()
    print("\n%-22s %12s %12s %7s" % ("req/s (median)", "PIPELINE=0", "PIPELINE=%d" % ON,
                                     "ratio"))
    for ep in CFG["endpoints"]:
        med = []
        for p in ("0", "1"):
            v = sorted(x["rps"] for x in result["http"][p].get(ep, []))
            med.append(v[len(v) // 2] if v else 0)
        print("%-22s %12.0f %12.0f %7.2f" % (bench.ENDPOINTS[ep], med[0], med[1],
                                             med[1] / med[0] if med[0] else 0))
    os.makedirs(CFG["results"], exist_ok=True)
    path = os.path.join(CFG["results"], "pipeline-%s.json" % time.strftime("%Y%m%d-%H%M%S"))
    with open(path, "w") as f:
        json.dump(result, f, indent=1)
    print("wrote", path)


if __name__ == "__main__":
    main()
