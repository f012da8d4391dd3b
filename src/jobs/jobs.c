/*
 * jobs.c - the job queue and its worker threads: claim (FOR UPDATE SKIP LOCKED), check the
 * tenant, run the kind, then finish, retry with backoff or dead-letter. Worker 0 also turns
 * due schedules into jobs and counts the queue for the metrics.
 */
#include "jobs/internal.h"

#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "migrate/files.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define POLL_MS 1000  /* idle wait between claims */
#define TICK_MS 1000  /* schedules checked this often (worker 0) */
#define COUNT_MS 5000 /* queue counted this often (worker 0) */
#define STR_(x) #x
#define STR(x) STR_(x)

struct worker {
    struct jobs *jobs;
    int index;
    pthread_t thread;
    char name[160];
    PGconn *pg;
};

struct jobs {
    struct db *db;
    struct mig_expected *expected;
    int n;
    struct worker *workers;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_int stop;
    const struct jobs_kind_ext *ext; /* set before the workers start, read-only after */
    int n_ext;
    /* jobs_get_stats: finished jobs by outcome, and worker 0's last counts (-1: none yet) */
    atomic_llong st_done, st_retried, st_dead, st_skipped;
    atomic_llong q_queued, q_running, q_dead, m_pending, m_failed;
};

static const struct jobs_kind_ext *ext_find(struct jobs *j, const char *name)
{
    for (int i = 0; j->ext && i < j->n_ext; i++)
        if (strcmp(j->ext[i].name, name) == 0)
            return &j->ext[i];
    return NULL;
}

void jobs_get_stats(const struct jobs *j, struct jobs_stats *o)
{
    if (!j) {
        *o = (struct jobs_stats){0, 0, 0, 0, -1, -1, -1, -1, -1};
        return;
    }
    o->done = atomic_load(&j->st_done);
    o->retried = atomic_load(&j->st_retried);
    o->dead = atomic_load(&j->st_dead);
    o->skipped = atomic_load(&j->st_skipped);
    o->queued = atomic_load(&j->q_queued);
    o->running = atomic_load(&j->q_running);
    o->dead_now = atomic_load(&j->q_dead);
    o->mig_pending = atomic_load(&j->m_pending);
    o->mig_failed = atomic_load(&j->m_failed);
}

int jobs__fail(struct jobs__ctx *ctx, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->error, sizeof(ctx->error), fmt, ap);
    va_end(ap);
    return rc;
}

