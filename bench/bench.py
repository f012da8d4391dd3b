#!/usr/bin/env python3
"""bench.py - tenantd against PostgreSQL's own ceiling (issue 6). Started by bench/run.sh.

For each tenant count (BENCH_TENANTS): a fresh tenantd with its embedded cluster in a
temporary directory, tenants seeded in bulk (seed.sql), then, interleaved and repeated
BENCH_RUNS times, for GET /projects, GET /projects/{id} and POST /projects:
  - the ceiling: pgbench with the fastest correct SQL per isolation (ceil_*.sql),
  - tenantd's own SQL, captured from the server's statement log, through pgbench,
  - tenantd over HTTP with wrk (wrk.lua),
and the fairness figure; then the database-tenant phase (dbtenants.py). Prints tables and
writes bench/results/<timestamp>.json.
Python 3 standard library only. See bench/README.md.
"""
import base64
import datetime
import glob
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

import dbtenants

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ENDPOINTS = {
    "list": "GET /projects",
    "get": "GET /projects/{id}",
    "post": "POST /projects",
}
T0 = time.monotonic()


def env_int(name, default):
    v = os.environ.get(name, "")
    return int(v) if v.strip() else default


def env_float(name, default):
    v = os.environ.get(name, "")
    return float(v) if v.strip() else default


def tenant_specs(text, share):
    """BENCH_TENANTS: comma-separated tenant counts, each optionally N:share, the share of
    schema tenants of that phase (else BENCH_SCHEMA_SHARE). [(n, share)]"""
    out = []
    for x in text.split(","):
        if not x.strip():
            continue
        n, _, sh = x.partition(":")
        sh = float(sh) if sh.strip() else share
        if not 0 <= sh <= 1:
            fail("schema share %s of %s is not between 0 and 1" % (sh, x))
        out.append((int(n), sh))
    return out


CFG = {
    "schema_share": env_float("BENCH_SCHEMA_SHARE", 0.5),
    "tenants": os.environ.get("BENCH_TENANTS", "10,10000,100000:0"),
    "seconds": env_int("BENCH_SECONDS", 10),
    "runs": env_int("BENCH_RUNS", 3),
    "conns": env_int("BENCH_CONNS", 32),
    "threads": env_int("BENCH_THREADS", 2),
    "pool_size": env_int("TENANTD_POOL_SIZE", 2 * (os.cpu_count() or 2)),
    "pg_warmup": env_float("BENCH_PG_WARMUP", -1),  # -1: 1 s up to 100 tenants, else 2 s
    "ceiling_split": env_int("BENCH_CEILING_SPLIT", 1),
    "calibrate": env_int("BENCH_CALIBRATE", 1),
    "cal_seconds": env_int("BENCH_CAL_SECONDS", 2),
    "warmup": env_int("BENCH_WARMUP", 3),
    "flood_conns": env_int("BENCH_FLOOD_CONNS", 64),
    "fair_conns": env_int("BENCH_FAIR_CONNS", 2),
    "sampling": env_float("BENCH_SAMPLING", 0.1),
    "port": env_int("BENCH_PORT", 19300),
    "endpoints": [e for e in os.environ.get("BENCH_ENDPOINTS", "list,get,post").split(",") if e],
    "bin": os.environ.get("BENCH_BIN", os.path.join(ROOT, "build-bench", "tenantd")),
    # 1: after every wrk run, the request pool's backend memory and the pool's /metrics counters
    "backend_mem": env_int("BENCH_BACKEND_MEM", 0),
    "keep": env_int("BENCH_KEEP", 0),
    "results": os.environ.get("BENCH_RESULTS", os.path.join(HERE, "results")),
    "seed_jobs": env_int("BENCH_SEED_JOBS", 2),
    "job_workers": env_int("TENANTD_JOB_WORKERS", 2),
    "pipeline": env_int("TENANTD_PIPELINE", 1),
    "http_threads": env_int("TENANTD_HTTP_THREADS", 0),
    "pg_settings": os.environ.get("BENCH_PG_SETTINGS", ""),
    "fairness": env_int("BENCH_FAIRNESS", 1),
}
JWT_SECRET = "bench-jwt-secret-" + "0123456789abcdef" * 2
ADMIN_TOKEN = "bench-admin-token-" + "fedcba9876543210" * 2
KBASE = 100000000000


def log(msg):
    print("[%6.1fs] %s" % (time.monotonic() - T0, msg), flush=True)


def fail(msg):
    raise RuntimeError(msg)


def budget():
    """tenantd's documented connection budget (docs/operations.md): the request pool plus a
    fixed part, one listener, the job workers and one kept catalog connection."""
    # the event loops as core/config.c sizes them, each with TENANTD_PIPELINE pipelines
    loops = CFG["http_threads"] or max(2, CFG["pool_size"])
    fixed = {"pipelines": CFG["pipeline"] * loops, "listener": 1, "jobs": CFG["job_workers"],
             "catalog": 1}
    return {"pool": CFG["pool_size"], "fixed": fixed,
            "total": CFG["pool_size"] + sum(fixed.values())}


# ---- identities (seed.sql explains the scheme) -------------------------------------

def tenant_k(n):
    return KBASE + n


def tenant_id(k):
    return "00000000-0000-4000-8000-%d" % k


def user_id(k):
    return "00000000-0000-4000-a000-%d" % k


def project_id(k, j):
    return "%08d-0000-4000-9000-%d" % (10000000 + j, k)


def schema_name(k):
    return "t_00000000000040008000%d" % k


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwt(claims):
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    body = b64url(json.dumps(claims, separators=(",", ":")).encode())
    sig = hmac.new(JWT_SECRET.encode(), (head + "." + body).encode(), hashlib.sha256).digest()
    return head + "." + body + "." + b64url(sig)


# ---- statistics --------------------------------------------------------------------

