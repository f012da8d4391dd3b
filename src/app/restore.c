/*
 * restore.c - an operator's restore or clone of a tenant (restore.h): the checks that
 * refuse it before anything changes, and the job with its line in the record of operator
 * actions, queued in one transaction. The admin API and the CLI both call this, so they
 * refuse the same requests with the same reasons.
 */
#include "app/restore.h"

#include "db/db.h"
#include "http/problem.h"
#include "jobs/jobs.h"
#include "tenant/check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TS(x) "to_char(" x " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

/* The tenant named by {id}, live or deleted (the newest deletion of a slug), and the reason
 * a restore to $2 must be refused (NULL: none), the plan's window in days included; then the
 * moment normalized and in unix seconds (checked against the oldest backup in C: that
 * depends on the tenant's server). */
static const char find_sql[] =
    "WITH t AS (SELECT id, slug, plan, isolation, server, created_at, NULL::timestamptz AS "
    "deleted_at FROM tenantd.tenants WHERE id::text = $1 OR slug = $1 UNION ALL (SELECT id, "
    "slug, plan, isolation, server, created_at, deleted_at FROM tenantd.deleted_tenants WHERE "
    "(id::text = $1 OR slug = $1) AND NOT EXISTS (SELECT 1 FROM tenantd.tenants WHERE id::text "
    "= $1 OR slug = $1) ORDER BY deleted_at DESC LIMIT 1)), "
    "w AS (SELECT t.*, CASE t.plan WHEN 'free' THEN 1 WHEN 'starter' THEN 7 WHEN 'pro' THEN 14 "
    "ELSE 30 END AS days, $2::timestamptz AS at FROM t) "
    "SELECT id, slug, isolation, server, deleted_at IS NULL, CASE "
    "WHEN at > now() THEN 'at is in the future' "
    "WHEN at < created_at THEN 'at is before the tenant existed (created ' || " TS(
        "created_at") " || ')' "
                      "WHEN at < now() - days * interval '1 day' THEN 'at is outside the ' || plan "
                      "|| ' plan''s "
                      "restore window of ' || days || ' day' || CASE WHEN days > 1 THEN 's' ELSE "
                      "'' END "
                      "WHEN deleted_at IS NOT NULL AND at >= deleted_at THEN 'at is after the "
                      "tenant was deleted "
                      "(' || " TS("deleted_at") " || ')' END, "
                                                "to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD "
                                                "HH24:MI:SS.US') || '+00', "
                                                "CASE WHEN isfinite(at) THEN floor(extract(epoch "
                                                "FROM at))::bigint END FROM w";

/* RFC 3339 with a zone: 2026-01-02T03:04:05[.ffffff](Z|+hh:mm|-hh:mm). */
static int is_rfc3339(const char *s)
{
    static const char pat[] = "dddd-dd-ddTdd:dd:dd";
    size_t i = 0;
    for (; pat[i]; i++)
        if (pat[i] == 'd' ? !(s[i] >= '0' && s[i] <= '9') : s[i] != pat[i])
            return 0;
    if (s[i] == '.') {
        size_t k = ++i;
        while (s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == k)
            return 0;
    }
    if ((s[i] == 'Z' || s[i] == 'z') && !s[i + 1])
        return 1;
    return (s[i] == '+' || s[i] == '-') && s[i + 1] >= '0' && s[i + 1] <= '9' && s[i + 2] >= '0' &&
           s[i + 2] <= '9' && s[i + 3] == ':' && s[i + 4] >= '0' && s[i + 4] <= '9' &&
           s[i + 5] >= '0' && s[i + 5] <= '9' && !s[i + 6];
}

/* 1 when a live tenant has this slug. */
static int slug_taken(PGconn *pg, const char *slug, int *taken)
{
    PGresult *r = NULL;
    int rc = db_admin_exec(pg, "checking a slug", "SELECT 1 FROM tenantd.tenants WHERE slug = $1",
                           1, (const char *const[]){slug}, &r);
    *taken = rc == 0 && PQntuples(r) > 0;
    PQclear(r);
    return rc;
}

static const char job_sql[] =
    "SELECT id, CASE WHEN kind LIKE 'tenant\\_%' THEN substr(kind, 8) ELSE kind END, CASE status "
    "WHEN 'done' THEN 'succeeded' WHEN 'dead' THEN 'failed' WHEN 'skipped' THEN 'failed' ELSE "
    "status END, progress, error::text, result::text, last_error, " TS("created_at") ", " TS(
        "finished_at") " FROM tenantd.jobs WHERE id::text = $1";

