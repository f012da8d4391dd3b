"""dbtenants.py - the database-tenant phase of `make bench` (called by bench.py).

One tenantd with its embedded cluster. Tenants are made through the admin API, as an
operator would (POST /admin/tenants, plan enterprise, with an owner), 5 projects each.
For each level of hot database tenants (BENCH_DB_TENANTS, default 30,100,300; more are
created between levels), wrk runs GET /projects picking a random tenant per request:
  - at the first level, interleaved with the same load over as many pool tenants, and the
    ceiling: the same SQL (context + list, pipelined, prepared) through one warm pgbench
    client per tenant database, all in parallel;
  - at every level: throughput, connections tenantd holds open, PostgreSQL memory (private
    memory of tenantd's backends, PSS of the whole cluster), backend age at the end of the
    run, and the pool's misses (connections opened) during the run.
Machine noise moves every figure: compare ratios within one run.
"""
import concurrent.futures
import json
import os
import re
import statistics
import subprocess
import tempfile
import time

PW = "bench-password-1"


def db_cfg(B):
    return {
        "levels": [int(x) for x in os.environ.get("BENCH_DB_TENANTS", "30,100,300").split(",")
                   if x.strip()],
        "seconds": B.env_int("BENCH_DB_SECONDS", 8),
        "runs": B.env_int("BENCH_DB_RUNS", 2),
        "projects": 5,
    }


def hexid(uuid):
    return uuid.replace("-", "")


def make_tenant(B, ph, iso, n):
    slug = "%s-%d" % ("dbt" if iso == "database" else "pt", n)
    body = {"slug": slug, "name": slug, "plan": "enterprise", "isolation": iso,
            "owner": {"email": "owner@%s.example" % slug, "password": PW, "name": "Owner"}}
    st, resp = ph.http("POST", "/admin/tenants", B.ADMIN_TOKEN, body)
    if st != 201:
        B.fail("creating %s tenant %s: %s %s" % (iso, slug, st, resp[:300]))
    j = json.loads(resp)
    owner = j.get("owner") or {}
    uid = owner.get("id")
    if not uid:
        B.fail("no owner id in the answer to POST /admin/tenants: %s" % resp[:300])
    now = int(time.time())
    tok = B.jwt({"sub": uid, "tid": j["id"], "role": "owner", "iat": now,
                 "exp": now + 7 * 86400})
    for i in range(5):
        st, resp = ph.http("POST", "/projects", tok, {"name": "project %d" % i})
        if st != 201:
            B.fail("POST /projects for %s: %s %s" % (slug, st, resp[:200]))
    return {"n": n, "id": j["id"], "token": tok, "iso": iso}


def make_tenants(B, ph, iso, lo, hi, jobs=2):
    with concurrent.futures.ThreadPoolExecutor(jobs) as ex:
        return list(ex.map(lambda n: make_tenant(B, ph, iso, n), range(lo, hi + 1)))


def token_file(ph, tenants, name):
    path = os.path.join(ph.tmp, name)
    with open(path, "w") as f:
        for t in tenants:
            f.write("%d %s\n" % (100000000000 + t["n"], t["token"]))
    return path


def wrk(B, ph, tenants, name, seconds, seq=False):
    ph.tokens = token_file(ph, tenants, name)
    return B.run_wrk(ph, "list", B.CFG["conns"], seconds, seq=seq, label=name)


def metric(B, ph, name):
    st, body = ph.http("GET", "/metrics", B.ADMIN_TOKEN)
    for line in body.splitlines():
        if line.startswith(name + "{server=\"main\"}"):
            return float(line.split()[-1])
    return None


def private_kib(pid):
    """Private (unshared) memory of one process: what it costs beyond the shared buffers."""
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            kv = {l.split(":")[0]: int(l.split()[1]) for l in f if l.split()[-1] == "kB"}
        return kv.get("Private_Clean", 0) + kv.get("Private_Dirty", 0), kv.get("Pss", 0)
    except OSError:
        return 0, 0