def median(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    m = len(xs) // 2
    return xs[m] if len(xs) % 2 else (xs[m - 1] + xs[m]) / 2


def wpercentile(groups, q):
    """Percentile q (0-100) of the union of groups [(weight, [values])], each group's
    values sharing its weight equally."""
    items = []
    for w, vals in groups:
        if vals:
            items.extend((v, w / len(vals)) for v in vals)
    if not items:
        return None
    items.sort()
    total = sum(w for _, w in items)
    acc = 0.0
    for v, w in items:
        acc += w
        if acc >= total * q / 100.0:
            return v
    return items[-1][0]


# ---- one phase: a tenantd, its cluster and N tenants ---------------------------------

class Phase:
    def __init__(self, n, share=0.5):
        self.n = n
        self.nschema = int(n * share)
        self.npool = n - self.nschema
        self.tmp = tempfile.mkdtemp(prefix="tenantd-bench-", dir="/tmp")
        os.chmod(self.tmp, 0o755)
        self.sock = os.path.join(self.tmp, "pg")
        self.port = None
        self.proc = None
        self.sampler = None
        self.out = {"tenants": n, "pool_tenants": self.npool, "schema_tenants": self.nschema}

    # -- processes
    def psql(self, sql, user="postgres", check=True, args=()):
        cmd = ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", self.sock, "-U", user,
               "-d", "tenantd"] + list(args)
        if sql is not None:
            cmd += ["-c", sql]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if check and r.returncode != 0:
            fail("psql failed (%s): %s" % (sql if sql else " ".join(args), r.stderr.strip()))
        return r.stdout

    def http(self, method, path, token=None, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.port, path), data=data,
                                     method=method)
        if token:
            req.add_header("Authorization", "Bearer " + token)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def start(self):
        self.port = free_port(CFG["port"])
        env = dict(os.environ)
        env.update({
            "TENANTD_DATA_DIR": self.tmp,
            "TENANTD_LISTEN": "127.0.0.1:%d" % self.port,
            "TENANTD_ADMIN_TOKEN": ADMIN_TOKEN,
            "TENANTD_JWT_SECRET": JWT_SECRET,
        })
        self.logf = open(os.path.join(self.tmp, "tenantd.log"), "w")
        self.proc = subprocess.Popen([CFG["bin"], "serve"], env=env, stdout=self.logf,
                                     stderr=subprocess.STDOUT, cwd=ROOT)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                fail("tenantd exited with %s:\n%s" % (self.proc.returncode, self.log_tail()))
            try:
                if self.http("GET", "/ready")[0] == 200:
                    log("tenantd pid %d ready on port %d, data in %s"
                        % (self.proc.pid, self.port, self.tmp))
                    return
            except OSError:
                pass
            time.sleep(0.2)
        fail("tenantd not ready after 180 s:\n" + self.log_tail())

    def log_tail(self, lines=20):
        try:
            with open(os.path.join(self.tmp, "tenantd.log")) as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def memory(self):
        out = {}
        try:
            with open("/proc/%d/status" % self.proc.pid) as f:
                for line in f:
                    if line.startswith(("VmHWM:", "VmRSS:")):
                        out[line.split(":")[0]] = int(line.split()[1])
        except OSError:
            pass
        return out

    def stop(self):
        if self.sampler:
            self.sampler.stop()
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if os.path.exists(os.path.join(self.sock, "postmaster.pid")):
            pg_ctl = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))[-1:]
            if pg_ctl:
                subprocess.run(["runuser", "-u", "postgres", "--", pg_ctl[0], "-D", self.sock,
                                "stop", "-m", "fast"], capture_output=True)
        if not CFG["keep"]:
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            log("kept %s" % self.tmp)

    # -- seeding
    def seed(self):
        t0 = time.monotonic()
        st, body = self.http("POST", "/signup", body={
            "organization": {"slug": "bench-signup", "name": "Bench signup"},
            "user": {"email": "owner@bench-signup.example", "password": "bench-password",
                     "name": "Bench"}})
        if st != 201:
            fail("signup failed: %s %s" % (st, body))
        pwhash = self.psql("SELECT password_hash FROM pool.users "
                           "WHERE email = 'owner@bench-signup.example'").strip()
        if not pwhash.startswith("$argon2id$"):
            fail("unexpected password hash from signup: %r" % pwhash[:20])
        migs = sorted(glob.glob(os.path.join(ROOT, "migrations", "tenant", "[0-9]*.sql")))
        sql = ["SET client_min_messages = warning;", "CREATE SCHEMA bench;",
               "CREATE TABLE bench.migrations (version integer PRIMARY KEY, name text NOT NULL, "
               "checksum text NOT NULL, sql text NOT NULL);"]
        for path in migs:
            raw = open(path, "rb").read()
            text = raw.decode()
            tag = "$mig$"
            while tag in text:
                tag = tag[:-1] + "x$"
            base = os.path.basename(path)
            sql.append("INSERT INTO bench.migrations VALUES (%d, '%s', '%s', %s%s%s);" % (
                int(base[:4]), base[:-4], hashlib.sha256(raw).hexdigest(), tag, text, tag))
        mfile = os.path.join(self.tmp, "bench-migrations.sql")
        with open(mfile, "w") as f:
            f.write("\n".join(sql) + "\n")
        self.psql(None, args=["-f", mfile, "-v", "npool=%d" % self.npool, "-v",
                              "nschema=%d" % self.nschema, "-v", "pwhash=" + pwhash,
                              "-f", os.path.join(HERE, "seed.sql")])
        log("seeded catalog rows and %d pool tenants in %.1f s"
            % (self.npool, time.monotonic() - t0))
        if self.nschema:
            t1 = time.monotonic()
            jobs = max(1, min(CFG["seed_jobs"], self.nschema))
            lo = self.npool + 1
            per = (self.nschema + jobs - 1) // jobs
            procs = []
            for i in range(jobs):
                a, b = lo + i * per, min(lo + (i + 1) * per - 1, self.n)
                procs.append(subprocess.Popen(
                    ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", self.sock, "-U",
                     "postgres", "-d", "tenantd", "-c",
                     "SET client_min_messages = warning", "-c",
                     "CALL bench.make_schemas(%d, %d)" % (a, b)],
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
            for p in procs:
                _, err = p.communicate()
                if p.returncode != 0:
                    fail("seeding schema tenants failed: " + err.strip())
            log("seeded %d schema tenants in %.1f s" % (self.nschema, time.monotonic() - t1))
        self.psql("ANALYZE pool.users; ANALYZE pool.projects; ANALYZE pool.audit_logs; "
                  "ANALYZE tenantd.tenants; ANALYZE bench.tenants")
        self.psql("CHECKPOINT")
        self.out["seed_seconds"] = round(time.monotonic() - t0, 1)
        now = int(time.time())
        self.tokens = os.path.join(self.tmp, "tokens.txt")
        with open(self.tokens, "w") as f:
            for n in range(1, self.n + 1):
                k = tenant_k(n)
                f.write("%d %s\n" % (k, jwt({"sub": user_id(k), "tid": tenant_id(k),
                                             "role": "owner", "iat": now,
                                             "exp": now + 7 * 86400})))
        self.token_of = {}
        with open(self.tokens) as f:
            for i, line in enumerate(f, 1):
                self.token_of[i] = line.split()[1]
        log("seeding done in %.1f s; tokens in %s" % (self.out["seed_seconds"], self.tokens))

    # -- checks that every path returns what it should before anything is measured
    def check_http(self):
        for n in sorted({1, self.n}):
            k = tenant_k(n)
            tok = self.token_of[n]
            st, body = self.http("GET", "/projects", tok)
            if st != 200 or len(json.loads(body)["data"]) != 20:
                fail("GET /projects for tenant %d: %s %s" % (n, st, body[:200]))
            st, body = self.http("GET", "/projects/" + project_id(k, 7), tok)
            if st != 200 or json.loads(body)["id"] != project_id(k, 7):
                fail("GET /projects/{id} for tenant %d: %s %s" % (n, st, body[:200]))
            st, body = self.http("POST", "/projects", tok, {"name": "bench check"})
            if st != 201:
                fail("POST /projects for tenant %d: %s %s" % (n, st, body[:200]))
        log("HTTP checks passed (pool tenant 1, %s tenant %d)"
            % ("schema" if self.nschema else "pool", self.n))


def free_port(start):
    for port in range(start, 19400):
        s = socket.socket()
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    fail("no free port in %d-19399" % start)


# ---- connection sampler --------------------------------------------------------------

class Sampler:
    """pg_stat_activity every 0.2 s through one psql (\\watch): the connections tenantd
    holds (application_name tenantd...), all and by part: the request pool (its runtime
    role), the listener, the job workers, administration (the kept catalog connection and
    any transient one) and the replica poller."""

    PARTS = ("app", "pipeline", "listener", "jobs", "admin", "replica")
    QUERY = ("SELECT extract(epoch FROM clock_timestamp())::numeric(16,3), "
             "count(*), "
             "count(*) FILTER (WHERE usename = 'tenantd_app' AND application_name = 'tenantd'), "
             "count(*) FILTER (WHERE application_name = 'tenantd pipeline'), "
             "count(*) FILTER (WHERE application_name = 'tenantd listener'), "
             "count(*) FILTER (WHERE application_name = 'tenantd jobs'), "
             "count(*) FILTER (WHERE application_name = 'tenantd admin'), "
             "count(*) FILTER (WHERE application_name = 'tenantd-replica-poll') "
             "FROM pg_stat_activity WHERE backend_type = 'client backend' "
             "AND application_name LIKE 'tenantd%'")

    def __init__(self, phase):
        self.path = os.path.join(phase.tmp, "pg-connections.txt")
        self.f = open(self.path, "w")
        self.p = subprocess.Popen(["psql", "-X", "-At", "-h", phase.sock, "-U", "postgres", "-d",
                                   "tenantd"], stdin=subprocess.PIPE, stdout=self.f,
                                  stderr=subprocess.DEVNULL, text=True)
        self.p.stdin.write(self.QUERY + " \\watch 0.2\n")
        self.p.stdin.flush()

    def samples(self):
        self.f.flush()
        out = []
        with open(self.path) as f:
            for line in f:
                m = re.match(r"^(\d+\.\d+)((?:\|\d+){%d})$" % (1 + len(self.PARTS)),
                             line.strip())
                if m:
                    out.append((float(m.group(1)),) + tuple(int(x) for x in
                                                            m.group(2)[1:].split("|")))
        return out

    def max_between(self, a=0, b=float("inf")):
        """The most connections seen in [a, b], all and per part: {"all", "app", ...}."""
        s = [x for x in self.samples() if a <= x[0] <= b]
        if not s:
            return None
        out = {"all": max(x[1] for x in s)}
        for i, part in enumerate(self.PARTS):
            out[part] = max(x[2 + i] for x in s)
        return out

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGINT)
            try:
                self.p.stdin.close()
                self.p.wait(timeout=5)
            except (subprocess.TimeoutExpired, BrokenPipeError):
                self.p.kill()
        self.f.close()