static json_t *job_json(PGresult *r)
{
    json_t *err = json_null(), *res = json_null();
    int failed = strcmp(PQgetvalue(r, 0, 2), "failed") == 0;
    if (!PQgetisnull(r, 0, 4)) {
        json_t *e = json_loads(PQgetvalue(r, 0, 4), 0, NULL);
        err = http_problem_json((int)json_integer_value(json_object_get(e, "err")),
                                json_string_value(json_object_get(e, "detail")));
        json_decref(e);
    } else if (failed) {
        err = http_problem_json(TD_EINTERNAL,
                                PQgetisnull(r, 0, 6) ? "the job failed" : PQgetvalue(r, 0, 6));
    }
    if (!PQgetisnull(r, 0, 5) && !failed)
        res = json_loads(PQgetvalue(r, 0, 5), 0, NULL);
    return json_pack("{s:s, s:s, s:s, s:f, s:o, s:o, s:s, s:s?}", "id", PQgetvalue(r, 0, 0), "kind",
                     PQgetvalue(r, 0, 1), "status", PQgetvalue(r, 0, 2), "progress",
                     atof(PQgetvalue(r, 0, 3)), "error", err, "result", res ? res : json_null(),
                     "created_at", PQgetvalue(r, 0, 7), "finished_at",
                     PQgetisnull(r, 0, 8) ? NULL : PQgetvalue(r, 0, 8));
}

int app_job_json(PGconn *pg, const char *id, json_t **out)
{
    PGresult *r = NULL;
    *out = NULL;
    int rc = db_admin_exec(pg, "reading a job", job_sql, 1, (const char *const[]){id}, &r);
    if (rc == 0 && PQntuples(r) != 1)
        rc = TD_ENOTFOUND;
    if (rc == 0)
        *out = job_json(r);
    PQclear(r);
    return rc;
}

/* What check_tenant() found. */
struct found {
    char tenant_id[40], slug[48], dbname[40], at_norm[40], server[64];
    int live;
};

/* Queue the job and its line in the record of operator actions, in one transaction. */
static int enqueue(PGconn *pg, const struct app_restore *q, const struct found *f, char *job_id)
{
    const char *action = q->clone ? "clone" : "restore";
    json_t *p = json_pack("{s:s, s:s, s:s?, s:s?, s:s?, s:s}", "tenant_id", f->tenant_id, "slug",
                          f->slug, "new_slug", q->new_slug, "at", q->at ? f->at_norm : NULL,
                          "dbname", f->dbname[0] ? f->dbname : NULL, "server", f->server);
    char *payload = json_dumps(p, JSON_COMPACT);
    int rc = db_admin_exec(pg, "starting a transaction", "BEGIN", 0, NULL, NULL);
    if (rc == 0)
        rc = jobs_enqueue(pg, NULL, q->clone ? "tenant_clone" : "tenant_restore", payload, 0, 1,
                          job_id);
    if (rc == 0)
        rc = db_admin_exec(pg, "recording the operator action",
                           "INSERT INTO tenantd.operator_actions (action, actor, tenant_id, "
                           "tenant_slug, target_at, new_slug, job_id) VALUES ($1, $2, $3, $4, "
                           "$5::timestamptz, $6, $7)",
                           7,
                           (const char *const[]){action, q->actor, f->tenant_id, f->slug,
                                                 q->at ? f->at_norm : NULL, q->new_slug, job_id},
                           NULL);
    int end =
        db_admin_exec(pg, "ending a transaction", rc == 0 ? "COMMIT" : "ROLLBACK", 0, NULL, NULL);
    free(payload);
    json_decref(p);
    return end < 0 && rc == 0 ? TD_EUNAVAILABLE : rc;
}

/* A moment before the oldest base backup of the tenant's server (in whole seconds:
 * pgBackRest picks a backup that ended before the moment by that measure, so the moment
 * must lie a second later) cannot be reached; neither can any without a backup. */
