#!/usr/bin/env python3
"""groupcommit.py - does commit_delay / commit_siblings on the embedded cluster close the
POST /projects gap? tenantd commits from its pool (TENANTD_POOL_SIZE, 4) while the ceiling
commits from 32 clients, so the ceiling gets group commit for free.

For each setting in GC_SETTINGS (';'-separated BENCH_PG_SETTINGS values, '' = the cluster's
defaults), one bench.py run of POST /projects only, GC_TENANTS tenants (half schema),
BENCH_RUNS runs of BENCH_SECONDS, no fairness pair, no calibration (every client count is
measured each run and the better kept). The setting is applied with ALTER SYSTEM before
anything is measured, so the ceiling's pgbench runs get it too. Prints one table.

    BENCH_BIN=build/tenantd python3 bench/groupcommit.py
"""
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SETTINGS = os.environ.get(
    "GC_SETTINGS",
    ";commit_delay=100,commit_siblings=2;commit_delay=500,commit_siblings=2;"
    "commit_delay=1000,commit_siblings=2").split(";")


def run(setting, outdir):
    env = dict(os.environ)
    env.update({
        "BENCH_TENANTS": os.environ.get("GC_TENANTS", "10"), "BENCH_ENDPOINTS": "post",
        "BENCH_DB_TENANTS": "", "BENCH_CALIBRATE": "0", "BENCH_FAIRNESS": "0",
        "BENCH_RUNS": os.environ.get("BENCH_RUNS", "2"),
        "BENCH_SECONDS": os.environ.get("BENCH_SECONDS", "5"),
        "BENCH_PG_SETTINGS": setting, "BENCH_RESULTS": outdir,
    })
    before = set(os.listdir(outdir))
    r = subprocess.run([sys.executable, os.path.join(HERE, "bench.py")], env=env,
                       capture_output=True, text=True)
    if r.returncode != 0:
        print(r.stdout[-2000:], r.stderr[-2000:], file=sys.stderr)
        raise SystemExit("groupcommit: bench.py failed for %r" % setting)
    new = sorted(set(os.listdir(outdir)) - before)
    with open(os.path.join(outdir, new[-1])) as f:
        return json.load(f)


def row(setting, res):
    ph = res["phases"][0]
    s = ph["summary"]["post"]
    g = lambda k: s.get(k, {}).get("per_second")  # noqa: E731
    return {"setting": setting or "(defaults: commit_delay 0)",
            "ceiling_pool": g("ceiling_pool"), "ceiling_schema": g("ceiling_schema"),
            "ceiling": g("ceiling"), "sql": g("sql"), "http": g("http"),
            "ratio": s["http"]["ratio"], "sql_config": s.get("sql", {}).get("config"),
            "loadavg": [ph["loadavg_start"], ph["loadavg_end"]]}


def main():
    outdir = tempfile.mkdtemp(prefix="groupcommit-")
    rows = []
    for setting in SETTINGS:
        rows.append(row(setting, run(setting.strip(), outdir)))
        print("done: %s" % rows[-1], flush=True)
    f = lambda v: "-" if v is None else "%.0f" % v  # noqa: E731
    print()
    print("POST /projects, req/s (medians), ratio = tenantd HTTP / ceiling; every run on its own "
          "cluster with the setting applied before the ceiling and tenantd are measured")
    print("%-40s %9s %9s %9s %9s %9s %6s  %s" % ("setting", "ceil pool", "ceil sch", "ceiling",
                                                 "SQL", "HTTP", "ratio", "load start/end"))
    for r in rows:
        print("%-40s %9s %9s %9s %9s %9s %6.2f  %s / %s" % (
            r["setting"], f(r["ceiling_pool"]), f(r["ceiling_schema"]), f(r["ceiling"]),
            f(r["sql"]), f(r["http"]), r["ratio"] or 0, r["loadavg"][0][0], r["loadavg"][1][0]))
    path = os.environ.get("GC_JSON")
    if path:
        with open(path, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
