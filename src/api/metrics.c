/*
 * metrics.c - Prometheus counters and histograms of the process, and their exposition.
 *
 * Every series is a plain atomic in the application's struct api_metrics, so recording a
 * request costs a few relaxed atomic additions. Per-tenant counts live in the tenant's usage
 * entry (tenant/plans.h): one entry a tenant for both, 16-byte ids, no allocation each.
 */
#include "api/metrics.h"

#include "api/api.h"
#include "app/app.h"
#include "backup/backup.h"
#include "api/handlers.h"
#include "core/clock.h"
#include "core/mem.h"
#include "db/pool.h"
#include "db/replica.h"
#include "http/router.h"
#include "jobs/jobs.h"
#include "auth/jwt.h"
#include "tenant/plans.h"
#include "tenant/tenant.h"
#include "tenant/usercheck.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TD_STR_(x) #x
#define TD_STR(x) TD_STR_(x)
#define M_MAX_ROUTES 64
#define M_STATUS_MIN 100
#define M_NSTATUS 500 /* 100..599 */

static const char *const methods[] = {"GET",   "HEAD",   "POST",    "PUT",
                                      "PATCH", "DELETE", "OPTIONS", "other"};
#define M_NMETHODS (sizeof(methods) / sizeof(methods[0]))
/* Route slots: one per route of the table, then "unmatched" once per method. */
#define M_NSLOTS (M_MAX_ROUTES + M_NMETHODS)

/* Upper bounds (seconds) of the request latency histogram. */
static const double req_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                    0.25,  0.5,    1,     2.5,  5,     10};
#define M_NREQ_BOUNDS (sizeof(req_bounds) / sizeof(req_bounds[0]))
/* Provisioning and migrations take longer: their own bounds. */
static const double slow_bounds[] = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300};
#define M_NSLOW_BOUNDS (sizeof(slow_bounds) / sizeof(slow_bounds[0]))

struct hist {
    atomic_ullong le[M_NREQ_BOUNDS + 1]; /* non-cumulative; the last is +Inf */
    atomic_ullong sum_us;
    atomic_ullong count;
};

struct slot {
    atomic_ullong by_status[M_NSTATUS];
    struct hist latency;
};

struct slow_series {
    atomic_ullong ok, failed;
    atomic_ullong le[M_NSLOW_BOUNDS + 1];
    atomic_ullong sum_us;
};

/* Everything one application counts (zero when made). */
struct api_metrics {
    struct slot slots[M_NSLOTS];
    atomic_ullong tenant_uncounted; /* requests of tenants without a usage entry: "other" */
    atomic_ullong denied_mismatch, denied_rls_write, rate_limited;
    struct slow_series provisions;
    struct slow_series migrations;
};

struct api_metrics *api_metrics_new(void)
{
    return td_xcalloc(1, sizeof(struct api_metrics));
}

void api_metrics_free(struct api_metrics *m)
{
    free(m);
}

static void add(atomic_ullong *a, unsigned long long v)
{
    atomic_fetch_add_explicit(a, v, memory_order_relaxed);
}

static unsigned long long get(atomic_ullong *a)
{
    return atomic_load_explicit(a, memory_order_relaxed);
}

static size_t method_index(const char *m)
{
    for (size_t i = 0; i + 1 < M_NMETHODS; i++)
        if (strcmp(methods[i], m) == 0)
            return i;
    return M_NMETHODS - 1;
}

/* The built-in routes followed by the resource routes (/{t}, /{t}/{id}): a slot each, so
 * that every served table is counted under its pattern, never under its own path. */
static struct http_route all[M_MAX_ROUTES];
static size_t nall;
static pthread_once_t all_once = PTHREAD_ONCE_INIT;

static void all_init(void)
{
    size_t n, m;
    const struct http_route *r = api_routes(&n), *res = api_resource_routes(&m);
    for (size_t i = 0; i < n && nall < M_MAX_ROUTES; i++)
        all[nall++] = r[i];
    for (size_t i = 0; i < m && nall < M_MAX_ROUTES; i++)
        all[nall++] = res[i];
}