int jobs_enqueue(PGconn *pg, const char *tenant_id, const char *kind, const char *payload,
                 int delay_s, int max_attempts, char *id)
{
    char delay[16], att[16];
    snprintf(delay, sizeof(delay), "%d", delay_s < 0 ? 0 : delay_s);
    snprintf(att, sizeof(att), "%d", max_attempts > 0 ? max_attempts : JOBS_DEFAULT_MAX_ATTEMPTS);
    const char *p[5] = {tenant_id, kind, payload ? payload : "{}", delay, att};
    PGresult *r = NULL;
    int rc = db_admin_exec(pg, "queueing a job",
                           "INSERT INTO tenantd.jobs (tenant_id, kind, payload, run_at, "
                           "max_attempts) VALUES ($1, $2, $3::jsonb, now() + $4::int * "
                           "interval '1 second', $5) RETURNING id",
                           5, p, &r);
    if (rc == 0 && id)
        snprintf(id, 37, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return rc;
}

int jobs__heartbeat(struct jobs__ctx *ctx)
{
    PGresult *r = NULL;
    int rc = db_admin_exec(ctx->pg, "extending a job's lease",
                           "UPDATE tenantd.jobs SET locked_at = now() WHERE id = $1 AND "
                           "locked_by = $2",
                           2, (const char *const[]){ctx->job_id, ctx->worker}, &r);
    if (rc == 0 && atoi(PQcmdTuples(r)) == 0)
        rc = TD_ENOTFOUND;
    PQclear(r);
    return rc;
}

/* ---- schedules and queue counts (worker 0) ------------------------------------------- */

static const char schedule_sql[] =
    "WITH due AS (UPDATE tenantd.job_schedules SET next_run_at = now() + every, "
    "last_run_at = now() WHERE next_run_at <= now() RETURNING name, per_tenant, max_attempts) "
    "INSERT INTO tenantd.jobs (tenant_id, kind, max_attempts) "
    "SELECT t.id, d.name, d.max_attempts FROM due d JOIN tenantd.tenants t "
    "ON d.per_tenant AND t.status = 'active' WHERE NOT EXISTS (SELECT 1 FROM tenantd.jobs q "
    "WHERE q.kind = d.name AND q.tenant_id = t.id AND q.status IN ('queued', 'running')) "
    "UNION ALL SELECT NULL, d.name, d.max_attempts FROM due d WHERE NOT d.per_tenant AND "
    "NOT EXISTS (SELECT 1 FROM tenantd.jobs q WHERE q.kind = d.name AND q.tenant_id IS NULL "
    "AND q.status IN ('queued', 'running')) RETURNING kind";

/* A job whose worker vanished during its last attempt is not run again: it might be the
 * job that makes workers vanish. */
static const char lost_sql[] =
    "UPDATE tenantd.jobs SET status = 'dead', finished_at = now(), locked_by = NULL, "
    "last_error = 'the worker running the last attempt stopped answering (lease expired)' "
    "WHERE status = 'running' AND locked_at < now() - interval '" STR(
        JOBS_LEASE_S) " seconds' "
                      "AND attempts >= max_attempts";

static const char count_sql[] =
    "SELECT count(*) FILTER (WHERE status = 'queued'), count(*) FILTER (WHERE status = "
    "'running'), count(*) FILTER (WHERE status = 'dead'), (SELECT count(*) FROM "
    "tenantd.tenants WHERE schema_version < $1::int), (SELECT count(*) FROM tenantd.tenants "
    "WHERE migration_error IS NOT NULL) FROM tenantd.jobs "
    "WHERE status IN ('queued', 'running', 'dead')";

static void tick(struct worker *w, long long *next_tick, long long *next_count)
{
    long long now = td_now_ms();
    PGresult *r = NULL;
    if (now >= *next_tick) {
        *next_tick = now + TICK_MS;
        if (db_admin_exec(w->pg, "queueing scheduled jobs", schedule_sql, 0, NULL, &r) == 0 &&
            PQntuples(r) > 0)
            td_log_debug("jobs: queued %d scheduled job(s)", PQntuples(r));
        PQclear(r);
        r = NULL;
        if (db_admin_exec(w->pg, "dead-lettering lost jobs", lost_sql, 0, NULL, &r) == 0 &&
            atoi(PQcmdTuples(r)) > 0) {
            atomic_fetch_add(&w->jobs->st_dead, atoi(PQcmdTuples(r)));
            td_log_warn("jobs: %s job(s) lost their worker on the last attempt: dead",
                        PQcmdTuples(r));
        }
        PQclear(r);
        r = NULL;
    }
    if (now >= *next_count) {
        *next_count = now + COUNT_MS;
        char ver[16];
        snprintf(ver, sizeof(ver), "%d", mig_expected_get(w->jobs->expected));
        if (db_admin_exec(w->pg, "counting jobs", count_sql, 1, (const char *const[]){ver}, &r) ==
            0) {
            atomic_store(&w->jobs->q_queued, atoll(PQgetvalue(r, 0, 0)));
            atomic_store(&w->jobs->q_running, atoll(PQgetvalue(r, 0, 1)));
            atomic_store(&w->jobs->q_dead, atoll(PQgetvalue(r, 0, 2)));
            atomic_store(&w->jobs->m_pending, atoll(PQgetvalue(r, 0, 3)));
            atomic_store(&w->jobs->m_failed, atoll(PQgetvalue(r, 0, 4)));
        }
        PQclear(r);
    }
}

/* ---- one job ------------------------------------------------------------------------- */

static const char claim_sql[] =
    "UPDATE tenantd.jobs j SET status = 'running', attempts = j.attempts + 1, locked_by = $1, "
    "locked_at = now() FROM (SELECT id FROM tenantd.jobs WHERE (status = 'queued' AND run_at "
    "<= now()) OR (status = 'running' AND locked_at < now() - interval '" STR(
        JOBS_LEASE_S) " seconds' AND attempts < max_attempts) ORDER BY run_at, id LIMIT 1 "
                      "FOR UPDATE SKIP LOCKED) c WHERE j.id = c.id "
                      "RETURNING j.id, j.tenant_id, j.kind, j.payload::text, j.attempts, "
                      "j.max_attempts";

static const char finish_sql[] =
    "UPDATE tenantd.jobs SET status = $3, last_error = $4, finished_at = now(), "
    "locked_by = NULL, locked_at = NULL WHERE id = $1 AND locked_by = $2";

/* Exponential backoff from the attempt count, capped at an hour, with up to 25 % jitter so
 * that jobs failing together do not retry together. */
static const char retry_sql[] =
    "UPDATE tenantd.jobs SET status = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE "
    "'queued' END, run_at = CASE WHEN attempts >= max_attempts THEN run_at ELSE now() + "
    "least(power(2, attempts - 1) * " STR(
        JOBS_BACKOFF_BASE_S) ", 3600) * (1 + random() / 4) "
                             "* interval '1 second' END, finished_at = CASE WHEN attempts >= "
                             "max_attempts THEN now() "
                             "END, last_error = $3, locked_by = NULL, locked_at = NULL WHERE id = "
                             "$1 AND locked_by = $2 "
                             "RETURNING status";

static void finish(struct worker *w, const char *id, const char *status, const char *error)
{
    const char *p[4] = {id, w->name, status, error};
    if (db_admin_exec(w->pg, "finishing a job", finish_sql, 4, p, NULL) < 0)
        td_log_warn("jobs: could not record job %s as %s; it will run again", id, status);
}

static void retry(struct worker *w, const char *id, const char *kind, const char *error)
{
    PGresult *r = NULL;
    const char *p[3] = {id, w->name, error};
    if (db_admin_exec(w->pg, "scheduling a retry", retry_sql, 3, p, &r) == 0 && PQntuples(r) == 1) {
        int dead = strcmp(PQgetvalue(r, 0, 0), "dead") == 0;
        atomic_fetch_add(dead ? &w->jobs->st_dead : &w->jobs->st_retried, 1);
        if (dead)
            td_log_warn("jobs: %s job %s failed its last attempt and is dead: %s", kind, id, error);
        else
            td_log_info("jobs: %s job %s failed, will retry: %s", kind, id, error);
    }
    PQclear(r);
}

/* Load the job's tenant from the catalog (never the cache: a suspension must stop jobs at
 * once). Returns 0 with *t (1 ref) or *skip set to why the job must not run. */
static int load_tenant(struct worker *w, const char *tenant_id, struct tnt_tenant **t,
                       const char **skip)
{
    char sql[512];
    snprintf(sql, sizeof(sql), "SELECT %s FROM tenantd.tenants WHERE id = $1", tnt_catalog_columns);
    PGresult *r = NULL;
    *t = NULL;
    *skip = NULL;
    int rc = db_admin_exec(w->pg, "loading a job's tenant", sql, 1,
                           (const char *const[]){tenant_id}, &r);
    if (rc < 0)
        return rc;
    if (PQntuples(r) == 0)
        *skip = "tenant no longer exists";
    else if (strcmp(PQgetvalue(r, 0, 5), "suspended") == 0)
        *skip = "tenant is suspended";
    else
        *t = tnt_tenant_from_row(w->jobs->db, r, 0);
    PQclear(r);
    return 0;
}

static void run_claimed(struct worker *w, PGresult *r)
{
    const char *id = PQgetvalue(r, 0, 0), *kind = PQgetvalue(r, 0, 2);
    const char *tenant_id = PQgetisnull(r, 0, 1) ? NULL : PQgetvalue(r, 0, 1);
    struct jobs__ctx ctx = {.db = w->jobs->db,
                            .pg = w->pg,
                            .worker = w->name,
                            .job_id = id,
                            .attempt = atoi(PQgetvalue(r, 0, 4)),
                            .stop = &w->jobs->stop};
    struct tnt_tenant *t = NULL;
    json_t *payload = json_loads(PQgetvalue(r, 0, 3), 0, NULL);
    const struct jobs__kind *k = jobs__kind_find(kind);
    const struct jobs_kind_ext *x = k ? NULL : ext_find(w->jobs, kind);
    const char *skip = NULL;
    long long t0 = td_now_ms();
    int rc;
    if (x && json_is_object(payload)) {
        rc = x->run(x->arg, w->pg, id, payload, ctx.error, sizeof(ctx.error));
        if (rc == 0) {
            finish(w, id, "done", NULL);
            atomic_fetch_add(&w->jobs->st_done, 1);
        }
        goto out;
    }
    if (!k) {
        /* an instance of another version may know it: retry rather than drop */
        rc = jobs__fail(&ctx, TD_ENOTFOUND, "unknown job kind \"%s\"", kind);
        goto out;
    }
    if (!json_is_object(payload)) {
        rc = jobs__fail(&ctx, TD_EVALIDATION, "payload is not a JSON object");
        goto out;
    }
    if (k->per_tenant && !tenant_id) {
        rc = jobs__fail(&ctx, TD_EVALIDATION, "a %s job needs a tenant", kind);
        goto out;
    }
    if (tenant_id && (rc = load_tenant(w, tenant_id, &t, &skip)) < 0) {
        jobs__fail(&ctx, rc, "catalog unreachable");
        goto out;
    }
    if (skip) {
        finish(w, id, "skipped", skip);
        atomic_fetch_add(&w->jobs->st_skipped, 1);
        td_log_info("jobs: %s job %s skipped: %s", kind, id, skip);
        rc = 0;
        goto out;
    }
    /* the rule of requests (src/api/tx.c): storage behind this version is being
     * migrated; wait for it rather than run against old tables */
    if (t && t->isolation != TNT_ISO_POOL &&
        t->schema_version < mig_expected_get(w->jobs->expected)) {
        rc = jobs__fail(&ctx, TD_EUNAVAILABLE, "the tenant's storage is being migrated");
        goto out;
    }
    ctx.tenant = t;
    ctx.payload = payload;
    if ((rc = k->run(&ctx)) == 0) {
        finish(w, id, "done", NULL);
        atomic_fetch_add(&w->jobs->st_done, 1);
        td_log_debug("jobs: %s job %s done in %lld ms", kind, id, td_now_ms() - t0);
    }
out:
    if (rc < 0)
        retry(w, id, kind, ctx.error[0] ? ctx.error : "failed");
    json_decref(payload);
    tnt_tenant_unref(t);
}

/* Claim and run one due job. Returns 1 when one ran, 0 when none was due, -1 when the
 * catalog connection failed. */
static int claim_one(struct worker *w)
{
    PGresult *r = NULL;
    if (db_admin_exec(w->pg, "claiming a job", claim_sql, 1, (const char *const[]){w->name}, &r) <
        0)
        return PQstatus(w->pg) == CONNECTION_OK ? 0 : -1;
    int got = PQntuples(r) == 1;
    if (got)
        run_claimed(w, r);
    PQclear(r);
    return got;
}

/* ---- threads ------------------------------------------------------------------------- */

/* Sleep up to ms unless stopping; returns 1 when stopping. */
static int nap(struct jobs *j, long ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&j->mu);
    if (!atomic_load(&j->stop))
        pthread_cond_timedwait(&j->cv, &j->mu, &ts);
    pthread_mutex_unlock(&j->mu);
    return atomic_load(&j->stop);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct jobs *j = w->jobs;
    long long next_tick = 0, next_count = 0;
    long wait_ms = 1000;
    while (!atomic_load(&j->stop)) {
        if (!w->pg || PQstatus(w->pg) != CONNECTION_OK) {
            PQfinish(w->pg);
            w->pg = NULL;
            if (db_admin_connect(j->db, 0, NULL, &w->pg) < 0) {
                PQfinish(w->pg);
                w->pg = NULL;
                nap(j, wait_ms);
                wait_ms = wait_ms < 30000 ? wait_ms * 2 : 30000;
                continue;
            }
            wait_ms = 1000;
            /* the workers are a fixed part of the connection budget: name them so that
             * pg_stat_activity (and the bench) can count them apart */
            PQclear(PQexec(w->pg, "SET application_name = 'tenantd jobs'"));
        }
        if (w->index == 0)
            tick(w, &next_tick, &next_count);
        int got = claim_one(w);
        if (got <= 0)
            nap(j, POLL_MS);
    }
    PQfinish(w->pg);
    w->pg = NULL;
    return NULL;
}