static int check_backup(const struct app_restore *q, int server, const char *at_epoch, char *detail)
{
    long long oldest;
    int rc = bkp_oldest(q->backup, server, &oldest, detail, APP_RESTORE_DETAIL);
    if (rc < 0 || !q->at || !at_epoch[0] || atoll(at_epoch) >= oldest + 1)
        return rc;
    time_t first = (time_t)oldest + 1;
    struct tm tm;
    char when[32];
    gmtime_r(&first, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(detail, APP_RESTORE_DETAIL,
             "no base backup reaches back to at: the oldest moment available is %s", when);
    return TD_EVALIDATION;
}

/* Find the tenant and check the moment; fills f, or detail when refused. */
static int check_tenant(struct td_app *app, PGconn *pg, const struct app_restore *q,
                        struct found *f, char *detail)
{
    PGresult *r = NULL;
    const char *p[2] = {q->key, q->at ? q->at : "-infinity"};
    int rc = db_admin_exec(pg, "finding the tenant", find_sql, 2, p, &r);
    if (rc == 0 && PQntuples(r) == 0)
        rc = TD_ETENANT_NOTFOUND;
    if (rc == 0)
        f->live = PQgetvalue(r, 0, 4)[0] == 't';
    if (rc == 0 && !q->at && !f->live)
        rc = TD_ETENANT_NOTFOUND; /* a clone is of a live tenant */
    if (rc == 0 && q->at && !PQgetisnull(r, 0, 5)) {
        snprintf(detail, APP_RESTORE_DETAIL, "%s", PQgetvalue(r, 0, 5));
        rc = TD_EVALIDATION;
    }
    int server = rc == 0 ? db_server_find(app->db, PQgetvalue(r, 0, 3)) : -1;
    if (rc == 0 && server < 0) {
        snprintf(detail, APP_RESTORE_DETAIL, "the tenant's server %s is not configured",
                 PQgetvalue(r, 0, 3));
        rc = TD_EUNAVAILABLE;
    }
    if (rc == 0)
        rc = check_backup(q, server, PQgetvalue(r, 0, 7), detail);
    if (rc == 0) {
        snprintf(f->tenant_id, sizeof(f->tenant_id), "%s", PQgetvalue(r, 0, 0));
        snprintf(f->slug, sizeof(f->slug), "%s", PQgetvalue(r, 0, 1));
        snprintf(f->server, sizeof(f->server), "%s", PQgetvalue(r, 0, 3));
        if (strcmp(PQgetvalue(r, 0, 2), "database") == 0)
            snprintf(f->dbname, sizeof(f->dbname), "td_%.8s%.4s%.4s%.4s%.12s", f->tenant_id,
                     f->tenant_id + 9, f->tenant_id + 14, f->tenant_id + 19, f->tenant_id + 24);
        snprintf(f->at_norm, sizeof(f->at_norm), "%s", PQgetvalue(r, 0, 6));
    }
    PQclear(r);
    return rc;
}

/* The checks of the values alone; a reason, or NULL. */
static const char *check_values(const struct app_restore *q)
{
    if (!q->clone && !q->at)
        return "a restore needs the moment (at)";
    if (q->at && !is_rfc3339(q->at))
        return "at must be an RFC 3339 timestamp with a zone, e.g. 2026-01-02T03:04:05Z";
    if (q->clone && !q->new_slug)
        return "a clone needs the new tenant's slug";
    if (q->new_slug && !tnt_slug_ok(q->new_slug))
        return "slug must match ^[a-z][a-z0-9-]{1,38}[a-z0-9]$";
    return NULL;
}

int app_restore_enqueue(struct td_app *app, PGconn *pg, const struct app_restore *q,
                        char job_id[40], char detail[APP_RESTORE_DETAIL])
{
    struct found f = {.live = 0};
    const char *bad = check_values(q);
    int rc, taken = 0;
    detail[0] = '\0';
    if (bad) {
        snprintf(detail, APP_RESTORE_DETAIL, "%s", bad);
        return TD_EVALIDATION;
    }
    if ((rc = check_tenant(app, pg, q, &f, detail)) < 0)
        return rc;
    if (!q->clone && !q->new_slug && (!q->confirm || strcmp(q->confirm, f.slug) != 0)) {
        snprintf(detail, APP_RESTORE_DETAIL, "%s",
                 "replacing a tenant's data needs the confirmation of its slug (or give a new "
                 "slug)");
        return TD_EBADREQ;
    }
    /* without a new slug a live tenant keeps its own; a deleted one needs its old slug free */
    if ((q->new_slug || !f.live) &&
        (rc = slug_taken(pg, q->new_slug ? q->new_slug : f.slug, &taken)) < 0)
        return rc;
    if (taken) {
        snprintf(detail, APP_RESTORE_DETAIL, "%s", "this slug is taken");
        return TD_ECONFLICT;
    }
    return enqueue(pg, q, &f, job_id);
}