# ---- pgbench -------------------------------------------------------------------------

def run_pgbench(ph, scripts, mode, clients, seconds, warm, defines=None, label=""):
    """scripts: [(path, weight)]. Measures the last `seconds` of a run of warm+seconds:
    transactions/s from the per-second progress lines, p50/p99 from the sampled
    per-transaction log of the same window."""
    d = tempfile.mkdtemp(prefix="pgb-", dir=ph.tmp)
    total = int(round(warm + seconds))
    cmd = ["pgbench", "-n", "-h", ph.sock, "-U", "tenantd_app", "-M", mode, "-c", str(clients),
           "-j", str(min(CFG["threads"], clients)), "-T", str(total), "-P", "1", "-l",
           "--sampling-rate", str(CFG["sampling"]), "--log-prefix", os.path.join(d, "tx"),
           "-D", "npool=%d" % ph.npool, "-D", "nschema=%d" % max(ph.nschema, 1)]
    for k, v in (defines or {}).items():
        cmd += ["-D", "%s=%s" % (k, v)]
    for path, w in scripts:
        cmd += ["-f", "%s@%d" % (path, w)]
    cmd.append("tenantd")
    wall0 = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=d, env=PG_ENV)
    wall1 = time.time()
    errors = 0
    m = re.search(r"number of failed transactions: (\d+)", r.stdout)
    if m:
        errors += int(m.group(1))
    aborted = re.findall(r"client \d+ (?:script \d+ )?aborted[^\n]*", r.stderr)
    errors += len(aborted)
    if r.returncode != 0 and not aborted:
        errors += 1
    if r.returncode != 0 or aborted:
        log("pgbench %s: exit %d %s" % (label, r.returncode,
                                        (aborted[:1] or [r.stderr.strip()[-300:]])[0]))
    prog = [(float(a), float(b)) for a, b in
            re.findall(r"progress: ([\d.]+) s, ([\d.]+) tps", r.stderr)]
    window = [tps for t, tps in prog if warm < t <= warm + seconds + 0.5]
    if window:
        tps = sum(window) / len(window)
    else:
        m = re.search(r"tps = ([\d.]+)", r.stdout)
        tps = float(m.group(1)) if m else 0.0
    lat = []
    starts = []
    rows = []
    for path in glob.glob(os.path.join(d, "tx*")):
        with open(path) as f:
            for line in f:
                p = line.split()
                if len(p) >= 6 and p[2].isdigit():
                    end = int(p[4]) + int(p[5]) / 1e6
                    rows.append((end, int(p[2])))
                    starts.append(end - int(p[2]) / 1e6)
    if rows:
        t0 = min(starts) + warm
        lat = [us for end, us in rows if t0 <= end <= t0 + seconds]
    shutil.rmtree(d, ignore_errors=True)
    lat.sort()
    res = {
        "tps": round(tps, 1),
        "p50_ms": round(lat[len(lat) // 2] / 1000, 3) if lat else None,
        "p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))] / 1000, 3) if lat else None,
        "errors": errors, "clients": clients, "mode": mode, "samples": len(lat),
        "wall": [wall0, wall1],
    }
    res["_lat"] = lat
    return res


# pgbench -M prepared Parses every statement of a pipeline before the first one runs, so
# unqualified names must resolve before the script sets its search_path: connections start
# with search_path pool, and a schema tenant's statements are re-planned under its own
# search_path when they run (PostgreSQL's plan cache tracks search_path).
PG_ENV = dict(os.environ, PGOPTIONS="-c search_path=pool")


def validate_scripts(ph, sqls):
    """Run every pgbench script once through psql, with the variables substituted for a
    known tenant, and check that it returns what the endpoint returns: a script that
    matched no row would be fast and wrong."""
    files = []
    for ep in CFG["endpoints"]:
        for iso, cfgs in ceiling_configs(ph, ep).items():
            for variant, mode, c, sc in cfgs:
                files.append((ep, iso, sc[0][0], {}))
        if ep in sqls:
            for path, _ in sqls[ep]["scripts"]:
                files.append((ep, "schema" if "_schema_" in path else "pool", path,
                              sqls[ep]["defines"]))
    seen = set()
    for ep, iso, path, defines in files:
        if path in seen:
            continue
        seen.add(path)
        n = 1 if iso == "pool" else ph.npool + 1
        k, j = tenant_k(n), 7
        values = {"k": str(k), "j": str(10000000 + j), "npool": str(ph.npool),
                  "nschema": str(ph.nschema)}
        values.update(defines)
        body = []
        for line in open(path):
            line = line.rstrip("\n")
            if not line or line.startswith("--") or line.startswith("\\"):
                continue
            body.append(line.replace("\\;", ";"))

        def sub(m):
            v = values.get(m.group(1))
            if v is None:
                return m.group(0)
            return v if re.match(r"^-?\d+$", v) or m.group(1) in ("k", "j") else \
                "'" + v.replace("'", "''") + "'"
        sql = re.sub(r"(?<!:):([A-Za-z_][A-Za-z0-9_]*)", sub, "\n".join(body))
        r = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", ph.sock,
                            "-U", "tenantd_app", "-d", "tenantd"],
                           input="BEGIN;\n" + sql + "\nROLLBACK;\n", capture_output=True,
                           text=True, env=PG_ENV)
        lines = [x for x in r.stdout.splitlines() if x.strip()]
        ok, v = False, None
        for i in range(len(lines) - 1, -1, -1) if r.returncode == 0 else ():
            try:
                v = json.loads("\n".join(lines[i:]))
                ok = True
                break
            except ValueError:
                continue
        if ep == "list" and r.returncode == 0 and not (ok and isinstance(v, list)):
            # tenantd's list statement returns one row per item: "<item json>|<µs>|<id>"
            try:
                v = [json.loads(x.rsplit("|", 2)[0]) for x in lines if x.startswith("{")]
                ok = True
            except ValueError:
                ok = False
        if ok:
            rows = v.get("data", v) if isinstance(v, dict) and ep == "list" else v
            if ep == "list":
                ok = isinstance(rows, list) and len(rows) >= 20
            elif ep == "get":
                ok = isinstance(v, dict) and v.get("id") == project_id(k, j)
            else:
                ok = isinstance(v, dict) and "id" in v
        if not ok:
            fail("script %s does not return what %s returns: %s %s"
                 % (os.path.basename(path), ENDPOINTS[ep], r.stderr.strip()[-300:],
                    (lines[-1] if lines else "")[:200]))
    log("validated %d pgbench scripts" % len(seen))


