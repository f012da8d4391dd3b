#!/usr/bin/env python3
"""wake.py - wake times of hibernated database tenants (TENANTD_HIBERNATE_AFTER=1s).

One tenantd (BENCH_BIN, default build-bench/tenantd), one database tenant: BENCH_WAKES
times (default 25), wait until its database is hibernated (pg_database.datconnlimit = 0),
then time the first GET /projects (the wake) and a second one (warm). Prints p50/p99.
Run: BENCH_BIN=build/tenantd python3 bench/wake.py
"""
import os
import sys
import time

os.environ["TENANTD_HIBERNATE_AFTER"] = "1s"
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as B  # noqa: E402
import dbtenants as D  # noqa: E402


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def main():
    ph = B.Phase(0)
    ph.sampler = None
    wakes, warm = [], []
    try:
        ph.start()
        t = D.make_tenant(B, ph, "database", 1)
        dbn = "td_" + D.hexid(t["id"])
        for _ in range(B.env_int("BENCH_WAKES", 25)):
            for _ in range(100):
                q = "SELECT datconnlimit FROM pg_database WHERE datname = '%s'" % dbn
                if ph.psql(q).strip() == "0":
                    break
                time.sleep(0.1)
            else:
                B.fail("the tenant database was not hibernated within 10 s")
            for xs in (wakes, warm):
                t0 = time.monotonic()
                st, body = ph.http("GET", "/projects", t["token"])
                xs.append((time.monotonic() - t0) * 1000)
                if st != 200:
                    B.fail("GET /projects after hibernation: %s %s" % (st, body[:200]))
    finally:
        ph.stop()
    print("wakes: n=%d p50 %.1f ms, p99 %.1f ms; the next request (warm): p50 %.1f ms"
          % (len(wakes), pct(wakes, 50), pct(wakes, 99), pct(warm, 50)))


if __name__ == "__main__":
    main()
