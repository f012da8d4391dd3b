#!/usr/bin/env python3
"""restore.py - `make bench-restore`: what continuous backup costs and what a restore takes.

1. POST /projects throughput with WAL archiving off and on, side by side in one run: two
   fresh servers at once, taking ROUNDS turns each of SECONDS s; the median is reported.
2. Restore of one tenant of 10,000 rows beside ~1 GiB of other tenants' data, for the
   other data in the shared pool tables (the catalog's database, which every restore copies)
   and in another tenant's own database (which --db-include skips). Each scenario: load the
   other data, take a base backup (as the daily schedule would after it), write the tenant,
   note the moment, change and delete rows, restore in place, check every row count, and read
   the job's breakdown (backup copy, WAL replay, export, import) from the record of operator
   actions.

Environment: BENCH_BIN (tenantd binary), BENCH_BULK_MB (default 1024), BENCH_SECONDS (10),
BENCH_ROUNDS (6), BENCH_SCENARIOS ("pool,database"). Results: bench/results/restore-*.json.
Standard library only; needs wrk, psql and pgbackrest, and root or the postgres user.
"""
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ADMIN = "bench-admin-token-0123456789abcdef0123456789"
SECRET = "bench-jwt-secret-0123456789abcdef0123456789"
BIN = os.environ.get("BENCH_BIN") or os.path.join(HERE, "..", "build", "tenantd")
BULK_MB = int(os.environ.get("BENCH_BULK_MB", "1024"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "6"))
SCENARIOS = os.environ.get("BENCH_SCENARIOS", "pool,database").split(",")
ROW_BYTES = 1600  # one bulk row: 50 distinct md5s, below the TOAST threshold


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Server:
    def __init__(self, backup):
        self.dir = tempfile.mkdtemp(prefix="tdbr.", dir="/tmp")
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("TENANTD_")}
        env.update(TENANTD_DATA_DIR=self.dir, TENANTD_LISTEN="127.0.0.1:%d" % self.port,
                   TENANTD_ADMIN_TOKEN=ADMIN, TENANTD_JWT_SECRET=SECRET,
                   TENANTD_LOG_LEVEL="warn", TENANTD_BACKUP="1" if backup else "0")
        self.log = open(os.path.join(self.dir, "tenantd.log"), "w")
        self.proc = subprocess.Popen([BIN, "serve"], env=env, stdout=self.log, stderr=self.log)
        for _ in range(600):
            try:
                if self.http("GET", "/health")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise SystemExit("tenantd did not start; see %s/tenantd.log" % self.dir)

    def http(self, method, path, body=None, token=ADMIN):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.port, path), data=data,
                                     method=method)
        if token:
            req.add_header("Authorization", "Bearer " + token)
        if data:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=600) as r:
                raw = r.read()
                return r.status, (json.loads(raw) if raw[:1] in (b"{", b"[") else raw)
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def psql(self, sql, db="tenantd"):
        r = subprocess.run(["psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "host=%s/pg dbname=%s "
                            "user=postgres" % (self.dir, db), "-c", sql],
                           capture_output=True, text=True)
        if r.returncode:
            raise SystemExit("psql failed: %s" % r.stderr)
        return r.stdout.strip()

    def tenant(self, slug, isolation, plan="enterprise"):
        st, t = self.http("POST", "/admin/tenants", {
            "slug": slug, "name": slug, "plan": plan, "isolation": isolation,
            "owner": {"email": "o@%s.io" % slug, "password": "password1", "name": "O"}})
        assert st == 201, (st, t)
        st, r = self.http("POST", "/t/%s/auth/login" % slug,
                          {"email": "o@%s.io" % slug, "password": "password1"}, token=None)
        assert st == 200, (st, r)
        t["token"] = r["token"]
        return t

    def wait_backup(self, after=0):
        for _ in range(6000):
            st, r = self.http("GET", "/ready", token=None)
            b = r.get("backup", {}) if st == 200 else {}
            if b.get("last_backup_at") and int(b.get("backups", 0)) > after:
                return b
            time.sleep(0.1)
        raise SystemExit("no base backup in 600 s")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=120)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def table_of(t):
    """Schema and database of a tenant's rows."""
    ident = "t_" + t["id"].replace("-", "")
    if t["isolation"] == "pool":
        return "pool", "tenantd"
    return ident, ("td_" + ident[2:]) if t["isolation"] == "database" else "tenantd"