def replay_check(ph, sqls):
    """Run each of tenantd's captured scripts a few times through pgbench itself, as it will
    be measured: psql (validate_scripts) reads colons and empty values differently, and a
    script pgbench cannot run would leave the tenantd SQL row empty."""
    for ep, v in sqls.items():
        for path, _ in v["scripts"]:
            cmd = ["pgbench", "-n", "-h", ph.sock, "-U", "tenantd_app", "-M", v["mode"], "-c",
                   "1", "-t", "3", "-D", "npool=%d" % ph.npool,
                   "-D", "nschema=%d" % max(ph.nschema, 1)]
            for k, val in v["defines"].items():
                cmd += ["-D", "%s=%s" % (k, val)]
            r = subprocess.run(cmd + ["-f", path, "tenantd"], capture_output=True, text=True,
                               env=PG_ENV)
            if r.returncode != 0 or "error" in r.stderr.lower():
                fail("pgbench cannot replay %s (tenantd's SQL for %s): %s"
                     % (os.path.basename(path), ENDPOINTS[ep], r.stderr.strip()[-400:]))
    log("replayed tenantd's SQL through pgbench once (%d scripts)"
        % sum(len(v["scripts"]) for v in sqls.values()))


def script(name):
    return os.path.join(HERE, name)


def ceiling_configs(ph, ep):
    """Candidate pgbench configurations of each ceiling row."""
    counts = sorted({CFG["conns"], CFG["pool_size"]})
    pool = [("pool", "prepared", c, [(script("ceil_pool_%s.sql" % ep), 1)]) for c in counts]
    schema = []
    for c in counts:
        schema.append(("search_path", "prepared", c, [(script("ceil_schema_sp_%s.sql" % ep), 1)]))
        schema.append(("qualified", "simple", c, [(script("ceil_schema_q_%s.sql" % ep), 1)]))
    return {"pool": pool, "schema": schema if ph.nschema else []}


# ---- tenantd's own SQL, captured from the statement log --------------------------------

LOG_PREFIX = "BENCHLOG %p %v %u "


def capture_tenantd_sql(ph):
    """Turn on log_statement for a moment, make one request per endpoint for a pool and a
    schema tenant, and rebuild each request's statements as a pgbench script: values that
    depend on the tenant become expressions of :k (and :j), other values stay parameters
    (-D variables) or NULL, and the statements are pipelined as tenantd sends them."""
    logpath = os.path.join(ph.tmp, "pg.log")
    ph.psql("ALTER SYSTEM SET log_statement = 'all'")
    ph.psql("ALTER SYSTEM SET log_line_prefix = '%s'" % LOG_PREFIX)
    ph.psql("SELECT pg_reload_conf()")
    time.sleep(1.0)
    out = {}
    try:
        targets = [("pool", 1)] + ([("schema", ph.npool + 1)] if ph.nschema else [])
        for iso, n in targets:
            k = tenant_k(n)
            for ep in CFG["endpoints"]:
                # twice: the first may prepare statements on this connection
                for attempt in range(2):
                    pos = os.path.getsize(logpath)
                    st = do_request(ph, ep, n)
                    time.sleep(0.3)
                    stmts = parse_statement_log(logpath, pos, tenant_id(k))
                if st not in (200, 201) or not stmts:
                    log("capture of tenantd's SQL failed for %s %s (%s)" % (iso, ep, st))
                    continue
                out[(iso, ep)] = stmts
    finally:
        ph.psql("ALTER SYSTEM RESET log_statement")
        ph.psql("ALTER SYSTEM RESET log_line_prefix")
        ph.psql("SELECT pg_reload_conf()")
    return build_tenantd_scripts(ph, out)


def do_request(ph, ep, n):
    k = tenant_k(n)
    tok = ph.token_of[n]
    if ep == "list":
        return ph.http("GET", "/projects", tok)[0]
    if ep == "get":
        return ph.http("GET", "/projects/" + project_id(k, 1), tok)[0]
    return ph.http("POST", "/projects", tok, {"name": "bench project"})[0]


def parse_statement_log(path, pos, tid):
    """The statements of the last transaction of tenantd_app that passed tid as a
    parameter (the tenant context), in the order they ran. Transactions are told apart by
    their virtual transaction id (%v), so other work on the same connection (usage flushes)
    is left out."""
    with open(path, errors="replace") as f:
        f.seek(pos)
        text = f.read()
    entries = []  # [pid, vxid, user, kind, payload]
    for line in text.split("\n"):
        m = re.match(r"^BENCHLOG (\d+) (\S*) (\S*) (LOG|DETAIL|ERROR|STATEMENT):\s+(.*)$", line)
        if m:
            entries.append(list(m.groups()))
        elif line.startswith("\t") and entries:
            entries[-1][4] += "\n" + line[1:]
    txs = {}  # (pid, vxid) -> statements
    order = []
    last = None
    for pid, vxid, user, kind, payload in entries:
        if user != "tenantd_app":
            continue
        if kind == "LOG":
            m = re.match(r"^(execute|statement)(?: ([^:]+))?: (.*)$", payload, re.S)
            if m:
                key = (pid, vxid)
                if key not in txs:
                    txs[key] = []
                    order.append(key)
                last = {"name": m.group(2) or "", "sql": m.group(3), "params": {}}
                txs[key].append(last)
        elif kind == "DETAIL" and last is not None:
            m = re.match(r"^parameters: (.*)$", payload, re.S)
            if m:
                last["params"] = parse_params(m.group(1))
    found = []
    for key in order:
        lst = txs[key]
        if any(tid in s["params"].values() for s in lst):
            found = [s for s in lst if not s["sql"].upper().startswith("DEALLOCATE")]
    return found


def parse_params(s):
    out = {}
    for m in re.finditer(r"\$(\d+) = (NULL|'((?:[^']|'')*)')", s):
        out[int(m.group(1))] = None if m.group(2) == "NULL" else m.group(3).replace("''", "'")
    return out