def pg_state(ph):
    """tenantd's backends (count, median age in s, private memory) and the cluster's PSS."""
    rows = ph.psql("SELECT pid, extract(epoch FROM now() - backend_start)::numeric(12,1) "
                   "FROM pg_stat_activity WHERE usename = 'tenantd_app' "
                   "AND application_name = 'tenantd'").split()
    pids, ages = [], []
    for r in rows:
        pid, age = r.split("|")
        pids.append(int(pid))
        ages.append(float(age))
    priv = [private_kib(p)[0] for p in pids]
    with open(os.path.join(ph.sock, "postmaster.pid")) as f:
        pm = int(f.readline())
    allpids = [pm] + [int(x) for x in subprocess.run(["pgrep", "-P", str(pm)],
                                                      capture_output=True,
                                                      text=True).stdout.split()]
    pss = sum(private_kib(p)[1] for p in allpids)
    return {"backends": len(pids), "median_age_s": statistics.median(ages) if ages else None,
            "backend_private_mib": round(sum(priv) / 1024, 1),
            "backend_private_mib_each": round(statistics.median(priv) / 1024, 2) if priv else None,
            "cluster_pss_mib": round(pss / 1024, 1)}


CEIL = """\\startpipeline
BEGIN;
SELECT set_config('app.tenant_id', :tid, true), set_config('search_path', :ident, true),
       set_config('role', :ident, true);
SELECT json_agg(x) FROM (SELECT id, name, description, status, created_at, updated_at
    FROM {schema}.projects ORDER BY created_at DESC, id DESC LIMIT 21) x;
END;
\\endpipeline
"""


def capture(B, ph, t):
    """tenantd's own statements for GET /projects of database tenant t, from the server's
    statement log: [{"name", "sql", "params"}], or None."""
    logpath = os.path.join(ph.tmp, "pg.log")
    ph.psql("ALTER SYSTEM SET log_statement = 'all'")
    ph.psql("ALTER SYSTEM SET log_line_prefix = '%s'" % B.LOG_PREFIX)
    ph.psql("SELECT pg_reload_conf()")
    time.sleep(1.0)
    try:
        pos = os.path.getsize(logpath)
        st, _ = ph.http("GET", "/projects", t["token"])
        time.sleep(0.3)
        stmts = B.parse_statement_log(logpath, pos, t["id"])
    finally:
        ph.psql("ALTER SYSTEM RESET log_statement")
        ph.psql("ALTER SYSTEM RESET log_line_prefix")
        ph.psql("SELECT pg_reload_conf()")
    return stmts if st == 200 and len(stmts) == 2 else None


def literal_colons(sql):
    """pgbench reads :name as a variable even inside a string literal (to_char's
    'HH24:MI:SS'): spell a colon inside literals chr(58), folded when planned."""
    out, i = [], 0
    for m in re.finditer(r"'(?:[^']|'')*'", sql):
        out.append(sql[i:m.start()])
        out.append(m.group(0).replace(":", "' || chr(58) || '"))
        i = m.end()
    out.append(sql[i:])
    return "".join(out)


def captured_script(B, stmts, t):
    """The captured pair as a pipelined pgbench script: the tenant's id and names become
    :tid and :ident, other parameters -D variables (returned)."""
    defines = {}
    lines = ["\\startpipeline"]
    for st in stmts:
        def sub(m):
            v = st["params"].get(int(m.group(1)))
            if v is None:
                return "NULL"
            if v == t["id"]:
                return ":tid"
            if v == "t_" + hexid(t["id"]):
                return ":ident"
            name = "c%d" % (len(defines) + 1)
            defines[name] = v
            return ":" + name
        lines.append(re.sub(r"\$(\d+)", sub, literal_colons(st["sql"])) + ";")
    lines.append("\\endpipeline")  # one Sync: one implicit transaction, as tenantd sends it
    return "\n".join(lines) + "\n", defines