static const struct http_route *all_routes(size_t *n)
{
    pthread_once(&all_once, all_init);
    *n = nall;
    return all;
}

/* Slot of the request's route: the table's index, or an "unmatched" slot per method. */
static size_t slot_of(const struct http_req *req)
{
    if (req->route_pattern) {
        size_t n;
        const struct http_route *r = all_routes(&n);
        for (size_t i = 0; i < n && i < M_MAX_ROUTES; i++)
            if (r[i].pattern == req->route_pattern && strcmp(r[i].method, req->method) == 0)
                return i;
    }
    return M_MAX_ROUTES + method_index(req->method);
}

static void observe(atomic_ullong *le, size_t nb, const double *bounds, atomic_ullong *sum_us,
                    long long us)
{
    double s = (double)us / 1e6;
    size_t i = 0;
    while (i < nb && s > bounds[i])
        i++;
    add(&le[i], 1);
    add(sum_us, (unsigned long long)us);
}

void api_metrics_request(struct api_metrics *m, const struct http_req *req)
{
    /* no response was queued (the client went away): nothing to count */
    if (req->status < M_STATUS_MIN || req->status >= M_STATUS_MIN + M_NSTATUS)
        return;
    struct slot *sl = &m->slots[slot_of(req)];
    add(&sl->by_status[req->status - M_STATUS_MIN], 1);
    long long us = td_now_us() - req->started_us;
    if (us < 0)
        us = 0;
    observe(sl->latency.le, M_NREQ_BOUNDS, req_bounds, &sl->latency.sum_us, us);
    add(&sl->latency.count, 1);

    int tenant_route = (req->route_flags & (HTTP_ROUTE_TENANT | HTTP_ROUTE_TENANT_ANON)) != 0;
    if (tenant_route && req->tenant &&
        (!req->app->usage || tnt_usage_request(req->app->usage, req->tenant) < 0))
        add(&m->tenant_uncounted, 1);
    if (req->err == TD_EMISMATCH)
        add(&m->denied_mismatch, 1);
    /* a write naming a row the tenant's storage does not show it (RLS or another
     * tenant's schema): it matched nothing and the answer is 404 */
    if (tenant_route && req->err == TD_ENOTFOUND && req->nparams > 0 &&
        (!strcmp(req->method, "PATCH") || !strcmp(req->method, "DELETE")))
        add(&m->denied_rls_write, 1);
    if (req->status == 429)
        add(&m->rate_limited, 1);
}

static void slow_observe(struct slow_series *s, int rc, long long started_us)
{
    long long us = td_now_us() - started_us;
    add(rc < 0 ? &s->failed : &s->ok, 1);
    observe(s->le, M_NSLOW_BOUNDS, slow_bounds, &s->sum_us, us < 0 ? 0 : us);
}

void api_metrics_provision(struct api_metrics *m, int rc, long long started_us)
{
    /* a taken slug or an unknown server is refused before any storage is made */
    if (rc == TD_ECONFLICT || rc == TD_EVALIDATION)
        return;
    slow_observe(&m->provisions, rc, started_us);
}

void api_metrics_migration(struct api_metrics *m, int rc, long long started_us)
{
    slow_observe(&m->migrations, rc, started_us);
}

/* ---- exposition ---------------------------------------------------------------------- */

struct buf {
    char *p;
    size_t len, cap;
};

static void __attribute__((format(printf, 2, 3))) out(struct buf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        b->cap = b->cap * 2 + (n > 0 ? (size_t)n : 0);
        b->p = td_xrealloc(b->p, b->cap);
    }
}