def build_tenantd_scripts(ph, captured):
    """{ep: {"mode", "scripts": [(path, weight)], "defines", "text"}}"""
    scripts = {}
    for ep in CFG["endpoints"]:
        parts = []
        defines = {}
        modes = []
        for iso in ("pool", "schema"):
            stmts = captured.get((iso, ep))
            if not stmts:
                continue
            n = 1 if iso == "pool" else ph.npool + 1
            k = tenant_k(n)
            known = {
                tenant_id(k): "('00000000-0000-4000-8000-' || :k::text)",
                user_id(k): "('00000000-0000-4000-a000-' || :k::text)",
                schema_name(k): "('t_00000000000040008000' || :k::text)",
                project_id(k, 1): "(:j::text || '-0000-4000-9000-' || :k::text)",
            }
            lines = ["-- tenantd's SQL for %s, %s tenant, captured from the statement log"
                     % (ENDPOINTS[ep], iso),
                     "\\set k %d + %s" % (KBASE, "random(1, :npool)" if iso == "pool"
                                           else ":npool + random(1, :nschema)"),
                     "\\set j 10000000 + random(1, 50)", "\\startpipeline"]
            for s in stmts:
                modes.append("prepared" if s["name"] not in ("", "<unnamed>") else "extended")
                types = param_types(ph, s["sql"], iso, k)
                sql = s["sql"]

                def sub(m):
                    i = int(m.group(1))
                    v = s["params"].get(i)
                    t = types[i - 1] if i - 1 < len(types) else "text"
                    if v is None:
                        return "NULL::%s" % t
                    if v in known:
                        return "%s::%s" % (known[v], t)
                    if v == "":
                        # pgbench rejects an empty -D value ("invalid variable definition")
                        return "''::%s" % t
                    name = "c%d" % (len(defines) + 1)
                    for dk, dv in defines.items():
                        if dv == v:
                            name = dk
                    defines[name] = v
                    return ":" + name
                # the engine's to_char formats ('HH24:MI:SS') would read as variables
                sql = dbtenants.literal_colons(sql)
                lines.append(re.sub(r"\$(\d+)", sub, sql) + ";")
            lines.append("\\endpipeline")
            path = os.path.join(ph.tmp, "tenantd_%s_%s.sql" % (iso, ep))
            with open(path, "w") as f:
                f.write("\n".join(lines) + "\n")
            parts.append((path, ph.npool if iso == "pool" else ph.nschema, "\n".join(lines)))
        if not parts:
            continue
        mode = "prepared" if modes.count("prepared") * 2 >= len(modes) else "extended"
        scripts[ep] = {"mode": mode, "scripts": [(p, w) for p, w, _ in parts],
                       "defines": defines, "text": [t for _, _, t in parts]}
    return scripts


def param_types(ph, sql, iso, k):
    """The parameter types PostgreSQL infers for sql (as tenantd sends it untyped)."""
    if "$" not in sql:
        return []
    path = "pool" if iso == "pool" else schema_name(k)
    q = ("BEGIN; SET LOCAL search_path = %s; PREPARE bench_p AS %s; "
         "SELECT array_to_string(parameter_types::text[], ',') FROM pg_prepared_statements "
         "WHERE name = 'bench_p'; ROLLBACK;" % (path, sql))
    out = ph.psql(q, check=False).strip().splitlines()
    return out[-1].split(",") if out else []


# ---- wrk -----------------------------------------------------------------------------

def run_wrk(ph, mode, conns, seconds, threads=None, only=0, seq=False, label=""):
    threads = threads or min(CFG["threads"], conns)
    env = dict(os.environ, BENCH_MODE=mode, BENCH_TOKENS=ph.tokens, BENCH_ONLY=str(only),
               BENCH_SEQ="1" if seq else "0")
    cmd = ["wrk", "-t", str(threads), "-c", str(conns), "-d", "%ds" % seconds, "--timeout", "10s",
           "-s", os.path.join(HERE, "wrk.lua"), "http://127.0.0.1:%d" % ph.port]
    wall0 = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall1 = time.time()
    m = re.search(r"^BENCHJSON (.*)$", r.stdout, re.M)
    if r.returncode != 0 or not m:
        fail("wrk %s failed: %s %s" % (label, r.stdout[-500:], r.stderr[-500:]))
    j = json.loads(m.group(1))
    errors = sum(j["errors"].values())
    res = {
        "rps": round(j["requests"] / (j["duration_us"] / 1e6), 1),
        "p50_ms": round(j["p50_us"] / 1000, 3), "p99_ms": round(j["p99_us"] / 1000, 3),
        "errors": errors, "error_detail": j["errors"], "requests": j["requests"],
        "conns": conns, "wall": [wall0, wall1],
    }
    conn = ph.sampler.max_between(wall0, wall1) if ph.sampler else None
    res["pg_conns"] = conn
    if CFG["backend_mem"]:
        res["backends"] = backend_memory(ph)
        res["pool_metrics"] = pool_metrics(ph)
    if errors:
        log("wrk %s: %d errors %s" % (label, errors, j["errors"]))
    return res


def backend_memory(ph):
    """Private memory of the request pool's backends (application_name 'tenantd') right
    now: RssAnon from /proc/<pid>/status, which is what a backend's caches of catalog
    entries grow (shared buffers are RssShmem). Count, sum and the largest, in KiB."""
    pids = [int(x) for x in ph.psql("SELECT pid FROM pg_stat_activity "
                                    "WHERE application_name = 'tenantd'").split()]
    kib = []
    for pid in pids:
        try:
            with open("/proc/%d/status" % pid) as f:
                kib += [int(line.split()[1]) for line in f if line.startswith("RssAnon:")]
        except OSError:
            pass  # the backend exited (recycled) between the query and the read
    return {"count": len(kib), "sum_kib": sum(kib), "max_kib": max(kib, default=0)}


POOL_METRICS = ("tenantd_db_pool_affine_total", "tenantd_db_pool_acquires_total",
                "tenantd_db_pool_recycled_memory_total", "tenantd_db_pool_recycled_tenants_total",
                "tenantd_db_pool_lru_misses_total", "tenantd_db_pool_lru_hits_total")


def pool_metrics(ph):
    """The pool's counters from GET /metrics (a binary without one simply lacks it)."""
    st, body = ph.http("GET", "/metrics", ADMIN_TOKEN)
    out = {}
    for line in body.splitlines() if st == 200 else []:
        parts = line.split()
        name = parts[0].split("{")[0] if len(parts) == 2 else None
        if name in POOL_METRICS:  # summed over servers ({server="main"}, ...)
            out[name] = out.get(name, 0) + float(parts[1])
    return out


# ---- measuring -----------------------------------------------------------------------

def best(results, key="tps"):
    ok = [r for r in results if r.get("errors", 0) == 0] or results
    return max(ok, key=lambda r: r[key])


def pg_warmup(ph):
    """Seconds each pgbench run warms up before its measured window: new backends have to
    load the catalog entries of every schema they touch."""
    if CFG["pg_warmup"] >= 0:
        return CFG["pg_warmup"]
    return 1.0 if ph.n <= 100 else 2.0