def ceiling(B, ph, tenants, seconds):
    """One warm pgbench client per tenant database, all in parallel (summed tps), running
    tenantd's own statements (captured), pipelined and prepared. Each client's session
    starts as the tenant's role with its search_path, so that pgbench can prepare the
    statements before the transaction sets them, as tenantd's connection has them after
    its first request. Falls back to a hand-written equivalent (CEIL) if capture fails."""
    stmts = capture(B, ph, tenants[0])
    if stmts:
        text, defines = captured_script(B, stmts, tenants[0])
        form = ceiling_form(B, ph, tenants, seconds, "prepared", text, defines)
        if form["tps"] > 0:
            return {"tps": form["tps"], "errors": form["errors"], "sql": "captured",
                    "script": text}
    B.log("ceiling: tenantd's SQL not captured, using the hand-written equivalent")
    form = ceiling_form(B, ph, tenants, seconds, "extended", CEIL, {})
    return {"tps": form["tps"], "errors": form["errors"], "sql": "hand-written"}


def ceiling_form(B, ph, tenants, seconds, mode, text, defines):
    d = tempfile.mkdtemp(prefix="ceil-db-", dir=ph.tmp)
    procs = []
    for t in tenants:
        h = hexid(t["id"])
        script = os.path.join(d, "list-%s.sql" % h)
        with open(script, "w") as f:
            f.write(text.replace("{schema}", "t_" + h))
        cmd = ["pgbench", "-n", "-h", ph.sock, "-U", "tenantd_app", "-M", mode, "-c", "1",
               "-j", "1", "-T", str(seconds + 1), "-D", "tid=" + t["id"], "-D", "ident=t_" + h,
               "-f", script, "td_" + h]
        for k, v in defines.items():
            cmd[-3:-3] = ["-D", "%s=%s" % (k, v)]
        env = dict(os.environ, PGOPTIONS="-c role=t_%s -c search_path=t_%s" % (h, h))
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True, env=env))
    tps, errors = 0.0, 0
    for p in procs:
        out, err = p.communicate()
        m = [l for l in out.splitlines() if l.startswith("tps = ")]
        if p.returncode != 0 or not m:
            errors += 1
            B.log("ceiling pgbench failed: %s" % err.strip()[-300:])
            continue
        tps += float(m[0].split()[2])
    return {"tps": round(tps, 1), "errors": errors}


def level(B, ph, cfg, dbt, poolt, first):
    n = len(dbt)
    out = {"db_tenants": n}
    wrk(B, ph, dbt, "db-warm.txt", 3, seq=True)  # every database once: pools open, warm
    runs = []
    for r in range(cfg["runs"]):
        misses0 = metric(B, ph, "tenantd_db_pool_lru_misses_total")
        t0 = time.monotonic()
        res = wrk(B, ph, dbt, "db-%d.txt" % n, cfg["seconds"])
        res["run_seconds"] = round(time.monotonic() - t0, 1)
        res["opened_during_run"] = metric(B, ph, "tenantd_db_pool_lru_misses_total") - misses0
        res["pg"] = pg_state(ph)
        runs.append(res)
        # the same load over the pool tenants, interleaved: the ratio is what compares
        runs[-1]["pool"] = wrk(B, ph, poolt, "pool-%d.txt" % len(poolt), cfg["seconds"])
    out["runs"] = runs
    out["db_rps"] = statistics.median(x["rps"] for x in runs)
    out["errors"] = sum(x["errors"] for x in runs)
    last = runs[-1]
    out.update({"open_connections": last["pg"]["backends"],
                "median_backend_age_s": last["pg"]["median_age_s"],
                "run_seconds": last["run_seconds"],
                "opened_during_run": last["opened_during_run"],
                "backend_private_mib": last["pg"]["backend_private_mib"],
                "backend_private_mib_each": last["pg"]["backend_private_mib_each"],
                "cluster_pss_mib": last["pg"]["cluster_pss_mib"]})
    out["pool_rps"] = statistics.median(x["pool"]["rps"] for x in runs)
    out["errors"] += sum(x["pool"]["errors"] for x in runs)
    out["vs_pool"] = round(out["db_rps"] / out["pool_rps"], 3) if out["pool_rps"] else None
    if first:
        out["ceiling"] = ceiling(B, ph, dbt, cfg["seconds"])
        c = out["ceiling"]["tps"]
        out["vs_ceiling"] = round(out["db_rps"] / c, 3) if c else None
    B.log("db tenants %d: %s" % (n, json.dumps({k: v for k, v in out.items() if k != "runs"})))
    return out