static void help(struct buf *b, const char *name, const char *type, const char *text)
{
    out(b, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

static void hist_lines(struct buf *b, const char *name, const char *labels,
                       const unsigned long long *le, size_t nb, const double *bounds,
                       unsigned long long sum_us, unsigned long long count)
{
    unsigned long long cum = 0;
    const char *sep = labels[0] ? "," : "";
    for (size_t i = 0; i < nb; i++) {
        cum += le[i];
        out(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, bounds[i], cum);
    }
    out(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep, count);
    const char *o = labels[0] ? "{" : "", *c = labels[0] ? "}" : "";
    out(b, "%s_sum%s%s%s %.6f\n%s_count%s%s%s %llu\n", name, o, labels, c, (double)sum_us / 1e6,
        name, o, labels, c, count);
}

static void render_requests(struct buf *b, struct api_metrics *m)
{
    size_t n;
    const struct http_route *r = all_routes(&n);
    if (n > M_MAX_ROUTES)
        n = M_MAX_ROUTES;
    help(b, "tenantd_http_requests_total", "counter",
         "HTTP requests answered, by route pattern, method and status.");
    for (size_t s = 0; s < M_NSLOTS; s++) {
        int unmatched = s >= M_MAX_ROUTES;
        if (!unmatched && s >= n)
            continue;
        for (int st = 0; st < M_NSTATUS; st++) {
            unsigned long long v = get(&m->slots[s].by_status[st]);
            if (v)
                out(b,
                    "tenantd_http_requests_total{route=\"%s\",method=\"%s\",status=\"%d\"} %llu\n",
                    unmatched ? "unmatched" : r[s].pattern,
                    unmatched ? methods[s - M_MAX_ROUTES] : r[s].method, st + M_STATUS_MIN, v);
        }
    }
    help(b, "tenantd_http_request_duration_seconds", "histogram",
         "Time from the first byte of a request to its response being queued, by route.");
    /* one histogram per route pattern: routes sharing a pattern (GET and PATCH
     * /projects/{id}), and the unmatched slots, are summed */
    for (size_t s = 0; s <= n; s++) {
        const char *pattern = s < n ? r[s].pattern : "unmatched";
        int seen = 0;
        for (size_t k = 0; k < s && s < n; k++)
            if (strcmp(r[k].pattern, pattern) == 0)
                seen = 1;
        if (seen)
            continue;
        unsigned long long le[M_NREQ_BOUNDS + 1] = {0}, sum = 0, count = 0;
        for (size_t k = 0; k < M_NSLOTS; k++) {
            int match =
                k < n ? strcmp(r[k].pattern, pattern) == 0 && s < n : k >= M_MAX_ROUTES && s == n;
            if (!match)
                continue;
            for (size_t i = 0; i <= M_NREQ_BOUNDS; i++)
                le[i] += get(&m->slots[k].latency.le[i]);
            sum += get(&m->slots[k].latency.sum_us);
            count += get(&m->slots[k].latency.count);
        }
        if (!count)
            continue;
        char labels[128];
        snprintf(labels, sizeof(labels), "route=\"%s\"", pattern);
        hist_lines(b, "tenantd_http_request_duration_seconds", labels, le, M_NREQ_BOUNDS,
                   req_bounds, sum, count);
    }
}

static void render_tenants(struct buf *b, struct td_app *app)
{
    struct tnt_request_count rows[API_METRICS_TOP_TENANTS];
    unsigned long long other = 0;
    size_t n =
        app->usage ? tnt_usage_requests(app->usage, rows, API_METRICS_TOP_TENANTS, &other) : 0;
    other += get(&app->metrics->tenant_uncounted);
    help(b, "tenantd_tenant_requests_total", "counter",
         "Requests to tenant routes by tenant slug: the " TD_STR(
             API_METRICS_TOP_TENANTS) " busiest "
                                      "tenants since start, "
                                      "every other tenant summed in tenant=\"other\".");
    for (size_t i = 0; i < n; i++)
        out(b, "tenantd_tenant_requests_total{tenant=\"%s\"} %llu\n", rows[i].slug, rows[i].n);
    out(b, "tenantd_tenant_requests_total{tenant=\"other\"} %llu\n", other);
}

static void render_pools(struct buf *b, struct td_app *app)
{
    static const struct {
        const char *name, *type, *help;
    } g[] = {
        {"tenantd_db_pool_open_connections", "gauge", "Connections open to the server."},
        {"tenantd_db_pool_in_use_connections", "gauge", "Connections lent to a transaction."},
        {"tenantd_db_pool_waiting_requests", "gauge", "Transactions waiting for a connection."},
        {"tenantd_db_pool_tenant_pools", "gauge",
         "Per-database pools open for database-per-tenant (the LRU)."},
        {"tenantd_db_pool_lru_hits_total", "counter",
         "Acquires served by an idle connection of the right database."},
        {"tenantd_db_pool_lru_misses_total", "counter", "Acquires that had to open a connection."},
        {"tenantd_db_pool_lru_evictions_total", "counter",
         "Idle connections closed to make room for another database."},
        {"tenantd_db_pipeline_transactions_total", "counter",
         "Transactions sent through the event loops' pipelines."},
        {"tenantd_db_pipeline_depth_max", "gauge",
         "Most transactions in flight on one pipeline at once."},
        {"tenantd_db_pool_affine_total", "counter",
         "Default-database transactions that ran on the tenant's own connection (affinity)."},
        {"tenantd_db_pool_acquires_total", "counter", "Connections lent, all databases."},
        {"tenantd_db_pool_recycled_memory_total", "counter",
         "Connections closed because their backend held more than TENANTD_BACKEND_MEMORY_MB."},
        {"tenantd_db_pool_recycled_tenants_total", "counter",
         "Connections closed after serving TENANTD_CONN_MAX_TENANTS tenants (memory unknown)."},
    };
    int ns = app && app->db ? db_server_count(app->db) : 0;
    struct db_pool_stats *st = td_xcalloc((size_t)(ns ? ns : 1), sizeof(*st));
    for (int s = 0; s < ns; s++)
        db_server_pool_stats(app->db, s, &st[s]);
    for (size_t k = 0; k < sizeof(g) / sizeof(g[0]); k++) {
        help(b, g[k].name, g[k].type, g[k].help);
        for (int s = 0; s < ns; s++) {
            unsigned long long ptx;
            int depth;
            db_server_pipe_stats(app->db, s, &ptx, &depth);
            long long v[] = {st[s].open,
                             st[s].in_use,
                             st[s].waiting,
                             st[s].dbs,
                             st[s].hits,
                             st[s].misses,
                             st[s].evictions,
                             (long long)ptx,
                             depth,
                             st[s].affine,
                             st[s].hits + st[s].misses,
                             st[s].recycled_memory,
                             st[s].recycled_tenants};
            out(b, "%s{server=\"%s\"} %lld\n", g[k].name, db_server_name(app->db, s), v[k]);
        }
    }
    free(st);
}

/* The in-memory caches: a miss costs a catalog statement (tenant, usage), a full token
 * verification (token) or a user check in the transaction (user_check). */
static void render_caches(struct buf *b, struct td_app *app)
{
    static const struct {
        const char *name, *type, *help;
    } g[] = {
        {"tenantd_cache_hits_total", "counter", "Lookups answered from memory."},
        {"tenantd_cache_misses_total", "counter",
         "Lookups that read the catalog, verified a token in full or checked the user."},
        {"tenantd_cache_evictions_total", "counter", "Live entries dropped to make room."},
        {"tenantd_cache_entries", "gauge", "Entries held."},
        {"tenantd_cache_bytes", "gauge", "Memory the entries hold."},
        {"tenantd_cache_budget_bytes", "gauge", "The most memory the cache may hold."},
    };
    static const char *const names[] = {"tenant", "token", "user_check", "usage"};
    struct td_cache_stats st[4] = {0};
    if (app->cache)
        tnt_cache_stats(app->cache, &st[0]);
    if (app->jwt)
        auth_jwt_stats(app->jwt, &st[1]);
    if (app->usercheck)
        tnt_usercheck_stats(app->usercheck, &st[2]);
    if (app->usage)
        tnt_usage_stats(app->usage, &st[3]);
    for (size_t k = 0; k < sizeof(g) / sizeof(g[0]); k++) {
        help(b, g[k].name, g[k].type, g[k].help);
        for (int i = 0; i < 4; i++) {
            unsigned long long v[] = {st[i].hits,    st[i].misses, st[i].evictions,
                                      st[i].entries, st[i].bytes,  st[i].budget};
            out(b, "%s{cache=\"%s\"} %llu\n", g[k].name, names[i], v[k]);
        }
    }
}

/* Each server's replica (servers without one are left out). */
static void render_replicas(struct buf *b, struct td_app *app)
{
    static const struct {
        const char *name, *type, *help;
    } g[] = {
        {"tenantd_replica_up", "gauge",
         "1 when the replica answered the last poll (within a second) and replays WAL."},
        {"tenantd_replica_lag_bytes", "gauge",
         "WAL bytes the replica's replay is behind its primary's insert position."},
        {"tenantd_replica_reads_total", "counter",
         "Read transactions that may use a replica, by where they ran (replica or primary)."},
        {"tenantd_replica_fallbacks_total", "counter",
         "Reads sent to the replica that failed there and ran on the primary instead."},
    };
    int ns = app && app->db ? db_server_count(app->db) : 0;
    for (size_t k = 0; k < sizeof(g) / sizeof(g[0]); k++) {
        help(b, g[k].name, g[k].type, g[k].help);
        for (int s = 0; s < ns; s++) {
            struct db_replica_stats st;
            db_server_replica_stats(app->db, s, &st);
            const char *n = db_server_name(app->db, s);
            if (!st.configured)
                continue;
            if (k == 0)
                out(b, "%s{server=\"%s\"} %d\n", g[k].name, n, st.up);
            else if (k == 1)
                out(b, "%s{server=\"%s\"} %lld\n", g[k].name, n, st.lag_bytes);
            else if (k == 2)
                out(b,
                    "%s{server=\"%s\",target=\"replica\"} %lld\n%s{server=\"%s\","
                    "target=\"primary\"} %lld\n",
                    g[k].name, n, st.reads_replica, g[k].name, n, st.reads_primary);
            else
                out(b, "%s{server=\"%s\"} %lld\n", g[k].name, n, st.fallbacks);
        }
    }
}

/* A counter by result and a histogram of durations, for one kind of slow operation. */
static void render_slow(struct buf *b, const char *name, const char *hname, const char *what,
                        struct slow_series *s)
{
    char full[128], text[160];
    snprintf(full, sizeof(full), "%s_total", name);
    snprintf(text, sizeof(text), "%s, by result.", what);
    help(b, full, "counter", text);
    out(b, "%s{result=\"ok\"} %llu\n%s{result=\"error\"} %llu\n", full, get(&s->ok), full,
        get(&s->failed));
    snprintf(full, sizeof(full), "%s_duration_seconds", hname);
    snprintf(text, sizeof(text), "Duration of %s.", what);
    help(b, full, "histogram", text);
    unsigned long long le[M_NSLOW_BOUNDS + 1];
    for (size_t k = 0; k <= M_NSLOW_BOUNDS; k++)
        le[k] = get(&s->le[k]);
    hist_lines(b, full, "", le, M_NSLOW_BOUNDS, slow_bounds, get(&s->sum_us),
               get(&s->ok) + get(&s->failed));
}

static void render_jobs(struct buf *b, const struct jobs *j)
{
    struct jobs_stats js;
    jobs_get_stats(j, &js);
    help(b, "tenantd_jobs_total", "counter",
         "Background jobs finished by this instance, by outcome (retry: failed, will run "
         "again; dead: failed its last attempt; skipped: its tenant is suspended or deleted).");
    out(b,
        "tenantd_jobs_total{result=\"done\"} %lld\ntenantd_jobs_total{result=\"retry\"} %lld\n"
        "tenantd_jobs_total{result=\"dead\"} %lld\ntenantd_jobs_total{result=\"skipped\"} %lld\n",
        js.done, js.retried, js.dead, js.skipped);
    help(b, "tenantd_jobs_queue", "gauge",
         "Jobs in the catalog queue by status, as last counted by this instance's workers "
         "(-1: not counted yet or no workers).");
    out(b,
        "tenantd_jobs_queue{status=\"queued\"} %lld\ntenantd_jobs_queue{status=\"running\"} %lld\n"
        "tenantd_jobs_queue{status=\"dead\"} %lld\n",
        js.queued, js.running, js.dead_now);
    help(b, "tenantd_tenant_migrations", "gauge",
         "Tenants whose storage is behind this version's tenant migrations (pending) or whose "
         "last migration failed (failed), as last counted from the catalog (-1: not yet).");
    out(b,
        "tenantd_tenant_migrations{state=\"pending\"} %lld\n"
        "tenantd_tenant_migrations{state=\"failed\"} %lld\n",
        js.mig_pending, js.mig_failed);
}

enum backup_field { BK_ARCHIVING, BK_ARCHIVED, BK_FAILED, BK_LAST, BK_OLDEST, BK_COUNT };

static long long backup_field(const struct bkp_status *st, enum backup_field f)
{
    switch (f) {
    case BK_ARCHIVING:
        return st->archiving;
    case BK_ARCHIVED:
        return st->last_archived;
    case BK_FAILED:
        return st->archive_failed;
    case BK_LAST:
        return st->last_backup;
    case BK_OLDEST:
        return st->oldest_backup;
    case BK_COUNT:
        return st->backups;
    }
    return 0;
}

/* Every server's backups (URL servers through their own stanza), one series a server. */
static void render_backup(struct buf *b, struct td_app *app)
{
    static const struct {
        const char *name, *type, *text;
        enum backup_field field;
    } s[] = {
        {"tenantd_wal_archiving", "gauge",
         "1 when the server archives WAL (archive_mode on), so its tenants can be restored to a "
         "past moment.",
         BK_ARCHIVING},
        {"tenantd_wal_last_archived_timestamp_seconds", "gauge",
         "When the server last archived a WAL segment (pg_stat_archiver; 0: never).", BK_ARCHIVED},
        {"tenantd_wal_archive_failures_total", "counter",
         "Failed attempts to archive a WAL segment (pg_stat_archiver.failed_count).", BK_FAILED},
        {"tenantd_backup_last_success_timestamp_seconds", "gauge",
         "When the newest complete base backup of the server's stanza ended (0: none).", BK_LAST},
        {"tenantd_backup_oldest_timestamp_seconds", "gauge",
         "When the oldest kept base backup ended: the earliest moment a restore can reach.",
         BK_OLDEST},
        {"tenantd_backups", "gauge", "Base backups kept in the server's stanza.", BK_COUNT},
    };
    int n = db_server_count(app->db);
    for (size_t k = 0; k < sizeof(s) / sizeof(s[0]); k++) {
        help(b, s[k].name, s[k].type, s[k].text);
        for (int i = 0; i < n; i++) {
            struct bkp_status st;
            bkp_get_status(app->backup, i, &st);
            out(b, "%s{server=\"%s\"} %lld\n", s[k].name, db_server_name(app->db, i),
                backup_field(&st, s[k].field));
        }
    }
}

char *api_metrics_render(struct td_app *app, size_t *len)
{
    struct api_metrics *m = app->metrics;
    struct buf b = {td_xmalloc(16384), 0, 16384};
    render_requests(&b, m);
    render_tenants(&b, app);
    help(&b, "tenantd_denied_total", "counter",
         "Cross-tenant attempts refused: tenant_mismatch (token of another tenant), "
         "rls_empty_write (a PATCH or DELETE naming a row the tenant cannot see).");
    out(&b, "tenantd_denied_total{reason=\"tenant_mismatch\"} %llu\n", get(&m->denied_mismatch));
    out(&b, "tenantd_denied_total{reason=\"rls_empty_write\"} %llu\n", get(&m->denied_rls_write));
    help(&b, "tenantd_rate_limited_total", "counter",
         "Requests refused with 429 because the plan's monthly API budget is spent.");
    out(&b, "tenantd_rate_limited_total %llu\n", get(&m->rate_limited));
    render_pools(&b, app);
    render_caches(&b, app);
    render_replicas(&b, app);
    render_slow(&b, "tenantd_tenant_provisions", "tenantd_tenant_provision",
                "tenant provisionings (storage and migrations)", &m->provisions);
    render_slow(&b, "tenantd_migration_runs", "tenantd_migration_run",
                "start-up migration runs (catalog and shared pool schemas)", &m->migrations);
    render_jobs(&b, atomic_load(&app->jobs));
    render_backup(&b, app);
    *len = b.len;
    return b.p;
}