def ceiling_seconds(ph):
    """The ceiling of the tenant mix is measured as a pool run and a schema run; with
    BENCH_CEILING_SPLIT each takes half of BENCH_SECONDS, so the mix is measured for
    BENCH_SECONDS in all."""
    if CFG["ceiling_split"] and ph.nschema and ph.npool:
        return max(1, CFG["seconds"] // 2)
    return CFG["seconds"]


def calibrate(ph, sqls):
    """Short runs of every candidate configuration; the fastest of each row is measured."""
    chosen = {}
    report = {}
    secs, warm = CFG["cal_seconds"], pg_warmup(ph)
    for ep in CFG["endpoints"]:
        cfgs = ceiling_configs(ph, ep)
        chosen[ep] = {}
        report[ep] = {}
        for row in ("pool", "schema"):
            if not cfgs[row]:
                continue
            if len(cfgs[row]) == 1 or not CFG["calibrate"]:
                chosen[ep][row] = cfgs[row]
                continue
            rs = []
            for variant, mode, c, sc in cfgs[row]:
                r = run_pgbench(ph, sc, mode, c, secs, warm, label="calibration")
                r["variant"] = variant
                rs.append(r)
            b = best(rs)
            chosen[ep][row] = [x for x in cfgs[row] if x[0] == b["variant"] and x[2] == b["clients"]]
            report[ep][row] = [{"variant": r["variant"], "clients": r["clients"], "tps": r["tps"]}
                               for r in rs]
        if ep in sqls:
            counts = sorted({CFG["conns"], CFG["pool_size"]})
            if CFG["calibrate"] and len(counts) > 1:
                rs = [run_pgbench(ph, sqls[ep]["scripts"], sqls[ep]["mode"], c, secs, warm,
                                  sqls[ep]["defines"], label="calibration") for c in counts]
                chosen[ep]["sql"] = [best(rs)["clients"]]
                report[ep]["sql"] = [{"clients": r["clients"], "tps": r["tps"]} for r in rs]
            else:
                chosen[ep]["sql"] = counts
        log("calibrated %s: %s" % (ENDPOINTS[ep], ", ".join(
            "%s=%s" % (row, "/".join("%s c%d" % (x[0], x[2]) if isinstance(x, tuple) else
                                     "c%d" % x for x in v)) for row, v in chosen[ep].items())))
    return chosen, report


def combine(ph, pool, schema):
    """The ceiling of the tenants' mix: time per transaction weighted by the share of pool
    and schema tenants (pgbench runs them separately, as the qualified variant needs the
    simple protocol and the pool one the prepared)."""
    if not schema:
        return {"tps": pool["tps"], "p50_ms": pool["p50_ms"], "p99_ms": pool["p99_ms"]}
    wp, ws = ph.npool / ph.n, ph.nschema / ph.n
    tps = 1.0 / (wp / pool["tps"] + ws / schema["tps"]) if pool["tps"] and schema["tps"] else 0
    g = [(wp, pool["_lat"]), (ws, schema["_lat"])]
    p50, p99 = wpercentile(g, 50), wpercentile(g, 99)
    return {"tps": round(tps, 1), "p50_ms": round(p50 / 1000, 3) if p50 else None,
            "p99_ms": round(p99 / 1000, 3) if p99 else None}


def strip(r):
    return {k: v for k, v in r.items() if not k.startswith("_")}


def measure(ph, chosen, sqls):
    runs = []
    secs, warm, csecs = CFG["seconds"], pg_warmup(ph), ceiling_seconds(ph)
    A, B = 1, ph.n
    for rep in range(CFG["runs"]):
        run = {}
        for ep in CFG["endpoints"]:
            row = {}
            for iso in ("pool", "schema"):
                cands = chosen[ep].get(iso)
                if not cands:
                    continue
                rs = []
                for variant, mode, c, sc in cands:
                    r = run_pgbench(ph, sc, mode, c, csecs, warm,
                                    label="ceiling %s %s" % (iso, ep))
                    r["variant"] = variant
                    rs.append(r)
                row["ceiling_" + iso] = best(rs)
            mix = combine(ph, row["ceiling_pool"], row.get("ceiling_schema"))
            mix["errors"] = row["ceiling_pool"]["errors"] + \
                row.get("ceiling_schema", {}).get("errors", 0)
            row["ceiling_mix"] = mix
            row["ceiling"] = dict(mix, source="hand-written")
            if ep in sqls:
                rs = [run_pgbench(ph, sqls[ep]["scripts"], sqls[ep]["mode"], c, secs, warm,
                                  sqls[ep]["defines"], label="tenantd SQL %s" % ep)
                      for c in chosen[ep]["sql"]]
                row["sql"] = best(rs)
                # tenantd's SQL is a correct way too: when it was faster, it is the ceiling
                if row["sql"]["errors"] == 0 and row["sql"]["tps"] > mix["tps"]:
                    row["ceiling"] = {"tps": row["sql"]["tps"], "p50_ms": row["sql"]["p50_ms"],
                                      "p99_ms": row["sql"]["p99_ms"], "errors": 0,
                                      "source": "tenantd SQL"}
                row["sql"]["ratio"] = round(row["sql"]["tps"] / row["ceiling"]["tps"], 3) \
                    if row["ceiling"]["tps"] else None
            row["http"] = run_wrk(ph, ep, CFG["conns"], secs, label="HTTP %s" % ep)
            row["http"]["ratio"] = round(row["http"]["rps"] / row["ceiling"]["tps"], 3) \
                if row["ceiling"]["tps"] else None
            run[ep] = {k: strip(v) for k, v in row.items()}
            log("run %d %-20s ceiling %8.0f/s  tenantd SQL %8s/s  tenantd HTTP %8.0f/s  ratio %s"
                % (rep + 1, ENDPOINTS[ep], row["ceiling"]["tps"],
                   "%.0f" % row["sql"]["tps"] if "sql" in row else "-", row["http"]["rps"],
                   row["http"]["ratio"]))
        if ph.n >= 2 and CFG["fairness"]:
            run["fairness"] = fairness(ph, A, B, secs)
        runs.append(run)
    return runs


def fairness(ph, a, b, secs):
    alone = run_wrk(ph, "list", CFG["fair_conns"], secs, threads=1, only=b, label="fairness B alone")
    flood_out = {}

    def flood():
        flood_out["r"] = run_wrk(ph, "list", CFG["flood_conns"], secs + 2, threads=1, only=a,
                                 label="fairness A flood")
    t = threading.Thread(target=flood)
    t.start()
    time.sleep(1.0)
    under = run_wrk(ph, "list", CFG["fair_conns"], secs, threads=1, only=b,
                    label="fairness B under flood")
    t.join()
    res = {
        "b_alone": strip(alone), "b_flood": strip(under), "a_flood": strip(flood_out["r"]),
        "p99_ratio": round(under["p99_ms"] / alone["p99_ms"], 2) if alone["p99_ms"] else None,
    }
    log("fairness: B p99 alone %.2f ms, with A flooding at %d connections %.2f ms (%.2fx)"
        % (alone["p99_ms"], CFG["flood_conns"], under["p99_ms"], res["p99_ratio"] or 0))
    return res


def summarize(ph, runs):
    s = {}
    for ep in CFG["endpoints"]:
        e = {}
        for row in ("ceiling_pool", "ceiling_schema", "ceiling_mix", "ceiling", "sql", "http"):
            rs = [r[ep][row] for r in runs if row in r[ep]]
            if not rs:
                continue
            key = "rps" if row == "http" else "tps"
            x = {"per_second": median([r[key] for r in rs]),
                 "p50_ms": median([r["p50_ms"] for r in rs]),
                 "p99_ms": median([r["p99_ms"] for r in rs]),
                 "errors": sum(r.get("errors", 0) for r in rs)}
            if row in ("sql", "http"):
                x["ratio"] = median([r["ratio"] for r in rs])
            if row == "http":
                conns = [r["pg_conns"] for r in rs if r.get("pg_conns")]
                x["pg_conns_max"] = max((c["all"] for c in conns), default=None)
                x["pg_app_conns_max"] = max((c["app"] for c in conns), default=None)
            if row == "ceiling":
                x["sources"] = [r["source"] for r in rs]
            if row in ("ceiling_pool", "ceiling_schema", "sql"):
                x["config"] = sorted({"%s%sc=%d" % (r.get("variant", r["mode"]), " ", r["clients"])
                                      for r in rs})
            e[row] = x
        s[ep] = e
    fr = [r["fairness"] for r in runs if "fairness" in r]
    if fr:
        s["fairness"] = {
            "b_alone_p99_ms": median([f["b_alone"]["p99_ms"] for f in fr]),
            "b_flood_p99_ms": median([f["b_flood"]["p99_ms"] for f in fr]),
            "a_flood_rps": median([f["a_flood"]["rps"] for f in fr]),
            "p99_ratio": median([f["p99_ratio"] for f in fr]),
            "errors": sum(f["b_alone"]["errors"] + f["b_flood"]["errors"] + f["a_flood"]["errors"]
                          for f in fr),
        }
    return s


def fmt(v, spec):
    return spec % v if v is not None else "-"


def print_phase(ph, out):
    s = out["summary"]
    print()
    print("tenantd bench: %d tenants (%d pool, %d schema), %d connections, %d s, median of %d"
          % (ph.n, ph.npool, ph.nschema, CFG["conns"], CFG["seconds"], CFG["runs"]))
    print("(each figure the median of the runs; ratio: median of the per-run ratios "
          "tenantd / ceiling of the tenant mix,\n the faster of the hand-written mix and "
          "tenantd's own SQL)")
    print("%-20s %-24s %10s %8s %8s %7s  %s" % ("endpoint", "row", "req/s", "p50 ms", "p99 ms",
                                              "ratio", "configuration"))
    names = {"ceiling_pool": "ceiling, pool", "ceiling_schema": "ceiling, schema",
             "ceiling_mix": "ceiling (tenant mix)", "ceiling": "ceiling used for ratio",
             "sql": "tenantd SQL (pgbench)", "http": "tenantd HTTP (wrk)"}
    for ep in CFG["endpoints"]:
        first = True
        for row in ("ceiling_pool", "ceiling_schema", "ceiling_mix", "ceiling", "sql", "http"):
            x = s[ep].get(row)
            if not x:
                continue
            if row == "ceiling" and all(v == "hand-written" for v in x["sources"]):
                continue
            conf = ", ".join(x.get("config", []))
            if row == "ceiling_mix" and s[ep]["ceiling_pool"] and "ceiling_schema" in s[ep]:
                conf = "%d%% pool, %d%% schema" % (100 * ph.npool // ph.n,
                                                   100 - 100 * ph.npool // ph.n)
            if row == "ceiling":
                conf = "tenantd's SQL was faster in %d of %d runs" % (
                    x["sources"].count("tenantd SQL"), len(x["sources"]))
            if row == "http":
                conf = "c=%d, PG conns max %s (tenantd_app %s)" % (
                    CFG["conns"], x.get("pg_conns_max"), x.get("pg_app_conns_max"))
            if x["errors"]:
                conf += "  ERRORS %d" % x["errors"]
            print("%-20s %-24s %10s %8s %8s %7s  %s" % (
                ENDPOINTS[ep] if first else "", names[row], fmt(x["per_second"], "%.0f"),
                fmt(x["p50_ms"], "%.2f"), fmt(x["p99_ms"], "%.2f"), fmt(x.get("ratio"), "%.2f"),
                conf))
            first = False
    m = out["tenantd_memory_kib"]
    print("tenantd RSS: %.1f MiB at the end, peak (VmHWM) %.1f MiB" % (
        m.get("VmRSS", 0) / 1024, m.get("VmHWM", 0) / 1024))
    print_conns(out)
    f = s.get("fairness")
    if f:
        print("fairness: tenant B p99 %.2f ms alone, %.2f ms while tenant A floods with %d "
              "connections (median of the per-run ratios: %.2fx)"
              % (f["b_alone_p99_ms"], f["b_flood_p99_ms"], CFG["flood_conns"], f["p99_ratio"]))
    print("seeding %.0f s, phase %.0f s; load average %s at the start, %s at the end "
          "(the end includes the bench's own clients; other work on the machine moves every "
          "figure)"
          % (out["seed_seconds"], out["phase_seconds"], out["loadavg_start"], out["loadavg_end"]))


def print_conns(out):
    c, b = out["pg_conns_max"], out["budget"]
    f = b["fixed"]
    print("PostgreSQL connections of tenantd, most seen: %s of a budget of %d = request pool %d "
          "+ %d (pipelines %d, listener %d, job workers %d, catalog %d); most seen per part: "
          "request pool %s, pipelines %s, listener %s, job workers %s, admin %s, replica "
          "poller %s" % (
              c.get("all"), b["total"], b["pool"], b["total"] - b["pool"], f["pipelines"],
              f["listener"], f["jobs"], f["catalog"], c.get("app"), c.get("pipeline"),
              c.get("listener"), c.get("jobs"), c.get("admin"), c.get("replica")))


def phase_name(p):
    if not p["schema_tenants"]:
        return "%d pool" % p["tenants"]
    return "%d (%d%% schema)" % (p["tenants"], round(100 * p["schema_tenants"] / p["tenants"]))


def print_overview(phases):
    """One table over the phases of this invocation: the ratios side by side."""
    print()
    print("all phases (req/s medians; ratio = tenantd HTTP / ceiling of the same phase)")
    print("%-18s %-20s %9s %9s %9s %6s %6s %8s %6s" % (
        "tenants", "endpoint", "ceiling", "SQL", "HTTP", "ratio", "SQL r", "RSS MiB", "conns"))
    for p in phases:
        s = p["summary"]
        for ep in CFG["endpoints"]:
            e = s.get(ep, {})
            sql = e.get("sql", {})
            print("%-18s %-20s %9s %9s %9s %6s %6s %8.1f %6s" % (
                phase_name(p), ENDPOINTS[ep], fmt(e.get("ceiling", {}).get("per_second"), "%.0f"),
                fmt(sql.get("per_second"), "%.0f"),
                fmt(e.get("http", {}).get("per_second"), "%.0f"),
                fmt(e.get("http", {}).get("ratio"), "%.2f"), fmt(sql.get("ratio"), "%.2f"),
                p["tenantd_memory_kib"].get("VmHWM", 0) / 1024,
                "%s/%s" % (p["pg_conns_max"].get("all"), p["budget"]["total"])))


def targets(phases):
    """The targets (issue 14 of the tracker's performance work), each with its figure."""
    t = []
    base = min(phases, key=lambda p: p["tenants"]) if phases else None
    for p in phases:
        t.extend(phase_targets(p, base))
    return t


def target(what, value, met):
    return {"target": what, "value": value, "met": bool(met)}


def phase_targets(p, base):
    s, name, t = p["summary"], phase_name(p), []
    for ep, goal in (("list", 0.80), ("get", 0.80), ("post", 0.75)):
        r = s.get(ep, {}).get("http", {}).get("ratio")
        if ep in s:
            t.append(target("%s ratio >= %.2f at %s tenants" % (ENDPOINTS[ep], goal, name), r,
                            r is not None and r >= goal))
        a = base["summary"].get(ep, {}).get("http", {}).get("ratio") if base else None
        if p is not base and a and r:
            t.append(target("%s ratio at %s tenants >= 0.90 of its ratio at %s"
                            % (ENDPOINTS[ep], name, phase_name(base)), round(r / a, 3),
                            r / a >= 0.90))
    errs = sum(x.get("errors", 0) for ep in CFG["endpoints"] for x in s[ep].values())
    errs += s.get("fairness", {}).get("errors", 0)
    t.append(target("no errors at %s tenants" % name, errs, errs == 0))
    if "fairness" in s:
        r = s["fairness"]["p99_ratio"]
        t.append(target("fairness: B p99 under flood <= 1.5x alone at %s tenants" % name, r,
                        r is not None and r <= 1.5))
    rss = p["tenantd_memory_kib"].get("VmHWM", 0) / 1024
    t.append(target("tenantd RSS <= 64 MiB at %s tenants" % name, round(rss, 1), rss <= 64))
    c, b = p["pg_conns_max"], p["budget"]
    t.append(target("request pool connections <= TENANTD_POOL_SIZE %d at %s tenants"
                    % (b["pool"], name), c.get("app"),
                    c.get("app") is not None and c["app"] <= b["pool"]))
    t.append(target("all of tenantd's connections <= budget %d (pool + %d) at %s tenants"
                    % (b["total"], b["total"] - b["pool"], name), c.get("all"),
                    c.get("all") is not None and c["all"] <= b["total"]))
    return t


def apply_pg_settings(ph):
    """BENCH_PG_SETTINGS (name=value,...): set on the cluster (ALTER SYSTEM, reload) before
    anything is measured, so that they apply to the ceiling's runs and tenantd's alike."""
    items = [x.split("=", 1) for x in CFG["pg_settings"].split(",") if x.strip()]
    for name, value in items:
        if not re.match(r"^[a-z_]+$", name.strip()):
            fail("bad setting name in BENCH_PG_SETTINGS: %r" % name)
        ph.psql("ALTER SYSTEM SET %s = '%s'" % (name.strip(), value.strip().replace("'", "''")))
    if items:
        ph.psql("SELECT pg_reload_conf()")
        time.sleep(0.5)
        shown = {n.strip(): ph.psql("SHOW %s" % n.strip()).strip() for n, _ in items}
        log("PostgreSQL settings for this phase: %s" % shown)
        ph.out["pg_settings"] = shown


def run_phase(n, share):
    t0 = time.monotonic()
    ph = Phase(n, share)
    if ph.npool < 1:
        fail("a phase needs at least one pool tenant (%d tenants, schema share %s)" % (n, share))
    log("phase: %d tenants (%d pool, %d schema) in %s" % (n, ph.npool, ph.nschema, ph.tmp))
    ph.out["loadavg_start"] = loadavg()
    try:
        ph.start()
        ph.seed()
        apply_pg_settings(ph)
        ph.check_http()
        sqls = capture_tenantd_sql(ph)
        ph.sampler = Sampler(ph)
        validate_scripts(ph, sqls)
        replay_check(ph, sqls)
        ph.out["tenantd_sql"] = {ep: {"mode": v["mode"], "defines": v["defines"],
                                      "scripts": v["text"]} for ep, v in sqls.items()}
        for ep in CFG["endpoints"]:
            if ep not in sqls:
                ph.out["tenantd_sql"][ep] = {"mode": "-", "scripts": []}
        for ep in CFG["endpoints"]:
            if CFG["warmup"] > 0:
                run_wrk(ph, ep, CFG["conns"], CFG["warmup"], seq=True, label="warm-up")
        log("warm-up done")
        chosen, report = calibrate(ph, sqls)
        ph.out["calibration"] = report
        ph.out["chosen"] = {ep: {row: [list(x[:3]) if isinstance(x, tuple) else x for x in v]
                                 for row, v in c.items()} for ep, c in chosen.items()}
        runs = measure(ph, chosen, sqls)
        ph.out["runs"] = runs
        ph.out["summary"] = summarize(ph, runs)
        ph.out["tenantd_memory_kib"] = ph.memory()
        ph.out["pg_conns_max"] = ph.sampler.max_between() or {"all": None, "app": None}
        ph.out["budget"] = budget()
        with open(os.path.join(ph.tmp, "tenantd.log")) as f:
            ph.out["tenantd_log_errors"] = sum(1 for line in f if " error: " in line)
        ph.out["phase_seconds"] = round(time.monotonic() - t0, 1)
        ph.out["loadavg_end"] = loadavg()
        ph.out["pg_warmup_seconds"] = pg_warmup(ph)
        ph.out["ceiling_seconds_per_isolation"] = ceiling_seconds(ph)
        print_phase(ph, ph.out)
        return ph.out
    finally:
        ph.stop()


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return [float(x) for x in f.read().split()[:3]]
    except OSError:
        return None


def machine():
    info = {"nproc": os.cpu_count(), "kernel": os.uname().release}
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"^model name\s*:\s*(.*)$", f.read(), re.M)
            info["cpu"] = m.group(1) if m else None
        with open("/proc/meminfo") as f:
            info["mem_kib"] = int(f.readline().split()[1])
    except OSError:
        pass
    for name, cmd in (("postgres", ["pgbench", "--version"]), ("wrk", ["wrk", "-v"])):
        r = subprocess.run(cmd, capture_output=True, text=True)
        info[name] = (r.stdout + r.stderr).splitlines()[0] if (r.stdout + r.stderr) else None
    r = subprocess.run(["git", "-C", ROOT, "rev-parse", "HEAD"], capture_output=True, text=True)
    info["commit"] = r.stdout.strip() or None
    r = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                       capture_output=True, text=True)
    info["dirty"] = bool(r.stdout.strip())
    return info


