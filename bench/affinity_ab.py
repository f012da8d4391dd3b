#!/usr/bin/env python3
"""affinity_ab.py - two tenantd binaries on one seeded cluster, with backend memory.

Seeds one data dir as bench.py seeds a phase (BENCH_TENANTS, first entry only, e.g.
10000:1 for 10,000 schema tenants), then BENCH_RUNS rounds in which each binary in turn
(BENCH_BIN_A, then BENCH_BIN_B; the order flips every other round) is started on that data,
warmed with BENCH_WARMUP s of random requests per endpoint, and measured with wrk for
BENCH_SECONDS per endpoint (GET /projects, GET /projects/{id}, POST /projects). After each
endpoint: the request pool's backends (count, sum and largest RssAnon, bench.backend_memory)
and, over the measured window, connections opened (tenantd_db_pool_lru_misses_total),
acquires, affine acquires and recycles (bench.pool_metrics; a binary without a counter
reports none). Both binaries see the same data and, interleaved, about the same machine.
Run: BENCH_BIN_A=old/tenantd BENCH_BIN_B=build/tenantd BENCH_TENANTS=10000:1
BENCH_SECONDS=15 BENCH_RUNS=1 python3 bench/affinity_ab.py. Prints a table, writes
bench/results/affinity-<timestamp>.json.
"""
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

CFG = bench.CFG
BINS = {"A": os.environ.get("BENCH_BIN_A", ""), "B": os.environ.get("BENCH_BIN_B", CFG["bin"])}


def restart(ph, which):
    if ph.proc and ph.proc.poll() is None:
        ph.proc.send_signal(signal.SIGTERM)
        ph.proc.wait(timeout=60)
    CFG["bin"] = BINS[which]
    ph.start()
    for ep in CFG["endpoints"]:  # random tenants, as measured: backends fill as they would
        if CFG["warmup"] > 0:
            bench.run_wrk(ph, ep, CFG["conns"], CFG["warmup"], label="warm-up")


def delta(after, before, name):
    return after[name] - before[name] if name in after and name in before else None


def measured(ph, ep, label):
    m0 = bench.pool_metrics(ph)
    la0 = bench.loadavg()
    r = bench.run_wrk(ph, ep, CFG["conns"], CFG["seconds"], label=label)
    m1 = r["pool_metrics"]
    acq = delta(m1, m0, "tenantd_db_pool_acquires_total")
    if acq is None:  # older binaries: acquires = hits + misses
        acq = (delta(m1, m0, "tenantd_db_pool_lru_hits_total") or 0) + \
              (delta(m1, m0, "tenantd_db_pool_lru_misses_total") or 0)
    aff = delta(m1, m0, "tenantd_db_pool_affine_total")
    out = {k: r[k] for k in ("rps", "p50_ms", "p99_ms", "errors")}
    out.update({
        "backends": r["backends"],
        "opened": delta(m1, m0, "tenantd_db_pool_lru_misses_total"),
        "acquires": acq,
        "affine": aff,
        "affine_share": round(aff / acq, 3) if aff is not None and acq else None,
        "recycled_memory": delta(m1, m0, "tenantd_db_pool_recycled_memory_total"),
        "recycled_tenants": delta(m1, m0, "tenantd_db_pool_recycled_tenants_total"),
        "loadavg": [la0, bench.loadavg()],
    })
    return out


def show(which, ep, r):
    b = r["backends"]
    bench.log("%s %s: %.0f req/s p99 %.1f ms, %d errors; %d backends, RssAnon sum %.0f MiB, "
              "max %.0f MiB; opened %s, acquires %s, affine %s (%s), recycled memory %s / "
              "tenants %s; load %s" % (
                  which, ep, r["rps"], r["p99_ms"], r["errors"], b["count"], b["sum_kib"] / 1024,
                  b["max_kib"] / 1024, r["opened"], r["acquires"], r["affine"],
                  r["affine_share"], r["recycled_memory"], r["recycled_tenants"], r["loadavg"]))


def main():
    if not BINS["A"]:
        bench.fail("BENCH_BIN_A (the binary to compare against BENCH_BIN_B) is not set")
    CFG["backend_mem"] = 1
    first = os.environ.get("BENCH_TENANTS", "10").split(",")[0]
    n = int(first.split(":")[0])
    share = float(first.split(":")[1]) if ":" in first else 0.5
    ph = bench.Phase(n, share)
    result = {"bins": BINS, "tenants": n, "schema_tenants": ph.nschema, "seconds": CFG["seconds"],
              "warmup": CFG["warmup"], "conns": CFG["conns"], "machine": bench.machine(),
              "runs": {"A": {}, "B": {}}}
    try:
        CFG["bin"] = BINS["B"]
        ph.start()
        t0 = time.monotonic()
        ph.seed()
        result["seed_seconds"] = round(time.monotonic() - t0, 1)
        ph.check_http()
        for run in range(CFG["runs"]):
            for which in ("AB" if run % 2 == 0 else "BA"):
                restart(ph, which)
                for ep in CFG["endpoints"]:
                    r = measured(ph, ep, "%s %s" % (which, ep))
                    result["runs"][which].setdefault(ep, []).append(r)
                    show(which, ep, r)
    finally:
        ph.stop()
    print("\n%-20s %-3s %9s %7s %5s %9s %9s %7s %7s" % (
        "", "bin", "req/s", "p99 ms", "conns", "sum MiB", "max MiB", "opened", "affine"))
    for ep in CFG["endpoints"]:
        for which in "AB":
            for r in result["runs"][which].get(ep, []):
                b = r["backends"]
                print("%-20s %-3s %9.0f %7.1f %5d %9.0f %9.0f %7s %7s" % (
                    bench.ENDPOINTS[ep], which, r["rps"], r["p99_ms"], b["count"],
                    b["sum_kib"] / 1024, b["max_kib"] / 1024, r["opened"],
                    r["affine_share"] if r["affine_share"] is not None else "-"))
    os.makedirs(CFG["results"], exist_ok=True)
    path = os.path.join(CFG["results"], "affinity-%s.json" % time.strftime("%Y%m%d-%H%M%S"))
    with open(path, "w") as f:
        json.dump(result, f, indent=1)
    print("wrote", path)


if __name__ == "__main__":
    main()
