/*
 * kinds.c - the built-in job kinds: audit-log retention (per tenant, in its storage), the
 * analytics refresh, the monthly usage roll-up and the cleanup of finished jobs (platform).
 */
#include "jobs/internal.h"

#include "core/log.h"
#include "core/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int jobs_audit_retention_days(const char *plan)
{
    static const struct {
        const char *plan;
        int days;
    } table[] = {{"free", 30}, {"starter", 90}, {"pro", 365}};
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
        if (plan && strcmp(table[i].plan, plan) == 0)
            return table[i].days;
    return -1;
}

/* ---- audit_retention ----------------------------------------------------------------- */

static const char retention_sql[] =
    "WITH d AS (DELETE FROM audit_logs WHERE created_at < now() - $1::int * interval '1 day' "
    "RETURNING 1) SELECT count(*) FROM d";

/* payload {"days": N} overrides the plan's retention (an operator's one-off purge). */
static int run_audit_retention(struct jobs__ctx *c)
{
    long long days = jobs_audit_retention_days(c->tenant->plan);
    json_t *d = json_object_get(c->payload, "days");
    if (d) {
        if (!json_is_integer(d) || json_integer_value(d) < 0 || json_integer_value(d) > 100000)
            return jobs__fail(c, TD_EVALIDATION, "days must be an integer from 0 to 100000");
        days = json_integer_value(d);
    }
    if (days < 0)
        return 0; /* this plan keeps its audit log forever */
    char ds[24];
    snprintf(ds, sizeof(ds), "%lld", days);
    struct db_target tg;
    tnt_tenant_target(c->tenant, &tg);
    struct db_stmt st = {retention_sql, 1, (const char *const[]){ds}, 0};
    PGresult *r = NULL;
    int rc = db_exec(c->db, &tg, &st, 1, &r);
    if (rc < 0)
        return jobs__fail(c, rc, "could not delete old audit entries (%s)", td_err_code(rc));
    td_log_info("jobs: audit retention removed %s entries older than %lld days from tenant %s",
                PQgetvalue(r, 0, 0), days, c->tenant->slug);
    PQclear(r);
    return 0;
}

/* ---- analytics_refresh --------------------------------------------------------------- */

struct strbuf {
    char *p;
    size_t len, cap;
};

static void sb_add(struct strbuf *b, const char *s)
{
    size_t n = strlen(s);
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->p = td_xrealloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, s, n + 1);
    b->len += n;
}

static const char count_sql[] =
    "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM projects)";

static const char stats_sql[] =
    "INSERT INTO tenantd.tenant_stats AS s (tenant_id, users, projects, collected_at) "
    "SELECT x.t, x.u, x.p, now() FROM unnest($1::uuid[], $2::bigint[], $3::bigint[]) "
    "AS x(t, u, p) WHERE x.t IN (SELECT id FROM tenantd.tenants) "
    "ON CONFLICT (tenant_id) DO UPDATE SET users = EXCLUDED.users, projects = "
    "EXCLUDED.projects, collected_at = EXCLUDED.collected_at";

/* Count one tenant's users and projects in its own storage; appends to the arrays. */
static int collect_one(struct jobs__ctx *c, const PGresult *tr, int row, struct strbuf *ids,
                       struct strbuf *users, struct strbuf *projects)
{
    struct tnt_tenant *t = tnt_tenant_from_row(c->db, tr, row);
    struct db_target tg;
    tnt_tenant_target(t, &tg);
    tg.read_only = 1; /* a caught-up replica counts as well as the primary */
    struct db_stmt st = {count_sql, 0, NULL, 0};
    PGresult *r = NULL;
    int rc = db_exec(c->db, &tg, &st, 1, &r);
    if (rc == 0) {
        const char *sep = ids->len > 1 ? "," : "";
        sb_add(ids, sep);
        sb_add(ids, t->id);
        sb_add(users, sep);
        sb_add(users, PQgetvalue(r, 0, 0));
        sb_add(projects, sep);
        sb_add(projects, PQgetvalue(r, 0, 1));
    } else {
        td_log_warn("jobs: analytics could not count tenant %s (%s); its last figures stay",
                    t->slug, td_err_code(rc));
    }
    PQclear(r);
    tnt_tenant_unref(t);
    return rc;
}

/* Suspended tenants are not read (no job works in a suspended tenant's storage): their
 * last collected figures stay, dated by collected_at. */