def main():
    for tool in ("pgbench", "wrk", "psql"):
        if not shutil.which(tool):
            fail("%s not found (make deps installs it)" % tool)
    if not os.access(CFG["bin"], os.X_OK):
        fail("no tenantd binary at %s" % CFG["bin"])
    started = datetime.datetime.now(datetime.timezone.utc)
    log("tenantd bench: tenants %s, %d s x %d runs, %d connections, pool size %d, binary %s"
        % (CFG["tenants"], CFG["seconds"], CFG["runs"], CFG["conns"], CFG["pool_size"],
           CFG["bin"]))
    phases = []
    for n, share in tenant_specs(CFG["tenants"], CFG["schema_share"]):
        phases.append(run_phase(n, share))
    db = dbtenants.run(sys.modules[__name__])
    result = {
        "started_at": started.isoformat(), "machine": machine(),
        "config": {k: v for k, v in CFG.items() if k not in ("results",)},
        "phases": phases, "database_tenants": db,
        "targets": targets(phases) + dbtenants.targets(db),
        "total_seconds": round(time.monotonic() - T0, 1),
    }
    os.makedirs(CFG["results"], exist_ok=True)
    path = os.path.join(CFG["results"], started.strftime("%Y%m%dT%H%M%SZ") + ".json")
    with open(path, "w") as f:
        json.dump(result, f, indent=1)
    print_overview(phases)
    print()
    print("targets:")
    for t in result["targets"]:
        print("  %-4s %-78s %s" % ("met" if t["met"] else "MISS", t["target"], t["value"]))
    print("total %.0f s; results in %s" % (result["total_seconds"], path))


if __name__ == "__main__":
    try:
        main()
    except RuntimeError as e:
        print("bench: " + str(e), file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