def run(B):
    cfg = db_cfg(B)
    if not cfg["levels"]:
        return None
    ph = B.Phase(0)
    ph.sampler = None
    res = {"levels": []}
    try:
        ph.start()
        t0 = time.monotonic()
        first = cfg["levels"][0]
        poolt = make_tenants(B, ph, "pool", 1, first)
        dbt = []
        for lv in cfg["levels"]:
            t1 = time.monotonic()
            dbt += make_tenants(B, ph, "database", len(dbt) + 1, lv)
            B.log("database tenants: %d (made in %.0f s)" % (len(dbt), time.monotonic() - t1))
            res["levels"].append(level(B, ph, cfg, dbt, poolt, lv == first))
        res["seconds"] = round(time.monotonic() - t0, 1)
        print_table(res)
        return res
    finally:
        ph.stop()


def print_table(res):
    print()
    print("database tenants (GET /projects, random tenant per request):")
    print("%8s %9s %9s %7s %10s %8s %9s %11s %9s %10s %10s" % (
        "tenants", "req/s", "pool r/s", "db/pool", "open conns", "opened", "age p50", "run",
        "priv MiB", "MiB/backend", "PG PSS MiB"))
    for lv in res["levels"]:
        print("%8d %9.0f %9.0f %7.2f %10s %8s %8.0fs %10.0fs %9s %10s %10s" % (
            lv["db_tenants"], lv["db_rps"], lv["pool_rps"], lv["vs_pool"] or 0,
            lv["open_connections"], lv["opened_during_run"],
            lv["median_backend_age_s"] or 0, lv["run_seconds"], lv["backend_private_mib"],
            lv["backend_private_mib_each"], lv["cluster_pss_mib"]))
    f = res["levels"][0]
    print("at %d: pool tenants %.0f req/s, ceiling (pgbench, one client per database) %.0f tps;"
          " database/pool %.2f, database/ceiling %.2f"
          % (f["db_tenants"], f["pool_rps"], f["ceiling"]["tps"], f["vs_pool"] or 0,
             f["vs_ceiling"] or 0))


def targets(res):
    t = []
    if not res or not res["levels"]:
        return t
    f = res["levels"][0]
    t.append({"target": "database tenants: req/s >= 0.5 of pool tenants at %d" % f["db_tenants"],
              "value": f["vs_pool"], "met": bool(f["vs_pool"] and f["vs_pool"] >= 0.5)})
    t.append({"target": "database tenants: req/s >= 0.7 of the pgbench ceiling at %d"
              % f["db_tenants"], "value": f["vs_ceiling"],
              "met": bool(f["vs_ceiling"] and f["vs_ceiling"] >= 0.7)})
    for lv in res["levels"]:
        age = lv["median_backend_age_s"]
        t.append({"target": "database tenants: median backend older than the run at %d"
                  % lv["db_tenants"], "value": age,
                  "met": bool(age is not None and age > lv["run_seconds"])})
        t.append({"target": "database tenants: no errors at %d" % lv["db_tenants"],
                  "value": lv["errors"], "met": lv["errors"] == 0})
    return t