static int run_analytics_refresh(struct jobs__ctx *c)
{
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT %s FROM tenantd.tenants WHERE status = 'active' ORDER BY server, id",
             tnt_catalog_columns);
    PGresult *tr = NULL;
    struct strbuf ids = {0}, users = {0}, projects = {0};
    int failed = 0;
    int rc = db_admin_exec(c->pg, "listing tenants for analytics", sql, 0, NULL, &tr);
    if (rc < 0) {
        jobs__fail(c, rc, "catalog unreachable");
        goto out;
    }
    sb_add(&ids, "{");
    sb_add(&users, "{");
    sb_add(&projects, "{");
    for (int i = 0; i < PQntuples(tr); i++) {
        if (atomic_load(c->stop)) {
            rc = jobs__fail(c, TD_EUNAVAILABLE, "interrupted: the server is stopping");
            goto out;
        }
        if (i % 50 == 49 && jobs__heartbeat(c) < 0) {
            rc = jobs__fail(c, TD_ECONFLICT, "lease lost to another worker");
            goto out;
        }
        if (collect_one(c, tr, i, &ids, &users, &projects) < 0)
            failed++;
    }
    sb_add(&ids, "}");
    sb_add(&users, "}");
    sb_add(&projects, "}");
    rc = db_admin_exec(c->pg, "storing tenant figures", stats_sql, 3,
                       (const char *const[]){ids.p, users.p, projects.p}, NULL);
    if (rc == 0)
        rc = db_admin_exec(c->pg, "refreshing analytics",
                           "REFRESH MATERIALIZED VIEW CONCURRENTLY tenantd.analytics_tenants; "
                           "REFRESH MATERIALIZED VIEW CONCURRENTLY tenantd.analytics_usage; "
                           "REFRESH MATERIALIZED VIEW tenantd.analytics_meta",
                           0, NULL, NULL);
    if (rc == 0) /* GET /admin/analytics reads a replica only once it has this refresh */
        db_note_write(c->db, 0, "analytics", c->pg);
    if (rc < 0)
        jobs__fail(c, rc, "could not refresh the analytics views (%s)", td_err_code(rc));
    else
        td_log_info("jobs: analytics refreshed (%d tenants, %d not reachable)", PQntuples(tr),
                    failed);
out:
    PQclear(tr);
    free(ids.p);
    free(users.p);
    free(projects.p);
    return rc;
}

/* ---- usage_rollup -------------------------------------------------------------------- */

/* Copy every closed month of tenantd.usage into tenantd.usage_monthly. Idempotent: a month
 * rolled up twice gets the same figures (the live counters of a closed month no longer
 * move: each instance flushes into the month of the flush). */
static const char rollup_sql[] =
    "INSERT INTO tenantd.usage_monthly AS m (tenant_id, month, slug, plan, api_calls, users, "
    "projects) SELECT u.tenant_id, u.month, t.slug, t.plan, u.api_calls, s.users, s.projects "
    "FROM tenantd.usage u JOIN tenantd.tenants t ON t.id = u.tenant_id LEFT JOIN "
    "tenantd.tenant_stats s ON s.tenant_id = u.tenant_id WHERE u.month < date_trunc('month', "
    "now() AT TIME ZONE 'UTC')::date ON CONFLICT (tenant_id, month) DO UPDATE SET api_calls = "
    "greatest(m.api_calls, EXCLUDED.api_calls)";

static int run_usage_rollup(struct jobs__ctx *c)
{
    PGresult *r = NULL;
    int rc = db_admin_exec(c->pg, "rolling up usage", rollup_sql, 0, NULL, &r);
    if (rc < 0)
        return jobs__fail(c, rc, "could not roll up usage (%s)", td_err_code(rc));
    td_log_info("jobs: usage roll-up wrote %s tenant-month(s)", PQcmdTuples(r));
    PQclear(r);
    /* the per-day figures serve the console's chart of the current month: keep the month
     * before it too, drop older days (usage_monthly keeps the totals) */
    rc = db_admin_exec(c->pg, "pruning daily usage",
                       "DELETE FROM tenantd.usage_daily WHERE day < (date_trunc('month', now() AT "
                       "TIME ZONE 'UTC') - interval '1 month')::date",
                       0, NULL, NULL);
    return rc < 0 ? jobs__fail(c, rc, "could not prune daily usage (%s)", td_err_code(rc)) : 0;
}

/* ---- jobs_cleanup -------------------------------------------------------------------- */

static int run_jobs_cleanup(struct jobs__ctx *c)
{
    int rc = db_admin_exec(c->pg, "removing finished jobs",
                           "DELETE FROM tenantd.jobs WHERE (status IN ('done', 'skipped') AND "
                           "finished_at < now() - interval '7 days') OR (status = 'dead' AND "
                           "finished_at < now() - interval '30 days')",
                           0, NULL, NULL);
    return rc < 0 ? jobs__fail(c, rc, "could not remove finished jobs") : 0;
}

static const struct jobs__kind kinds[] = {
    {"audit_retention", 1, run_audit_retention},
    {"analytics_refresh", 0, run_analytics_refresh},
    {"usage_rollup", 0, run_usage_rollup},
    {"jobs_cleanup", 0, run_jobs_cleanup},
};

const struct jobs__kind *jobs__kind_find(const char *name)
{
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (strcmp(kinds[i].name, name) == 0)
            return &kinds[i];
    return NULL;
}