# ---- 1. the write path ----------------------------------------------------------------

def wrk_post(srv, token, seconds):
    tokens = os.path.join(srv.dir, "tokens")
    with open(tokens, "w") as f:
        f.write("100000000001 %s\n" % token)
    env = dict(os.environ, BENCH_MODE="post", BENCH_TOKENS=tokens, BENCH_ONLY="1")
    r = subprocess.run(["wrk", "-t", "2", "-c", "16", "-d", "%ds" % seconds, "--timeout", "10s",
                        "-s", os.path.join(HERE, "wrk.lua"), "http://127.0.0.1:%d" % srv.port],
                       capture_output=True, text=True, env=env)
    m = re.search(r"^BENCHJSON (.*)$", r.stdout, re.M)
    if not m:
        raise SystemExit("wrk failed: %s %s" % (r.stdout[-400:], r.stderr[-400:]))
    j = json.loads(m.group(1))
    return {"rps": round(j["requests"] / (j["duration_us"] / 1e6), 1),
            "p50_ms": j["p50_us"] / 1000, "p99_ms": j["p99_us"] / 1000,
            "errors": sum(j["errors"].values())}


def write_path():
    """Both servers run at once and take turns (off, on, off, on, ...), so that the load of
    a shared machine falls on both alike; each turn is long enough to fill WAL segments."""
    srv = {"off": Server(backup=False), "on": Server(backup=True)}
    runs = {"off": [], "on": []}
    try:
        srv["on"].wait_backup()
        tok = {m: s.tenant("writer", "pool")["token"] for m, s in srv.items()}
        for m in srv:
            wrk_post(srv[m], tok[m], 3)  # warm-up: caches, plans, connections
        a0 = int(srv["on"].psql("SELECT archived_count FROM pg_stat_archiver"))
        for rnd in range(ROUNDS):
            for m in ("off", "on"):
                res = wrk_post(srv[m], tok[m], SECONDS)
                runs[m].append(res)
                log("POST /projects, archiving %s, turn %d: %s" % (m, rnd + 1, res))
        archived = int(srv["on"].psql("SELECT archived_count FROM pg_stat_archiver")) - a0
    finally:
        for s in srv.values():
            s.stop()
    med = {m: statistics.median(r["rps"] for r in v) for m, v in runs.items()}
    return {"runs": runs, "median_rps": med, "wal_segments_archived_during_on_turns": archived,
            "on_vs_off": round(med["on"] / med["off"], 3) if med["off"] else None}


# ---- 2. restore ---------------------------------------------------------------------

BULK_SQL = ("INSERT INTO {s}.projects (tenant_id, name, description) SELECT '{tid}', 'bulk ' || g, "
            "array_to_string(ARRAY(SELECT md5((g * 50 + k)::text) FROM generate_series(1, 50) k), "
            "'') FROM generate_series({lo}, {hi}) g")


def load_bulk(srv, where):
    t = srv.tenant("bulk", where)
    s, db = table_of(t)
    rows = BULK_MB * 1024 * 1024 // ROW_BYTES
    t0 = time.time()
    step = 50000
    for lo in range(1, rows + 1, step):
        srv.psql(BULK_SQL.format(s=s, tid=t["id"], lo=lo, hi=min(rows, lo + step - 1)), db)
    size = int(srv.psql("SELECT sum(pg_database_size(datname)) FROM pg_database"))
    log("loaded %d bulk rows into %s storage in %.1f s; cluster is %.0f MiB"
        % (rows, where, time.time() - t0, size / 2 ** 20))
    return rows, size