int jobs_start(struct db *db, struct mig_expected *expected, int n, const struct jobs_kind_ext *ext,
               int n_ext, struct jobs **out)
{
    *out = NULL;
    if (n <= 0)
        return 0;
    struct jobs *j = td_xcalloc(1, sizeof(*j));
    j->db = db;
    j->expected = expected;
    atomic_init(&j->q_queued, -1);
    atomic_init(&j->q_running, -1);
    atomic_init(&j->q_dead, -1);
    atomic_init(&j->m_pending, -1);
    atomic_init(&j->m_failed, -1);
    j->ext = ext;
    j->n_ext = n_ext;
    j->workers = td_xcalloc((size_t)n, sizeof(*j->workers));
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    char host[64] = "host";
    gethostname(host, sizeof(host) - 1);
    for (int i = 0; i < n; i++) {
        struct worker *w = &j->workers[i];
        w->jobs = j;
        w->index = i;
        snprintf(w->name, sizeof(w->name), "%s:%d:%d", host, (int)getpid(), i);
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            td_log_error("jobs: could not start worker %d", i);
            break;
        }
        j->n++;
    }
    td_log_info("jobs: %d worker(s) started", j->n);
    *out = j;
    return 0;
}

void jobs_stop(struct jobs *j)
{
    if (!j)
        return;
    pthread_mutex_lock(&j->mu);
    atomic_store(&j->stop, 1);
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    for (int i = 0; i < j->n; i++)
        pthread_join(j->workers[i].thread, NULL);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    free(j->workers);
    free(j);
}