def base_backup(srv):
    conf = os.path.join(srv.dir, "backups", "pgbackrest.conf")
    cmd = ["pgbackrest", "--config=" + conf, "--stanza=tenantd", "--type=full", "backup"]
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    t0 = time.time()
    subprocess.run(cmd, check=True, cwd="/")
    took = time.time() - t0
    log("full base backup in %.1f s" % took)
    return took


def restore_scenario(where):
    srv = Server(backup=True)
    try:
        srv.wait_backup()
        rows, size = load_bulk(srv, where)
        backup_s = base_backup(srv)
        t = srv.tenant("target", "schema")
        s, db = table_of(t)
        srv.psql("INSERT INTO %s.projects (tenant_id, name, description) SELECT '%s', 'p' || g, "
                 "'row ' || g FROM generate_series(1, 9999) g" % (s, t["id"]), db)
        count = lambda: int(srv.psql("SELECT (SELECT count(*) FROM %s.projects) + (SELECT "
                                     "count(*) FROM %s.users)" % (s, s), db))
        fp = lambda: srv.psql("SELECT md5(string_agg(p::text, '|' ORDER BY id)) FROM "
                              "%s.projects p" % s, db)
        assert count() == 10000
        want = fp()
        time.sleep(1.2)
        at = srv.psql("SELECT to_char(now() AT TIME ZONE 'UTC', "
                      "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")
        time.sleep(0.2)
        srv.psql("UPDATE %s.projects SET name = name || ' changed' WHERE name LIKE 'p1%%'" % s, db)
        srv.psql("DELETE FROM %s.projects WHERE name LIKE 'p2%%'" % s, db)
        assert count() < 10000
        t0 = time.time()
        st, job = srv.http("POST", "/admin/tenants/target/restore?confirm=target", {"at": at})
        assert st == 202, (st, job)
        while job["status"] in ("queued", "running"):
            time.sleep(0.2)
            st, job = srv.http("GET", "/admin/jobs/%s" % job["id"])
        wall = time.time() - t0
        assert job["status"] == "succeeded", job
        assert count() == 10000 and fp() == want, "restored rows differ"
        detail = json.loads(srv.psql("SELECT detail FROM tenantd.operator_actions WHERE "
                                     "job_id = '%s'" % job["id"]))
        res = {"other_data_in": where, "other_rows": rows, "cluster_mib": round(size / 2 ** 20),
               "base_backup_s": round(backup_s, 1), "restore_wall_s": round(wall, 1),
               "breakdown_ms": detail}
        log("restore beside %d MiB (%s): %s" % (res["cluster_mib"], where, res))
        return res
    except AssertionError:
        srv.log.flush()
        with open(os.path.join(srv.dir, "tenantd.log")) as f:
            sys.stderr.write("".join(f.readlines()[-20:]))
        raise
    finally:
        srv.stop()


def main():
    for tool in ("wrk", "psql", "pgbackrest"):
        if not shutil.which(tool):
            raise SystemExit("bench-restore: %s not found (run: make deps)" % tool)
    out = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "cpus": os.cpu_count(), "bulk_mb": BULK_MB}
    out["write_path"] = write_path() if ROUNDS > 0 else None
    out["restore"] = [restore_scenario(w) for w in SCENARIOS if w]
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    path = os.path.join(HERE, "results", "restore-%d.json" % int(time.time()))
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
    wp = out["write_path"]
    if wp:
        print("\nPOST /projects req/s (median of %d x %d s): archiving off %.0f, on %.0f (on/off %.3f)"
              % (ROUNDS, SECONDS, wp["median_rps"]["off"], wp["median_rps"]["on"],
                 wp["on_vs_off"]))
    for r in out["restore"]:
        b = r["breakdown_ms"]
        print("restore of 10,000 rows beside %d MiB in %s: %.1f s (archive %d ms, backup copy %d "
              "ms, WAL replay %d ms, export %d ms, import %d ms)"
              % (r["cluster_mib"], r["other_data_in"], r["restore_wall_s"], b["archive_ms"],
                 b["backup_copy_ms"], b["wal_replay_ms"], b["export_ms"], b["import_ms"]))
    print("results: %s" % path)


if __name__ == "__main__":
    sys.exit(main())
